"""The demo's whole training (teacher, students at 32/8/4/2 bits) per setting and seed.

The demo's table comes from one training seed; this benchmark runs the same steps
(:func:`hf_quads.recipes.demo.train_models`: train the teacher, prune it to the
student, distil in fp32, one quantization phase per bit width) once per run and
scores every saved model, reloaded from disk, on the validation and the test split
(both of voices no training speaker has). What it records per run: each model's
accuracy and macro-F1 on both splits, each student's accuracy minus its teacher's,
and each stage's wall time. Per setting: the mean, lowest and highest of every
model's accuracy and drop over its seeds. The settings:

* ``baseline``           - the demo as it is (a teacher of 14 epochs);
* ``teacher_epochs_13``, ``teacher_epochs_14``, ``teacher_epochs_16`` - the teacher
  trained 13, 14 or 16 epochs (the demo's longest stage; ``demo_teacher.py`` scores
  such teachers alone). The demo trained it 16 epochs until 2026-12-03: the record
  ``results/demo_student.json``, whose ``demo`` block says 16, calls that
  ``baseline`` (today's ``teacher_epochs_16``);
* ``distill_epochs_4``   - 4 epochs of fp32 distillation instead of 8.

Runs go in parallel processes of ``--threads`` torch threads each, so a run's stage
times are those of one thread beside another run, not the demo's two threads.
Run: ``python benchmarks/demo_student.py --settings teacher_epochs_16 baseline
--seeds 0 1 2`` (writes benchmarks/results/demo_student.json; about 14 minutes a
run, two at a time on 2 cores), ``--quick`` for a smoke run on the quick demo's tiny corpus.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from common import (
    demo_overrides,
    demo_runs_parser,
    machine_info,
    map_runs,
    parse_demo_runs,
    write_result,
)

from hf_quads.recipes.demo import (
    DemoArguments,
    corpus,
    featurize_corpus,
    predict_classifier,
    train_models,
)

RESULTS = Path(__file__).resolve().parent / "results" / "demo_student.json"
SPLITS = ("validation", "test")

#: Each setting's changes to the demo's arguments.
SETTINGS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "teacher_epochs_13": {"teacher_epochs": 13.0},
    "teacher_epochs_14": {"teacher_epochs": 14.0},
    "teacher_epochs_16": {"teacher_epochs": 16.0},
    "distill_epochs_4": {"distill_epochs": 4.0},
}


def run_demo_args(demo: DemoArguments, run: str) -> DemoArguments:
    """The demo arguments of a run ``name`` or ``name@seed``: the setting's changes and,
    where given, its training seed (the corpus is the demo's whatever the seed)."""
    name, _, seed = run.partition("@")
    changes = dict(SETTINGS[name])
    if seed:
        changes["seed"] = int(seed)
    return dataclasses.replace(demo, **changes)


def _run_name(run: str) -> str:
    name, _, seed = run.partition("@")
    if name not in SETTINGS or (seed and not seed.isdigit()):
        raise argparse.ArgumentTypeError(f"unknown run {run!r} (expected NAME or NAME@SEED)")
    return run


def run_one(job: tuple[str, DemoArguments, str, int]) -> dict[str, Any]:
    """Train and score one run (in a worker process): each model's predictions and the
    stage timings."""
    name, demo, run_dir, threads = job
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    data = corpus(demo)  # the corpus is the demo's: its seed, not the run's
    args = run_demo_args(demo, name)
    extractor, splits = featurize_corpus(data, args)
    timings: dict[str, float] = {}
    models, _ = train_models(args, splits, extractor, Path(run_dir) / name, timings)
    out: dict[str, Any] = {"name": name, "timings_seconds": timings, "models": {}}
    for model, directory, _extra in models:
        out["models"][model] = {}
        for split in SPLITS:
            predictions, labels = predict_classifier(directory, splits[split])
            out["models"][model][split] = {"predictions": predictions, "labels": labels}
    return out


def score_run(run: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and macro-F1 of every model of one run on both splits, and each
    student's accuracy minus the teacher's (percentage points)."""
    from hf_quads.metrics import classification_scores

    scores: dict[str, Any] = {}
    for model, by_split in run["models"].items():
        scores[model] = {
            split: {
                k: round(v, 4)
                for k, v in classification_scores(
                    by_split[split]["predictions"], by_split[split]["labels"]
                ).items()
            }
            for split in SPLITS
        }
    teacher = scores["teacher"]
    for model, entry in scores.items():
        if model != "teacher":
            for split in SPLITS:
                drop = 100 * (entry[split]["accuracy"] - teacher[split]["accuracy"])
                entry[split]["vs_teacher_points"] = round(drop, 2)
    return {"timings_seconds": run["timings_seconds"], "scores": scores}


def summarise(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per setting, over its runs: mean, lowest and highest accuracy (%) and change vs
    the teacher (points) of every model on both splits."""
    by_setting: dict[str, list[dict[str, Any]]] = {}
    for name, run in runs.items():
        by_setting.setdefault(name.partition("@")[0], []).append(run["scores"])
    summary: dict[str, Any] = {}
    for setting, scored in by_setting.items():
        summary[setting] = {"runs": len(scored)}
        for model in scored[0]:
            entry = summary[setting].setdefault(model, {})
            for split in SPLITS:
                values = {"accuracy": [100 * s[model][split]["accuracy"] for s in scored]}
                if model != "teacher":
                    values["vs_teacher_points"] = [
                        s[model][split]["vs_teacher_points"] for s in scored
                    ]
                entry[split] = {
                    key: {
                        "mean": round(statistics.fmean(v), 2),
                        "min": round(min(v), 2),
                        "max": round(max(v), 2),
                    }
                    for key, v in values.items()
                }
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = demo_runs_parser(
        __doc__.split("\n")[0], SETTINGS, _run_name, default=["baseline"],
        run_dir="outputs/benchmarks/demo_student", out=RESULTS,
    )  # fmt: skip
    args = parse_demo_runs(parser, argv)
    runs = args.settings
    demo = DemoArguments(**demo_overrides(args))
    start = time.perf_counter()
    corpus(demo)  # synthesised here if absent, not by two workers at once
    jobs = [(name, demo, args.run_dir, args.threads) for name in runs]
    results = map_runs(run_one, jobs, args.parallel)
    scored = {result["name"]: score_run(result) for result in results}
    write_result(
        {
            "benchmark": "demo_student",
            "data_dir": demo.data_dir,
            "demo": {
                key: getattr(demo, key)
                for key in (
                    "seconds",
                    "trim_silence",
                    "teacher_epochs",
                    "student_layers",
                    "distill_epochs",
                    "bits",
                    "quant_epochs",
                    "quant_method",
                )
            },
            "settings": {name: SETTINGS[name.partition("@")[0]] for name in runs},
            "parallel": args.parallel,
            "threads_per_run": args.threads,
            "wall_seconds": round(time.perf_counter() - start, 1),
            "summary": summarise(scored),
            "runs": scored,
            "machine": machine_info(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
