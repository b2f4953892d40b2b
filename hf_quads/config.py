"""``DistillQuantConfig``: every knob of QUADS training, validated when it is built.

It subclasses ``transformers.TrainingArguments``, so it parses with
``HfArgumentParser``, serialises with the Trainer's checkpoints, and carries every
usual training field (``learning_rate``, ``num_train_epochs``, ``report_to``, ...).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import TrainingArguments

from .distill.losses import check_loss_weights
from .schedule import PhasePlan, ScheduleError

QuantMethod = Literal["kmeans", "uniform", "none"]
FeatureLoss = Literal["l1", "mse", "cosine"]


def _json_dict(value: Any, name: str) -> dict | None:
    """Accept a dict, a JSON object string (from the command line) or None."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"{name} must be a JSON object such as '{{\"a\": 1}}': {err}") from err
        if isinstance(loaded, dict):
            return loaded
    raise ValueError(f"{name} must be a dict (or a JSON object string), got {value!r}")


def _regex_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    for pattern in items:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(
                f"{name}: {pattern!r} is not a valid regular expression ({err})"
            ) from err
    return items


@dataclass
class DistillQuantConfig(TrainingArguments):
    """Training arguments of :class:`~hf_quads.DistillQuantTrainer`.

    The objective (QUADS): ``L_dis = alpha * L_feat + (1 - alpha) * L_GT + kd_weight * L_kd``
    in distillation phases, ``L_quant = centroid_weight * L_centroid + L_GT`` in
    quantization phases, and ``gamma * L_dis + (1 - gamma) * L_quant`` in ``joint``
    phases. ``schedule`` decides which phase each step belongs to.
    """

    # -- teacher ---------------------------------------------------------------------------
    teacher_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Teacher model (Hub id or local path) when no teacher_model is passed "
            "to the trainer. Loaded with the student's Auto class."
        },
    )
    teacher_model_init_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "Keyword arguments for the teacher's from_pretrained (dict or JSON "
            'object string), e.g. \'{"revision": "main"}\'.'
        },
    )
    teacher_dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(
        default="auto",
        metadata={"help": "dtype the frozen teacher runs in; 'auto' keeps the student's dtype."},
    )
    # -- quantization ----------------------------------------------------------------------
    quant_method: QuantMethod = field(
        default="kmeans",
        metadata={
            "help": "kmeans: QUADS codebook of 2^bits centroids per tensor; uniform: "
            "LSQ-style fake quantization with learnable scales; none: distil only."
        },
    )
    bits: int = field(default=4, metadata={"help": "Bits per quantized weight (1-8)."})
    quant_module_bits: dict | str | None = field(
        default=None,
        metadata={
            "help": "Mixed precision: {regex on module name: bits}, first match wins, "
            'e.g. \'{"fc\\\\d": 2, "classifier": 8}\'.'
        },
    )
    quant_include: list[str] | None = field(
        default=None,
        metadata={
            "help": "Regexes on module names to quantize (default: every Linear, Conv1d "
            "and Conv2d weight)."
        },
    )
    quant_exclude: list[str] | None = field(
        default=None, metadata={"help": "Regexes on module names never to quantize."}
    )
    quantize_head: bool = field(
        default=True,
        metadata={
            "help": "Quantize the output head (classifier / projector / lm_head) too, as "
            "the QUADS reference does."
        },
    )
    quantize_embeddings: bool = field(
        default=False, metadata={"help": "Quantize nn.Embedding weights too."}
    )
    quant_group_size: int | None = field(
        default=None,
        metadata={
            "help": "Weights per codebook (kmeans) or per scale (uniform granularity "
            "'group'); None: one codebook per tensor."
        },
    )
    kmeans_iters: int = field(
        default=100, metadata={"help": "Lloyd iterations of the 1-D k-means codebook fit."}
    )
    kmeans_reassign: bool = field(
        default=False,
        metadata={
            "help": "After each step, reassign every weight to its nearest centroid "
            "(the reference keeps assignments fixed)."
        },
    )
    kmeans_snap: bool = field(
        default=True,
        metadata={
            "help": "After each step, snap the latent weights to their centroids (the "
            "reference behaviour); off: latent weights train with a "
            "straight-through estimator and L_centroid pulls them to centroids."
        },
    )
    uniform_symmetric: bool = field(
        default=True, metadata={"help": "uniform: symmetric (no zero point) or asymmetric."}
    )
    uniform_granularity: Literal["tensor", "channel", "group"] = field(
        default="channel", metadata={"help": "uniform: one scale per tensor, channel or group."}
    )
    # -- schedule --------------------------------------------------------------------------
    schedule: str = field(
        default="quads",
        metadata={
            "help": "Phase plan: 'quads' (the paper's distill:3,quant:3,distill:6,quant:8, "
            "scaled to the run), 'joint' (both losses every step), 'distill', "
            "'quant', or an explicit 'phase:length,...' list."
        },
    )
    # -- losses ----------------------------------------------------------------------------
    alpha: float = field(
        default=0.5,
        metadata={
            "help": "Weight of the feature loss against the ground-truth loss inside L_dis (0-1)."
        },
    )
    gamma: float = field(
        default=0.5, metadata={"help": "Weight of L_dis against L_quant in joint phases (0-1)."}
    )
    centroid_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight of L_centroid (distance of each weight to its centroid) in L_quant."
        },
    )
    kd_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight of logit distillation (KL at `temperature`, times T^2) in L_dis; "
            "token-level for seq2seq / causal LM students."
        },
    )
    temperature: float = field(
        default=2.0, metadata={"help": "Softmax temperature of logit distillation."}
    )
    feature_loss: FeatureLoss = field(
        default="l1", metadata={"help": "Distance between pooled encoder embeddings."}
    )
    feature_layer: int = field(
        default=-1,
        metadata={"help": "Which encoder hidden state feeds the feature loss (-1: the last)."},
    )
    feature_pooling: Literal["mean", "max", "first"] = field(
        default="mean", metadata={"help": "How encoder frames are pooled into one embedding."}
    )
    feature_projection: Literal["linear", "pool"] = field(
        default="linear",
        metadata={
            "help": "When teacher and student widths differ: a learned linear projection "
            "(trained with the student, never saved with it) or parameter-free "
            "pooling of the teacher's embedding."
        },
    )
    # -- teacher cache ---------------------------------------------------------------------
    teacher_cache: bool = field(
        default=False,
        metadata={
            "help": "Precompute the teacher's logits and pooled features once for the "
            "training set (memory-mapped on disk) and never run the teacher while "
            "training. Only for data without random augmentation."
        },
    )
    teacher_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where the teacher cache lives (default: <output_dir>/teacher_cache); "
            "reused across runs with the same data and teacher."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.teacher_model_init_kwargs = _json_dict(
            self.teacher_model_init_kwargs, "teacher_model_init_kwargs"
        )
        self.quant_module_bits = _json_dict(self.quant_module_bits, "quant_module_bits")
        self.quant_include = _regex_list(self.quant_include, "quant_include")
        self.quant_exclude = _regex_list(self.quant_exclude, "quant_exclude")
        if self.quant_method not in ("kmeans", "uniform", "none"):
            raise ValueError(
                f"quant_method must be 'kmeans', 'uniform' or 'none', got {self.quant_method!r}"
            )
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 8:
            raise ValueError(f"bits must be an integer from 1 to 8, got {self.bits!r}")
        for pattern, bits in (self.quant_module_bits or {}).items():
            _regex_list([pattern], "quant_module_bits")
            if not isinstance(bits, int) or not 1 <= bits <= 8:
                raise ValueError(
                    f"quant_module_bits[{pattern!r}] must be an integer from 1 to 8, got {bits!r}"
                )
        if self.quant_group_size is not None and self.quant_group_size < 1:
            raise ValueError(
                f"quant_group_size must be positive or None, got {self.quant_group_size}"
            )
        if self.quant_method == "uniform":
            if self.uniform_granularity == "group" and self.quant_group_size is None:
                raise ValueError("uniform_granularity='group' needs quant_group_size (e.g. 32)")
            if self.uniform_granularity != "group" and self.quant_group_size is not None:
                raise ValueError(
                    "quant_group_size with quant_method='uniform' needs uniform_granularity='group'"
                )
        if self.kmeans_iters < 1:
            raise ValueError(f"kmeans_iters must be at least 1, got {self.kmeans_iters}")
        try:
            plan = PhasePlan.parse(self.schedule)
        except ScheduleError as err:
            raise ValueError(f"schedule: {err}") from err
        if plan.quantizes and self.quant_method == "none":
            raise ValueError(
                f"schedule {self.schedule!r} has quantization phases but quant_method='none'; "
                "use schedule='distill' to distil without quantization, or pick a quant_method"
            )
        check_loss_weights(
            alpha=self.alpha,
            gamma=self.gamma,
            kd_weight=self.kd_weight,
            centroid_weight=self.centroid_weight,
            temperature=self.temperature,
        )

    @property
    def phase_plan(self) -> PhasePlan:
        """The parsed :attr:`schedule`."""
        return PhasePlan.parse(self.schedule)

    def quant_spec_kwargs(self) -> dict[str, Any]:
        """The quantization fields, named as :class:`hf_quads.quant.QuantSpec` takes them."""
        return {
            "method": self.quant_method,
            "bits": self.bits,
            "module_bits": dict(self.quant_module_bits or {}),
            "include": self.quant_include,
            "exclude": list(self.quant_exclude or []),
            "quantize_head": self.quantize_head,
            "quantize_embeddings": self.quantize_embeddings,
            "group_size": self.quant_group_size,
            "kmeans_iters": self.kmeans_iters,
            "reassign": self.kmeans_reassign,
            "snap": self.kmeans_snap,
            "symmetric": self.uniform_symmetric,
            "granularity": self.uniform_granularity,
            "seed": self.seed,
        }
