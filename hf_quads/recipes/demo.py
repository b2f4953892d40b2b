"""``hf-quads demo``: QUADS end to end on the synthetic speech-commands corpus, in one command.

The steps (each with its wall time in ``results.json``):

1. **data** - synthesise the FSC-layout corpus with espeak-ng if ``data_dir`` has
   none (speakers of the test split use voices no training speaker has), then
   log-mel features of a 2 s window for every split, each clip's leading silence
   trimmed first (:func:`~hf_quads.data.set_silence_trim`);
2. **teacher** - a small Whisper-style classifier built from a config, trained
   with ``transformers.Trainer``;
3. **prune + distill** - the student starts as the teacher with encoder layers
   removed by :class:`~hf_quads.prune.LayerPruner` (the layer whose removal raises
   the dev cross-entropy least, until ``student_layers`` remain), then learns from
   the teacher in fp32 (:class:`~hf_quads.DistillQuantTrainer`, ``schedule="distill"``,
   the teacher's outputs cached once);
4. **quantize** - the QUADS multi-stage idea: from that one fp32 student, a
   quantization phase (k-means codebook of 2^b values, retrained) for each bit width;
5. **evaluate** every saved model, reloaded from disk, on the test split: accuracy
   and macro-F1, parameters, weight bytes on disk and GMACs;
6. **export** the ``export_bits`` student to ONNX (int8 by default) with a parity check,
   and write its model card;
7. **report** - a table like the QUADS paper's, ``results.json`` and ``results.png``
   (accuracy against size on disk).

``--quick`` shrinks the corpus and the training to a smoke test of every step.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from .loading import RecipeError

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.json"
PLOT_NAME = "results.png"
#: The issue's goals, checked and reported in ``results.json``.
GOALS = {
    "teacher_accuracy": 0.95,
    "max_drop_4bit": 0.01,
    "max_drop_2bit": 0.05,
    "max_wall_seconds": 15 * 60,
}


@dataclass
class DemoArguments:
    """Settings of ``hf-quads demo`` (``trainers/demo-speech-commands.yaml`` lists them all)."""

    output_dir: str = field(default="outputs/demo", metadata={"help": "where everything goes"})
    data_dir: str = field(
        default="data/synth_fsc",
        metadata={"help": "FSC-layout corpus; synthesised here first if absent"},
    )
    quick: bool = field(
        default=False,
        metadata={"help": "a smoke test of every step in about a minute (tiny corpus, short runs)"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the corpus and of training"})
    threads: int = field(default=2, metadata={"help": "torch threads for training"})
    num_proc: int = field(default=2, metadata={"help": "processes synthesising the corpus"})
    seconds: int = field(default=2, metadata={"help": "audio window of the models, in seconds"})
    trim_silence: bool = field(
        default=True,
        metadata={
            "help": "trim each clip's leading silence before the window (more speech fits in it)"
        },
    )
    train_speakers: int = field(default=150, metadata={"help": "synthetic corpus: train speakers"})
    valid_speakers: int = field(default=16, metadata={"help": "synthetic corpus: dev speakers"})
    test_speakers: int = field(default=16, metadata={"help": "synthetic corpus: test speakers"})
    phrasings_per_intent: int = field(
        default=3, metadata={"help": "synthetic corpus: phrasings of each intent"}
    )
    voice_effects: float = field(
        default=1.0,
        metadata={"help": "synthetic corpus: share of train speakers given random voice effects"},
    )
    teacher_d_model: int = field(default=64, metadata={"help": "teacher width"})
    teacher_layers: int = field(default=2, metadata={"help": "teacher encoder layers"})
    teacher_epochs: float = field(default=14.0, metadata={"help": "teacher training epochs"})
    teacher_label_smoothing: float = field(
        default=0.1,
        metadata={"help": "label smoothing of the teacher's cross-entropy (better on new voices)"},
    )
    teacher_weight_decay: float = field(
        default=0.1, metadata={"help": "AdamW weight decay of the teacher (better on new voices)"}
    )
    student_layers: int = field(
        default=1,
        metadata={"help": "encoder layers the student keeps: the teacher's others are pruned"},
    )
    prune_dev_samples: int = field(
        default=400, metadata={"help": "dev clips scoring each pruning candidate"}
    )
    distill_epochs: float = field(default=8.0, metadata={"help": "fp32 distillation epochs"})
    heads: int = field(
        default=2,
        metadata={
            "help": "attention heads of both models (2 of 32 dims: faster on CPU than 4 of 16)"
        },
    )
    bits: list[int] = field(
        default_factory=lambda: [8, 4, 2],
        metadata={"help": "bit widths to quantize the student to"},
    )
    quant_epochs: list[float] = field(
        default_factory=lambda: [0.5, 1.0, 2.0],
        metadata={"help": "epochs of the quantization phase, one per --bits entry"},
    )
    quant_method: Literal["kmeans", "uniform"] = field(
        default="kmeans", metadata={"help": "kmeans codebook (QUADS) or uniform"}
    )
    learning_rate: float = field(default=3e-3, metadata={"help": "teacher and distillation"})
    quant_learning_rate: float = field(default=1e-3, metadata={"help": "quantization phases"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    export_bits: int | None = field(
        default=4, metadata={"help": "the student exported to ONNX and given a card"}
    )
    onnx_quantization: Literal["int8", "int4", "none"] = field(
        default="int8", metadata={"help": "ONNX Runtime quantization of the export"}
    )

    def __post_init__(self) -> None:
        if self.quick:
            for key, value in QUICK.items():
                if getattr(self, key) == _DEFAULTS[key]:
                    setattr(self, key, value)
        if len(self.quant_epochs) != len(self.bits):
            raise ValueError(
                f"quant_epochs needs one entry per bits entry: {self.quant_epochs} vs {self.bits}"
            )
        for b in self.bits:
            if not 1 <= b <= 8:
                raise ValueError(f"bits must be from 1 to 8, got {b}")
        if not 1 <= self.student_layers < self.teacher_layers:
            raise ValueError(
                f"student_layers must be from 1 to teacher_layers - 1 ({self.teacher_layers - 1}), "
                f"got {self.student_layers}"
            )
        if self.export_bits is not None and self.export_bits not in self.bits:
            raise ValueError(f"export_bits={self.export_bits} is not one of bits {self.bits}")
        if not 0.0 <= self.voice_effects <= 1.0:
            raise ValueError(f"voice_effects is a share from 0 to 1, got {self.voice_effects}")
        if not 0.0 <= self.teacher_label_smoothing < 1.0:
            raise ValueError(
                f"teacher_label_smoothing must be in [0, 1), got {self.teacher_label_smoothing}"
            )
        if self.teacher_weight_decay < 0.0:
            raise ValueError(f"teacher_weight_decay must be >= 0, got {self.teacher_weight_decay}")
        if self.seconds < 1:
            raise ValueError(f"seconds must be a whole number >= 1, got {self.seconds}")
        if self.teacher_epochs <= 0:
            raise ValueError(f"teacher_epochs must be > 0, got {self.teacher_epochs}")
        if self.heads < 1 or self.teacher_d_model % self.heads:
            raise ValueError(
                f"heads must divide teacher_d_model ({self.teacher_d_model}), got {self.heads}"
            )


_DEFAULTS = {
    f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
    for f in dataclasses.fields(DemoArguments)
}
#: ``--quick``: what it changes (settings given explicitly are kept).
QUICK: dict[str, Any] = {
    "data_dir": "data/synth_fsc_quick",
    "train_speakers": 6,
    "valid_speakers": 1,
    "test_speakers": 2,
    "phrasings_per_intent": 1,
    "teacher_epochs": 20.0,
    "distill_epochs": 10.0,
    "quant_epochs": [2.0, 2.0, 3.0],
    "teacher_d_model": 32,
    "prune_dev_samples": 31,
}


# ------------------------------------------------------------------------------ helpers
@contextmanager
def _stage(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    print(f"\n== {name}", flush=True)
    yield
    timings[name] = round(time.perf_counter() - start, 1)
    print(f"== {name}: {timings[name]:.1f} s", flush=True)


def _training_args(output_dir: Path, args: DemoArguments, **kwargs: Any) -> dict[str, Any]:
    settings = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": args.batch_size,
        "per_device_eval_batch_size": 128,
        "learning_rate": args.learning_rate,
        "lr_scheduler_type": "cosine",
        "weight_decay": 0.0,
        "logging_steps": 50,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "seed": args.seed,
        "dataloader_num_workers": 0,
    }
    settings.update(kwargs)
    return settings


def corpus(args: DemoArguments) -> Any:
    """The corpus as a ``DatasetDict``; synthesised first if ``data_dir`` has none."""
    from ..data import load_fsc
    from ..data.synth import ensure_fsc_corpus

    return load_fsc(
        ensure_fsc_corpus(
            args.data_dir,
            seed=args.seed,
            train_speakers=args.train_speakers,
            valid_speakers=args.valid_speakers,
            test_speakers=args.test_speakers,
            phrasings_per_intent=args.phrasings_per_intent,
            voice_effects=args.voice_effects,
            num_workers=max(1, args.num_proc),
        )
    )


def featurize_corpus(data: Any, args: DemoArguments) -> tuple[Any, dict[str, Any]]:
    """The demo's extractor (80 log-mels over ``args.seconds``, leading silence trimmed
    if ``args.trim_silence``) and its three featurized splits."""
    from transformers import WhisperFeatureExtractor

    from ..data import featurize, set_silence_trim

    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=args.seconds)
    if args.trim_silence:
        set_silence_trim(extractor)
    splits = {
        name: featurize(data[name], extractor, desc=f"{name} features")
        for name in ("train", "validation", "test")
    }
    return extractor, splits


def build_classifier(args: DemoArguments, d_model: int, layers: int) -> Any:
    """A Whisper-style intent classifier of the demo's shape, initialised from ``args.seed``."""
    from ..data import FSC_INTENTS
    from ..models import whisper_classifier

    torch.manual_seed(args.seed)
    return whisper_classifier(
        FSC_INTENTS, d_model=d_model, encoder_layers=layers, heads=args.heads,
        seconds=args.seconds,
    )  # fmt: skip


