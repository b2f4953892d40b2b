"""Two CPU processes under torchrun (gloo): identical codebooks, finite loss, one save."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_two_process_ddp_run(tmp_path):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(TESTS / "distributed_run.py"), str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["codebooks"] == reports[1]["codebooks"]
    assert all(math.isfinite(x) for r in reports for x in r["losses"]) and reports[0]["losses"]
    assert [r["should_save"] for r in reports] == [True, False]
    final = tmp_path / "final"
    assert (final / "model.safetensors").is_file()
    assert json.loads((final / "config.json").read_text())["quantization_config"]["bits"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftover temp dirs


def test_close_process_group_destroys_an_open_group_and_is_a_no_op_otherwise(tmp_path):
    import torch.distributed as dist

    from hf_quads.distributed import close_process_group

    close_process_group()  # nothing open: nothing to do
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert dist.is_initialized()
    close_process_group()
    assert not dist.is_initialized()


def test_the_cli_closes_the_process_group_after_a_command(tmp_path):
    import torch.distributed as dist

    from hf_quads.cli import main

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        out = tmp_path / "fsc"
        argv = ["data", "synth", "--out", str(out), "--train_speakers", "1", "--valid_speakers", "1",
                "--test_speakers", "1", "--phrasings_per_intent", "1", "--num_workers", "0", "--quiet"]  # fmt: skip
        assert main(argv) == 0
        assert (out / "data" / "train_data.csv").is_file()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
