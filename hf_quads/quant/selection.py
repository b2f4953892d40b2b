"""Which modules of a model a :class:`~hf_quads.quant.spec.QuantSpec` quantizes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from torch import nn

from .modules import KINDS, PackedModule, QATModule, module_kind
from .spec import QuantSpec

__all__ = ["Target", "select_modules"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A module chosen for quantization, with its bits."""

    name: str
    module: nn.Module
    kind: str
    bits: int


def _why_not_candidate(module: nn.Module, kind: str, spec: QuantSpec) -> str | None:
    """Why ``module`` cannot be quantized, or None when it can."""
    if isinstance(module, (QATModule, PackedModule)):
        return "already quantized"
    if kind == "embedding" and not spec.quantize_embeddings:
        return "embedding (quantize_embeddings=False)"
    base = KINDS[kind]
    if type(module).forward is not base.forward:
        return f"{type(module).__name__} overrides forward"
    weight = module._parameters.get("weight")
    if weight is None:
        return "weight is not a direct parameter (weight norm / parametrization)"
    if type(weight) is not nn.Parameter or not weight.is_floating_point():
        return f"weight is a {type(weight).__name__} of {weight.dtype}"
    if kind == "embedding" and module.max_norm is not None:
        return "embedding with max_norm rewrites its weight in forward"
    if kind in ("conv1d", "conv2d") and getattr(module, "transposed", False):
        return "transposed convolution"
    return None


def select_modules(model: nn.Module, spec: QuantSpec) -> list[Target]:
    """The modules of ``model`` that ``spec`` quantizes, in ``named_modules()`` order.

    See :class:`QuantSpec` for the rules. A weight shared by several modules (tied
    embeddings and output projections) is left alone in every one of them.
    """
    if not spec.enabled:
        return []
    owners: dict[int, set[int]] = {}
    for module in model.modules():
        for param in module._parameters.values():
            if param is not None:
                owners.setdefault(id(param), set()).add(id(module))
    targets: list[Target] = []
    for name, module in model.named_modules():
        kind = module_kind(module)
        if kind is None:
            continue
        reason = _why_not_candidate(module, kind, spec)
        if reason is None and len(owners.get(id(module._parameters["weight"]), ())) > 1:
            reason = "weight is shared with another module (tied)"
        if reason is None and not spec.selects_name(name):
            reason = "excluded by include/exclude/quantize_head"
        if reason is not None:
            logger.debug("not quantizing %s: %s", name or "<root>", reason)
            continue
        targets.append(Target(name, module, kind, spec.bits_for(name)))
    return targets
