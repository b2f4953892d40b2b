"""QAT modules (training) and packed modules (inference, checkpoints).

**QAT modules** are the original ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` /
``nn.Embedding`` objects with their class swapped for a subclass (``QATLinear``
...), so ``isinstance(m, nn.Linear)`` holds, the ``weight`` and ``bias``
parameters are the same objects under the same state-dict keys, and the
quantizer state is extra state-dict entries:

* k-means: buffers ``codebook`` (``(groups, 2**bits)``, the weight's dtype) and
  ``labels`` (uint8, the weight's shape);
* uniform: ``scale`` (``(groups, 1)``) and, when asymmetric, ``zero_point`` —
  parameters when learned (LSQ), buffers otherwise.

Forward uses the latent weight while quantization is disabled. When enabled:
k-means uses ``codebook[labels]`` (a straight-through estimator passes the
gradient to the latent weight when it requires grad); uniform uses LSQ fake
quantization in training mode and the exact codes in evaluation mode. The exact
values come from :func:`~hf_quads.quant.dequant.dequantize_weight`, as in the
packed modules.

**Packed modules** (``PackedLinear`` ...) hold ``weight_packed`` (the codes, bit
packed, uint8), ``weight_codebook`` or ``weight_scale`` (+ ``weight_zero_point``)
buffers and the ``bias`` parameter. Their forward keeps the dense weight between
calls (recomputed when a buffer changes); the read-only ``weight`` property
returns a fresh dense copy, so outside code can never alter the cached one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .dequant import dequantize_weight
from .kmeans import (
    assign_clusters,
    cluster_sizes,
    kmeans_dequantize,
    kmeans_fit,
    update_centroids,
)
from .layout import GroupLayout
from .packing import pack_bits, packed_numel, unpack_bits
from .uniform import (
    MIN_SCALE,
    lsq_fake_quant,
    lsq_grad_factor,
    uniform_codes,
    uniform_init,
    uniform_qmax,
    uniform_zero,
)

__all__ = [
    "KINDS",
    "PackedConv1d",
    "PackedConv2d",
    "PackedEmbedding",
    "PackedLinear",
    "PackedModule",
    "QATConv1d",
    "QATConv2d",
    "QATEmbedding",
    "QATLinear",
    "QATModule",
    "QuantOptions",
    "dense_module",
    "make_qat",
    "module_kind",
    "packed_from_module",
    "packed_from_qat",
    "remove_qat",
]

#: Module kinds that can be quantized, with their torch base class.
KINDS: dict[str, type[nn.Module]] = {
    "linear": nn.Linear,
    "conv1d": nn.Conv1d,
    "conv2d": nn.Conv2d,
    "embedding": nn.Embedding,
}


def module_kind(module: nn.Module) -> str | None:
    """``"linear"``, ``"conv1d"``, ``"conv2d"``, ``"embedding"`` or None."""
    for kind, base in KINDS.items():
        if isinstance(module, base):
            return kind
    return None


def _call(kind: str, module: nn.Module, input: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if kind == "linear":
        return F.linear(input, weight, module.bias)
    if kind in ("conv1d", "conv2d"):
        return KINDS[kind]._conv_forward(module, input, weight, module.bias)
    return F.embedding(
        input,
        weight,
        module.padding_idx,
        module.max_norm,
        module.norm_type,
        module.scale_grad_by_freq,
        module.sparse,
    )


def module_entry(module: nn.Module, symmetric: bool) -> dict[str, Any]:
    """A QAT or packed module's entry in the checkpoint's ``quantization_config``."""
    entry: dict[str, Any] = {
        "kind": module.hfq_kind,
        "method": module.hfq_method,
        "bits": module.hfq_bits,
        **module.hfq_layout.to_dict(),
    }
    if module.hfq_method == "uniform":
        entry["symmetric"] = symmetric
    return entry


class QuantOptions(dict):
    """Per-module quantizer settings (a plain dict, so it deep-copies and pickles)."""


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized tensor as is. Backward: the gradient goes to the latent tensor."""

    @staticmethod
    def forward(ctx, latent: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
        return quantized.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


# --------------------------------------------------------------------------- QAT


class QATModule(nn.Module):
    """Mixin of the QAT classes; see the module docstring. Not instantiated directly."""

    hfq_kind: str = ""
    hfq_method: str
    hfq_bits: int
    hfq_layout: GroupLayout
    hfq_enabled: bool
    hfq_options: QuantOptions

    # ------------------------------------------------------------------ weights

    def hfq_codes(self) -> torch.Tensor:
        """uint8 codes of the weight (k-means labels, or uniform grid indices)."""
        if self.hfq_method == "kmeans":
            return self.labels
        layout = self.hfq_layout
        codes = uniform_codes(
            layout.to_groups(self.weight), self.scale, self._zero(), self.hfq_bits
        )
        return layout.from_groups(codes)

    def _zero(self) -> torch.Tensor:
        if self.hfq_options.get("symmetric", True):
            return uniform_zero(
                self.hfq_bits,
                self.hfq_layout.num_groups,
                device=self.scale.device,
                dtype=self.scale.dtype,
            )
        return self.zero_point

    def hfq_quantized_weight(self) -> torch.Tensor:
        """The exact quantized weight (no gradient), as a packed module would compute it."""
        with torch.no_grad():
            if self.hfq_method == "kmeans":
                q = dequantize_weight(
                    "kmeans", self.hfq_bits, self.hfq_layout, self.labels, codebook=self.codebook
                )
            else:
                zero = None if self.hfq_options.get("symmetric", True) else self.zero_point
                q = dequantize_weight(
                    "uniform",
                    self.hfq_bits,
                    self.hfq_layout,
                    self.hfq_codes(),
                    scale=self.scale,
                    zero_point=zero,
                )
        return q.to(self.weight.dtype)

    def hfq_weight(self) -> torch.Tensor:
        """The weight the forward uses (latent, straight-through quantized, or exact)."""
        weight = self.weight
        if not self.hfq_enabled:
            return weight
        grad = torch.is_grad_enabled()
        if self.hfq_method == "uniform" and self.training and grad:
            layout = self.hfq_layout
            opts = self.hfq_options
            q = lsq_fake_quant(
                layout.to_groups(weight),
                self.scale,
                self._zero(),
                self.hfq_bits,
                learn_zero=not opts.get("symmetric", True) and opts.get("learnable_scale", True),
                grad_factor=opts.get("grad_factor", 1.0),
            )
            return layout.from_groups(q)
        q = self.hfq_quantized_weight()
        if grad and weight.requires_grad:
            return _StraightThrough.apply(weight, q)
        return q

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _call(self.hfq_kind, self, input, self.hfq_weight())

    # ------------------------------------------------------------------ quantizer steps

    @torch.no_grad()
    def hfq_refit(self, snap: bool | None = None) -> None:
        """(Re)initialise the codebook (k-means fit) or the scales from the latent weight.

        k-means snaps the latent weight to the new codebook when ``snap`` (default:
        the module's ``snap`` option).
        """
        layout = self.hfq_layout
        opts = self.hfq_options
        values = layout.to_groups(self.weight.detach())
        valid = layout.valid(values.device)
        if self.hfq_method == "kmeans":
            codebook, labels = kmeans_fit(
                values,
                1 << self.hfq_bits,
                iters=opts.get("kmeans_iters", 100),
                valid=valid,
                init=opts.get("kmeans_init", "quantile"),
                seed=opts.get("seed", 0),
            )
            self.codebook.copy_(codebook)
            self.labels.copy_(layout.from_groups(labels.to(torch.uint8)))
            if opts.get("snap", True) if snap is None else snap:
                self._snap()
        else:
            scale, zero = uniform_init(
                values, self.hfq_bits, symmetric=opts.get("symmetric", True), valid=valid
            )
            self.scale.copy_(scale)
            if not opts.get("symmetric", True):
                self.zero_point.copy_(zero)

    @torch.no_grad()
    def hfq_update(self) -> None:
        """After an optimizer step: k-means centroid re-estimation (+ reassign, snap); uniform clamp."""
        opts = self.hfq_options
        if self.hfq_method == "uniform":
            self.scale.clamp_(min=MIN_SCALE)
            if not opts.get("symmetric", True):
                self.zero_point.clamp_(0, uniform_qmax(self.hfq_bits))
            return
        layout = self.hfq_layout
        values = layout.to_groups(self.weight.detach())
        valid = layout.valid(values.device)
        labels = layout.to_groups(self.labels)
        sizes = self._sizes(labels, valid)
        codebook = update_centroids(values, labels, self.codebook, valid=valid, sizes=sizes)
        if opts.get("reassign", False):
            labels = assign_clusters(values, codebook)
            codebook = update_centroids(values, labels, codebook, valid=valid)
            self.labels.copy_(layout.from_groups(labels.to(torch.uint8)))
        self.codebook.copy_(codebook)
        if opts.get("snap", True):
            self._snap()

    def _sizes(self, labels: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        # Labels only change at refit / reassign / load_state_dict, which bump the version.
        key = (self.labels.data_ptr(), self.labels._version, self.labels.device)
        cached = self.__dict__.get("_hfq_sizes")
        if cached is None or cached[0] != key:
            cached = (key, cluster_sizes(labels, self.codebook.shape[1], valid=valid))
            self.__dict__["_hfq_sizes"] = cached
        return cached[1]

    def _snap(self) -> None:  # under no_grad
        weight = self.weight
        if weight.is_contiguous() and weight.dtype == self.codebook.dtype:
            kmeans_dequantize(self.labels, self.codebook, self.hfq_layout, out=weight)
        else:
            weight.copy_(self.hfq_quantized_weight())

    def hfq_describe(self) -> dict[str, Any]:
        """Per-module entry of the checkpoint's ``quantization_config``."""
        return module_entry(self, bool(self.hfq_options.get("symmetric", True)))

    def extra_repr(self) -> str:
        base = super().extra_repr()
        state = "on" if self.hfq_enabled else "off"
        return f"{base}, quant={self.hfq_method}:{self.hfq_bits}bit ({state})"


class QATLinear(QATModule, nn.Linear):
    """``nn.Linear`` with a quantized forward (see :class:`QATModule`)."""

    hfq_kind = "linear"


class QATConv1d(QATModule, nn.Conv1d):
    """``nn.Conv1d`` with a quantized forward (see :class:`QATModule`)."""

    hfq_kind = "conv1d"


class QATConv2d(QATModule, nn.Conv2d):
    """``nn.Conv2d`` with a quantized forward (see :class:`QATModule`)."""

    hfq_kind = "conv2d"


class QATEmbedding(QATModule, nn.Embedding):
    """``nn.Embedding`` with a quantized forward (see :class:`QATModule`)."""

    hfq_kind = "embedding"


_QAT_CLASSES: dict[type[nn.Module], type[QATModule]] = {
    nn.Linear: QATLinear,
    nn.Conv1d: QATConv1d,
    nn.Conv2d: QATConv2d,
    nn.Embedding: QATEmbedding,
}


def _qat_class(base: type[nn.Module]) -> type[QATModule]:
    cls = _QAT_CLASSES.get(base)
    if cls is None:
        kind = next(k for k, b in KINDS.items() if issubclass(base, b))
        cls = type(f"QAT{base.__name__}", (QATModule, base), {"hfq_kind": kind})
        _QAT_CLASSES[base] = cls
    return cls


def make_qat(
    module: nn.Module,
    *,
    method: str,
    bits: int,
    group_size: int | None,
    options: dict[str, Any],
) -> QATModule:
    """Turn ``module`` (Linear/Conv1d/Conv2d/Embedding) into its QAT class in place.

    Creates the quantizer state (k-means: zero codebook and labels, filled by
    :meth:`QATModule.hfq_refit`; uniform: scales initialised from the weight).
    Quantization starts disabled.
    """
    weight = module.weight
    base = type(module)
    layout = GroupLayout(tuple(weight.shape), group_size)
    module.__class__ = _qat_class(base)
    module.hfq_base = base
    module.hfq_method = method
    module.hfq_bits = bits
    module.hfq_layout = layout
    module.hfq_enabled = False
    opts = QuantOptions(options)
    module.hfq_options = opts
    kw = {"device": weight.device, "dtype": weight.dtype}
    if method == "kmeans":
        module.register_buffer("codebook", torch.zeros(layout.num_groups, 1 << bits, **kw))
        module.register_buffer(
            "labels", torch.zeros(weight.shape, dtype=torch.uint8, device=weight.device)
        )
        return module
    symmetric = opts.get("symmetric", True)
    learn = opts.get("learnable_scale", True)
    opts["grad_factor"] = lsq_grad_factor(layout.group_len, bits, symmetric)
    scale, zero = uniform_init(
        layout.to_groups(weight.detach()),
        bits,
        symmetric=symmetric,
        valid=layout.valid(weight.device),
    )
    scale = scale.to(**kw)
    zero = zero.to(**kw)
    if learn:
        module.scale = nn.Parameter(scale)
    else:
        module.register_buffer("scale", scale)
    if not symmetric:
        if learn:
            module.zero_point = nn.Parameter(zero)
        else:
            module.register_buffer("zero_point", zero)
    return module


def remove_qat(module: QATModule, *, quantized: bool = True) -> nn.Module:
    """Turn a QAT module back into its original class in place.

    With ``quantized`` the weight becomes the exact quantized weight; otherwise the
    latent weight is kept.
    """
    with torch.no_grad():
        if quantized:
            module.weight.copy_(module.hfq_quantized_weight())
    for name in ("codebook", "labels", "scale", "zero_point"):
        module._buffers.pop(name, None)
        module._parameters.pop(name, None)
    base = module.hfq_base
    for attr in (
        "hfq_base",
        "hfq_method",
        "hfq_bits",
        "hfq_layout",
        "hfq_enabled",
        "hfq_options",
        "_hfq_sizes",
    ):
        module.__dict__.pop(attr, None)
    module.__class__ = base
    return module


# --------------------------------------------------------------------------- packed


_LAYER_ATTRS: dict[str, tuple[str, ...]] = {
    "linear": ("in_features", "out_features"),
    "conv1d": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "padding_mode",
        "transposed",
        "output_padding",
        "_reversed_padding_repeated_twice",
    ),
    "embedding": (
        "num_embeddings",
        "embedding_dim",
        "padding_idx",
        "max_norm",
        "norm_type",
        "scale_grad_by_freq",
        "sparse",
    ),
}
_LAYER_ATTRS["conv2d"] = _LAYER_ATTRS["conv1d"]


class PackedModule(nn.Module):
    """Inference module holding a bit-packed quantized weight (see the module docstring)."""

    hfq_kind: str = ""
    #: Keep the dense weight between forwards (recomputed when a buffer changes).
    cache_weight: bool = True

    def __init__(
        self,
        *,
        shape: tuple[int, ...],
        method: str,
        bits: int,
        group_size: int | None,
        symmetric: bool = True,
        has_bias: bool,
        layer_attrs: dict[str, Any],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if method not in ("kmeans", "uniform"):
            raise ValueError(f"unknown quantization method {method!r}")
        self.hfq_method = method
        self.hfq_bits = int(bits)
        self.hfq_layout = GroupLayout(tuple(shape), group_size)
        self.hfq_symmetric = bool(symmetric)
        for key, value in layer_attrs.items():
            setattr(self, key, value)
        layout = self.hfq_layout
        kw = {"device": device, "dtype": dtype}
        self.register_buffer(
            "weight_packed",
            torch.zeros(
                packed_numel(layout.numel, self.hfq_bits), dtype=torch.uint8, device=device
            ),
        )
        if method == "kmeans":
            self.register_buffer("weight_codebook", torch.zeros(layout.num_groups, 1 << bits, **kw))
        else:
            self.register_buffer("weight_scale", torch.ones(layout.num_groups, 1, **kw))
            if not self.hfq_symmetric:
                self.register_buffer("weight_zero_point", torch.zeros(layout.num_groups, 1, **kw))
        if has_bias:
            self.bias = nn.Parameter(torch.zeros(shape[0], **kw))
        else:
            self.register_parameter("bias", None)
        self._hfq_cache: tuple[tuple[Any, ...], torch.Tensor] | None = None

    def _aux(self) -> list[torch.Tensor]:
        names = ["weight_codebook"] if self.hfq_method == "kmeans" else ["weight_scale"]
        if self.hfq_method == "uniform" and not self.hfq_symmetric:
            names.append("weight_zero_point")
        return [self._buffers[n] for n in names]

    def codes(self) -> torch.Tensor:
        """The unpacked uint8 codes, of the weight's shape."""
        layout = self.hfq_layout
        return unpack_bits(self.weight_packed, self.hfq_bits, layout.numel).reshape(layout.shape)

    def dequantized_weight(self) -> torch.Tensor:
        """A new tensor holding the dense weight (dtype of the codebook / scales)."""
        aux = self._aux()
        if self.hfq_method == "kmeans":
            return dequantize_weight(
                "kmeans", self.hfq_bits, self.hfq_layout, self.codes(), codebook=aux[0]
            )
        return dequantize_weight(
            "uniform",
            self.hfq_bits,
            self.hfq_layout,
            self.codes(),
            scale=aux[0],
            zero_point=aux[1] if len(aux) > 1 else None,
        )

    def _forward_weight(self) -> torch.Tensor:
        # The cached tensor never leaves this module (``weight`` returns a fresh one),
        # so nothing outside can modify it in place; buffer changes bump the key.
        if not self.cache_weight or torch.is_inference_mode_enabled():
            return self.dequantized_weight()
        tensors = [self.weight_packed, *self._aux()]
        try:
            key = tuple((id(t), t.data_ptr(), t._version, t.device, t.dtype) for t in tensors)
        except RuntimeError:  # inference tensors have no version counter
            return self.dequantized_weight()
        if self._hfq_cache is None or self._hfq_cache[0] != key:
            self._hfq_cache = (key, self.dequantized_weight())
        return self._hfq_cache[1]

    @property
    def weight(self) -> torch.Tensor:
        """Dense dequantized weight, recomputed at each access (the packed buffers are the state)."""
        return self.dequantized_weight()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _call(self.hfq_kind, self, input, self._forward_weight())

    def hfq_describe(self) -> dict[str, Any]:
        """Per-module entry of the checkpoint's ``quantization_config``."""
        return module_entry(self, self.hfq_symmetric)

    def extra_repr(self) -> str:
        shape = "x".join(str(s) for s in self.hfq_layout.shape)
        groups = self.hfq_layout.num_groups
        return (
            f"{shape}, {self.hfq_method} {self.hfq_bits}-bit, groups={groups}, "
            f"bias={self.bias is not None}"
        )


class PackedLinear(PackedModule):
    """Packed counterpart of ``nn.Linear``."""

    hfq_kind = "linear"


class PackedConv1d(PackedModule):
    """Packed counterpart of ``nn.Conv1d``."""

    hfq_kind = "conv1d"


class PackedConv2d(PackedModule):
    """Packed counterpart of ``nn.Conv2d``."""

    hfq_kind = "conv2d"


class PackedEmbedding(PackedModule):
    """Packed counterpart of ``nn.Embedding``."""

    hfq_kind = "embedding"


_PACKED_CLASSES: dict[str, type[PackedModule]] = {
    "linear": PackedLinear,
    "conv1d": PackedConv1d,
    "conv2d": PackedConv2d,
    "embedding": PackedEmbedding,
}


def _layer_attrs(module: nn.Module, kind: str) -> dict[str, Any]:
    return {name: getattr(module, name) for name in _LAYER_ATTRS[kind]}


def packed_from_qat(module: QATModule) -> PackedModule:
    """A packed module holding exactly the quantized weight of QAT ``module``."""
    kind = module.hfq_kind
    weight = module.weight
    with torch.no_grad():
        codes = module.hfq_codes().detach()
        cls = _PACKED_CLASSES[kind]
        packed = cls(
            shape=tuple(weight.shape),
            method=module.hfq_method,
            bits=module.hfq_bits,
            group_size=module.hfq_layout.group_size,
            symmetric=bool(module.hfq_options.get("symmetric", True)),
            has_bias=getattr(module, "bias", None) is not None,
            layer_attrs=_layer_attrs(module, kind),
            dtype=weight.dtype,
            device=weight.device,
        )
        packed.weight_packed.copy_(pack_bits(codes.to(torch.uint8), module.hfq_bits))
        if module.hfq_method == "kmeans":
            packed.weight_codebook.copy_(module.codebook)
        else:
            packed.weight_scale.copy_(module.scale.detach().clamp_min(MIN_SCALE))
            if not packed.hfq_symmetric:
                packed.weight_zero_point.copy_(module.zero_point.detach())
        if packed.bias is not None:
            packed.bias.copy_(module.bias.detach())
    packed.train(module.training)
    return packed


def packed_from_module(module: nn.Module, entry: dict[str, Any], name: str = "") -> PackedModule:
    """An empty packed module standing for ``module`` as described by a config ``entry``.

    Used when loading a checkpoint: ``module`` is the freshly built (often meta)
    float module; its layer settings are kept, its weight is dropped.
    """
    kind = module_kind(module)
    if kind is None or kind != entry.get("kind", kind):
        raise ValueError(
            f"module {name!r} is {type(module).__name__}, but the checkpoint quantized a "
            f"{entry.get('kind')!r} there"
        )
    shape = tuple(entry["shape"])
    weight = module.weight
    if tuple(weight.shape) != shape:
        raise ValueError(
            f"module {name!r} has a weight of shape {tuple(weight.shape)}, the checkpoint "
            f"stores {shape}"
        )
    cls = _PACKED_CLASSES[kind]
    return cls(
        shape=shape,
        method=entry["method"],
        bits=int(entry["bits"]),
        group_size=entry.get("group_size"),
        symmetric=bool(entry.get("symmetric", True)),
        has_bias=getattr(module, "bias", None) is not None,
        layer_attrs=_layer_attrs(module, kind),
        dtype=weight.dtype,
        device=weight.device,
    )


def dense_module(module: QATModule | PackedModule) -> nn.Module:
    """A plain ``nn.Linear`` / ``nn.Conv*`` / ``nn.Embedding`` with the exact quantized weight."""
    if isinstance(module, QATModule):
        return remove_qat(module, quantized=True)
    kind = module.hfq_kind
    weight = module.dequantized_weight().detach().clone()
    dense = _new_dense(kind, module, dtype=weight.dtype).to_empty(device=weight.device)
    with torch.no_grad():
        dense.weight.copy_(weight)
        if module.bias is not None:
            dense.bias.copy_(module.bias.detach())
    dense.train(module.training)
    return dense


def _new_dense(kind: str, module: PackedModule, dtype: torch.dtype) -> nn.Module:
    kw = {"device": "meta", "dtype": dtype}
    if kind == "linear":
        return nn.Linear(
            module.in_features, module.out_features, bias=module.bias is not None, **kw
        )
    if kind in ("conv1d", "conv2d"):
        return KINDS[kind](
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            bias=module.bias is not None,
            padding_mode=module.padding_mode,
            **kw,
        )
    return nn.Embedding(
        module.num_embeddings,
        module.embedding_dim,
        padding_idx=module.padding_idx,
        max_norm=module.max_norm,
        norm_type=module.norm_type,
        scale_grad_by_freq=module.scale_grad_by_freq,
        sparse=module.sparse,
        **kw,
    )
