"""Run by tests/test_distributed.py under torchrun: 2 CPU processes (gloo), a few QUADS steps.

Each rank writes what it saw to OUT/rank<r>.json: its codebooks' checksum, the logged
losses and whether it was the process that saves.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
from tiny_models import random_whisper_dataset, whisper_classifier

from hf_quads.config import DistillQuantConfig
from hf_quads.distributed import close_process_group
from hf_quads.quant import qat_modules
from hf_quads.trainer import DistillQuantTrainer


def codebook_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, module in qat_modules(model):
        for buffer_name, buffer in sorted(module.named_buffers(recurse=False)):
            digest.update(f"{name}.{buffer_name}".encode())
            digest.update(buffer.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(out: Path) -> None:
    torch.set_num_threads(1)
    args = DistillQuantConfig(
        output_dir=str(out / "run"),
        report_to="none",
        max_steps=4,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        ddp_backend="gloo",
        schedule="distill:1,quant:1",
        seed=0,
    )
    trainer = DistillQuantTrainer(
        model=whisper_classifier(seed=2),
        teacher_model=whisper_classifier(d_model=48, seed=1),
        args=args,
        train_dataset=random_whisper_dataset(32),
    )
    trainer.train()
    trainer.save_model(str(out / "final"))
    rank = trainer.args.process_index
    report = {
        "rank": rank,
        "world_size": trainer.args.world_size,
        "codebooks": codebook_digest(trainer.model),
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
        "should_save": trainer.args.should_save,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    close_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
