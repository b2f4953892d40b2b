"""QuantSpec, module selection, QAT modules and the quantize_/refit_/update_ API."""

from __future__ import annotations

import copy
import os
import socket

import pytest
import torch
from tiny_models import hubert_classifier, wav2vec2_classifier, whisper_classifier
from torch import nn

from hf_quads.errors import HfQuadsError
from hf_quads.quant import (
    QATModule,
    QuantizationError,
    QuantSpec,
    centroid_loss,
    dequantize,
    packed_modules,
    qat_modules,
    quantize_,
    refit_,
    select_modules,
    set_quantization_enabled,
    update_,
)
from hf_quads.quant.modules import PackedModule


def tiny_whisper(seed: int = 0) -> nn.Module:
    return whisper_classifier(d_model=64, seed=seed).eval()


def tiny_wav2vec2_like(kind: str) -> nn.Module:
    return (wav2vec2_classifier if kind == "wav2vec2" else hubert_classifier)().eval()


FEATURES = torch.randn(2, 80, 300, generator=torch.Generator().manual_seed(123))


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 8)
        self.tied = nn.Linear(8, 10, bias=False)
        self.tied.weight = self.emb.weight
        self.classifier = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.emb(ids).transpose(1, 2)).transpose(1, 2)
        return self.classifier(torch.relu(self.fc(h))).mean(1)


# --------------------------------------------------------------------------- QuantSpec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "gptq"}, "method must be one of kmeans, uniform, none"),
        ({"bits": 0}, "bits must be an integer from 1 to 8"),
        ({"bits": 9}, "bits must be an integer from 1 to 8"),
        ({"bits": True}, "bits must be an integer"),
        ({"module_bits": {"fc": 12}}, r"module_bits\['fc'\] must be"),
        ({"module_bits": {"(": 4}}, "invalid regular expression"),
        ({"include": "fc"}, "include must be a list"),
        ({"exclude": ["[a"]}, "invalid regular expression"),
        ({"group_size": 0}, "group_size must be a positive integer or None"),
        ({"kmeans_iters": -1}, "kmeans_iters must be >= 0"),
        ({"kmeans_init": "pp"}, "kmeans_init"),
        ({"granularity": "row"}, "granularity must be"),
        ({"snap": "yes"}, "snap must be True or False"),
        ({"method": "uniform", "granularity": "group"}, "needs group_size"),
        ({"method": "uniform", "group_size": 32}, "only applies with granularity='group'"),
        ({"method": "uniform", "bits": 1}, "needs at least 2 bits"),
        ({"method": "uniform", "module_bits": {"fc": 1}}, r"module_bits\['fc'\]=1"),
    ],
)
def test_spec_validation_says_what_to_change(kwargs, message) -> None:
    with pytest.raises(QuantizationError, match=message) as err:
        QuantSpec(**kwargs)
    assert isinstance(err.value, HfQuadsError) and isinstance(err.value, ValueError)


def test_spec_round_trip_and_queries() -> None:
    spec = QuantSpec(
        method="uniform",
        bits=3,
        module_bits={r"fc2$": 8, "fc": 4},
        exclude=["conv1"],
        granularity="group",
        group_size=16,
        symmetric=False,
    )
    again = QuantSpec.from_dict(spec.to_dict())
    assert again == spec
    assert spec.bits_for("layers.0.fc2") == 8 and spec.bits_for("layers.0.fc1") == 4
    assert spec.bits_for("layers.0.k_proj") == 3
    assert QuantSpec(method="uniform", bits=1, symmetric=False).bits == 1
    assert not QuantSpec(method="none").enabled
    with pytest.raises(QuantizationError, match="unknown QuantSpec field"):
        QuantSpec.from_dict({"bits": 4, "nbits": 4})


# --------------------------------------------------------------------------- selection


def test_default_selection_on_whisper() -> None:
    model = tiny_whisper()
    names = [t.name for t in select_modules(model, QuantSpec())]
    expected = [n for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv1d, nn.Conv2d)]
    assert names == expected
    assert "classifier" in names and "projector" in names and "encoder.conv1" in names

    no_head = [t.name for t in select_modules(model, QuantSpec(quantize_head=False))]
    assert "classifier" not in no_head and "projector" not in no_head
    assert len(no_head) == len(names) - 2

    only_fc = select_modules(model, QuantSpec(include=[r"\.fc\d$"], exclude=[r"layers\.1\."]))
    assert [t.name for t in only_fc] == ["encoder.layers.0.fc1", "encoder.layers.0.fc2"]

    mixed = {
        t.name: t.bits for t in select_modules(model, QuantSpec(bits=4, module_bits={"fc": 8}))
    }
    assert mixed["encoder.layers.0.fc1"] == 8 and mixed["encoder.layers.0.self_attn.k_proj"] == 4
    assert select_modules(model, QuantSpec(method="none")) == []


