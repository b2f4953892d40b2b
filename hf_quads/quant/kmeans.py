"""1-D k-means codebooks as pure functions on ``(groups, n)`` tensors.

Every function works on one row per quantization group (see
:class:`~hf_quads.quant.layout.GroupLayout`) and takes an optional boolean
``valid`` mask of the same shape for padded layouts (padding is ignored).

* :func:`kmeans_fit` — deterministic 1-D k-means. One pass over the data builds a
  fine histogram per group (up to 2**16 equal-width bins, each holding the count
  and the float64 sum of its values, so the bins are sorted points with exact
  means). Centroids start at the quantiles of the density raised to the power 1/3
  (the MSE-optimal point density of a quantizer, which Lloyd then only polishes),
  or at seeded random ranks. Each Lloyd iteration works on the bins only: a binary
  search of the ``K - 1`` centroid midpoints in the sorted bins, then ``K``
  differences of prefix sums. The final labels come from one table lookup
  (bin -> cluster) and the centroids from an exact float64 mean of their values.
* :func:`assign_clusters` — nearest centroid (a binary search of the midpoints).
* :func:`update_centroids` — mean of the values assigned to each centroid,
  accumulated in float64 with ``scatter_add`` (one pass, no loop over clusters).
* :func:`kmeans_dequantize` — the dense tensor ``codebook[labels]``: the single
  dequantization used by QAT modules (forward and snapping) and packed modules.

Ties go up: a value (bin) exactly on the midpoint of two centroids joins the upper
one. Empty clusters keep their previous centroid.
"""

from __future__ import annotations

from typing import Literal

import torch

from .layout import GroupLayout

__all__ = [
    "assign_clusters",
    "cluster_sizes",
    "kmeans_dequantize",
    "kmeans_fit",
    "snap_groups",
    "update_centroids",
    "within_cluster_sse",
]

_CHUNK = 1 << 18
_MAX_BINS = 1 << 16
_MAX_TOTAL_BINS = 1 << 21


def _check_groups(x: torch.Tensor, valid: torch.Tensor | None) -> None:
    if x.dim() != 2:
        raise ValueError(f"expected a (groups, n) tensor, got shape {tuple(x.shape)}")
    if valid is not None and valid.shape != x.shape:
        raise ValueError(f"valid has shape {tuple(valid.shape)}, expected {tuple(x.shape)}")


def _bin_sums(index: torch.Tensor, values: torch.Tensor, bins: int) -> torch.Tensor:
    """float64 ``sums[i] = values[index == i].sum()`` for 1-D ``index`` (any integer dtype)."""
    sums = torch.zeros(bins, dtype=torch.float64, device=values.device)
    # Chunks keep the int64 / float64 temporaries small (and in cache).
    for start in range(0, index.numel(), _CHUNK):
        stop = start + _CHUNK
        sums.scatter_add_(0, index[start:stop].long(), values[start:stop].to(torch.float64))
    return sums


