"""``hf-quads train RECIPE.yaml``: QUADS on an intent-classification corpus (FSC or SLURP).

A recipe (``trainers/quads-fsc.yaml``, ``trainers/quads-slurp.yaml``) is one flat
mapping of the fields of three dataclasses, read by ``HfArgumentParser``:

* :class:`QuadsModelArguments` - the student (a checkpoint whose encoder gets a new
  intent head, or a small Whisper built from a config);
* :class:`QuadsDataArguments` - where the corpus is and how much of it to use;
* :class:`~hf_quads.DistillQuantConfig` - the teacher, the schedule, the bits and
  every ``TrainingArguments`` field.

The run: load and featurize the corpus (log-mels of 30 s windows are computed as
batches are read, not cached: 21 GB for real FSC), build the student,
:class:`~hf_quads.DistillQuantTrainer` on train (evaluating on the dev split when
``eval_strategy`` asks), evaluate on the test split, save the compressed
checkpoint with ``test_results.json`` and its model card.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from .loading import RecipeError


@dataclass
class QuadsModelArguments:
    """The student."""

    student_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "checkpoint of the student (e.g. openai/whisper-base): its encoder with a "
            "new intent head; or give student_config"
        },
    )
    student_config: dict | str | None = field(
        default=None,
        metadata={
            "help": "build a small Whisper classifier instead: hf_quads.models.whisper_config "
            'kwargs, e.g. \'{"d_model": 64, "encoder_layers": 2, "seconds": 3}\''
        },
    )
    feature_extractor_name_or_path: str | None = field(
        default=None,
        metadata={"help": "default: the student's, else the teacher's, else Whisper log-mel"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.student_config, str):
            self.student_config = json.loads(self.student_config)
        if (self.student_model_name_or_path is None) == (self.student_config is None):
            raise ValueError("give exactly one of student_model_name_or_path and student_config")


@dataclass
class QuadsDataArguments:
    """The corpus."""

    existing_paths: ClassVar[tuple[str, ...]] = ("slurp_audio_dir",)

    dataset: Literal["fsc", "slurp"] = field(default="fsc", metadata={"help": "fsc or slurp"})
    data_root: str = field(
        default="data/synth_fsc",
        metadata={"help": "FSC root (fluent_speech_commands_dataset/) or SLURP root"},
    )
    synthesize: bool = field(
        default=False,
        metadata={"help": "fsc: synthesise the espeak-ng corpus into data_root if it is absent"},
    )
    slurp_audio_dir: str | None = field(
        default=None,
        metadata={"help": "slurp: folder of the real recordings (default: found under data_root)"},
    )
    slurp_recordings: Literal["headset", "far_field", "both"] = field(
        default="headset", metadata={"help": "slurp: which recordings"}
    )
    max_seconds: float | None = field(default=None, metadata={"help": "cut clips to this length"})
    max_train_samples: int | None = field(default=None, metadata={"help": "subset of train"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "subset of dev/test"})
    num_proc: int = field(default=1, metadata={"help": "processes for feature extraction"})
    features_on_the_fly: bool | None = field(
        default=None,
        metadata={
            "help": "compute log-mels when batches are read instead of caching them; default: "
            "on for windows over 256 KiB a clip (Whisper's 30 s), off for short ones"
        },
    )

    def __post_init__(self) -> None:
        if not self.synthesize and not Path(self.data_root).exists():
            raise ValueError(f"data_root: no such directory: {self.data_root}")
        if self.synthesize and self.dataset != "fsc":
            raise ValueError("synthesize: only the fsc layout can be synthesised")


def load_corpus(data_args: QuadsDataArguments, seed: int = 0) -> Any:
    """The corpus as a ``DatasetDict`` with ``train`` / ``validation`` / ``test`` splits."""
    from ..data import load_fsc, load_slurp

    if data_args.dataset == "slurp":
        return load_slurp(
            data_args.data_root,
            recordings=data_args.slurp_recordings,
            audio_dir=data_args.slurp_audio_dir,
        )
    root = Path(data_args.data_root)
    if data_args.synthesize:
        from ..data.synth import ensure_fsc_corpus

        ensure_fsc_corpus(root, seed=seed, num_workers=max(1, data_args.num_proc))
    return load_fsc(root)


def _feature_extractor(model_args: QuadsModelArguments, config: Any) -> Any:
    from transformers import AutoFeatureExtractor, WhisperFeatureExtractor

    source = (
        model_args.feature_extractor_name_or_path
        or model_args.student_model_name_or_path
        or config.teacher_model_name_or_path
    )
    if source is not None:
        try:
            return AutoFeatureExtractor.from_pretrained(source)
        except OSError:
            if model_args.feature_extractor_name_or_path is not None:
                raise
    seconds = (model_args.student_config or {}).get("seconds", 3)
    return WhisperFeatureExtractor(feature_size=80, chunk_length=round(seconds))


def build_student(model_args: QuadsModelArguments, labels: list[str]) -> Any:
    """The student: a checkpoint with a new head over ``labels``, or a config-built Whisper."""
    from transformers import AutoModelForAudioClassification

    from ..models import whisper_classifier

    if model_args.student_config is not None:
        return whisper_classifier(labels, **model_args.student_config)
    return AutoModelForAudioClassification.from_pretrained(
        model_args.student_model_name_or_path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )


def run_quads(
    model_args: QuadsModelArguments, data_args: QuadsDataArguments, config: Any
) -> dict[str, float]:
    """Train, evaluate on test, save the compressed checkpoint + card; returns test metrics."""
    import torch

    from .. import DistillQuantTrainer
    from ..data import featurize, subset
    from ..metrics import make_compute_metrics

    torch.set_flush_denormal(True)
    data = load_corpus(data_args, config.seed)
    labels = list(data["train"].features["label"].names)
    extractor = _feature_extractor(model_args, config)

    def prepared(name: str, n: int | None) -> Any:
        split = subset(data[name], n, config.seed)
        return featurize(split, extractor, max_seconds=data_args.max_seconds,
                         num_proc=data_args.num_proc, on_the_fly=data_args.features_on_the_fly,
                         desc=f"{name} features")  # fmt: skip

    train = prepared("train", data_args.max_train_samples)
    dev = prepared("validation", data_args.max_eval_samples)
    test = prepared("test", data_args.max_eval_samples)
    trainer = DistillQuantTrainer(
        model=build_student(model_args, labels),
        args=config,
        train_dataset=train,
        eval_dataset=dev,
        processing_class=extractor,
        compute_metrics=make_compute_metrics("intent"),
    )
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    metrics = trainer.evaluate(eval_dataset=test, metric_key_prefix="test")
    trainer.save_metrics("test", metrics)
    trainer.save_model()
    print(json.dumps({"output_dir": os.path.abspath(config.output_dir), **metrics}, indent=2))
    return metrics


__all__ = [
    "QuadsDataArguments",
    "QuadsModelArguments",
    "RecipeError",
    "build_student",
    "load_corpus",
    "run_quads",
]
