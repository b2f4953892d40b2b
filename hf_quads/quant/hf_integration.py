"""transformers integration: the ``hf_quads`` quantization config and HfQuantizer.

A converted model's ``config.json`` holds::

    "quantization_config": {
      "quant_method": "hf_quads", "format_version": 1,
      "method": "kmeans", "bits": 4, "group_size": null,
      "granularity": null, "symmetric": null,
      "modules": {"encoder.layers.0.fc1": {"kind": "linear", "method": "kmeans",
                  "bits": 4, "shape": [256, 64], "group_size": null, "groups": 1}, ...},
      "spec": {... the QuantSpec used ...}
    }

On ``from_pretrained`` transformers finds the registered quantizer through
``quant_method``; :class:`HfQuadsHfQuantizer` replaces each listed module of the
freshly built (meta) model by an empty packed module before the weights are read,
so the checkpoint's ``weight_packed`` / ``weight_codebook`` / ``weight_scale`` /
``weight_zero_point`` / ``bias`` tensors load into them like any other
parameter or buffer. This path is the same on transformers 4.57 and 5.x.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import torch
from torch import nn
from transformers.quantizers.base import HfQuantizer
from transformers.utils.quantization_config import QuantizationConfigMixin

from .api import packed_modules
from .modules import packed_from_module
from .spec import QuantizationError, QuantSpec

__all__ = [
    "FORMAT_VERSION",
    "QUANT_METHOD",
    "HfQuadsHfQuantizer",
    "HfQuadsQuantizationConfig",
    "attach_quantization_config",
    "detach_quantization_config",
    "register",
    "replace_with_packed_modules",
]

logger = logging.getLogger(__name__)

#: ``quant_method`` of hf-quads checkpoints.
QUANT_METHOD = "hf_quads"
#: Version of the checkpoint layout written by this release.
FORMAT_VERSION = 1
_MODULE_KEYS = ("kind", "method", "bits", "shape")


class HfQuadsQuantizationConfig(QuantizationConfigMixin):
    """``quantization_config`` of an hf-quads packed checkpoint (see the module docstring).

    Args:
        method: ``"kmeans"`` or ``"uniform"`` (the default of the modules).
        bits: default bits per weight.
        group_size: default group size (None: per tensor / per channel).
        granularity: uniform only: ``"tensor"``, ``"channel"`` or ``"group"``.
        symmetric: uniform only: whether the zero point is fixed.
        modules: ``{module name: entry}``, one per packed module; each entry has
            ``kind``, ``method``, ``bits``, ``shape``, ``group_size``, ``groups`` and,
            for uniform, ``symmetric``. This is what loading rebuilds.
        spec: the :class:`~hf_quads.quant.QuantSpec` as a dict (informative).
        format_version: layout version; loading refuses newer versions.
    """

    def __init__(
        self,
        method: str = "kmeans",
        bits: int = 4,
        group_size: int | None = None,
        granularity: str | None = None,
        symmetric: bool | None = None,
        modules: dict[str, dict[str, Any]] | None = None,
        spec: dict[str, Any] | None = None,
        format_version: int = FORMAT_VERSION,
        quant_method: str = QUANT_METHOD,
        **kwargs: Any,
    ) -> None:
        if quant_method != QUANT_METHOD:
            raise QuantizationError(
                f"quant_method must be {QUANT_METHOD!r} for HfQuadsQuantizationConfig, "
                f"got {quant_method!r}"
            )
        self.quant_method = QUANT_METHOD
        self.format_version = int(format_version)
        self.method = method
        self.bits = bits
        self.group_size = group_size
        self.granularity = granularity
        self.symmetric = symmetric
        self.modules = {str(k): dict(v) for k, v in (modules or {}).items()}
        self.spec = dict(spec) if spec else None
        for key, value in kwargs.items():  # keep unknown fields of newer writers
            setattr(self, key, value)
        self.post_init()

    def post_init(self) -> None:
        """Check the fields; errors name the field to fix."""
        if self.format_version > FORMAT_VERSION:
            raise QuantizationError(
                f"this checkpoint uses hf-quads format version {self.format_version}; this "
                f"hf-quads reads up to version {FORMAT_VERSION}: upgrade hf-quads"
            )
        if self.method not in ("kmeans", "uniform"):
            raise QuantizationError(
                f"quantization_config.method must be 'kmeans' or 'uniform', got {self.method!r}"
            )
        for name, entry in self.modules.items():
            missing = [k for k in _MODULE_KEYS if k not in entry]
            if missing:
                raise QuantizationError(
                    f"quantization_config.modules[{name!r}] lacks {', '.join(missing)}"
                )
            if entry["method"] not in ("kmeans", "uniform"):
                raise QuantizationError(
                    f"quantization_config.modules[{name!r}].method must be 'kmeans' or "
                    f"'uniform', got {entry['method']!r}"
                )
            if not isinstance(entry["bits"], int) or not 1 <= entry["bits"] <= 8:
                raise QuantizationError(
                    f"quantization_config.modules[{name!r}].bits must be 1..8, got {entry['bits']!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (``quant_method`` first)."""
        data = {"quant_method": QUANT_METHOD}
        data.update({k: v for k, v in self.__dict__.items() if k != "quant_method"})
        data["modules"] = {k: dict(v) for k, v in self.modules.items()}
        return data

    def to_diff_dict(self) -> dict[str, Any]:
        """Same as :meth:`to_dict` (transformers 4.57 calls it for ``repr``)."""
        return self.to_dict()


