"""Codebook and uniform-grid maths of hf_quads.quant: pure functions on tensors."""

from __future__ import annotations

import pytest
import torch

from hf_quads.quant.dequant import dequantize_weight
from hf_quads.quant.kmeans import (
    assign_clusters,
    kmeans_dequantize,
    kmeans_fit,
    snap_groups,
    update_centroids,
    within_cluster_sse,
)
from hf_quads.quant.layout import GroupLayout
from hf_quads.quant.uniform import (
    lsq_fake_quant,
    lsq_grad_factor,
    uniform_codes,
    uniform_dequantize_groups,
    uniform_init,
    uniform_zero,
)


def _reference_update(w: torch.Tensor, labels: torch.Tensor, codebook: torch.Tensor):
    """The QUADS reference loop: ``for k: c[k] = w[labels == k].mean(); w = c[labels]``."""
    c = codebook.clone()
    for k in range(c.numel()):
        members = w[labels == k]
        if members.numel():
            c[k] = members.mean()
    return c, c[labels]


def _lloyd_bruteforce(x: torch.Tensor, centroids: torch.Tensor, iters: int) -> torch.Tensor:
    c = centroids.double().clone()
    v = x.double()
    for _ in range(iters):
        labels = (v[:, None] - c[None, :]).abs().argmin(dim=1)
        for k in range(c.numel()):
            if (labels == k).any():
                c[k] = v[labels == k].mean()
    return c


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("shape", "group_size", "groups", "padded"),
    [
        ((6, 10), None, 1, False),
        ((6, 10), 5, 12, False),
        ((6, 10), 4, 18, True),  # rows of 10 -> groups of 4, 4, 2 (padded)
        ((6, 10), 64, 6, False),  # group larger than a row: one group per row
        ((4, 3, 5), 5, 12, False),  # conv weight: rows of 15
    ],
)
def test_group_layout_round_trip(shape, group_size, groups, padded) -> None:
    layout = GroupLayout(shape, group_size)
    t = torch.arange(torch.Size(shape).numel(), dtype=torch.float32).reshape(shape)
    g = layout.to_groups(t, fill=-1)
    assert layout.num_groups == groups == g.shape[0]
    assert layout.padded is padded
    assert torch.equal(layout.from_groups(g), t)
    valid = layout.valid()
    if padded:
        assert torch.equal(g[~valid], torch.full(((~valid).sum().item(),), -1.0))
        assert int(valid.sum()) == t.numel()
    else:
        assert valid is None
    # a group never spans two rows
    if group_size is not None:
        rows = layout.from_groups(torch.arange(groups)[:, None].expand_as(g).float())
        per_row = rows.reshape(shape[0], -1)
        assert all(len(set(r.tolist())) == layout.groups_per_row for r in per_row)


def test_group_layout_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="group_size"):
        GroupLayout((4, 4), 0)
    with pytest.raises(ValueError, match="shape"):
        GroupLayout((4, 4)).to_groups(torch.zeros(2, 8))


# --------------------------------------------------------------------------- k-means fit


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_kmeans_fit_is_a_lloyd_fixed_point_with_sorted_centroids(bits: int) -> None:
    x = torch.randn(1, 3000, generator=torch.Generator().manual_seed(bits))
    codebook, labels = kmeans_fit(x, 2**bits)
    assert codebook.shape == (1, 2**bits) and codebook.dtype == torch.float32
    assert labels.shape == x.shape and labels.dtype == torch.uint8
    assert torch.all(codebook[0, 1:] >= codebook[0, :-1])
    assert int(labels.max()) < 2**bits
    # each centroid is the float64 mean of its members
    for k in labels.unique().tolist():
        members = x[labels == k].double()
        assert abs(float(codebook[0, k]) - float(members.mean())) < 1e-6
    # labels are (almost all) nearest-centroid: the fit labels whole histogram bins
    nearest = assign_clusters(x, codebook)
    assert (nearest != labels.long()).float().mean() < 0.01


def test_kmeans_fit_matches_bruteforce_lloyd_quality() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(400, generator=gen) * 0.1, torch.randn(200, generator=gen) + 3])
    codebook, labels = kmeans_fit(x[None], 8, iters=300)
    ours = within_cluster_sse(x[None], labels, codebook)
    quantiles = torch.quantile(x, (torch.arange(8) + 0.5) / 8)
    reference = _lloyd_bruteforce(x, quantiles, 300)
    ref_labels = (x[:, None].double() - reference[None]).abs().argmin(dim=1)
    ref_sse = float(((x.double() - reference[ref_labels]) ** 2).sum())
    assert ours <= ref_sse * 1.01