def test_selection_skips_tied_custom_and_embeddings_unless_asked() -> None:
    toy = Toy()
    assert [t.name for t in select_modules(toy, QuantSpec())] == ["conv", "fc", "classifier"]
    with_emb = [t.name for t in select_modules(toy, QuantSpec(quantize_embeddings=True))]
    assert "emb" not in with_emb and "tied" not in with_emb  # shared weight: left alone
    toy.tied = nn.Linear(8, 10, bias=False)
    with_emb = [t.name for t in select_modules(toy, QuantSpec(quantize_embeddings=True))]
    assert with_emb[0] == "emb" and "tied" in with_emb
    assert "emb" not in [t.name for t in select_modules(toy, QuantSpec(exclude=["^emb$"]))]

    class Shifted(nn.Linear):  # a subclass with its own forward is never swapped
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 1

    toy.fc = Shifted(8, 8)
    assert "fc" not in [t.name for t in select_modules(toy, QuantSpec())]
    whisper = [t.name for t in select_modules(tiny_whisper(), QuantSpec(quantize_embeddings=True))]
    assert "encoder.embed_positions" in whisper  # a plain nn.Embedding (frozen sinusoids)


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_weight_normed_positional_conv_is_skipped(kind: str) -> None:
    model = tiny_wav2vec2_like(kind)
    names = [t.name for t in select_modules(model, QuantSpec())]
    assert not any("pos_conv" in n for n in names)
    assert any("feature_extractor.conv_layers.0.conv" in n for n in names)
    quantize_(model, QuantSpec(bits=4), step="prepare")
    set_quantization_enabled(model, True)
    model.train()
    out = model(torch.randn(2, 1600), labels=torch.tensor([0, 3]))
    (out.loss + centroid_loss(model)).backward()
    update_(model)
    assert all(m.weight.grad is not None for _, m in qat_modules(model))


# --------------------------------------------------------------------------- QAT modules


def test_prepare_keeps_keys_and_types_and_starts_disabled() -> None:
    model = tiny_whisper()
    with torch.no_grad():
        before = model(input_features=FEATURES).logits
    keys_before = set(model.state_dict())
    quantize_(model, QuantSpec(bits=3), step="prepare")
    fc1 = model.encoder.layers[0].fc1
    assert isinstance(fc1, nn.Linear) and isinstance(fc1, QATModule)
    assert isinstance(model.encoder.conv1, nn.Conv1d)
    state = model.state_dict()
    assert keys_before <= set(state)
    extra = set(state) - keys_before
    assert extra == {f"{n}.{b}" for n, _ in qat_modules(model) for b in ("codebook", "labels")}
    assert state["encoder.layers.0.fc1.labels"].dtype == torch.uint8
    assert state["encoder.layers.0.fc1.labels"].shape == fc1.weight.shape
    assert state["encoder.layers.0.fc1.codebook"].shape == (1, 8)
    assert state["encoder.layers.0.fc1.codebook"].dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(model(input_features=FEATURES).logits, before)  # disabled
    set_quantization_enabled(model, True)
    with torch.no_grad():
        quantized = model(input_features=FEATURES).logits
    assert not torch.equal(quantized, before)
    # prepare again with the same spec: nothing changes; another spec: refused
    assert quantize_(model, QuantSpec(bits=3), step="prepare") is model
    with pytest.raises(QuantizationError, match="already prepared"):
        quantize_(model, QuantSpec(bits=4), step="prepare")


