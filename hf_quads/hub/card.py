"""Model cards for compressed checkpoints: one renderer, Jinja templates in ``model_cards/``.

:func:`render_card` fills ``model_cards/compressed_model.md.jinja`` from a
:class:`CardSpec`: the base model and the method (schedule, bits, codebook or
uniform, the pruning order), a compression table (parameters, MB on disk, GMACs,
the task metrics) with reduction factors against the teacher and the fp32
student, hyperparameters, how to load, limitations and citations, and YAML
metadata with a ``model-index`` that ``huggingface_hub.ModelCard.load`` parses back.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import HfQuadsError

DEFAULT_TEMPLATE = "compressed_model.md.jinja"
Task = Literal["audio-classification", "automatic-speech-recognition", "translation"]
Relation = Literal["quantized", "finetune", "adapter", "merge"]

_AUTO_CLASS = {
    "audio-classification": "AutoModelForAudioClassification",
    "automatic-speech-recognition": "AutoModelForSpeechSeq2Seq",
    "translation": "AutoModelForSpeechSeq2Seq",
}
_ORT_CLASS = {
    "audio-classification": "ORTModelForAudioClassification",
    "automatic-speech-recognition": "ORTModelForSpeechSeq2Seq",
    "translation": "ORTModelForSpeechSeq2Seq",
}


class CardError(HfQuadsError, ValueError):
    """A card that cannot be rendered from what it was given."""


@dataclass
class ModelRow:
    """One line of the compression table."""

    name: str
    parameters: int
    size_bytes: int
    gmacs: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class CardSpec:
    """Everything a compressed model's card says. The last of ``rows`` is this model.

    ``rows`` may hold a ``teacher`` and an fp32 ``student`` row (by name) for the
    reduction factors; ``method`` keys that are understood: ``quant_method``
    (``kmeans`` / ``uniform``), ``bits``, ``schedule``, ``pruned_layers``,
    ``pruned_stack``, ``recovery``.
    """

    repo_id: str
    task: Task
    rows: list[ModelRow]
    base_model: str | None = None
    base_model_relation: Relation | None = None
    method: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    dataset_split: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    language: list[str] | None = None
    license: str | None = None
    onnx_quantization: str | None = None
    tags: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    #: What the inputs go through before the model (see :func:`preprocessing_lines`).
    preprocessing: list[str] = field(default_factory=list)


def preprocessing_lines(feature_extractor: Any) -> list[str]:
    """What a card says about the inputs: the log-mel window and any silence trimming.

    ``feature_extractor`` is an extractor, a processor holding one, a
    ``preprocessor_config.json`` as a dict, or a saved model's directory (read from
    its ``preprocessor_config.json``, if any); anything else (a tokenizer, None) has
    nothing to say. A reader needs both facts: a model trained on a 2 s window of
    trimmed clips misreads whole 30 s clips that start with silence.
    """
    import json

    from ..data.audio import TRIM_ATTRIBUTE, TRIM_MARGIN_SECONDS

    if isinstance(feature_extractor, (str, os.PathLike)):
        saved = Path(feature_extractor) / "preprocessor_config.json"
        if not saved.is_file():
            return []
        feature_extractor = json.loads(saved.read_text(encoding="utf-8"))
    feature_extractor = getattr(feature_extractor, "feature_extractor", feature_extractor)
    if isinstance(feature_extractor, dict):
        config = feature_extractor
    elif hasattr(feature_extractor, "sampling_rate") and hasattr(feature_extractor, "to_dict"):
        config = feature_extractor.to_dict()
    else:
        return []
    lines = []
    if config.get("feature_extractor_type") == "WhisperFeatureExtractor" and config.get(
        "chunk_length"
    ):
        lines.append(
            f"Audio at {config.get('sampling_rate', 16_000)} Hz becomes {config.get('feature_size', 80)} "
            f"log-mel bins over a {config['chunk_length']} s window: longer clips are cut, "
            "shorter ones padded."
        )
    threshold = config.get(TRIM_ATTRIBUTE)
    if threshold is not None:
        lines.append(
            f"Each clip's leading silence is trimmed first: it starts "
            f"{1000 * TRIM_MARGIN_SECONDS:g} ms before its first sample above "
            f"{100 * threshold:g} % of its peak (`{TRIM_ATTRIBUTE}` in `preprocessor_config.json`). "
            "`hf_quads.prepare_features` does this; the feature extractor called on its own does not."
        )
    return lines


def template_path(name: str = DEFAULT_TEMPLATE) -> Path:
    """A template from ``model_cards/``: inside the installed package, or the source tree."""
    try:
        packaged = importlib.resources.files("hf_quads.model_cards").joinpath(name)
        if packaged.is_file():
            return Path(str(packaged))
    except ModuleNotFoundError:
        pass
    source = Path(__file__).resolve().parents[2] / "model_cards" / name
    if source.is_file():
        return source
    raise CardError(
        f"model card template {name!r} not found (looked in hf_quads.model_cards and {source.parent})"
    )


def _tags(spec: CardSpec) -> list[str]:
    tags = ["hf-quads", spec.task]
    bits = spec.method.get("bits")
    if spec.base_model_relation == "quantized" or (bits is not None and bits < 32):
        tags.append("quantized")
    if bits is not None and bits < 32:
        tags.append(f"{bits}-bit")
    if spec.method.get("quant_method") == "kmeans":
        tags.append("kmeans")
    if spec.method.get("schedule") or spec.method.get("distillation"):
        tags.append("distillation")
    if spec.method.get("pruned_layers"):
        tags.append("pruned")
    if spec.method.get("recovery"):
        tags.append("qlora")
    if spec.onnx_quantization is not None:
        tags.append("onnx")
    return list(dict.fromkeys(tags + spec.tags))


def _method_lines(spec: CardSpec) -> list[str]:
    m = spec.method
    lines = []
    if m.get("bits") is not None:
        kind = {
            "kmeans": "a k-means codebook of 2^b values per tensor",
            "uniform": "uniform (LSQ) steps",
        }
        lines.append(
            f"Weights quantized to **{m['bits']} bits** with "
            f"{kind.get(m.get('quant_method'), m.get('quant_method', 'quantization'))}."
        )
    if m.get("schedule"):
        lines.append(f"QUADS distillation + quantization, phase schedule `{m['schedule']}`.")
    if m.get("pruned_layers"):
        lines.append(
            f"Iterative layer pruning of the `{m.get('pruned_stack', 'decoder')}` stack; layers "
            f"removed in order: {', '.join(map(str, m['pruned_layers']))}."
        )
    if m.get("recovery"):
        lines.append(f"Recovery: {m['recovery']}.")
    return lines or ["See the training hyperparameters below."]


def _fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def render_card(spec: CardSpec, template: str = DEFAULT_TEMPLATE) -> Any:
    """The ``huggingface_hub.ModelCard`` of a compressed model."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    if not spec.rows:
        raise CardError("a card needs at least the row of the model itself")
    this = spec.rows[-1]
    metric_names = list(dict.fromkeys(k for row in spec.rows for k in row.metrics))
    eval_results = [
        EvalResult(
            task_type=spec.task,
            dataset_type=spec.dataset or "custom",
            dataset_name=spec.dataset or "custom",
            dataset_split=spec.dataset_split,
            metric_type=metric,
            metric_value=float(value),
        )
        for metric, value in this.metrics.items()
    ]
    data = ModelCardData(
        library_name="transformers",
        base_model=spec.base_model,
        base_model_relation=spec.base_model_relation,
        tags=_tags(spec),
        datasets=[spec.dataset] if spec.dataset else None,
        metrics=metric_names or None,
        language=spec.language,
        license=spec.license,
        model_name=spec.repo_id.rsplit("/", 1)[-1],
        eval_results=eval_results or None,
        pipeline_tag="audio-classification" if spec.task == "audio-classification" else None,
    )
    by_name = {row.name: row for row in spec.rows}
    reductions = [
        f"{reference.size_bytes / this.size_bytes:.1f}x vs the {name}"
        for name, reference in by_name.items()
        if reference is not this and this.size_bytes and name in ("teacher", "student (fp32)")
    ]
    rows = [
        {
            "name": f"**{row.name}** (this model)" if row is this else row.name,
            "parameters": _fmt(row.parameters),
            "size_mb": _fmt(row.size_bytes / 1e6, 3),
            "gmacs": _fmt(row.gmacs),
            "metrics": {k: _fmt(row.metrics.get(k)) for k in metric_names},
        }
        for row in spec.rows
    ]
    limitations = spec.limitations or [
        "Measured on the dataset and split named above only; check it on your own data.",
        "Low-bit weights load through `import hf_quads`; without it transformers cannot "
        "read the packed tensors.",
    ]
    summary = f"A compressed {spec.task.replace('-', ' ')} model ({this.name})."
    return ModelCard.from_template(
        data,
        template_path=str(template_path(template)),
        model_name=spec.repo_id.rsplit("/", 1)[-1],
        repo_id=spec.repo_id,
        summary=summary,
        base_model=spec.base_model,
        base_model_url=f"https://huggingface.co/{spec.base_model}" if spec.base_model else None,
        method_lines=_method_lines(spec),
        metric_names=metric_names,
        rows=rows,
        reductions=reductions,
        eval_dataset=spec.dataset,
        eval_split=spec.dataset_split,
        hyperparameters=spec.hyperparameters,
        auto_class=_AUTO_CLASS[spec.task],
        ort_class=_ORT_CLASS[spec.task],
        onnx=spec.onnx_quantization is not None,
        onnx_quantization=spec.onnx_quantization or "fp32",
        limitations=limitations,
        preprocessing=spec.preprocessing,
    )