def test_kmeans_fit_is_deterministic_and_seeded() -> None:
    x = torch.randn(4, 500)
    a = kmeans_fit(x, 16)
    b = kmeans_fit(x.clone(), 16)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    r1 = kmeans_fit(x, 16, init="random", seed=3, iters=0)
    r2 = kmeans_fit(x, 16, init="random", seed=3, iters=0)
    r3 = kmeans_fit(x, 16, init="random", seed=4, iters=0)
    assert torch.equal(r1[0], r2[0])
    assert not torch.equal(r1[0], r3[0])


def test_kmeans_fit_per_group_and_padding() -> None:
    layout = GroupLayout((3, 10), 4)  # groups of 4, 4, 2 per row
    w = torch.randn(3, 10)
    x, valid = layout.to_groups(w, fill=1e6), layout.valid()
    codebook, labels = kmeans_fit(x, 2, valid=valid)
    assert codebook.shape == (9, 2)
    # the padding (1e6) never pulls a centroid
    assert float(codebook.abs().max()) < 100
    for g in range(9):
        vals = x[g][valid[g]]
        assert len(vals) in (2, 4)
        q = codebook[g][labels[g][valid[g]].long()]
        assert q.unique().numel() <= 2
        # two values per cluster at most 2 clusters: with <= 2 distinct centroids error is tiny
        assert torch.all(torch.isin(q, codebook[g]))


def test_kmeans_fit_degenerate_inputs() -> None:
    same = torch.full((1, 50), 0.25)
    codebook, labels = kmeans_fit(same, 4)
    assert torch.equal(kmeans_dequantize(labels, codebook, GroupLayout((1, 50))), same)
    few = torch.tensor([[0.0, 1.0, 2.0]])
    codebook, labels = kmeans_fit(few, 16)
    assert torch.equal(snap_groups(labels, codebook), few)
    empty_cb, empty_labels = kmeans_fit(torch.zeros(2, 0), 4)
    assert empty_cb.shape == (2, 4) and empty_labels.shape == (2, 0)
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans_fit(torch.zeros(1, 4), 0)
    with pytest.raises(ValueError, match="init"):
        kmeans_fit(torch.zeros(1, 4), 2, init="kmeans++")
    with pytest.raises(ValueError, match="groups"):
        kmeans_fit(torch.zeros(4), 2)


# --------------------------------------------------------------------------- assignment, update