def _num_bins(groups: int, n: int) -> int:
    bins = min(_MAX_BINS, 4 * n, max(256, _MAX_TOTAL_BINS // max(1, groups)))
    return max(2, bins)


def kmeans_fit(
    x: torch.Tensor,
    n_clusters: int,
    *,
    iters: int = 100,
    valid: torch.Tensor | None = None,
    init: Literal["quantile", "random"] = "quantile",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``n_clusters`` centroids to each row of ``x`` (``(groups, n)``).

    Returns ``(codebook, labels)``: ``codebook`` of shape ``(groups, n_clusters)``
    in ``x``'s floating dtype, ascending per row, each centroid the mean of the
    values labelled with it; ``labels`` of ``x``'s shape (uint8 when
    ``n_clusters <= 256``, else int64). ``init="quantile"`` starts from the
    ``(k + 0.5) / K`` quantiles of the density**(1/3) and uses no randomness;
    ``init="random"`` starts from ``K`` ranks drawn with ``seed``. ``iters`` bounds
    the Lloyd iterations (they stop once the centroids no longer move).
    Deterministic for the same inputs.
    """
    _check_groups(x, valid)
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if init not in ("quantile", "random"):
        raise ValueError(f"init must be 'quantile' or 'random', got {init!r}")
    groups, n = x.shape
    dtype = x.dtype if x.is_floating_point() else torch.float32
    label_dtype = torch.uint8 if n_clusters <= 256 else torch.int64
    device = x.device
    if n == 0:
        empty = torch.zeros(groups, n_clusters, dtype=dtype, device=device)
        return empty, torch.zeros(x.shape, dtype=label_dtype, device=device)

    values = x.detach()
    if values.dtype not in (torch.float32, torch.float64):
        values = values.float()
    bins = _num_bins(groups, n)
    if valid is None:
        lo = values.amin(dim=1, keepdim=True)
        hi = values.amax(dim=1, keepdim=True)
    else:
        lo = values.masked_fill(~valid, float("inf")).amin(dim=1, keepdim=True)
        hi = values.masked_fill(~valid, float("-inf")).amax(dim=1, keepdim=True)
    width = hi - lo
    scale = torch.where(width > 0, bins / width, torch.zeros_like(width))
    # Truncation is floor here: the operand is >= 0.
    index = ((values - lo) * scale).to(torch.int32).clamp_(0, bins - 1)
    if groups > 1:
        offsets = torch.arange(groups, device=device, dtype=torch.int32)[:, None] * bins
        index = index + offsets
    flat_index = index.reshape(-1)
    flat_values = values.reshape(-1)
    if valid is not None:
        keep = valid.reshape(-1)
        flat_index, flat_values = flat_index[keep], flat_values[keep]
    counts = torch.bincount(flat_index, minlength=groups * bins).to(torch.float64)
    counts = counts.view(groups, bins)
    sums = _bin_sums(flat_index, flat_values, groups * bins).view(groups, bins)

    step = torch.where(
        width > 0, width.double() / bins, torch.zeros_like(width, dtype=torch.float64)
    )
    centers = lo.double() + (torch.arange(bins, device=device, dtype=torch.float64) + 0.5) * step
    points = torch.where(counts > 0, sums / counts.clamp_min(1), centers)
    points = torch.cummax(points, dim=1).values  # guard against rounding at bin edges
    cum_counts = torch.zeros(groups, bins + 1, dtype=torch.float64, device=device)
    cum_counts[:, 1:] = counts.cumsum(dim=1)
    cum_sums = torch.zeros_like(cum_counts)
    cum_sums[:, 1:] = sums.cumsum(dim=1)

    k = torch.arange(n_clusters, device=device, dtype=torch.float64)
    if init == "quantile":
        density = counts.pow(1.0 / 3.0).cumsum(dim=1)
        ranks = (k + 0.5) / n_clusters * density[:, -1:]
    else:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        draws = torch.rand(groups, n_clusters, generator=gen, dtype=torch.float64).to(device)
        density = cum_counts[:, 1:]
        ranks, _ = torch.sort(draws * density[:, -1:], dim=1)
    start = torch.searchsorted(density.contiguous(), ranks, right=True).clamp_(max=bins - 1)
    centroids = points.gather(1, start)

    # One gather reads both prefix sums at the K + 1 cluster bounds.
    cum = torch.stack([cum_counts, cum_sums], dim=1)
    bounds = torch.empty(groups, 2, n_clusters + 1, dtype=torch.int64, device=device)
    bounds[:, :, 0] = 0
    bounds[:, :, -1] = bins
    for _ in range(max(0, int(iters))):
        mids = (centroids[:, 1:] + centroids[:, :-1]) * 0.5
        bounds[:, :, 1:-1] = torch.searchsorted(points, mids)[:, None, :]
        stats = cum.gather(2, bounds).diff(dim=2)
        sizes = stats[:, 0]
        new = torch.where(sizes > 0, stats[:, 1] / sizes, centroids)
        if torch.equal(new, centroids):
            break
        centroids = new

    mids = ((centroids[:, 1:] + centroids[:, :-1]) * 0.5).contiguous()
    bin_cluster = torch.searchsorted(mids, points, right=True).to(label_dtype).reshape(-1)
    labels = bin_cluster.index_select(0, index.reshape(-1)).view(groups, n)
    codebook = update_centroids(x, labels, centroids.to(dtype), valid=valid)
    return codebook, labels


def assign_clusters(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index (int64, ``x``'s shape) of the nearest centroid of each value's group.

    ``codebook`` is ``(groups, K)``, in any order; ties go to the larger centroid.
    """
    _check_groups(x, None)
    if codebook.dim() != 2 or codebook.shape[0] != x.shape[0]:
        raise ValueError(
            f"codebook must be (groups={x.shape[0]}, K), got shape {tuple(codebook.shape)}"
        )
    values = x.detach()
    if values.dtype in (torch.float16, torch.bfloat16):
        values = values.float()
    ordered, perm = torch.sort(codebook.detach(), dim=1, stable=True)
    mids = ((ordered[:, 1:] + ordered[:, :-1]) / 2).to(values.dtype).contiguous()
    index = torch.searchsorted(mids, values.contiguous(), right=True)
    return perm.gather(1, index)


def _flat_index(
    labels: torch.Tensor, groups: int, k: int, valid: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Bin of each (kept) value, ``group * k + label``, and the kept-value mask."""
    index = labels.reshape(-1)
    if groups > 1:
        offsets = torch.arange(groups, device=labels.device, dtype=torch.int64) * k
        index = index.long() + offsets.repeat_interleave(labels.shape[1])
    keep = None if valid is None else valid.reshape(-1)
    return (index if keep is None else index[keep]), keep


def cluster_sizes(
    labels: torch.Tensor, n_clusters: int, *, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """``(groups, n_clusters)`` int64 counts of each label per group (``labels``: ``(groups, n)``)."""
    groups = labels.shape[0]
    index, _ = _flat_index(labels, groups, n_clusters, valid)
    return torch.bincount(index, minlength=groups * n_clusters).view(groups, n_clusters)


def update_centroids(
    x: torch.Tensor,
    labels: torch.Tensor,
    codebook: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    sizes: torch.Tensor | None = None,
) -> torch.Tensor:
    """New ``(groups, K)`` codebook: each centroid the mean of the values labelled with it.

    Sums are accumulated in float64 (``scatter_add``, one pass), counts with
    ``bincount`` unless ``sizes`` (:func:`cluster_sizes` of the same labels) is
    given; a centroid without values keeps its value from ``codebook``. ``labels``
    may be uint8 or int64. Returns a tensor of ``codebook``'s dtype (no gradient).
    """
    _check_groups(x, valid)
    groups, k = codebook.shape
    if labels.shape != x.shape or groups != x.shape[0]:
        raise ValueError(
            f"labels {tuple(labels.shape)} and codebook {tuple(codebook.shape)} "
            f"do not match values {tuple(x.shape)}"
        )
    index, keep = _flat_index(labels, groups, k, valid)
    values = x.detach().reshape(-1)
    if keep is not None:
        values = values[keep]
    sums = _bin_sums(index, values, groups * k)
    if sizes is None:
        sizes = torch.bincount(index, minlength=groups * k)
    sizes = sizes.reshape(-1)
    old = codebook.detach().reshape(-1).to(torch.float64)
    new = torch.where(sizes > 0, sums / sizes.clamp_min(1), old)
    return new.to(codebook.dtype).reshape(groups, k)


def snap_groups(labels: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``codebook[g, labels[g, i]]`` for a ``(groups, n)`` label tensor (exact copies)."""
    if codebook.shape[0] == 1:
        return codebook[0].index_select(0, labels.reshape(-1).int()).reshape(labels.shape)
    return codebook.gather(1, labels.long())


def kmeans_dequantize(
    labels: torch.Tensor,
    codebook: torch.Tensor,
    layout: GroupLayout,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dense tensor of ``layout.shape``: each weight replaced by its centroid.

    ``labels`` has ``layout.shape`` (uint8 or int64), ``codebook`` is
    ``(layout.num_groups, K)``. The single dequantization shared by QAT modules and
    packed modules, so both give bit-identical weights. With ``out`` (a contiguous
    tensor of ``layout.shape`` and the codebook's dtype) the result is written there.
    """
    if codebook.shape[0] == 1:
        index = labels.reshape(-1).int()
        if out is not None:
            torch.index_select(codebook[0], 0, index, out=out.view(-1))
            return out
        return codebook[0].index_select(0, index).reshape(layout.shape)
    dense = layout.from_groups(snap_groups(layout.to_groups(labels), codebook))
    if out is not None:
        return out.copy_(dense)
    return dense


def within_cluster_sse(
    x: torch.Tensor,
    labels: torch.Tensor,
    codebook: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
) -> float:
    """Total squared distance of the values to their centroids (float64 sum)."""
    _check_groups(x, valid)
    diff = x.detach().to(torch.float64) - snap_groups(labels, codebook).to(torch.float64)
    if valid is not None:
        diff = diff[valid]
    return float((diff * diff).sum())
