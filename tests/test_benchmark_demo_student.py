"""benchmarks/demo_student.py: the demo's whole training per setting and seed, scored on
both splits (the record behind benchmarks/README.md's per-seed student table)."""

from __future__ import annotations

import json

import pytest
from conftest import benchmark_module


@pytest.fixture(scope="module")
def bench():
    yield from benchmark_module("demo_student")


def test_a_run_names_its_setting_and_training_seed(bench):
    from hf_quads.recipes.demo import DemoArguments

    demo = DemoArguments(data_dir="data/x")
    run = bench.run_demo_args(demo, "teacher_epochs_14@2")
    assert (run.teacher_epochs, run.seed, run.distill_epochs) == (14.0, 2, demo.distill_epochs)
    assert run.data_dir == "data/x"
    assert bench.run_demo_args(demo, "distill_epochs_4").distill_epochs == 4.0
    assert bench.run_demo_args(demo, "baseline") == demo
    # The record's 16-epoch runs (its "baseline" then) stay reproducible by name.
    assert bench.run_demo_args(demo, "teacher_epochs_16@1").teacher_epochs == 16.0
    assert (
        demo.teacher_epochs == 14.0 == bench.run_demo_args(demo, "teacher_epochs_14").teacher_epochs
    )
    for bad in (["--settings", "nope"], ["--settings", "baseline@x"], ["--parallel", "0"]):
        with pytest.raises(SystemExit):
            bench.main(bad)


def _run(teacher: list[int], student: list[int], labels: list[int]) -> dict:
    def split(predictions):
        return {"predictions": predictions, "labels": labels}

    return {
        "name": "?",
        "timings_seconds": {"teacher": 1.0},
        "models": {
            "teacher": {"validation": split(teacher), "test": split(teacher)},
            "student 4-bit": {"validation": split(student), "test": split(labels)},
        },
    }


def test_scores_say_each_students_change_against_its_teacher(bench):
    labels = [0, 1, 2, 3]
    scored = bench.score_run(_run([0, 1, 2, 0], [0, 1, 0, 0], labels))
    teacher, student = scored["scores"]["teacher"], scored["scores"]["student 4-bit"]
    assert teacher["test"]["accuracy"] == 0.75 and "vs_teacher_points" not in teacher["test"]
    assert student["validation"]["vs_teacher_points"] == -25.0  # 50 % against 75 %
    assert student["test"]["vs_teacher_points"] == 25.0
    assert scored["timings_seconds"] == {"teacher": 1.0}

    other = bench.score_run(_run([0, 1, 2, 3], [0, 1, 2, 3], labels))
    summary = bench.summarise(
        {"baseline@0": scored, "baseline@1": other, "distill_epochs_4": other}
    )
    assert summary["baseline"]["runs"] == 2 and summary["distill_epochs_4"]["runs"] == 1
    drop = summary["baseline"]["student 4-bit"]["validation"]["vs_teacher_points"]
    assert drop == {"mean": -12.5, "min": -25.0, "max": 0.0}
    assert summary["baseline"]["teacher"]["test"]["accuracy"] == {
        "mean": 87.5, "min": 75.0, "max": 100.0
    }  # fmt: skip


def test_benchmark_runs_end_to_end_on_a_tiny_corpus(bench, tmp_path):
    out = tmp_path / "result.json"
    bench.main([
        "--quick", "--data_dir", str(tmp_path / "fsc"), "--parallel", "1",
        "--settings", "teacher_epochs_14", "--run_dir", str(tmp_path / "runs"), "--out", str(out),
    ])  # fmt: skip
    result = json.loads(out.read_text())
    assert list(result["runs"]) == ["teacher_epochs_14"]
    run = result["runs"]["teacher_epochs_14"]
    names = ["teacher", "student fp32", "student 8-bit", "student 4-bit", "student 2-bit"]
    assert list(run["scores"]) == names
    for name in names:
        for split in ("validation", "test"):
            assert 0.0 <= run["scores"][name][split]["accuracy"] <= 1.0
    assert set(run["timings_seconds"]) >= {"teacher", "prune", "distill", "quantize 4-bit"}
    assert (tmp_path / "runs" / "teacher_epochs_14" / "student-4bit").is_dir()
    assert result["settings"] == {"teacher_epochs_14": {"teacher_epochs": 14.0}}
    assert result["summary"]["teacher_epochs_14"]["runs"] == 1
