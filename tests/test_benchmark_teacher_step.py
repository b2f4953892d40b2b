"""benchmarks/teacher_step.py: a smoke run times every shape and finds the attention kernels."""

from __future__ import annotations

import json

import pytest
from conftest import benchmark_module


@pytest.fixture(scope="module")
def bench():
    yield from benchmark_module("teacher_step")


def test_quick_run_times_each_shape_and_its_attention(bench, tmp_path):
    out = tmp_path / "step.json"
    bench.main(["--quick", "--threads", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["shapes"]) == {f"heads_{h}_seconds_{s}" for h, s in bench.SHAPES}
    for shape in result["shapes"].values():
        assert shape["encoder_positions"] == 50 * shape["seconds"]
        assert shape["median_ms_per_step"] > 0 and len(shape["rounds_ms_per_step"]) == 1
        assert 0.0 < shape["attention_share"] < 1.0  # the profiler sees the attention kernels
    assert result["relative_to_heads_2_seconds_3"]["heads_2_seconds_3"] == 1.0


def test_a_step_changes_the_weights(bench):
    import torch

    model, step = bench.make_step(heads=2, seconds=2, batch=2)
    assert model.config.max_source_positions == 100
    before = [p.detach().clone() for p in model.parameters()]
    step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_rejects_bad_options(bench):
    with pytest.raises(SystemExit):
        bench.main(["--steps", "0"])
