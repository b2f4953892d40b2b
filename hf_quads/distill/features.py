"""Encoder features for distillation: pooling over time, width matching, projection.

QUADS matches *pooled* encoder embeddings: the encoder's last hidden states
``(B, T, D)`` are averaged over time into ``(B, D)`` for the teacher and the
student, and the teacher's wider vector is brought down to the student's width.

* :func:`pool_hidden_states` — mean / max / first-frame pooling with an optional
  frame mask; :func:`frame_attention_mask` turns a sample-level mask (wav2vec2,
  HuBERT) or a log-mel-level mask (Whisper) into one over encoder frames.
* :func:`match_dims` — parameter-free reduction of the teacher's width to the
  student's (adaptive average over channels, or the reference code's MaxPool1d).
* :class:`FeatureProjector` — a learned linear map from the student's width to the
  teacher's, trained with the student and never saved into it.
* :func:`hidden_size_of` — the width of a model's encoder output.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses import DistillError

__all__ = [
    "FeatureProjector",
    "MatchMethod",
    "Pooling",
    "frame_attention_mask",
    "hidden_size_of",
    "match_dims",
    "pool_hidden_states",
    "quads_maxpool_dilation",
]

Pooling = Literal["mean", "max", "first"]
MatchMethod = Literal["avg", "quads_maxpool"]

_QUADS_KERNEL = 3
_QUADS_STRIDE = 2


def pool_hidden_states(
    hidden: Tensor, attention_mask: Tensor | None = None, pooling: Pooling = "mean"
) -> Tensor:
    """Pool hidden states ``(B, T, D)`` over time into ``(B, D)``.

    Args:
        hidden: encoder output, e.g. ``outputs.last_hidden_state``.
        attention_mask: ``(B, T)``, nonzero for real frames. It must be over the
            encoder's *frames*: for wav2vec2/HuBERT (mask over samples) or Whisper
            (mask over log-mel frames) convert it with :func:`frame_attention_mask`.
            ``None`` pools over every frame (what the QUADS reference does with
            Whisper's fixed 30 s window).
        pooling: ``"mean"`` (masked average), ``"max"`` (masked maximum per channel)
            or ``"first"`` (frame 0, e.g. a CLS position; the mask is not used).
    """
    if pooling not in get_args(Pooling):
        raise DistillError(f"unknown pooling {pooling!r}; use one of 'mean', 'max', 'first'.")
    if hidden.dim() != 3:
        raise DistillError(
            f"hidden states must be (batch, frames, dim); got {tuple(hidden.shape)}."
        )
    if pooling == "first":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(dim=1) if pooling == "mean" else hidden.amax(dim=1)
    keep = _check_frame_mask(attention_mask, hidden).unsqueeze(-1)
    if pooling == "max":
        lowest = torch.finfo(hidden.dtype).min
        return hidden.masked_fill(~keep, lowest).amax(dim=1)
    total = hidden.masked_fill(~keep, 0).sum(dim=1)
    count = keep.sum(dim=1).clamp(min=1).to(hidden.dtype)
    return total / count


def frame_attention_mask(
    model: nn.Module | None, num_frames: int, attention_mask: Tensor
) -> Tensor:
    """Return ``attention_mask`` resampled onto ``num_frames`` encoder frames, as bool ``(B, T)``.

    * a mask already ``num_frames`` long is returned as is;
    * models with ``_get_feature_vector_attention_mask`` (wav2vec2, HuBERT, WavLM,
      Data2VecAudio: the mask is over raw samples) use it, so the convolutional
      feature encoder's exact lengths are honoured;
    * otherwise a mask ``k·num_frames`` long (Whisper: log-mel frames, k = 2) keeps
      a frame when any of its ``k`` inputs is real.
    """
    if attention_mask.dim() != 2:
        raise DistillError(
            f"attention_mask must be (batch, length); got {tuple(attention_mask.shape)}."
        )
    length = attention_mask.shape[1]
    if length == num_frames:
        return attention_mask != 0
    reduce = getattr(model, "_get_feature_vector_attention_mask", None)
    if callable(reduce):
        return reduce(num_frames, attention_mask) != 0
    if length % num_frames == 0:
        stride = length // num_frames
        return (attention_mask != 0).reshape(-1, num_frames, stride).any(dim=-1)
    raise DistillError(
        f"cannot map an attention mask of length {length} onto {num_frames} encoder frames "
        f"for {type(model).__name__}; pass a mask over the encoder's frames."
    )


def quads_maxpool_dilation(teacher_dim: int, dim: int) -> int:
    """Dilation for which ``MaxPool1d(kernel_size=3, stride=2, dilation=d)`` maps ``teacher_dim`` to ``dim``.

    The QUADS reference code uses dilation 128 to map Whisper-large's 1280 channels
    to Whisper-base's 512; this solves the same output-length equation
    ``floor((teacher_dim - 2d - 1) / 2) + 1 == dim`` for other widths.
    """
    dilation = (teacher_dim - _QUADS_STRIDE * dim + 1) // 2
    if dilation < 1 or _maxpool_out(teacher_dim, dilation) != dim:
        raise DistillError(
            f"MaxPool1d(kernel_size=3, stride=2) cannot map {teacher_dim} channels to {dim} "
            "(it needs teacher_dim >= 2·dim + 1); use match_dims(..., method='avg') "
            "or a FeatureProjector."
        )
    return dilation


def match_dims(teacher: Tensor, dim: int, method: MatchMethod = "avg") -> Tensor:
    """Reduce the teacher's features ``(..., Dt)`` to ``(..., dim)`` without parameters.

    Args:
        teacher: pooled ``(B, Dt)`` (or per-frame ``(B, T, Dt)``) teacher features.
        dim: the student's width, at most ``Dt``.
        method: ``"avg"`` — adaptive average pooling over channels (any ``dim <= Dt``);
            ``"quads_maxpool"`` — the QUADS reference's ``MaxPool1d(kernel_size=3,
            stride=2, dilation=d)`` over channels, ``d`` from
            :func:`quads_maxpool_dilation` (128 for 1280 -> 512).
    """
    if method not in get_args(MatchMethod):
        raise DistillError(f"unknown method {method!r}; use 'avg' or 'quads_maxpool'.")
    teacher_dim = teacher.shape[-1]
    if dim == teacher_dim:
        return teacher
    if not 0 < dim < teacher_dim:
        raise DistillError(
            f"match_dims only narrows features: cannot map {teacher_dim} teacher channels "
            f"to {dim}; use a FeatureProjector from the student's width to the teacher's."
        )
    flat = teacher.reshape(-1, 1, teacher_dim)
    if method == "avg":
        out = F.adaptive_avg_pool1d(flat, dim)
    else:
        dilation = quads_maxpool_dilation(teacher_dim, dim)
        out = F.max_pool1d(flat, kernel_size=_QUADS_KERNEL, stride=_QUADS_STRIDE, dilation=dilation)
    return out.reshape(*teacher.shape[:-1], dim)


class FeatureProjector(nn.Module):
    """Learned linear map from the student's feature width to the teacher's.

    The trainer creates one when the widths differ, optimises its parameters with
    the student's and keeps it out of the saved model. With equal widths it is the
    identity and has no parameters.
    """

    def __init__(self, student_dim: int, teacher_dim: int, bias: bool = True) -> None:
        super().__init__()
        if student_dim < 1 or teacher_dim < 1:
            raise DistillError(
                f"feature widths must be positive; got student {student_dim}, teacher {teacher_dim}."
            )
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim
        self.proj: nn.Module = (
            nn.Identity()
            if student_dim == teacher_dim
            else nn.Linear(student_dim, teacher_dim, bias=bias)
        )

    def forward(self, features: Tensor) -> Tensor:
        """Map ``(..., student_dim)`` to ``(..., teacher_dim)``."""
        if features.shape[-1] != self.student_dim:
            raise DistillError(
                f"FeatureProjector expects {self.student_dim} channels; got {features.shape[-1]}."
            )
        return self.proj(features)

    def extra_repr(self) -> str:
        return f"student_dim={self.student_dim}, teacher_dim={self.teacher_dim}"


def hidden_size_of(model: nn.Module | Any) -> int:
    """Width of the encoder output used for features, from a model or its config.

    Composite audio-language configs (Qwen2-Audio) use the audio encoder's width
    (``audio_config``); otherwise ``d_model`` (Whisper) or ``hidden_size``
    (wav2vec2, HuBERT, ...).
    """
    config = getattr(model, "config", model)
    sub = getattr(config, "audio_config", None)
    if sub is not None:
        config = sub
    for name in ("d_model", "hidden_size"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise DistillError(
        f"cannot tell the feature width of {type(model).__name__}: its config has no "
        "d_model, hidden_size or audio_config; pass the width explicitly."
    )


def _check_frame_mask(attention_mask: Tensor, hidden: Tensor) -> Tensor:
    if tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
        raise DistillError(
            f"attention_mask {tuple(attention_mask.shape)} does not match the hidden states' "
            f"(batch, frames) {tuple(hidden.shape[:2])}; for a mask over audio samples or "
            "log-mel frames use frame_attention_mask(model, num_frames, attention_mask)."
        )
    return attention_mask.to(hidden.device) != 0


def _maxpool_out(length: int, dilation: int) -> int:
    return (length - dilation * (_QUADS_KERNEL - 1) - 1) // _QUADS_STRIDE + 1
