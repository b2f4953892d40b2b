"""The demo's teacher under other training settings, side by side, on unseen voices.

The demo's teacher (``trainers/demo-speech-commands.yaml``: Whisper-style, d_model 64,
2 encoder layers of 2 attention heads, a 2 s window of clips trimmed of leading silence,
14 epochs, AdamW 3e-3 cosine with weight decay 0.1, labels smoothed by 0.1) is trained
once per setting on the demo corpus and scored
on its validation and test splits, whose speakers both use espeak variants no training
speaker has; accuracy per voice too. The settings:

* ``baseline``      - the demo's teacher as it is;
* ``seed1``         - the same with training seed 1: the spread the seed alone causes;
* ``no_voice_effects`` - trained on the same corpus synthesised without random voice
  effects on the training speakers (``voice_effects=0``, in ``<data_dir>_plain``; the
  validation and test audio is byte-identical);
* ``specaugment``   - per example two frequency masks of up to 10 mel bins and two
  time masks of up to 30 frames, filled with the example's mean;
* ``mel_mean_norm`` - each mel bin's mean over time subtracted (training and scoring);
* ``freq_warp``     - half the examples stretched along frequency by 0.7-1.45x (log-
  uniform; a vocal-tract-length change wide enough to span ``Alicia``'s formants);
* ``echo``          - half the examples given an echo of 50-250 ms (3 repeats, gain
  0.3-0.9), added in the power domain;
* ``no_regularisation`` - neither label smoothing nor weight decay (the demo's teacher
  before 2026-12-02); ``no_label_smoothing`` and ``no_weight_decay`` drop one of them;
  ``label_smoothing_0.2`` smooths by 0.2;
* ``untrimmed``     - the leading silence of each clip kept;
* ``epochs_13``, ``epochs_14``, ``epochs_16`` - 13, 14 or 16 epochs. The demo's teacher
  trained 16 until 2026-12-03: the records ``results/demo_teacher_trim*.json``, whose
  ``teacher`` block says 16 epochs, call that ``baseline`` (today's ``epochs_16``),
  and their ``untrimmed`` is 16 epochs of untrimmed clips;
* ``window_3s``     - the teacher before the trimmed 2 s window: a 3 s window (300
  log-mel frames, 150 encoder positions), untrimmed, 13 epochs. The records whose
  ``teacher`` block says 3 s and 13 epochs call it ``baseline``; their other settings
  are changes to it, and so are the next three;
* ``epochs_10``, ``epochs_12`` - ``window_3s`` for 10 or 12 epochs;
* ``heads_4_10_epochs`` - ``window_3s`` with 4 attention heads of 16 dims for 10
  epochs (the teacher's shape and length until 2026-12-02, which its regularisation
  record ``results/demo_teacher_regularisation.json`` calls ``baseline``);
* ``seconds_2``     - a 2 s window, untrimmed, 13 epochs: the speech of ~93 % of the
  clips fits whole and a step costs 0.6x; ``seconds_2_epochs_16`` and
  ``seconds_2_epochs_20`` train it for 16 or 20 epochs (compared with ``window_3s``).

The augmentations work on the Whisper-normalised log-mels the Trainer reads, on the
demo's corpus. Settings train in parallel processes of ``--threads`` torch threads
each (on 2 cores, two 1-thread runs finish sooner than one 2-thread run after the
other). ``--seeds 0 1 2`` trains every setting once per training seed (runs named
``setting@seed``): one setting moves by a few points with the seed alone, so a
change is judged over several. This is the record behind benchmarks/README.md's teacher section.
Run: ``python benchmarks/demo_teacher.py`` (writes benchmarks/results/demo_teacher.json;
about 14 minutes per two settings on 2 cores with the demo's corpus), ``--settings
baseline echo`` for a subset, ``--quick`` for a smoke run on the quick demo's tiny corpus.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
    build_classifier,
    corpus,
    featurize_corpus,
    per_voice_accuracy,
    predict_classifier,
    train_teacher,
)

RESULTS = Path(__file__).resolve().parent / "results" / "demo_teacher.json"
SAMPLE_RATE = 16_000


# ----------------------------------------------------------- augmentations (pure maths)
def _check_batch(logmel: torch.Tensor, per_example: torch.Tensor | None = None) -> None:
    """Augmentations take (batch, mel bins, frames) and, where given, one value per example."""
    if logmel.dim() != 3:
        raise ValueError(
            f"expected log-mels of shape (batch, bins, frames), got {tuple(logmel.shape)}"
        )
    if per_example is not None and per_example.shape != (logmel.shape[0],):
        raise ValueError(
            f"expected one value per example ({logmel.shape[0]}), got shape {tuple(per_example.shape)}"
        )


def to_power(logmel: torch.Tensor) -> torch.Tensor:
    """Whisper-normalised log-mels ``(x + 4) / 4`` of log10 power back to mel power."""
    return torch.pow(10.0, 4.0 * logmel - 4.0)


def to_logmel(power: torch.Tensor) -> torch.Tensor:
    """Mel power to Whisper-normalised log-mels (log10, floor at 8 below each example's max)."""
    log = torch.log10(power.clamp(min=1e-10))
    log = torch.maximum(log, log.amax(dim=(1, 2), keepdim=True) - 8.0)
    return (log + 4.0) / 4.0


def spec_augment(
    logmel: torch.Tensor,
    generator: torch.Generator,
    freq_masks: int = 2,
    max_freq: int = 10,
    time_masks: int = 2,
    max_time: int = 30,
) -> torch.Tensor:
    """SpecAugment's masks: bands of mel bins and runs of frames set to the example's mean."""
    _check_batch(logmel)
    batch, bins, frames = logmel.shape
    keep = torch.ones_like(logmel, dtype=torch.bool)
    for count, limit, size, axis in (
        (freq_masks, max_freq, bins, 1),
        (time_masks, max_time, frames, 2),
    ):
        positions = torch.arange(size)
        for _ in range(count):
            width = torch.randint(0, limit + 1, (batch,), generator=generator)
            start = (torch.rand(batch, generator=generator) * (size - width + 1)).long()
            band = (positions[None] >= start[:, None]) & (
                positions[None] < (start + width)[:, None]
            )
            keep &= ~(band[:, :, None] if axis == 1 else band[:, None, :])
    fill = logmel.mean(dim=(1, 2), keepdim=True).expand_as(logmel)
    return torch.where(keep, logmel, fill)


def mel_mean_norm(logmel: torch.Tensor) -> torch.Tensor:
    """Each mel bin minus its mean over the clip (cepstral-mean-style normalisation)."""
    return logmel - logmel.mean(dim=-1, keepdim=True)


def warp_frequency(logmel: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Stretch each example's spectrum along frequency: energy at f moves to f x factor.

    The mel bins are equally spaced on the Slaney mel scale up to 8 kHz, as
    Whisper's filter bank is; a bin reads the (interpolated) log-mel at f / factor.
    """
    from transformers.audio_utils import hertz_to_mel, mel_to_hertz

    _check_batch(logmel, factors)
    if not bool((factors > 0).all()):
        raise ValueError(f"warp factors must be > 0, got {factors.tolist()}")
    batch, bins, frames = logmel.shape
    centres = np.linspace(0.0, hertz_to_mel(SAMPLE_RATE / 2, mel_scale="slaney"), bins + 2)[1:-1]
    hertz = mel_to_hertz(centres, mel_scale="slaney")
    source = [
        np.interp(hertz_to_mel(hertz / float(f), mel_scale="slaney"), centres, np.arange(bins))
        for f in factors
    ]
    position = torch.as_tensor(np.stack(source), dtype=logmel.dtype)  # (batch, bins)
    low = position.floor().long()
    high = (low + 1).clamp(max=bins - 1)
    weight = (position - low)[..., None]

    def take(index: torch.Tensor) -> torch.Tensor:
        return torch.gather(logmel, 1, index[..., None].expand(batch, bins, frames))

    return take(low) * (1 - weight) + take(high) * weight


def add_echo(
    logmel: torch.Tensor, delays: torch.Tensor, gains: torch.Tensor, repeats: int = 3
) -> torch.Tensor:
    """Echo in the power domain: p(t) + g^2 p(t - d) + g^4 p(t - 2d) ... (``delays`` in frames; 0 = none)."""
    _check_batch(logmel, delays)
    _check_batch(logmel, gains)
    if bool((delays < 0).any()):
        raise ValueError(f"echo delays are frames >= 0, got {delays.tolist()}")
    power = to_power(logmel)
    batch, bins, frames = power.shape
    t = torch.arange(frames)
    out = power.clone()
    for k in range(1, repeats + 1):
        source = t[None, :] - k * delays[:, None]
        valid = (source >= 0) & (delays[:, None] > 0)
        shifted = torch.gather(
            power, 2, source.clamp(min=0)[:, None, :].expand(batch, bins, frames)
        )
        out = out + shifted * valid[:, None, :] * gains[:, None, None] ** (2 * k)
    return to_logmel(out)


def _half(batch: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(batch, generator=generator) < 0.5


def _uniform(batch: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(batch, generator=generator)


def random_warp(logmel: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``freq_warp``: half the examples warped by a log-uniform 0.7-1.45x."""
    batch = logmel.shape[0]
    factors = torch.exp(_uniform(batch, math.log(0.7), math.log(1.45), generator))
    return warp_frequency(logmel, torch.where(_half(batch, generator), factors, torch.ones(batch)))


def random_echo(logmel: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``echo``: half the examples with a 50-250 ms echo of gain 0.3-0.9."""
    batch = logmel.shape[0]
    delays = torch.randint(5, 26, (batch,), generator=generator) * _half(batch, generator)
    return add_echo(logmel, delays, _uniform(batch, 0.3, 0.9, generator))


# ------------------------------------------------------------------------- the settings
@dataclass(frozen=True)
class Setting:
    """One way of training the demo's teacher."""

    description: str
    seed: int = 0
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    normalise: Callable[[torch.Tensor], torch.Tensor] | None = None  # training and scoring
    voice_effects: float | None = None  # train on a corpus with this share instead
    training: dict[str, Any] = dataclasses.field(default_factory=dict)  # TrainingArguments
    demo: dict[str, Any] = dataclasses.field(default_factory=dict)  # DemoArguments (shape, epochs)


def setting_corpus(demo: DemoArguments, setting: Setting) -> DemoArguments:
    """The demo arguments of the corpus a setting trains on: the demo's, or its own
    where the setting changes the audio. The corpus seed stays the demo's."""
    if setting.voice_effects is None or setting.voice_effects == demo.voice_effects:
        return demo
    suffix = "_plain" if setting.voice_effects == 0 else f"_fx{setting.voice_effects:g}"
    return dataclasses.replace(
        demo, data_dir=demo.data_dir.rstrip("/") + suffix, voice_effects=setting.voice_effects
    )


def setting_demo(demo: DemoArguments, setting: Setting) -> DemoArguments:
    """The demo arguments a setting trains with: its corpus, training seed and overrides."""
    return dataclasses.replace(setting_corpus(demo, setting), seed=setting.seed, **setting.demo)


#: The demo's teacher before the trimmed 2 s window: what the records whose ``teacher``
#: block says 3 s and 13 epochs call ``baseline``.
WINDOW_3S: dict[str, Any] = {"seconds": 3, "trim_silence": False, "teacher_epochs": 13}

SETTINGS: dict[str, Setting] = {
    "baseline": Setting("the demo's teacher"),
    "seed1": Setting("the demo's teacher, training seed 1", seed=1),
    "no_voice_effects": Setting("no random voice effects on the training speakers",
                                voice_effects=0.0),
    "specaugment": Setting("2 frequency masks (<= 10 bins), 2 time masks (<= 30 frames)",
                           augment=spec_augment),
    "mel_mean_norm": Setting("per-clip mean of each mel bin subtracted", normalise=mel_mean_norm),
    "freq_warp": Setting("half the examples warped along frequency by 0.7-1.45x",
                         augment=random_warp),
    "echo": Setting("half the examples with a 50-250 ms echo, gain 0.3-0.9", augment=random_echo),
    "no_regularisation": Setting("no label smoothing, no weight decay (the teacher until 2026-12-02)",
                                 training={"label_smoothing_factor": 0.0, "weight_decay": 0.0}),
    "no_label_smoothing": Setting("no label smoothing (weight decay kept)",
                                  training={"label_smoothing_factor": 0.0}),
    "no_weight_decay": Setting("no weight decay (label smoothing kept)", training={"weight_decay": 0.0}),
    "label_smoothing_0.2": Setting("labels smoothed by 0.2 instead of 0.1",
                                   training={"label_smoothing_factor": 0.2}),
    # Changes to window_3s, measured when it was the demo's teacher.
    "epochs_10": Setting("3 s window, 10 epochs instead of 13", demo={**WINDOW_3S, "teacher_epochs": 10}),
    "epochs_12": Setting("3 s window, 12 epochs instead of 13", demo={**WINDOW_3S, "teacher_epochs": 12}),
    "heads_4_10_epochs": Setting("3 s window, 4 attention heads of 16 dims, 10 epochs (the teacher until 2026-12-02)",
                                 demo={**WINDOW_3S, "heads": 4, "teacher_epochs": 10}),
    "untrimmed": Setting("leading silence kept", demo={"trim_silence": False}),
    "epochs_13": Setting("13 epochs", demo={"teacher_epochs": 13}),
    "epochs_14": Setting("14 epochs (the demo's since 2026-12-03)", demo={"teacher_epochs": 14}),
    "epochs_16": Setting("16 epochs (the demo's until 2026-12-03)", demo={"teacher_epochs": 16}),
    "window_3s": Setting("the teacher before the 2 s trimmed window: 3 s, untrimmed, 13 epochs",
                         demo=WINDOW_3S),
    # Measured against window_3s, when it was the demo's teacher: untrimmed 2 s windows.
    "seconds_2": Setting("a 2 s window, untrimmed, 13 epochs",
                         demo={"seconds": 2, "trim_silence": False, "teacher_epochs": 13}),
    "seconds_2_epochs_16": Setting("a 2 s window, untrimmed, 16 epochs",
                                   demo={"seconds": 2, "trim_silence": False, "teacher_epochs": 16}),
    "seconds_2_epochs_20": Setting("a 2 s window, untrimmed, 20 epochs",
                                   demo={"seconds": 2, "trim_silence": False, "teacher_epochs": 20}),
}  # fmt: skip


class AugmentingCollator:
    """Stacks a batch of featurized rows and augments the log-mels (seeded, training only)."""

    def __init__(
        self, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None, seed: int
    ):
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        features = torch.stack([torch.as_tensor(row["input_features"]) for row in rows])
        if self.augment is not None:
            features = self.augment(features, self.generator)
        return {
            "input_features": features,
            "labels": torch.tensor([int(row["labels"]) for row in rows]),
        }


def _normalise_inputs(normalise: Callable[[torch.Tensor], torch.Tensor]):
    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kwargs["input_features"] = normalise(kwargs["input_features"])
        return args, kwargs

    return hook


def setting_of(run: str) -> Setting:
    """The setting a run trains: ``name`` or ``name@seed`` (that setting with another seed)."""
    name, _, seed = run.partition("@")
    setting = SETTINGS[name]
    return dataclasses.replace(setting, seed=int(seed)) if seed else setting


def _run_name(run: str) -> str:
    try:
        setting_of(run)
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown setting {run!r} (expected NAME or NAME@SEED)"
        ) from None
    return run


def run_setting(job: tuple[str, DemoArguments, str, int]) -> dict[str, Any]:
    """Train and score one setting (in a worker process): predictions and training time."""
    name, demo, run_dir, threads = job
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    setting = setting_of(name)
    data = corpus(setting_corpus(demo, setting))
    demo = setting_demo(demo, setting)
    _, splits = featurize_corpus(data, demo)  # the setting's window
    teacher = build_classifier(demo, demo.teacher_d_model, demo.teacher_layers)
    if setting.normalise is not None:
        teacher.register_forward_pre_hook(_normalise_inputs(setting.normalise), with_kwargs=True)
    collator = AugmentingCollator(setting.augment, setting.seed)
    start = time.perf_counter()
    train_teacher(
        demo, splits["train"], Path(run_dir) / name, collator, model=teacher, **setting.training
    )
    out: dict[str, Any] = {"name": name, "train_seconds": round(time.perf_counter() - start, 1)}
    for split in ("validation", "test"):
        predictions, labels = predict_classifier(teacher, splits[split])
        out[split] = {"predictions": predictions, "labels": labels}
    return out


def summarise(
    results: list[dict[str, Any]], speaker_ids: dict[str, list[str]], speakers: dict[str, dict]
) -> dict[str, Any]:
    """Accuracy, macro-F1 and the weakest voices of every setting, and the per-voice table."""
    from hf_quads.metrics import classification_scores

    summary: dict[str, Any] = {"settings": {}, "per_voice": {}}
    for split in ("validation", "test"):
        labels = results[0][split]["labels"]
        predictions = {r["name"]: r[split]["predictions"] for r in results}
        rows = per_voice_accuracy(predictions, labels, speaker_ids[split], speakers)
        summary["per_voice"][split] = rows
        for r in results:
            setting = setting_of(r["name"])
            entry = summary["settings"].setdefault(
                r["name"],
                {
                    "description": setting.description,
                    "seed": setting.seed,
                    "train_seconds": r["train_seconds"],
                },
            )
            scores = classification_scores(predictions[r["name"]], labels)
            weakest = sorted(rows, key=lambda row: row[r["name"]])[:4]
            entry[split] = {
                **{k: round(v, 4) for k, v in scores.items()},
                "weakest_voices": {
                    row["variant"] or row["speaker_id"]: round(row[r["name"]], 4) for row in weakest
                },
            }
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = demo_runs_parser(
        __doc__.split("\n")[0], SETTINGS, _run_name, default=list(SETTINGS),
        run_dir="outputs/benchmarks/demo_teacher", out=RESULTS,
    )  # fmt: skip
    parser.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="default: the demo's teacher_epochs (a setting that sets its own keeps it)",
    )
    args = parse_demo_runs(parser, argv)
    if args.epochs is not None and args.epochs <= 0:
        parser.error("--epochs must be > 0")

    from hf_quads.data.synth import read_speakers

    overrides = demo_overrides(args)
    if args.epochs is not None:
        overrides["teacher_epochs"] = args.epochs
    demo = DemoArguments(**overrides)
    start = time.perf_counter()
    data = corpus(demo)  # synthesised here if absent, not by two workers at once
    for name in args.settings:
        corpus(setting_corpus(demo, setting_of(name)))
    jobs = [(name, demo, args.run_dir, args.threads) for name in args.settings]
    results = map_runs(run_setting, jobs, args.parallel)
    speaker_ids = {split: list(data[split]["speaker_id"]) for split in ("validation", "test")}
    summary = summarise(results, speaker_ids, read_speakers(demo.data_dir))
    write_result(
        {
            "benchmark": "demo_teacher",
            "data_dir": demo.data_dir,
            "teacher": {
                "d_model": demo.teacher_d_model,
                "layers": demo.teacher_layers,
                "heads": demo.heads,
                "seconds": demo.seconds,
                "trim_silence": demo.trim_silence,
                "epochs": demo.teacher_epochs,
                "learning_rate": demo.learning_rate,
                "batch_size": demo.batch_size,
                "label_smoothing": demo.teacher_label_smoothing,
                "weight_decay": demo.teacher_weight_decay,
            },
            "parallel": args.parallel,
            "threads_per_setting": args.threads,
            "wall_seconds": round(time.perf_counter() - start, 1),
            **summary,
            "machine": machine_info(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
