"""Process-group housekeeping for runs under ``torchrun`` / ``accelerate launch``."""

from __future__ import annotations

import torch


def close_process_group() -> None:
    """Wait for every rank, then destroy the default process group, if one is open.

    The Trainer opens the group and leaves it open. A gloo group still alive when the
    interpreter shuts down can abort the process ("terminate called without an active
    exception", SIGABRT) after the work is done, so the launcher reports a failure; a
    script that trains under ``torchrun`` should call this last. A no-op otherwise.
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