_EVAL_PREFIXES = ("test", "eval")
_NOT_METRICS = ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch")
_HYPERPARAMETERS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "lr_scheduler_type", "warmup_ratio", "weight_decay", "seed",
    "schedule", "quant_method", "bits", "alpha", "gamma", "kd_weight", "temperature",
    "centroid_weight", "feature_loss",
)  # fmt: skip


def latest_evaluation(log_history: list[dict[str, Any]]) -> tuple[str | None, dict[str, float]]:
    """The prefix (``"eval"`` or ``"test"``) and task metrics of the last evaluation logged.

    ``trainer.evaluate(test_set, metric_key_prefix="test")`` after training logs
    ``test_*`` metrics: those are the ones a card reports.
    """
    for entry in reversed(log_history):
        for prefix in _EVAL_PREFIXES:
            metrics = {
                key[len(prefix) + 1 :]: float(value)
                for key, value in entry.items()
                if key.startswith(prefix + "_") and not key.endswith(_NOT_METRICS)
            }
            if metrics:
                return prefix, metrics
    return None, {}


def latest_eval_metrics(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The task metrics of the last evaluation in a Trainer's ``state.log_history``."""
    return latest_evaluation(log_history)[1]


def _task_of(name: str) -> Task:
    """The card's task from a model class name."""
    if name.endswith(("ForAudioClassification", "ForSequenceClassification")):
        return "audio-classification"
    if "Speech" in name or name.startswith("Whisper"):
        return "automatic-speech-recognition"
    return "translation"


def _weight_bytes(directory: str | Path) -> int:
    from ..profile import disk_usage

    return disk_usage(directory, recursive=False).weight_bytes


def hub_model_id(name_or_path: str | None) -> str | None:
    """``name_or_path`` when it names a Hub repository, ``None`` for a local folder.

    A card's ``base_model`` must be a Hub id: a teacher loaded from ``/tmp/...`` or
    ``./teacher`` is not one.
    """
    import re

    if not name_or_path or Path(name_or_path).exists() or name_or_path.startswith((".", "/", "~")):
        return None
    return name_or_path if re.fullmatch(r"[\w.-]+/[\w.-]+|[\w.-]+", name_or_path) else None


def spec_from_training(
    args: Any,
    model: Any,
    teacher: Any,
    log_history: list[dict[str, Any]],
    saved_dir: str | Path,
    *,
    quantized: bool,
    repo_id: str | None = None,
    processing_class: Any = None,
) -> CardSpec:
    """The card of a model ``DistillQuantTrainer`` saved in ``saved_dir``.

    Rows: the teacher (its in-memory size), the fp32 student (4 bytes per
    parameter) and the saved model (its weight files); metrics: the last evaluation;
    inputs: what ``processing_class`` does to the audio.
    """
    params = sum(p.numel() for p in model.parameters())
    rows = []
    if teacher is not None:
        rows.append(
            ModelRow(
                "teacher",
                sum(p.numel() for p in teacher.parameters()),
                sum(t.numel() * t.element_size() for t in teacher.state_dict().values()),
            )
        )
    name = f"student ({args.bits}-bit)" if quantized else "student"
    if quantized:
        rows.append(ModelRow("student (fp32)", params, 4 * params))
    prefix, metrics = latest_evaluation(log_history)
    rows.append(ModelRow(name, params, _weight_bytes(saved_dir), metrics=metrics))
    base = hub_model_id(getattr(getattr(teacher, "config", None), "_name_or_path", None))
    method: dict[str, Any] = {"schedule": args.schedule, "distillation": teacher is not None}
    if quantized:
        method.update(bits=args.bits, quant_method=args.quant_method)
    return CardSpec(
        repo_id=repo_id or args.hub_model_id or Path(saved_dir).resolve().name,
        task=_task_of(type(model).__name__),
        rows=rows,
        base_model=base,
        base_model_relation="quantized" if quantized else "finetune",
        method=method,
        dataset_split="test" if prefix == "test" else None,
        hyperparameters=training_hyperparameters(args),
        preprocessing=preprocessing_lines(processing_class),
    )


def training_hyperparameters(args: Any) -> dict[str, Any]:
    """The card's hyperparameters: ``max_steps`` when it ended the run, else ``num_train_epochs``."""
    skip = "num_train_epochs" if getattr(args, "max_steps", -1) > 0 else "max_steps"
    return {k: getattr(args, k) for k in _HYPERPARAMETERS if k != skip and hasattr(args, k)}


_RESULT_FILES = ("test_results.json", "eval_results.json", "all_results.json")


def checkpoint_metrics(model_dir: str | Path) -> dict[str, float]:
    """Eval metrics a Trainer saved beside a checkpoint (``trainer.save_metrics``), if any."""
    import json

    for name in _RESULT_FILES:
        path = Path(model_dir) / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            metrics = latest_eval_metrics([data])
            if metrics:
                return metrics
    return {}


def measure_row(name: str, model_dir: str | Path, metrics: dict[str, float]) -> ModelRow:
    """A table row measured from a saved model: parameters and GMACs of the model its
    weights stand for (packed checkpoints dequantized), bytes of its own weight files."""
    from ..profile import profile_model_dir

    profile = profile_model_dir(model_dir, bits=())
    return ModelRow(
        name,
        profile.parameters.total,
        _weight_bytes(model_dir),
        profile.macs.gmacs if profile.macs is not None else None,
        metrics,
    )


def spec_from_checkpoint(
    model_dir: str | Path,
    *,
    repo_id: str | None = None,
    base_model: str | None = None,
    teacher_dir: str | Path | None = None,
    metrics: dict[str, float] | None = None,
    dataset: str | None = None,
    dataset_split: str | None = None,
    onnx_quantization: str | None = None,
) -> CardSpec:
    """The card of a saved checkpoint, measured from its directory.

    Parameters, weight bytes and GMACs come from :func:`hf_quads.profile.profile_model_dir`;
    bits and codebook/uniform from ``config.json``'s ``quantization_config``; metrics
    from ``metrics`` or the Trainer's ``test_results.json`` / ``eval_results.json`` /
    ``all_results.json``; inputs from ``preprocessor_config.json``.
    ``teacher_dir`` adds a teacher row (and its metrics) for the reduction factors.
    """
    import json

    root = Path(model_dir)
    config_file = root / "config.json"
    if not config_file.is_file():
        raise CardError(f"not a model directory: {root} has no config.json")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    quant = config.get("quantization_config") or {}
    quantized = quant.get("quant_method") == "hf_quads"
    architectures = config.get("architectures") or [""]
    rows = []
    if teacher_dir is not None:
        rows.append(measure_row("teacher", teacher_dir, checkpoint_metrics(teacher_dir)))
    name = f"student ({quant['bits']}-bit)" if quantized else "model"
    rows.append(measure_row(name, root, metrics or checkpoint_metrics(root)))
    method: dict[str, Any] = {}
    if quantized:
        method.update(bits=quant["bits"], quant_method=quant.get("method", "kmeans"))
    return CardSpec(
        repo_id=repo_id or root.resolve().name,
        task=_task_of(architectures[0]),
        rows=rows,
        base_model=base_model,
        base_model_relation=("quantized" if quantized else "finetune") if base_model else None,
        method=method,
        dataset=dataset,
        dataset_split=dataset_split,
        onnx_quantization=onnx_quantization,
        preprocessing=preprocessing_lines(root),
    )


__all__ = [
    "CardError",
    "CardSpec",
    "ModelRow",
    "checkpoint_metrics",
    "hub_model_id",
    "latest_eval_metrics",
    "latest_evaluation",
    "measure_row",
    "preprocessing_lines",
    "render_card",
    "spec_from_checkpoint",
    "spec_from_training",
    "template_path",
]
