"""One training step of the demo's teacher: attention heads and window length, side by side.

The demo's teacher (Whisper-style classifier, d_model 64, 2 encoder layers; see
``trainers/demo-speech-commands.yaml``) takes one AdamW step (weight decay 0.1, gradient
clipped at 1.0, as the Trainer does) on a batch of 32 random log-mel windows, for each
shape: 2 or 4 attention heads, a 2 s or 3 s window (100 or 150 encoder positions). Shapes
are timed in turn, ``--repeats`` rounds of ``--steps`` steps each after ``--warmup``, so
that the machine's drift hits them alike; the median round is reported. A short
``torch.profiler`` trace of each shape gives the share of CPU time spent in attention
kernels (``scaled_dot_product`` / ``attention`` ops, forward and backward).

This backs benchmarks/README.md's statements on the teacher's step: attention's share of it,
2 heads against 4, and what a shorter window saves. Run: ``python
benchmarks/teacher_step.py`` (about 2 minutes on 2 cores; writes
benchmarks/results/teacher_step.json); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import machine_info, write_result

from hf_quads.data import FSC_INTENTS
from hf_quads.recipes.demo import DemoArguments, build_classifier

RESULTS = Path(__file__).parent / "results" / "teacher_step.json"
SHAPES = [(2, 3), (4, 3), (2, 2), (4, 2)]  # (heads, seconds)


def make_step(
    heads: int, seconds: int, batch: int, seed: int = 0
) -> tuple[torch.nn.Module, Callable[[], None]]:
    """The demo's teacher of this shape and a closure running one optimiser step of it."""
    demo = DemoArguments(heads=heads, seconds=seconds)
    model = build_classifier(demo, demo.teacher_d_model, demo.teacher_layers).train()
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=demo.learning_rate, weight_decay=demo.teacher_weight_decay
    )
    generator = torch.Generator().manual_seed(seed)
    frames = 2 * model.config.max_source_positions  # Whisper's conv front end halves them
    features = torch.randn(batch, model.config.num_mel_bins, frames, generator=generator)
    labels = torch.randint(0, len(FSC_INTENTS), (batch,), generator=generator)

    def step() -> None:
        loss = model(input_features=features, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    return model, step


def attention_share(step: Callable[[], None], steps: int) -> float:
    """Share of self CPU time that ``steps`` steps spend in attention kernels."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as trace:
        for _ in range(steps):
            step()
    events = trace.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    attention = sum(
        e.self_cpu_time_total
        for e in events
        if "scaled_dot_product" in e.key or "attention" in e.key.lower()
    )
    return attention / total if total else 0.0


def measure(
    shapes: list[tuple[int, int]], steps: int, warmup: int, repeats: int, batch: int
) -> dict[str, dict[str, Any]]:
    """Milliseconds per step of each shape (rounds interleaved) and its attention share."""
    models, runs = {}, {}
    for heads, seconds in shapes:
        name = f"heads_{heads}_seconds_{seconds}"
        models[name], runs[name] = make_step(heads, seconds, batch)
    rounds: dict[str, list[float]] = {name: [] for name in runs}
    for step in runs.values():
        for _ in range(warmup):
            step()
    for _ in range(repeats):
        for name, step in runs.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            rounds[name].append(1000 * (time.perf_counter() - start) / steps)
    return {
        name: {
            "heads": heads,
            "seconds": seconds,
            "encoder_positions": models[name].config.max_source_positions,
            "median_ms_per_step": round(statistics.median(rounds[name]), 1),
            "rounds_ms_per_step": [round(r, 1) for r in rounds[name]],
            "attention_share": round(attention_share(runs[name], max(2, steps // 4)), 3),
        }
        for name, (heads, seconds) in zip(runs, shapes, strict=True)
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per shape first")
    parser.add_argument("--repeats", type=int, default=7, help="rounds per shape")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the demo's 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few steps")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.repeats, args.batch = 2, 1, 1, 4
    if min(args.steps, args.repeats, args.batch, args.threads) < 1 or args.warmup < 0:
        parser.error("--steps, --repeats, --batch and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    start = time.perf_counter()
    shapes = measure(SHAPES, args.steps, args.warmup, args.repeats, args.batch)
    base = shapes["heads_2_seconds_3"]["median_ms_per_step"]
    result = {
        "benchmark": "teacher_step",
        "model": "the demo's teacher: Whisper-style classifier, d_model 64, 2 encoder layers",
        "batch_size": args.batch,
        "threads": args.threads,
        "steps_per_round": args.steps,
        "shapes": shapes,
        "relative_to_heads_2_seconds_3": {
            name: round(shape["median_ms_per_step"] / base, 3) for name, shape in shapes.items()
        },
        "wall_seconds": round(time.perf_counter() - start, 1),
        "machine": machine_info(),
    }
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