def test_eval_forward_uses_exact_codebook_values() -> None:
    model = tiny_whisper()
    quantize_(model, QuantSpec(bits=4, snap=False), step="prepare")
    set_quantization_enabled(model, True)
    fc1 = model.encoder.layers[0].fc1
    with torch.no_grad():
        fc1.weight.add_(0.01)  # latent weight off the grid
    x = torch.randn(3, 64)
    exact = fc1.codebook[0][fc1.labels.long()]
    assert torch.equal(fc1(x), torch.nn.functional.linear(x, exact, fc1.bias))
    fc1.train()
    y = fc1(x)  # STE in training mode: same values, gradient to the latent weight
    assert torch.equal(y, torch.nn.functional.linear(x, exact, fc1.bias))
    y.sum().backward()
    assert fc1.weight.grad is not None and fc1.weight.grad.abs().sum() > 0


def test_uniform_prepare_creates_trainable_scales_with_lsq_gradients() -> None:
    model = tiny_whisper()
    quantize_(model, QuantSpec(method="uniform", bits=4, symmetric=False), step="prepare")
    names = {n for n, _ in model.named_parameters()}
    assert "encoder.layers.0.fc1.scale" in names and "encoder.layers.0.fc1.zero_point" in names
    fc1 = model.encoder.layers[0].fc1
    assert fc1.scale.shape == (256, 1)  # per output channel
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    set_quantization_enabled(model, True)
    model.train()
    loss = model(input_features=FEATURES, labels=torch.tensor([1, 2])).loss
    loss.backward()
    assert fc1.scale.grad is not None and fc1.scale.grad.abs().sum() > 0
    assert fc1.weight.grad is not None and fc1.weight.grad.abs().sum() > 0
    optimizer.step()
    update_(model)
    model.eval()
    codes = fc1.hfq_codes()
    assert codes.dtype == torch.uint8 and int(codes.max()) <= 15
    with torch.no_grad():
        expected = (codes.float() - fc1.zero_point) * fc1.scale
        assert torch.equal(fc1.hfq_weight(), expected)


def test_uniform_symmetric_tensor_granularity_and_frozen_scales() -> None:
    model = tiny_whisper()
    spec = QuantSpec(method="uniform", bits=8, granularity="tensor", learnable_scale=False)
    quantize_(model, spec, step="prepare")
    fc1 = model.encoder.layers[0].fc1
    assert fc1.scale.shape == (1, 1) and "scale" in fc1._buffers
    assert not hasattr(fc1, "zero_point")
    set_quantization_enabled(model, True)
    scale = float(fc1.scale)
    with torch.no_grad():
        q, w = fc1.hfq_weight(), fc1.weight
    inside = (w >= -128 * scale) & (w <= 127 * scale)  # not clipped
    assert inside.float().mean() > 0.99
    assert (q - w)[inside].abs().max() <= scale / 2 + 1e-7
    assert q.unique().numel() <= 256


def _reference_step(weight: torch.Tensor, labels: torch.Tensor, codebook: torch.Tensor):
    c = codebook.clone()
    for k in range(c.numel()):
        members = weight[labels == k]
        if members.numel():
            c[k] = members.mean()
    return c, c[labels]