def teacher_training_args(args: DemoArguments, output_dir: Path, **training: Any) -> dict[str, Any]:
    """``TrainingArguments`` fields of the teacher's run; ``training`` overrides any of them."""
    return _training_args(
        output_dir,
        args,
        **{
            "num_train_epochs": args.teacher_epochs,
            "label_smoothing_factor": args.teacher_label_smoothing,
            "weight_decay": args.teacher_weight_decay,
            **training,
        },
    )


def train_teacher(
    args: DemoArguments,
    train: Any,
    output_dir: Path,
    data_collator: Any = None,
    model: Any = None,
    **training: Any,
) -> Any:
    """The demo's teacher, trained on ``train`` with ``transformers.Trainer`` (AdamW, cosine).

    ``model`` defaults to a fresh :func:`build_classifier` of the teacher's shape;
    ``data_collator`` (default: stack the features) is where a benchmark puts its
    augmentations, and ``training`` overrides ``TrainingArguments`` fields (say
    ``weight_decay``).
    """
    from transformers import Trainer, TrainingArguments

    if model is None:
        model = build_classifier(args, args.teacher_d_model, args.teacher_layers)
    Trainer(
        model=model,
        args=TrainingArguments(**teacher_training_args(args, output_dir, **training)),
        train_dataset=train,
        data_collator=data_collator,
    ).train()
    return model


