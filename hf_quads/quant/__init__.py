"""Quantizers behind one API, bit packing, and compressed checkpoints ``from_pretrained`` loads.

::

    from hf_quads.quant import QuantSpec, quantize_, refit_, update_, set_quantization_enabled

    spec = QuantSpec(method="kmeans", bits=4)
    quantize_(model, spec, step="prepare")     # QAT modules (quantization off)
    refit_(model); set_quantization_enabled(model, True)
    ...                                        # train; update_(model) after each step
    save_quantized(model, "out")               # packed checkpoint (a converted copy)
    AutoModelForAudioClassification.from_pretrained("out")  # after `import hf_quads`

Names are imported lazily: importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "QuantSpec": "hf_quads.quant.spec",
    "QuantizationError": "hf_quads.quant.spec",
    "HEAD_PATTERN": "hf_quads.quant.spec",
    "quantize_": "hf_quads.quant.api",
    "set_quantization_enabled": "hf_quads.quant.api",
    "refit_": "hf_quads.quant.api",
    "update_": "hf_quads.quant.api",
    "centroid_loss": "hf_quads.quant.api",
    "qat_modules": "hf_quads.quant.api",
    "packed_modules": "hf_quads.quant.api",
    "select_modules": "hf_quads.quant.selection",
    "save_quantized": "hf_quads.quant.checkpoint",
    "dequantize": "hf_quads.quant.checkpoint",
    "HfQuadsQuantizationConfig": "hf_quads.quant.hf_integration",
    "HfQuadsHfQuantizer": "hf_quads.quant.hf_integration",
    "pack_bits": "hf_quads.quant.packing",
    "unpack_bits": "hf_quads.quant.packing",
    "packed_numel": "hf_quads.quant.packing",
    "GroupLayout": "hf_quads.quant.layout",
    "QATModule": "hf_quads.quant.modules",
    "PackedModule": "hf_quads.quant.modules",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_quads.quant' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