def test_update_matches_reference_after_an_optimizer_step() -> None:
    model = tiny_whisper()
    quantize_(model, QuantSpec(bits=4), step="prepare")
    set_quantization_enabled(model, True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    (model(input_features=FEATURES, labels=torch.tensor([1, 2])).loss).backward()
    optimizer.step()
    expected = {}
    for name, m in qat_modules(model):
        w = m.weight.detach().reshape(-1).clone()
        expected[name] = _reference_step(w, m.labels.reshape(-1).long(), m.codebook[0])
    update_(model)
    for name, m in qat_modules(model):
        ref_c, ref_w = expected[name]
        assert torch.allclose(m.codebook[0], ref_c, rtol=0, atol=1e-6), name
        assert torch.allclose(m.weight.detach().reshape(-1), ref_w, rtol=0, atol=1e-6), name
        assert m.weight.unique().numel() <= 16


def test_update_without_snap_and_with_reassign() -> None:
    model = tiny_whisper()
    quantize_(model, QuantSpec(bits=2, snap=False, reassign=True), step="prepare")
    fc1 = model.encoder.layers[0].fc1
    with torch.no_grad():
        fc1.weight.mul_(1.5)
    latent = fc1.weight.detach().clone()
    update_(model)
    assert torch.equal(fc1.weight.detach(), latent)  # no snap
    # reassigned: every weight sits at its nearest centroid
    c = fc1.codebook[0]
    nearest = (latent.reshape(-1, 1) - c[None]).abs().argmin(dim=1)
    chosen = (latent.reshape(-1) - c[fc1.labels.reshape(-1).long()]).abs()
    best = (latent.reshape(-1) - c[nearest]).abs()
    assert torch.allclose(chosen, best, atol=1e-7)


def test_refit_is_deterministic_and_ranks_agree() -> None:
    a = tiny_whisper()
    quantize_(a, QuantSpec(bits=3, seed=7), step="prepare")
    b = tiny_whisper()  # the other "rank": same seed, same initial weights
    quantize_(b, QuantSpec(bits=3, seed=7), step="prepare")
    for (_, ma), (_, mb) in zip(qat_modules(a), qat_modules(b), strict=True):
        assert torch.equal(ma.codebook, mb.codebook) and torch.equal(ma.labels, mb.labels)
    twin = copy.deepcopy(a)
    refit_(a)
    refit_(twin)
    state = twin.state_dict()
    for key, value in a.state_dict().items():
        assert torch.equal(value, state[key]), key
    r1, r2 = tiny_whisper(), tiny_whisper()
    for m in (r1, r2):
        quantize_(m, QuantSpec(bits=3, kmeans_init="random", seed=5), step="prepare")
    assert torch.equal(r1.classifier.codebook, r2.classifier.codebook)


def _dist_worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(rank)  # different weights on each rank
    model = nn.Sequential(nn.Linear(16, 32), nn.Linear(32, 4))
    quantize_(model, QuantSpec(bits=2), step="prepare")
    refit_(model)  # fits on each rank, then broadcasts rank 0's state and snaps to it
    torch.save({k: v for k, v in model.state_dict().items()}, os.path.join(out_dir, f"{rank}.pt"))
    dist.destroy_process_group()


def test_refit_broadcasts_rank0_state_under_torch_distributed(tmp_path) -> None:
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_dist_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    s0 = torch.load(tmp_path / "0.pt")
    s1 = torch.load(tmp_path / "1.pt")
    for key in ("0.codebook", "0.labels", "1.codebook", "1.labels", "0.weight"):
        assert torch.equal(s0[key], s1[key]), key


def test_centroid_loss() -> None:
    model = tiny_whisper()
    assert float(centroid_loss(model).detach()) == 0.0 and centroid_loss(model).dim() == 0
    quantize_(model, QuantSpec(bits=2), step="prepare")
    assert float(centroid_loss(model).detach()) > 0  # prepare does not move the weights
    refit_(model)
    assert float(centroid_loss(model).detach()) == 0.0  # refit_ snaps them
    with torch.no_grad():
        for _, m in qat_modules(model):
            m.weight.add_(0.01)
    loss = centroid_loss(model)
    assert abs(float(loss.detach()) - 1e-4) < 1e-7
    loss.backward()
    fc1 = model.encoder.layers[0].fc1
    total = sum(m.weight.numel() for _, m in qat_modules(model))
    assert torch.allclose(fc1.weight.grad, torch.full_like(fc1.weight, 2 * 0.01 / total))


def test_state_dict_resume_restores_the_quantizer_exactly() -> None:
    model = tiny_whisper()
    spec = QuantSpec(bits=4, snap=False)
    quantize_(model, spec, step="prepare")
    set_quantization_enabled(model, True)
    with torch.no_grad():
        model.encoder.layers[0].fc1.weight.add_(0.003)
    update_(model)
    saved = copy.deepcopy(model.state_dict())
    resumed = tiny_whisper(seed=1)  # different initial weights
    quantize_(resumed, spec, step="prepare")
    resumed.load_state_dict(saved)
    set_quantization_enabled(resumed, True)
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, saved[key]) and value.dtype == saved[key].dtype, key
    with torch.no_grad():
        assert torch.equal(
            resumed(input_features=FEATURES).logits, model(input_features=FEATURES).logits
        )


# --------------------------------------------------------------------------- convert