class HfQuadsHfQuantizer(HfQuantizer):
    """Loads hf-quads packed checkpoints (pre-quantized only).

    ``is_trainable`` / ``is_qat_trainable`` are True: packed weights are buffers and
    stay fixed, while biases, norms and unquantized layers can still be trained, and
    ``transformers.Trainer`` (4.57) refuses models whose quantizer says otherwise,
    even for evaluation.
    """

    requires_calibration = True
    requires_parameters_quantization = False
    required_packages = None

    def __init__(self, quantization_config: QuantizationConfigMixin, **kwargs: Any) -> None:
        super().__init__(quantization_config, **kwargs)
        self.quantization_config = quantization_config

    def validate_environment(self, *args: Any, **kwargs: Any) -> None:
        return None

    def update_dtype(self, dtype: torch.dtype | None) -> torch.dtype:
        return torch.float32 if dtype is None else dtype

    def update_torch_dtype(self, dtype: torch.dtype | None) -> torch.dtype:
        return self.update_dtype(dtype)

    def _process_model_before_weight_loading(self, model: nn.Module, **kwargs: Any) -> nn.Module:
        replace_with_packed_modules(model, self.quantization_config.modules)
        return model

    def _process_model_after_weight_loading(self, model: nn.Module, **kwargs: Any) -> nn.Module:
        return model

    def is_serializable(self, safe_serialization: Any = None) -> bool:
        return True

    @property
    def is_trainable(self) -> bool:
        return True

    @property
    def is_qat_trainable(self) -> bool:
        return True

    def dequantize(self, model: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
        """``model.dequantize()``: plain modules with the quantized weights, config removed."""
        from .checkpoint import dequantize

        return dequantize(model)

    def _dequantize(self, model: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
        from .checkpoint import dequantize_modules

        return dequantize_modules(model)


def _resolve(model: nn.Module, name: str, modules: dict[str, nn.Module]) -> str | None:
    """``name`` as a module path of ``model``, allowing for the base-model prefix."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    candidates = [name]
    if prefix:
        candidates += [name.removeprefix(prefix + "."), f"{prefix}.{name}"]
    return next((c for c in candidates if c in modules), None)


def replace_with_packed_modules(model: nn.Module, modules: dict[str, dict[str, Any]]) -> int:
    """Replace each module named in ``modules`` (config entries) by an empty packed module.

    Returns how many were replaced. Entries naming modules the model does not have
    (a task head when loading the base model) are skipped with a warning.
    """
    replaced = 0
    named = dict(model.named_modules())
    for name, entry in modules.items():
        path = _resolve(model, name, named)
        if path is None:
            logger.info(
                "hf_quads: the model has no module %r; its packed weights are ignored", name
            )
            continue
        module = model.get_submodule(path)
        try:
            packed = packed_from_module(module, entry, path)
        except (KeyError, ValueError) as err:
            raise QuantizationError(f"cannot load the packed weights of {path!r}: {err}") from err
        parent_name, _, attr = path.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, packed)
        replaced += 1
    return replaced


def attach_quantization_config(model: nn.Module, spec: QuantSpec) -> HfQuadsQuantizationConfig:
    """Describe ``model``'s packed modules in ``model.config.quantization_config``.

    Also sets what ``from_pretrained`` sets on a loaded quantized model
    (``hf_quantizer``, ``is_quantized``, ``quantization_method``), so a converted
    model and a loaded one save and behave the same.
    """
    if spec.method == "uniform":
        granularity, symmetric = spec.granularity, spec.symmetric
    else:
        granularity = symmetric = None
    config = HfQuadsQuantizationConfig(
        method=spec.method,
        bits=spec.bits,
        group_size=spec.group_size,
        granularity=granularity,
        symmetric=symmetric,
        modules={name: m.hfq_describe() for name, m in packed_modules(model)},
        spec=spec.to_dict(),
    )
    model.config.quantization_config = config
    object.__setattr__(model, "hf_quantizer", HfQuadsHfQuantizer(config, pre_quantized=True))
    object.__setattr__(model, "is_quantized", True)
    object.__setattr__(model, "quantization_method", QUANT_METHOD)
    return config


def detach_quantization_config(model: nn.Module) -> None:
    """Undo :func:`attach_quantization_config` (or a quantized ``from_pretrained``)."""
    config = getattr(model, "config", None)
    if config is not None:
        for attr in ("quantization_config", "_pre_quantization_dtype"):
            if attr in config.__dict__:
                delattr(config, attr)
        if "_is_quantized" in config.__dict__:
            delattr(config, "_is_quantized")
    for attr in ("hf_quantizer", "quantization_method"):
        if attr in model.__dict__:
            object.__delattr__(model, attr)
    if "is_quantized" in model.__dict__:
        object.__delattr__(model, "is_quantized")


def register() -> None:
    """Register the ``hf_quads`` config and quantizer with transformers (idempotent)."""
    auto = importlib.import_module("transformers.quantizers.auto")
    if QUANT_METHOD not in auto.AUTO_QUANTIZATION_CONFIG_MAPPING:
        auto.register_quantization_config(QUANT_METHOD)(HfQuadsQuantizationConfig)
    if QUANT_METHOD not in auto.AUTO_QUANTIZER_MAPPING:
        auto.register_quantizer(QUANT_METHOD)(HfQuadsHfQuantizer)


register()
