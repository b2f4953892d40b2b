"""Compressed checkpoints: save a packed copy atomically, or dequantize to a plain model.

Layout of a packed checkpoint (``save_pretrained`` files, safetensors):

* per quantized module ``<name>``: ``<name>.weight_packed`` (uint8, the codes of
  the flattened weight as a dense little-endian bit stream, ``ceil(numel * bits / 8)``
  bytes), and ``<name>.weight_codebook`` (k-means, ``(groups, 2**bits)``) or
  ``<name>.weight_scale`` (uniform, ``(groups, 1)``) plus ``<name>.weight_zero_point``
  when asymmetric; ``<name>.bias`` as before;
* everything else unchanged;
* ``config.json`` with ``quantization_config`` (see
  :mod:`hf_quads.quant.hf_integration`), which makes ``from_pretrained`` rebuild the
  packed modules after ``import hf_quads``.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

from torch import nn

from hf_quads.atomic import atomic_directory

from .api import _set_child, packed_modules, qat_modules, quantize_
from .modules import dense_module
from .spec import QuantizationError, QuantSpec

__all__ = ["WEIGHT_FILE_PATTERNS", "dequantize", "dequantize_modules", "save_quantized"]

logger = logging.getLogger(__name__)

#: Files of an earlier save that a new save replaces (stale shards are removed).
WEIGHT_FILE_PATTERNS: tuple[str, ...] = (
    "model*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model*.bin",
    "pytorch_model.bin.index.json",
)


def _spec_of(model: nn.Module) -> QuantSpec:
    spec = getattr(model, "hf_quads_spec", None)
    if isinstance(spec, QuantSpec):
        return spec
    _, first = qat_modules(model)[0]
    return QuantSpec(method=first.hfq_method, bits=first.hfq_bits)


def save_quantized(
    model: nn.Module, save_directory: str | os.PathLike[str], **save_pretrained_kwargs: Any
) -> Path:
    """Write a packed checkpoint of ``model`` to ``save_directory``; return its path.

    A QAT-prepared model is converted on a deep copy (the caller's model is not
    modified); a converted (or loaded packed) model is saved as it is; a model with
    neither is saved as a plain checkpoint. The files are written into a temporary
    sibling directory and moved into place only when complete; other files already
    in ``save_directory`` are kept, earlier weight files replaced. Keyword arguments
    go to ``save_pretrained`` (``push_to_hub`` is refused: push the folder afterwards).
    """
    if save_pretrained_kwargs.get("push_to_hub"):
        raise QuantizationError(
            "save_quantized does not push: save first, then upload the folder "
            "(e.g. huggingface_hub.upload_folder or the trainer's push_to_hub)"
        )
    if not hasattr(model, "save_pretrained"):
        raise QuantizationError(
            f"{type(model).__name__} has no save_pretrained; save_quantized writes "
            "transformers models (PreTrainedModel)"
        )
    work = model
    if qat_modules(model):
        work = copy.deepcopy(model)
        quantize_(work, _spec_of(model), step="convert")
    elif not packed_modules(model):
        logger.info("save_quantized: the model is not quantized; writing a plain checkpoint")
    target = Path(save_directory)
    with atomic_directory(target, mode="merge", stale_patterns=WEIGHT_FILE_PATTERNS) as tmp:
        work.save_pretrained(tmp, **save_pretrained_kwargs)
    return target


def dequantize_modules(model: nn.Module) -> nn.Module:
    """Replace every QAT or packed module by a plain module with its dense quantized weight."""
    for name, module in qat_modules(model) + packed_modules(model):
        dense = dense_module(module)
        if dense is not module:
            _set_child(model, name, dense)
    return model


def dequantize(model: nn.Module) -> nn.Module:
    """Turn ``model`` back into a plain float model, in place, and return it.

    QAT and packed modules become ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` /
    ``nn.Embedding`` holding the exact quantized weight, and the quantization
    config is removed, so ``save_pretrained`` writes a checkpoint that any
    transformers install loads (and ONNX export sees ordinary layers).
    """
    from .api import _SPEC_ATTR

    dequantize_modules(model)
    model.__dict__.pop(_SPEC_ATTR, None)
    if hasattr(model, "config"):
        from .hf_integration import detach_quantization_config

        detach_quantization_config(model)
    return model