def test_assign_clusters_nearest_and_ties_go_up() -> None:
    codebook = torch.tensor([[1.0, -1.0, 0.0]])  # unsorted on purpose
    x = torch.tensor([[-2.0, -0.6, -0.5, 0.2, 0.5, 0.51, 9.0]])
    labels = assign_clusters(x, codebook)
    assert codebook[0][labels[0]].tolist() == [-1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    grouped = assign_clusters(
        torch.tensor([[0.1, 0.9], [0.1, 0.9]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    )
    assert grouped.tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_update_matches_reference_loop(bits: int) -> None:
    gen = torch.Generator().manual_seed(bits)
    w = torch.randn(257, 33, generator=gen) * 0.05
    k = 2**bits
    labels = torch.randint(0, k - 1, w.shape, generator=gen, dtype=torch.uint8)  # k-1 stays empty
    codebook = torch.randn(1, k, generator=gen)
    layout = GroupLayout(tuple(w.shape))
    new = update_centroids(layout.to_groups(w), layout.to_groups(labels), codebook)
    snapped = kmeans_dequantize(labels, new, layout)
    ref_c, ref_w = _reference_update(w.reshape(-1), labels.reshape(-1).long(), codebook[0])
    assert torch.allclose(new[0], ref_c, rtol=0, atol=1e-6)
    assert torch.allclose(snapped.reshape(-1), ref_w, rtol=0, atol=1e-6)
    assert new[0, k - 1] == codebook[0, k - 1]  # empty cluster keeps its centroid


def test_update_accumulates_in_float64() -> None:
    # a float32 running sum of 2**20 values drifts; the float64 mean is exact here
    n = 1 << 20
    w = torch.full((1, n), 0.1) + torch.linspace(-1e-3, 1e-3, n)[None]
    labels = torch.zeros(1, n, dtype=torch.uint8)
    new = update_centroids(w, labels, torch.zeros(1, 2))
    exact = float(w.double().mean())
    assert abs(float(new[0, 0]) - exact) < 1e-8
    drifting = torch.zeros(1).scatter_add_(0, torch.zeros(n, dtype=torch.long), w[0]) / n
    assert abs(float(drifting) - exact) > 1e-6  # what a float32 accumulation would give


def test_update_grouped_with_padding_matches_per_group_means() -> None:
    layout = GroupLayout((5, 7), 3)
    w = torch.randn(5, 7)
    labels = torch.randint(0, 4, (5, 7), dtype=torch.uint8)
    x, lab, valid = layout.to_groups(w, fill=123.0), layout.to_groups(labels), layout.valid()
    codebook = torch.zeros(layout.num_groups, 4)
    new = update_centroids(x, lab, codebook, valid=valid)
    for g in range(layout.num_groups):
        for k in range(4):
            members = x[g][valid[g] & (lab[g] == k)]
            expected = float(members.double().mean()) if members.numel() else 0.0
            assert abs(float(new[g, k]) - expected) < 1e-6


def test_dequantize_is_exact_gather() -> None:
    layout = GroupLayout((4, 6), 3)
    codebook = torch.randn(layout.num_groups, 4)
    labels = torch.randint(0, 4, (4, 6), dtype=torch.uint8)
    dense = dequantize_weight("kmeans", 2, layout, labels, codebook=codebook)
    groups = layout.to_groups(labels).long()
    expected = layout.from_groups(torch.stack([codebook[g][groups[g]] for g in range(len(groups))]))
    assert torch.equal(dense, expected)
    with pytest.raises(ValueError, match="codebook"):
        dequantize_weight("kmeans", 2, layout, labels)
    with pytest.raises(ValueError, match="unknown"):
        dequantize_weight("nf4", 4, layout, labels)


# --------------------------------------------------------------------------- uniform


@pytest.mark.parametrize(
    ("bits", "symmetric"), [(2, True), (4, True), (8, True), (1, False), (3, False)]
)
def test_uniform_codes_round_trip_and_range(bits: int, symmetric: bool) -> None:
    x = torch.randn(6, 40)
    scale, zero = uniform_init(x, bits, symmetric=symmetric)
    if symmetric:
        assert torch.equal(zero, uniform_zero(bits, 6))
    codes = uniform_codes(x, scale, zero, bits)
    assert codes.dtype == torch.uint8 and int(codes.max()) < 2**bits
    q = uniform_dequantize_groups(codes, scale, zero)
    assert all(row.unique().numel() <= 2**bits for row in q)
    # re-quantizing the grid values gives the same codes (the grid is a fixed point)
    assert torch.equal(uniform_codes(q, scale, zero, bits), codes)
    err = (q - x).square().mean()
    assert err < x.square().mean() * (0.6 if bits <= 2 else 0.1)


def test_uniform_init_rejects_one_bit_symmetric() -> None:
    with pytest.raises(ValueError, match="bits >= 2"):
        uniform_init(torch.randn(2, 8), 1, symmetric=True)


def test_uniform_init_handles_zero_groups_and_padding() -> None:
    x = torch.zeros(2, 8)
    x[1] = torch.linspace(-1, 1, 8)
    valid = torch.ones(2, 8, dtype=torch.bool)
    valid[1, -2:] = False
    scale, zero = uniform_init(x, 4, symmetric=False, valid=valid)
    q = uniform_dequantize_groups(uniform_codes(x, scale, zero, 4), scale, zero)
    assert torch.equal(q[0], torch.zeros(8))
    assert torch.isfinite(scale).all()


def test_lsq_gradients_follow_lsq() -> None:
    bits = 3
    x = torch.tensor([[-3.0, -0.26, 0.0, 0.74, 5.0]], requires_grad=True)
    scale = torch.tensor([[0.5]], requires_grad=True)
    zero = torch.tensor([[4.0]], requires_grad=True)
    q = lsq_fake_quant(x, scale, zero, bits, learn_zero=True, grad_factor=1.0)
    # forward: values on the grid, clipped to [(0 - 4) * 0.5, (7 - 4) * 0.5]
    assert q.detach().tolist() == [[-2.0, -0.5, 0.0, 0.5, 1.5]]
    q.sum().backward()
    # STE: gradient 1 inside the range, 0 where clipped
    assert x.grad.tolist() == [[0.0, 1.0, 1.0, 1.0, 0.0]]
    # d/ds: clipped -> (level - z), inside -> round(v) - v
    v = x.detach() / 0.5 + 4.0
    inside = torch.round(v) - v
    expected_s = float(-4.0 + inside[0, 1] + inside[0, 2] + inside[0, 3] + 3.0)
    assert abs(float(scale.grad) - expected_s) < 1e-5
    # d/dz: -s for each clipped value, 0 inside
    assert abs(float(zero.grad) - (-0.5 * 2)) < 1e-6


def test_lsq_gradient_scaling() -> None:
    x = torch.randn(1, 16)
    grads = []
    for factor in (1.0, 0.25):
        scale = torch.tensor([[0.3]], requires_grad=True)
        q = lsq_fake_quant(
            x, scale, torch.full((1, 1), 4.0), 3, learn_zero=False, grad_factor=factor
        )
        q.sum().backward()
        grads.append(float(scale.grad))
    assert abs(grads[1] - 0.25 * grads[0]) < 1e-6
    assert abs(lsq_grad_factor(64, 4, True) - 1 / (64 * 7) ** 0.5) < 1e-12
    assert abs(lsq_grad_factor(64, 4, False) - 1 / (64 * 15) ** 0.5) < 1e-12
