"""The quantizer API: prepare / refit / update / convert a model in place.

Typical QAT loop (what ``DistillQuantTrainer`` does)::

    quantize_(model, spec, step="prepare")     # QAT modules, quantization off
    optimizer = AdamW(model.parameters())      # sees LSQ scales too
    # at the start of each quantization phase:
    refit_(model); set_quantization_enabled(model, True)
    loss = task_loss + centroid_loss(model); loss.backward(); optimizer.step()
    update_(model)                             # after every optimizer step
    # distillation phase: set_quantization_enabled(model, False)
    quantize_(model, spec, step="convert")     # packed inference modules
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import nn

from .modules import PackedModule, QATModule, make_qat, packed_from_qat
from .selection import select_modules
from .spec import QuantizationError, QuantSpec

__all__ = [
    "centroid_loss",
    "packed_modules",
    "qat_modules",
    "quantize_",
    "refit_",
    "set_quantization_enabled",
    "update_",
]

logger = logging.getLogger(__name__)
_SPEC_ATTR = "hf_quads_spec"


def qat_modules(model: nn.Module) -> list[tuple[str, QATModule]]:
    """``(name, module)`` of every QAT module of ``model``, in ``named_modules()`` order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QATModule)]


def packed_modules(model: nn.Module) -> list[tuple[str, PackedModule]]:
    """``(name, module)`` of every packed (converted) module of ``model``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, PackedModule)]


def _options(spec: QuantSpec) -> dict[str, object]:
    return {
        "kmeans_iters": spec.kmeans_iters,
        "kmeans_init": spec.kmeans_init,
        "reassign": spec.reassign,
        "snap": spec.snap,
        "seed": spec.seed,
        "symmetric": spec.symmetric,
        "learnable_scale": spec.learnable_scale,
    }


def _set_child(model: nn.Module, name: str, child: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, child)


def _prepare(model: nn.Module, spec: QuantSpec) -> nn.Module:
    existing = qat_modules(model)
    if existing:
        previous = getattr(model, _SPEC_ATTR, None)
        if previous == spec:
            return model
        raise QuantizationError(
            f"the model is already prepared for QAT ({len(existing)} modules) with another "
            "QuantSpec; call dequantize(model) first to start again"
        )
    targets = select_modules(model, spec)
    if not targets and spec.enabled:
        logger.warning("quantize_: the QuantSpec selects no module of %s", type(model).__name__)
    options = _options(spec)
    for target in targets:
        weight = target.module.weight
        if spec.method == "kmeans":
            group_size = spec.group_size
        else:
            group_size = spec.uniform_group_size(weight.numel() // max(1, weight.shape[0]))
        make_qat(
            target.module,
            method=spec.method,
            bits=target.bits,
            group_size=group_size,
            options=options,
        )
    object.__setattr__(model, _SPEC_ATTR, spec)
    _refit(model, snap=False)  # a valid quantizer state, latent weights untouched
    logger.info("quantize_: %d modules prepared for %s QAT", len(targets), spec.method)
    return model


def _convert(model: nn.Module, spec: QuantSpec) -> nn.Module:
    qat = qat_modules(model)
    if qat:
        spec = getattr(model, _SPEC_ATTR, None) or spec
    else:
        if packed_modules(model) or not select_modules(model, spec):
            return model  # already converted, or nothing to quantize
        _prepare(model, spec)  # post-training quantization: fit, then pack
        qat = qat_modules(model)
    for name, module in qat:
        _set_child(model, name, packed_from_qat(module))
    object.__setattr__(model, _SPEC_ATTR, spec)
    packed = packed_modules(model)
    if packed and hasattr(model, "config"):
        from .hf_integration import attach_quantization_config

        attach_quantization_config(model, spec)
    return model


def quantize_(
    model: nn.Module, spec: QuantSpec, step: Literal["prepare", "convert"] = "prepare"
) -> nn.Module:
    """Quantize ``model`` in place and return it.

    ``step="prepare"``: swap the modules ``spec`` selects for QAT modules, create
    their quantizer state (k-means codebooks fitted on the current weights, which
    are not modified; uniform LSQ scales, which are parameters an optimizer built
    afterwards sees) and leave quantization disabled (see
    :func:`set_quantization_enabled`); :func:`refit_` at the start of a
    quantization phase fits again and snaps.
    Preparing again with the same spec is a no-op.

    ``step="convert"``: replace every QAT module by a packed inference module whose
    weight is exactly the quantized weight, and set
    ``model.config.quantization_config``. Converting a converted model changes
    nothing. A model never prepared is quantized post-training (prepare with the
    initial fit, then convert). ``method="none"`` leaves the model as it is.
    """
    if not isinstance(spec, QuantSpec):
        raise QuantizationError(f"spec must be a QuantSpec, got {type(spec).__name__}")
    if step == "prepare":
        return _prepare(model, spec) if spec.enabled else model
    if step == "convert":
        return _convert(model, spec) if spec.enabled else model
    raise QuantizationError(f"step must be 'prepare' or 'convert', got {step!r}")


def set_quantization_enabled(model: nn.Module, enabled: bool) -> None:
    """Make the QAT forward use the quantized weights (True) or the latent weights (False)."""
    for _, module in qat_modules(model):
        module.hfq_enabled = bool(enabled)


def _broadcast_state(modules: list[tuple[str, QATModule]], snap: bool | None) -> None:
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    for _, module in modules:
        for name in ("codebook", "labels", "scale", "zero_point"):
            tensor = getattr(module, name, None)
            if isinstance(tensor, torch.Tensor):
                dist.broadcast(tensor.detach(), src=0)  # detach() keeps the version counter
        snapping = module.hfq_options.get("snap", True) if snap is None else snap
        if snapping and module.hfq_method == "kmeans":
            with torch.no_grad():
                module.weight.copy_(module.hfq_quantized_weight())


def refit_(model: nn.Module) -> None:
    """(Re)initialise every quantizer from the current latent weights.

    k-means: fit a fresh codebook and labels (deterministic for a given seed) and,
    with ``snap``, snap the weights to it; uniform: re-initialise the scales (and
    zero points). Under ``torch.distributed`` rank 0's state is broadcast, so all
    ranks hold identical codebooks.
    """
    _refit(model, snap=None)


def _refit(model: nn.Module, snap: bool | None) -> None:
    modules = qat_modules(model)
    for _, module in modules:
        module.hfq_refit(snap=snap)
    _broadcast_state(modules, snap)


def update_(model: nn.Module) -> None:
    """Call after every optimizer step of a quantization phase.

    k-means: each centroid becomes the mean of the latent weights assigned to it
    (float64 sums, one pass), then, with ``reassign``, every weight moves to its
    nearest centroid, and, with ``snap``, the latent weights are overwritten by
    their centroid. Uniform: scales are kept positive and zero points in range.
    """
    for _, module in qat_modules(model):
        module.hfq_update()


def centroid_loss(model: nn.Module) -> torch.Tensor:
    """QUADS' L_centroid: mean squared distance of latent weights to their quantized value.

    Averaged over every quantized weight of the model; differentiable with respect
    to the latent weights (the centroids / quantized values are constants). A
    0-dim zero when nothing is quantized.
    """
    total: torch.Tensor | None = None
    count = 0
    for _, module in qat_modules(model):
        weight = module.weight
        diff = weight - module.hfq_quantized_weight()
        part = diff.square().sum()
        total = part if total is None else total + part.to(total.device)
        count += weight.numel()
    if total is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else None
        return torch.zeros((), device=device)
    return total / count