def prune_teacher(
    teacher: Any, dev: Any, args: DemoArguments, out: Path
) -> tuple[Any, dict[str, Any]]:
    """The student's starting point: a copy of the teacher with encoder layers pruned.

    :class:`~hf_quads.prune.LayerPruner` removes, one at a time, the layer whose
    removal raises the dev cross-entropy least (any layer may go), until
    ``student_layers`` remain; the report and plot land in ``out/pruning``.
    """
    import copy

    from ..prune import LayerPruner

    student = copy.deepcopy(teacher)
    dev = dev.shuffle(seed=args.seed).select(range(min(args.prune_dev_samples, len(dev))))
    result = LayerPruner(
        student, eval_dataset=dev, metric="cross_entropy", stack="encoder", protect=[],
        target_num_layers=args.student_layers, batch_size=64,
    ).prune()  # fmt: skip
    result.save_report(out / "pruning")
    summary = {
        "removed_layers": list(result.removal_order),
        "dev_cross_entropy": [result.baseline_score, *result.scores],
    }
    print(json.dumps(summary))
    return student, summary


def train_models(
    args: DemoArguments,
    splits: dict[str, Any],
    extractor: Any,
    out: Path,
    timings: dict[str, float] | None = None,
) -> tuple[list[tuple[str, Path, dict[str, Any]]], dict[str, Any]]:
    """Steps 2-4: the teacher, the pruned and distilled fp32 student, one quantized
    student per ``args.bits``, each saved under ``out``.

    Returns ``(models, pruning)``: ``(name, directory, extra)`` per model, teacher first
    (``extra`` holds a quantized student's ``bits``), and the pruning summary. Each
    stage's wall time goes into ``timings``.
    """
    from transformers import AutoModelForAudioClassification

    from .. import DistillQuantConfig, DistillQuantTrainer

    timings = {} if timings is None else timings
    with _stage(timings, "teacher"):
        teacher = train_teacher(args, splits["train"], out / "runs" / "teacher")
        teacher_dir = out / "teacher"
        teacher.save_pretrained(teacher_dir)
        extractor.save_pretrained(teacher_dir)

    def train_and_save(student: Any, config: Any, save_dir: Path) -> Path:
        trainer = DistillQuantTrainer(
            model=student, teacher_model=teacher, args=config, train_dataset=splits["train"],
            processing_class=extractor,
        )  # fmt: skip
        trainer.train()
        trainer.save_model(str(save_dir))
        return save_dir

    with _stage(timings, "prune"):
        student, pruning = prune_teacher(teacher, splits["validation"], args, out)

    with _stage(timings, "distill"):
        config = DistillQuantConfig(
            **_training_args(out / "runs" / "distill", args, num_train_epochs=args.distill_epochs),
            schedule="distill",
            quant_method="none",
            teacher_cache=True,
            teacher_cache_dir=str(out / "runs" / "teacher_cache"),
        )
        fp32_dir = train_and_save(student, config, out / "student-fp32")

    models: list[tuple[str, Path, dict[str, Any]]] = [
        ("teacher", teacher_dir, {}),
        ("student fp32", fp32_dir, {}),
    ]
    for bits, epochs in zip(args.bits, args.quant_epochs, strict=True):
        with _stage(timings, f"quantize {bits}-bit"):
            student = AutoModelForAudioClassification.from_pretrained(fp32_dir)
            config = DistillQuantConfig(
                **_training_args(
                    out / "runs" / f"quant-{bits}bit",
                    args,
                    num_train_epochs=epochs,
                    learning_rate=args.quant_learning_rate,
                ),
                schedule="quant",
                quant_method=args.quant_method,
                bits=bits,
            )
            save_dir = train_and_save(student, config, out / f"student-{bits}bit")
            models.append((f"student {bits}-bit", save_dir, {"bits": bits}))
    return models, pruning


