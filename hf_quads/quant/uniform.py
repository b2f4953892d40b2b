"""Uniform (affine) quantization with LSQ learnable scales, as pure functions.

Codes are unsigned, ``u in [0, 2**bits - 1]``, and a weight is ``(u - z) * s``
with one scale ``s`` and one zero point ``z`` per group (``(groups, 1)`` tensors):

* symmetric: ``z = 2**(bits - 1)`` is fixed (levels ``-2**(b-1) s .. (2**(b-1) - 1) s``),
  only ``s`` is learned; needs ``bits >= 2``;
* asymmetric: ``z`` is learned too (a real number, LSQ+ style).

The exact path (:func:`uniform_codes` then :func:`uniform_dequantize_groups`) is
what evaluation and packed modules use. :func:`lsq_fake_quant` is the training
forward: round with a straight-through estimator, clamp, and LSQ's gradient
scaling ``g = 1 / sqrt(n_per_group * Q_P)`` on ``s`` (and ``z``).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "MIN_SCALE",
    "lsq_fake_quant",
    "lsq_grad_factor",
    "uniform_codes",
    "uniform_dequantize_groups",
    "uniform_init",
    "uniform_qmax",
    "uniform_zero",
]

#: Smallest scale used; a group of zeros quantizes to zeros with it.
MIN_SCALE = 1e-8
_CLIP_RATIOS = torch.linspace(0.3, 1.0, 29, dtype=torch.float64).tolist()


def uniform_qmax(bits: int) -> int:
    """Largest code: ``2**bits - 1``."""
    return (1 << bits) - 1


def _positive_levels(bits: int, symmetric: bool) -> int:
    return (1 << (bits - 1)) - 1 if symmetric else uniform_qmax(bits)


def uniform_zero(bits: int, groups: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """The fixed zero point of symmetric quantization, ``2**(bits - 1)``, as ``(groups, 1)``."""
    return torch.full((groups, 1), float(1 << (bits - 1)), device=device, dtype=dtype)


def uniform_codes(
    x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int
) -> torch.Tensor:
    """uint8 codes ``clamp(round(x / s + z), 0, 2**bits - 1)`` of ``(groups, n)`` values."""
    s = scale.detach().clamp_min(MIN_SCALE)
    v = torch.round(x.detach().to(s.dtype) / s + zero.detach().to(s.dtype))
    return v.clamp_(0, uniform_qmax(bits)).to(torch.uint8)


def uniform_dequantize_groups(
    codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor
) -> torch.Tensor:
    """``(codes - z) * s`` for ``(groups, n)`` codes; dtype of ``scale``."""
    s = scale.detach().clamp_min(MIN_SCALE)
    return (codes.to(s.dtype) - zero.detach().to(s.dtype)) * s


def uniform_init(
    x: torch.Tensor,
    bits: int,
    *,
    symmetric: bool = True,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial ``(scale, zero)`` per row of ``x`` (``(groups, n)``), each ``(groups, 1)`` float32.

    The clipping range (absmax, or min/max when asymmetric) is shrunk by the ratio
    from a fixed grid in ``[0.3, 1]`` that gives the smallest squared error per group.
    """
    if symmetric and bits < 2:
        raise ValueError("symmetric uniform quantization needs bits >= 2")
    values = x.detach().float()
    groups = values.shape[0]
    if symmetric:
        mag = values.abs() if valid is None else values.abs().masked_fill(~valid, 0.0)
        hi = mag.amax(dim=1, keepdim=True)
        lo = None
    else:
        lo_in = values if valid is None else values.masked_fill(~valid, float("inf"))
        hi_in = values if valid is None else values.masked_fill(~valid, float("-inf"))
        lo = lo_in.amin(dim=1, keepdim=True).clamp(max=0.0)
        hi = hi_in.amax(dim=1, keepdim=True).clamp(min=0.0)
    levels = _positive_levels(bits, symmetric)
    span = hi if lo is None else hi - lo
    ratios = torch.tensor(_CLIP_RATIOS, dtype=values.dtype, device=values.device)
    # Candidate (scale, zero) per ratio, tried in blocks of ratios at once.
    scales = (span[None] * ratios[:, None, None] / levels).clamp_min(MIN_SCALE)
    if lo is None:
        zeros = uniform_zero(bits, groups, device=values.device).expand_as(scales)
    else:
        zeros = -lo[None] * ratios[:, None, None] / scales
    errors = []
    block = max(1, (1 << 22) // max(1, values.numel()))
    for start in range(0, len(_CLIP_RATIOS), block):
        s, z = scales[start : start + block], zeros[start : start + block]
        q = uniform_dequantize_groups(uniform_codes(values[None], s, z, bits), s, z)
        err = (q - values[None]).double().square()
        if valid is not None:
            err = err.masked_fill(~valid[None], 0.0)
        errors.append(err.sum(dim=2, keepdim=True))
    best = torch.cat(errors).argmin(dim=0, keepdim=True)  # first minimum: the smallest ratio
    best_scale = scales.gather(0, best)[0]
    best_zero = zeros.gather(0, best)[0]
    return best_scale, best_zero


def lsq_grad_factor(n_per_group: int, bits: int, symmetric: bool) -> float:
    """LSQ's gradient scale ``1 / sqrt(n_per_group * Q_P)``."""
    return 1.0 / math.sqrt(max(1, n_per_group) * max(1, _positive_levels(bits, symmetric)))


def _scale_grad(t: torch.Tensor, factor: float) -> torch.Tensor:
    # Same value as t; gradient multiplied by factor.
    scaled = t * factor
    return (t - scaled).detach() + scaled


def lsq_fake_quant(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor,
    bits: int,
    *,
    learn_zero: bool,
    grad_factor: float = 1.0,
) -> torch.Tensor:
    """Differentiable fake quantization of ``(groups, n)`` values (LSQ / LSQ+).

    Gradients: to ``x`` straight through inside the clipping range (zero outside);
    to ``scale`` ``round(v) - v`` inside and the clipped level outside; to ``zero``
    (when ``learn_zero``) ``-s`` outside the range only; both scaled by ``grad_factor``.
    """
    s = _scale_grad(scale.clamp_min(MIN_SCALE), grad_factor)
    z = _scale_grad(zero, grad_factor) if learn_zero else zero.detach()
    v = x / s + z
    v = v + (torch.round(v) - v).detach()
    return (v.clamp(0, uniform_qmax(bits)) - z) * s
