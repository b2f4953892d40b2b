"""The one dequantization function: codes + codebook or scales -> dense weight.

QAT modules (evaluation forward, snapping) and packed modules both call
:func:`dequantize_weight`, so a packed checkpoint gives the same weight values,
bit for bit, as the QAT model it came from.
"""

from __future__ import annotations

import torch

from .kmeans import kmeans_dequantize
from .layout import GroupLayout
from .uniform import uniform_dequantize_groups, uniform_zero

__all__ = ["dequantize_weight"]


def dequantize_weight(
    method: str,
    bits: int,
    layout: GroupLayout,
    codes: torch.Tensor,
    *,
    codebook: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    zero_point: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dense weight of ``layout.shape`` from uint8 ``codes`` of the same shape.

    ``method="kmeans"``: ``codebook[group, code]`` (dtype of ``codebook``).
    ``method="uniform"``: ``(code - zero_point) * scale`` per group (dtype of
    ``scale``); ``zero_point=None`` means symmetric (``2**(bits - 1)``).
    """
    if method == "kmeans":
        if codebook is None:
            raise ValueError("k-means dequantization needs a codebook")
        return kmeans_dequantize(codes, codebook, layout)
    if method == "uniform":
        if scale is None:
            raise ValueError("uniform dequantization needs a scale")
        zero = zero_point
        if zero is None:
            zero = uniform_zero(bits, layout.num_groups, device=scale.device, dtype=scale.dtype)
        groups = uniform_dequantize_groups(layout.to_groups(codes), scale, zero)
        return layout.from_groups(groups)
    raise ValueError(f"unknown quantization method {method!r}")
