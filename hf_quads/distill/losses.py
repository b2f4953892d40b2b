"""Distillation losses as pure functions on tensors.

* :func:`feature_loss` — distance between student and teacher features (L1, MSE or
  cosine), on pooled ``(B, D)`` vectors or per frame ``(B, T, D)`` with a mask.
* :func:`logit_kd_loss` — Hinton's soft-target loss ``KL(p_teacher || p_student) · T²``
  on classification ``(B, C)`` or token ``(B, L, V)`` logits.
* :func:`combine_losses` — the QUADS objective: the distillation, quantization and
  joint combinations of the terms above plus ground-truth cross-entropy and the
  centroid term.

Every loss is computed in float32 whatever the input dtype, and the teacher's
tensors are detached: gradients only ever reach the student.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import HfQuadsError

__all__ = [
    "LOSS_TERMS",
    "DistillError",
    "FeatureLossKind",
    "Phase",
    "check_loss_weights",
    "combine_losses",
    "feature_loss",
    "logit_kd_loss",
]

FeatureLossKind = Literal["l1", "mse", "cosine"]
Phase = Literal["distill", "quant", "joint"]
#: Names :func:`combine_losses` accepts in ``terms``.
LOSS_TERMS: tuple[str, ...] = ("gt", "feature", "kd", "centroid")


class DistillError(HfQuadsError, ValueError):
    """A distillation loss, feature or cache was given inputs or settings it cannot use."""


def check_loss_weights(
    *,
    alpha: float | None = None,
    gamma: float | None = None,
    kd_weight: float | None = None,
    centroid_weight: float | None = None,
    temperature: float | None = None,
) -> None:
    """Raise :class:`DistillError` naming the setting to change if a given weight is out of range.

    ``alpha`` and ``gamma`` must lie in [0, 1], ``kd_weight`` and ``centroid_weight``
    must be >= 0 and ``temperature`` > 0; all must be finite. ``None`` skips a check.
    """
    for name, value in (("alpha", alpha), ("gamma", gamma)):
        if value is not None and not (_is_finite(value) and 0.0 <= value <= 1.0):
            raise DistillError(f"{name} must lie in [0, 1]; got {value!r}. Set {name} to e.g. 0.5.")
    for name, value in (("kd_weight", kd_weight), ("centroid_weight", centroid_weight)):
        if value is not None and not (_is_finite(value) and value >= 0.0):
            raise DistillError(
                f"{name} must be a finite number >= 0; got {value!r}. Use 0 to switch the term off."
            )
    if temperature is not None and not (_is_finite(temperature) and temperature > 0.0):
        raise DistillError(
            f"temperature must be a finite number > 0; got {temperature!r}. "
            "Use 1.0 for plain softmax or 2.0 as in distil-whisper."
        )


def feature_loss(
    student: Tensor,
    teacher: Tensor,
    kind: FeatureLossKind = "l1",
    mask: Tensor | None = None,
) -> Tensor:
    """Distance between student and teacher features, averaged to a scalar.

    Args:
        student: pooled features ``(B, D)`` or per-frame features ``(B, T, D)``.
        teacher: same shape as ``student`` (project or pool it first: see
            :mod:`hf_quads.distill.features`); detached here.
        kind: ``"l1"`` (mean absolute error over every element), ``"mse"`` (mean
            squared error over every element) or ``"cosine"`` (mean over vectors of
            ``1 - cos(student, teacher)`` along ``D``).
        mask: only for per-frame features: ``(B, T)``, nonzero where the frame is
            real. Padded frames are left out of the mean; an all-padding batch gives 0.

    Returns:
        A float32 scalar, 0 for identical inputs.
    """
    if kind not in get_args(FeatureLossKind):
        raise DistillError(f"unknown feature loss kind {kind!r}; use one of 'l1', 'mse', 'cosine'.")
    if student.shape != teacher.shape:
        raise DistillError(
            f"student features {tuple(student.shape)} and teacher features "
            f"{tuple(teacher.shape)} differ in shape; match the widths with FeatureProjector "
            "or match_dims and pool both the same way."
        )
    if student.dim() not in (2, 3):
        raise DistillError(
            f"features must be (batch, dim) or (batch, frames, dim); got {tuple(student.shape)}."
        )
    s = student.float()
    t = teacher.detach().float()
    if kind == "cosine":
        per_vector = 1.0 - F.cosine_similarity(s, t, dim=-1)
    elif kind == "l1":
        per_vector = (s - t).abs().mean(dim=-1)
    else:
        per_vector = (s - t).pow(2).mean(dim=-1)
    if mask is None:
        return per_vector.mean()
    if student.dim() != 3:
        raise DistillError("mask is only used with per-frame features (batch, frames, dim).")
    if tuple(mask.shape) != tuple(student.shape[:2]):
        raise DistillError(
            f"mask {tuple(mask.shape)} does not match the features' (batch, frames) "
            f"{tuple(student.shape[:2])}; pass a frame-level mask "
            "(see hf_quads.distill.features.frame_attention_mask)."
        )
    return _masked_mean(per_vector, mask.to(per_vector.device) != 0)


def logit_kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 2.0,
    labels: Tensor | None = None,
    ignore_index: int = -100,
) -> Tensor:
    """Soft-target distillation loss ``KL(softmax(t/T) || softmax(s/T)) · T²`` (Hinton et al.).

    The KL divergence is summed over the last (class or vocabulary) dimension and
    averaged over the remaining positions: over the batch for classification logits
    ``(B, C)``, over the tokens for sequence logits ``(B, L, V)``. The ``T²`` factor
    keeps gradient magnitudes comparable across temperatures.

    The loss expects *aligned* logits: position ``i`` of the student, of the teacher
    and of ``labels`` must describe the same prediction. For causal language models
    the caller shifts logits and labels first; nothing is shifted here.

    Args:
        student_logits: ``(..., V)``.
        teacher_logits: same shape as ``student_logits``; detached here.
        temperature: softmax temperature ``T`` > 0.
        labels: optional, shape ``student_logits.shape[:-1]``; positions equal to
            ``ignore_index`` are left out and the mean runs over the others. A batch
            with no valid position gives 0 (no NaN).
        ignore_index: the label value marking positions to skip.

    Returns:
        A float32 scalar, 0 for identical logits.
    """
    check_loss_weights(temperature=temperature)
    if student_logits.shape != teacher_logits.shape:
        raise DistillError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ in shape; teacher and student must share "
            "the label set (or vocabulary) and the caller must align sequence positions."
        )
    if student_logits.dim() < 2:
        raise DistillError(
            f"logits need a class dimension: (batch, classes) or (batch, length, vocab); "
            f"got {tuple(student_logits.shape)}."
        )
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    p_teacher = log_p_teacher.exp()
    # Classes the teacher rules out (-inf logits) contribute 0, not 0 · inf = NaN.
    pointwise = torch.where(
        p_teacher > 0, p_teacher * (log_p_teacher - log_p_student), p_teacher.new_zeros(())
    )
    per_position = pointwise.sum(-1) * (temperature**2)
    if labels is None:
        return per_position.mean()
    if tuple(labels.shape) != tuple(per_position.shape):
        raise DistillError(
            f"labels {tuple(labels.shape)} must have the logits' shape without the last "
            f"dimension, {tuple(per_position.shape)}; align (shift) labels and logits first."
        )
    return _masked_mean(per_position, labels.to(per_position.device) != ignore_index)


def combine_losses(
    terms: Mapping[str, Tensor],
    *,
    phase: Phase,
    alpha: float,
    gamma: float,
    kd_weight: float,
    centroid_weight: float,
) -> tuple[Tensor, dict[str, float]]:
    """Combine the loss terms into the QUADS objective for one training phase.

    Terms (``terms`` keys; only ``"gt"`` is required):

    * ``L_GT`` = ``terms["gt"]``: cross-entropy of the student on the ground truth;
    * ``L_feat`` = ``terms["feature"]``: :func:`feature_loss` between pooled embeddings;
    * ``L_kd`` = ``terms["kd"]``: :func:`logit_kd_loss` (absent counts as 0);
    * ``L_centroid`` = ``terms["centroid"]``: distance of the weights to their
      codebook centroids (absent counts as 0).

    Combinations:

    * ``L_dis = alpha·L_feat + (1 - alpha)·L_GT + kd_weight·L_kd`` when a feature term
      is given, else ``L_dis = L_GT + kd_weight·L_kd`` (without features there is
      nothing to trade ground truth against, so ``alpha`` is not applied);
    * ``L_quant = centroid_weight·L_centroid + L_GT``;
    * phase ``"distill"``: ``L = L_dis``; ``"quant"``: ``L = L_quant``;
      ``"joint"``: ``L = gamma·L_dis + (1 - gamma)·L_quant``.

    Returns:
        ``(L, log)`` where ``log`` holds the float value of every given term, of
        ``dis`` and/or ``quant`` (those the phase uses) and of ``total``.
    """
    check_loss_weights(
        alpha=alpha, gamma=gamma, kd_weight=kd_weight, centroid_weight=centroid_weight
    )
    if phase not in get_args(Phase):
        raise DistillError(f"unknown phase {phase!r}; use one of 'distill', 'quant', 'joint'.")
    unknown = sorted(set(terms) - set(LOSS_TERMS))
    if unknown:
        raise DistillError(
            f"unknown loss terms {unknown}; combine_losses takes {list(LOSS_TERMS)}."
        )
    if terms.get("gt") is None:
        raise DistillError(
            "combine_losses needs terms['gt'], the cross-entropy on the ground truth: "
            "make sure the batch carries labels."
        )
    present = {name: value for name, value in terms.items() if value is not None}
    log = {name: float(value.detach()) for name, value in present.items()}

    parts: dict[str, Tensor] = {}
    if phase in ("distill", "joint"):
        parts["dis"] = _distill_objective(present, alpha=alpha, kd_weight=kd_weight)
    if phase in ("quant", "joint"):
        parts["quant"] = _quant_objective(present, centroid_weight=centroid_weight)
    if phase == "distill":
        total = parts["dis"]
    elif phase == "quant":
        total = parts["quant"]
    else:
        total = gamma * parts["dis"] + (1.0 - gamma) * parts["quant"]

    log.update({name: float(value.detach()) for name, value in parts.items()})
    log["total"] = float(total.detach())
    return total, log


def _distill_objective(terms: Mapping[str, Tensor], *, alpha: float, kd_weight: float) -> Tensor:
    gt = terms["gt"]
    loss = alpha * terms["feature"] + (1.0 - alpha) * gt if "feature" in terms else gt
    if "kd" in terms:
        loss = loss + kd_weight * terms["kd"]
    return loss


def _quant_objective(terms: Mapping[str, Tensor], *, centroid_weight: float) -> Tensor:
    loss = terms["gt"]
    if "centroid" in terms:
        loss = centroid_weight * terms["centroid"] + loss
    return loss


def _masked_mean(values: Tensor, keep: Tensor) -> Tensor:
    """Mean of ``values`` where ``keep`` is true; 0 (still differentiable) when none is."""
    kept = torch.where(keep, values, values.new_zeros(()))
    return kept.sum() / keep.sum().clamp(min=1).to(values.dtype)


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