@pytest.mark.parametrize(
    "spec",
    [
        QuantSpec(bits=3),
        QuantSpec(bits=2, group_size=100),  # rows of 240/64/256: padded groups
        QuantSpec(method="uniform", bits=4, granularity="group", group_size=48),
    ],
    ids=["kmeans", "kmeans-grouped", "uniform-grouped"],
)
def test_convert_is_exact_bounded_and_idempotent(spec: QuantSpec) -> None:
    model = tiny_whisper()
    quantize_(model, spec, step="prepare")
    set_quantization_enabled(model, True)
    with torch.no_grad():
        ref = model(input_features=FEATURES).logits
        dense = {n: m.hfq_weight().clone() for n, m in qat_modules(model)}
    quantize_(model, spec, step="convert")
    assert not qat_modules(model)
    packed = dict(packed_modules(model))
    assert set(packed) == set(dense)
    for name, module in packed.items():
        weight = module.weight
        assert torch.equal(weight, dense[name]), name
        layout = module.hfq_layout
        groups = layout.to_groups(weight)
        valid = layout.valid()
        for g in range(layout.num_groups):
            vals = groups[g] if valid is None else groups[g][valid[g]]
            assert vals.unique().numel() <= 2**module.hfq_bits
    with torch.no_grad():
        assert torch.equal(model(input_features=FEATURES).logits, ref)
    state = copy.deepcopy(model.state_dict())
    config = model.config.quantization_config.to_dict()
    quantize_(model, spec, step="convert")  # idempotent
    assert model.config.quantization_config.to_dict() == config
    after = model.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state)
    assert model.is_quantized and model.hf_quantizer is not None


def test_convert_without_prepare_is_post_training_quantization() -> None:
    model = tiny_whisper()
    quantize_(model, QuantSpec(bits=4, exclude=["classifier"]), step="convert")
    assert isinstance(model.encoder.layers[0].fc1, PackedModule)
    assert type(model.classifier) is nn.Linear
    assert (
        quantize_(tiny_whisper(), QuantSpec(method="none"), step="convert")
        .config.to_dict()
        .get("quantization_config")
        is None
    )
    with pytest.raises(QuantizationError, match="step"):
        quantize_(model, QuantSpec(), step="calibrate")
    with pytest.raises(QuantizationError, match="QuantSpec"):
        quantize_(model, {"bits": 4})


def test_dequantize_gives_plain_modules_with_quantized_weights() -> None:
    for convert in (False, True):
        model = tiny_whisper()
        quantize_(model, QuantSpec(bits=3), step="prepare")
        set_quantization_enabled(model, True)
        with torch.no_grad():
            ref = model(input_features=FEATURES).logits
        if convert:
            quantize_(model, QuantSpec(bits=3), step="convert")
        dequantize(model)
        assert not qat_modules(model) and not packed_modules(model)
        assert type(model.encoder.layers[0].fc1) is nn.Linear
        assert type(model.encoder.conv1) is nn.Conv1d
        assert "quantization_config" not in model.config.to_dict()
        assert not getattr(model, "is_quantized", False)
        with torch.no_grad():
            assert torch.equal(model(input_features=FEATURES).logits, ref)


class AllKinds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(12, 6, padding_idx=0)
        self.conv2d = nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect")
        self.conv1d = nn.Conv1d(6, 6, 3, stride=2, bias=False)
        self.fc = nn.Linear(4 * 4 * 5, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.conv1d(self.emb(ids).transpose(1, 2))  # (B, 6, 5)
        h = self.conv2d(h[:, None])  # (B, 4, 6, 5)
        return self.fc(h[:, :, :4].flatten(1))


@pytest.mark.parametrize("method", ["kmeans", "uniform"])
def test_every_module_kind_converts_and_dequantizes_exactly(method: str) -> None:
    model = AllKinds().eval()
    spec = QuantSpec(method=method, bits=3, quantize_embeddings=True)
    quantize_(model, spec, step="prepare")
    assert {type(m).__name__ for _, m in qat_modules(model)} == {
        "QATEmbedding",
        "QATConv2d",
        "QATConv1d",
        "QATLinear",
    }
    refit_(model)
    set_quantization_enabled(model, True)
    ids = torch.randint(0, 12, (2, 11))
    with torch.no_grad():
        ref = model(ids)
    quantize_(model, spec, step="convert")
    assert {type(m).__name__ for _, m in packed_modules(model)} == {
        "PackedEmbedding",
        "PackedConv2d",
        "PackedConv1d",
        "PackedLinear",
    }
    with torch.no_grad():
        assert torch.equal(model(ids), ref)
    assert "fc" in repr(model) and "3-bit" in repr(model.fc)
    dequantize(model)
    assert type(model.conv2d) is nn.Conv2d and model.conv2d.padding_mode == "reflect"
    assert type(model.emb) is nn.Embedding and model.emb.padding_idx == 0
    with torch.no_grad():
        assert torch.equal(model(ids), ref)
