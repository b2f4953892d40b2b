"""Steps per second of a plain Trainer and of DistillQuantTrainer in each phase, side by side.

Same student, teacher and data in one run:

* ``plain``    - ``transformers.Trainer`` on the student alone (the floor);
* ``distill``  - DistillQuantTrainer in a distillation phase (teacher forward + losses);
* ``quant``    - DistillQuantTrainer in a quantization phase (k-means QAT, centroid update);
* ``cached``   - the distillation phase with the teacher cache (the teacher never runs).

Goals: quant-phase step <= 1.15x the distill-phase step; cached step <= 1.1x plain.
Run: ``python benchmarks/trainer_overhead.py`` (writes benchmarks/results/trainer_overhead.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import Trainer, TrainerCallback, TrainingArguments

from hf_quads.config import DistillQuantConfig
from hf_quads.data import FSC_INTENTS
from hf_quads.trainer import DistillQuantTrainer

RESULTS = Path(__file__).resolve().parent / "results" / "trainer_overhead.json"


def whisper(d_model: int, layers: int, seed: int) -> transformers.WhisperForAudioClassification:
    torch.manual_seed(seed)
    config = transformers.WhisperConfig(
        d_model=d_model, encoder_layers=layers, encoder_attention_heads=4,
        encoder_ffn_dim=4 * d_model, decoder_layers=1, decoder_attention_heads=4,
        decoder_ffn_dim=4 * d_model, num_mel_bins=80, max_source_positions=150,
        classifier_proj_size=64, num_labels=len(FSC_INTENTS), dropout=0.0,
    )  # fmt: skip
    return transformers.WhisperForAudioClassification(config)


def dataset(n: int):
    import datasets

    rng = np.random.default_rng(0)
    feats = rng.normal(0, 1, (n, 80, 300)).astype(np.float32)
    labels = rng.integers(0, len(FSC_INTENTS), n).tolist()
    return datasets.Dataset.from_dict({"input_features": feats, "labels": labels})


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (forward, backward, optimizer, our callbacks)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def run(mode: str, steps: int, warmup: int, batch: int, data, tmp: Path) -> dict:
    common = {
        "output_dir": str(tmp / mode), "report_to": "none", "max_steps": steps + warmup,
        "per_device_train_batch_size": batch, "per_device_eval_batch_size": batch,
        "learning_rate": 1e-3, "save_strategy": "no", "logging_steps": 10_000,
        "disable_tqdm": True, "use_cpu": True, "seed": 0, "dataloader_num_workers": 0,
    }  # fmt: skip
    timer = StepTimer()
    student = whisper(64, 2, seed=2)
    if mode == "plain":
        trainer = Trainer(model=student, args=TrainingArguments(**common), train_dataset=data)
    else:
        schedule = {"distill": "distill", "cached": "distill", "quant": "quant"}[mode]
        args = DistillQuantConfig(
            **common, schedule=schedule, quant_method="kmeans", bits=4,
            teacher_cache=mode == "cached", teacher_cache_dir=str(tmp / "cache"),
        )  # fmt: skip
        trainer = DistillQuantTrainer(
            model=student, teacher_model=whisper(128, 4, seed=1), args=args, train_dataset=data
        )
        if mode == "cached":
            trainer._prepare_teacher_cache()  # built before timing: its cost is paid once
    trainer.add_callback(timer)
    trainer.train()
    times = timer.times[warmup:]
    median = statistics.median(times)
    return {"median_step_s": median, "steps_per_s": 1.0 / median, "steps_timed": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    data = dataset(args.batch * (args.steps + args.warmup))
    with tempfile.TemporaryDirectory() as tmp:
        modes = {m: run(m, args.steps, args.warmup, args.batch, data, Path(tmp))
                 for m in ("plain", "distill", "quant", "cached")}  # fmt: skip
    ratios = {
        "quant_over_distill": modes["quant"]["median_step_s"] / modes["distill"]["median_step_s"],
        "cached_over_plain": modes["cached"]["median_step_s"] / modes["plain"]["median_step_s"],
        "distill_over_plain": modes["distill"]["median_step_s"] / modes["plain"]["median_step_s"],
        # The quant phase runs no teacher, so it is also compared with the plain student.
        "quant_over_plain": modes["quant"]["median_step_s"] / modes["plain"]["median_step_s"],
    }
    result = {
        "benchmark": "trainer_overhead",
        "student": "Whisper-style classifier d_model 64, 2 layers (3 s window)",
        "teacher": "Whisper-style classifier d_model 128, 4 layers",
        "batch_size": args.batch,
        "threads": args.threads,
        "modes": modes,
        "ratios": ratios,
        "goals": {"quant_over_distill": 1.15, "cached_over_plain": 1.1},
        "goals_met": {
            "quant_over_distill": ratios["quant_over_distill"] <= 1.15,
            "cached_over_plain": ratios["cached_over_plain"] <= 1.1,
        },
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0],
                    "torch": torch.__version__, "transformers": transformers.__version__},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
