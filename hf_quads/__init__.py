"""hf-quads: compress speech models inside the Hugging Face ecosystem.

Quantized distillation (QUADS) and iterative layer pruning with QLoRA and
knowledge distillation, as drop-in pieces for ``transformers.Trainer``.
Public names are imported lazily so ``import hf_quads`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_LAZY: dict[str, str] = {
    "DistillQuantConfig": "hf_quads.config",
    "DistillQuantTrainer": "hf_quads.trainer",
    "QuantSpec": "hf_quads.quant",
    "quantize_": "hf_quads.quant",
    "save_quantized": "hf_quads.quant",
    "dequantize": "hf_quads.quant",
    "AudioDecodeError": "hf_quads.errors",
    "DatasetFormatError": "hf_quads.errors",
    "HfQuadsError": "hf_quads.errors",
    "load_audio": "hf_quads.data",
    "prepare_features": "hf_quads.data",
    "set_silence_trim": "hf_quads.data",
    "load_fsc": "hf_quads.data",
    "load_slurp": "hf_quads.data",
    "load_covost": "hf_quads.data",
    "load_mustc": "hf_quads.data",
    "FSC_INTENTS": "hf_quads.data",
    "synthesize_fsc_corpus": "hf_quads.data.synth",
    "synthesize_st_corpus": "hf_quads.data.synth",
    "load_metric": "hf_quads.metrics",
    "profile_model": "hf_quads.profile",
    "profile_model_dir": "hf_quads.profile",
    "make_compute_metrics": "hf_quads.metrics",
    "LayerPruner": "hf_quads.prune",
    "PruningResult": "hf_quads.prune",
    "remove_layers": "hf_quads.prune",
    "get_layer_stack": "hf_quads.prune",
    "prepare_qlora": "hf_quads.recover",
    "merge_qlora": "hf_quads.recover",
    "build_sequence_kd_dataset": "hf_quads.recover",
    "AudioLLMTranslator": "hf_quads.audio_llm",
    "SpeechSeq2SeqCollator": "hf_quads.data",
    "export_onnx": "hf_quads.export",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_quads' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


from .quant import _hook  # noqa: E402, F401  (registers the "hf_quads" quantizer with transformers)