def predict_classifier(
    model_or_dir: Any, test: Any, batch_size: int = 128
) -> tuple[list[int], list[int]]:
    """``(predictions, labels)`` of a classifier (or a saved one, reloaded) on a featurized split."""
    from transformers import AutoModelForAudioClassification

    model = model_or_dir
    if isinstance(model_or_dir, (str, os.PathLike)):
        model = AutoModelForAudioClassification.from_pretrained(model_or_dir)
    model.eval()
    predictions, labels = [], []
    with torch.inference_mode():
        for start in range(0, len(test), batch_size):
            batch = test[start : start + batch_size]
            logits = model(input_features=batch["input_features"]).logits
            predictions += logits.argmax(-1).tolist()
            labels += batch["labels"].tolist()
    return predictions, labels


def per_voice_accuracy(
    predictions: dict[str, list[int]],
    labels: list[int],
    speaker_ids: list[str],
    speakers: dict[str, dict[str, str]],
) -> list[dict[str, Any]]:
    """One row per test speaker: its espeak voice and variant and each model's accuracy.

    ``predictions`` maps a model's name to its predictions; ``speakers`` is the
    corpus' ``speakers.csv`` (may be empty). Rows go from the first model's worst
    speaker to its best.
    """
    from ..metrics import accuracy_by_group

    by_model = {
        name: accuracy_by_group(preds, labels, speaker_ids) for name, preds in predictions.items()
    }
    first = next(iter(by_model.values()))
    utterances = Counter(speaker_ids)
    rows = []
    for speaker in sorted(first, key=lambda s: (first[s], s)):
        info = speakers.get(speaker, {})
        rows.append({
            "speaker_id": speaker,
            "variant": info.get("variant"),
            "voice": info.get("voice"),
            "utterances": utterances[speaker],
            **{name: accs[speaker] for name, accs in by_model.items()},
        })  # fmt: skip
    return rows


def voice_summary(rows: list[dict[str, Any]], model: str, threshold: float = 0.95) -> str:
    """``"12 of 16 test voices at >= 95 %; below: Alicia 33.3 %, ..."`` for one model."""
    below = [r for r in rows if r[model] < threshold]
    text = (
        f"{model}: {len(rows) - len(below)} of {len(rows)} test voices at >= {100 * threshold:g} %"
    )
    if below:
        worst = sorted(below, key=lambda r: r[model])
        text += "; below: " + ", ".join(
            f"{r['variant'] or r['speaker_id']} {100 * r[model]:.1f} %" for r in worst
        )
    return text


def measure(name: str, model_dir: Path, metrics: dict[str, float]) -> dict[str, Any]:
    """One row of the table: parameters, weight bytes on disk, GMACs and the metrics.

    Parameters and GMACs are those of the model the weights stand for (see
    :func:`hf_quads.hub.measure_row`); the size is its weight files on disk.
    """
    from ..hub import measure_row

    row = measure_row(name, model_dir, metrics)
    return {
        "name": name,
        "dir": str(model_dir),
        "parameters": row.parameters,
        "size_bytes": row.size_bytes,
        "gmacs": row.gmacs,
        **metrics,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """The QUADS-style table: params, MB on disk, GMACs, accuracy, macro-F1, reduction."""
    teacher = rows[0]
    header = ("model", "params", "size (MiB)", "GMACs", "acc (%)", "F1 (%)", "vs teacher")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row["name"],
                f"{row['parameters']:,}",
                f"{row['size_bytes'] / 2**20:.3f}",
                f"{row['gmacs']:.3f}",
                f"{100 * row['accuracy']:.2f}",
                f"{100 * row['macro_f1']:.2f}",
                "-"
                if row is teacher
                else f"{teacher['size_bytes'] / row['size_bytes']:.1f}x smaller",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def plot_results(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy against size on disk, one labelled point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for row in rows:
        x, y = row["size_bytes"] / 2**20, 100 * row["accuracy"]
        ax.scatter([x], [y], s=30, color="tab:red" if row is rows[0] else "tab:blue", zorder=3)
        ax.annotate(row["name"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("weights on disk (MiB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("hf-quads demo: accuracy vs size (unseen voices)")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def check_goals(rows: list[dict[str, Any]], bits: list[int], wall: float) -> dict[str, Any]:
    """The issue's goals against the measured numbers (booleans, with the numbers)."""
    teacher = rows[0]["accuracy"]
    by_bits = {row.get("bits"): row["accuracy"] for row in rows}
    goals: dict[str, Any] = {
        "teacher_accuracy_at_least_95": teacher >= GOALS["teacher_accuracy"],
        "wall_time_at_most_15_min": wall <= GOALS["max_wall_seconds"],
    }
    if 4 in bits:
        goals["student_4bit_within_1_point"] = teacher - by_bits[4] <= GOALS["max_drop_4bit"]
    if 2 in bits:
        goals["student_2bit_within_5_points"] = teacher - by_bits[2] <= GOALS["max_drop_2bit"]
    return goals


# ----------------------------------------------------------------------------- the run
def run_demo(args: DemoArguments) -> dict[str, Any]:
    """Run every step; returns (and writes) the results."""
    start = time.perf_counter()
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    with _stage(timings, "data"):
        data = corpus(args)
        extractor, splits = featurize_corpus(data, args)
        print({name: len(split) for name, split in splits.items()})

    models, pruning = train_models(args, splits, extractor, out, timings)

    with _stage(timings, "evaluate"):
        from ..data.synth import read_speakers
        from ..metrics import classification_scores

        predictions = {}
        rows = []
        for name, directory, extra in models:
            predictions[name], labels = predict_classifier(directory, splits["test"])
            scores = classification_scores(predictions[name], labels)
            rows.append({**measure(name, directory, scores), **extra})
        per_voice = per_voice_accuracy(
            predictions, labels, list(data["test"]["speaker_id"]), read_speakers(args.data_dir)
        )

    export: dict[str, Any] = {}
    if args.export_bits is not None:
        with _stage(timings, "export + card"):
            export_dir = next(d for _, d, extra in models if extra.get("bits") == args.export_bits)
            export = _export_and_card(args, rows, export_dir, data["test"], out)

    wall = time.perf_counter() - start
    table = format_table(rows)
    results = {
        "rows": rows,
        "table": table,
        "timings_seconds": timings,
        "wall_seconds": round(wall, 1),
        "goals": check_goals(rows, args.bits, wall),
        "export": export,
        "pruning": pruning,
        "per_voice": per_voice,
        "settings": dataclasses.asdict(args),
        "machine": _machine(),
        "test_split": "speakers whose espeak voices no training speaker has",
    }
    (out / RESULTS_NAME).write_text(json.dumps(results, indent=2) + "\n")
    plot_results(rows, out / PLOT_NAME)
    print(f"\n{table}\n")
    print(f"test split: {len(splits['test'])} utterances of unseen voices; "
          f"wall time {wall / 60:.1f} min ({wall:.0f} s)")  # fmt: skip
    print("per test voice (every model's in results.json 'per_voice'):")
    for name in (rows[0]["name"], rows[-1]["name"]):
        print(f"  {voice_summary(per_voice, name)}")
    print(f"goals: {json.dumps(results['goals'])}")
    print(f"wrote {out / RESULTS_NAME} and {out / PLOT_NAME}")
    return results


def _export_and_card(
    args: DemoArguments, rows: list[dict[str, Any]], model_dir: Path, test_audio: Any, out: Path
) -> dict[str, Any]:
    from ..export import ExportError, export_onnx, require_export_extra
    from ..hub import CardSpec, ModelRow, preprocessing_lines, render_card

    export: dict[str, Any]
    onnx_quantization = None if args.onnx_quantization == "none" else args.onnx_quantization
    try:
        require_export_extra()
    except ExportError as error:  # the export extra is absent on the transformers 5.x line
        export = {"skipped": str(error)}
        print(f"ONNX export skipped: {export['skipped']}")
    else:
        result = export_onnx(
            model_dir,
            out / f"student-{args.export_bits}bit-onnx",
            onnx_quantization,
            audio=list(test_audio["audio"][:64]),
        )
        export = {"dir": result.out_dir, "size_bytes": result.size_bytes, "parity": result.parity}
        print(json.dumps(result.parity, indent=2))
    this = next(row for row in rows if row.get("bits") == args.export_bits)
    card_rows = [rows[0], rows[1], this]
    spec = CardSpec(
        repo_id=f"hf-quads-demo-speech-commands-{args.export_bits}bit",
        task="audio-classification",
        rows=[
            ModelRow(
                row["name"],
                row["parameters"],
                row["size_bytes"],
                row["gmacs"],
                {"accuracy": row["accuracy"], "macro_f1": row["macro_f1"]},
            )
            for row in card_rows
        ],
        base_model_relation="quantized",
        method={
            "bits": args.export_bits,
            "quant_method": args.quant_method,
            "schedule": "distill, then quant",
            "distillation": True,
        },
        dataset="hf-quads-synthetic-speech-commands",
        dataset_split="test (unseen voices)",
        hyperparameters={
            k: getattr(args, k)
            for k in (
                "learning_rate",
                "quant_learning_rate",
                "batch_size",
                "distill_epochs",
                "quant_epochs",
                "seed",
            )
        },
        onnx_quantization=onnx_quantization if "dir" in export else None,
        # What the published folder says, not what this process holds.
        preprocessing=preprocessing_lines(model_dir),
        limitations=[
            "Trained and tested on synthetic espeak-ng speech: a demonstration, not a "
            "model for real voices.",
            "Low-bit weights load through `import hf_quads`.",
        ],
    )
    render_card(spec).save(model_dir / "README.md")
    export["card"] = str(model_dir / "README.md")
    return export


def _machine() -> dict[str, Any]:
    import platform

    import transformers

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


__all__ = [
    "QUICK",
    "DemoArguments",
    "RecipeError",
    "per_voice_accuracy",
    "predict_classifier",
    "run_demo",
    "train_models",
    "voice_summary",
]
