"""QLoRA for recovering a pruned model: 4-bit NF4 base + LoRA adapters, then merge.

The IWSLT 2025 recipe: NF4 with double quantization and bf16 compute
(``BitsAndBytesConfig``), LoRA r=64, alpha=128, rsLoRA, dropout 0 on every linear
layer (PEFT), fine-tune, then ``merge_and_unload`` the adapters into the
full-precision weights so the result is a plain checkpoint.

Two fixes make bitsandbytes 4-bit train on CPUs with AVX512-BF16 (see
``ENVIRONMENT.md``): the fast CPU path repacks the weight on the first no-grad
forward, which breaks later backward passes, so it is switched off on every
``Linear4bit``; and layers whose ``out_features`` is not a multiple of 32 (small
classifier heads) stay in full precision. Both are harmless on GPUs.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch
from torch import nn

from ..errors import HfQuadsError

#: Layer names never put in 4-bit: heads that PEFT trains in full (``modules_to_save``).
HEAD_NAMES: tuple[str, ...] = ("classifier", "projector", "score")


class RecoveryError(HfQuadsError, ValueError):
    """Bad recovery settings, or a model the recovery step cannot handle."""


def _model_class(path: str | os.PathLike) -> type:
    import transformers
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(path)
    for name in config.architectures or []:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    return AutoModel


def _full_precision_skips(model: nn.Module) -> list[str]:
    """Module names to keep out of 4-bit: the output embeddings, heads and odd-sized layers."""
    skips = []
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        leaf = name.rsplit(".", 1)[-1]
        if module is output or leaf in HEAD_NAMES or module.out_features % 32:
            skips.append(name)
    return skips


def disable_cpu_repack(model: nn.Module) -> int:
    """Switch off bitsandbytes' AVX512-BF16 weight repack on every ``Linear4bit``.

    Returns how many layers were changed. Needed before training on such CPUs.
    """
    import bitsandbytes as bnb

    count = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def prepare_qlora(
    model_or_path: str | os.PathLike | nn.Module,
    *,
    r: int = 64,
    alpha: int = 128,
    use_rslora: bool = True,
    dropout: float = 0.0,
    target_modules: str | list[str] = "all-linear",
    modules_to_save: list[str] | None = None,
    compute_dtype: torch.dtype = torch.bfloat16,
    quant_type: str = "nf4",
    double_quant: bool = True,
    gradient_checkpointing: bool = False,
    device_map: Any = None,
    model_class: type | None = None,
) -> Any:
    """Load a model in 4-bit NF4 and wrap it with trainable LoRA adapters (a ``PeftModel``).

    Args:
        model_or_path: a checkpoint directory (or Hub id), or a model in memory, which
            is saved to a temporary directory and reloaded quantized.
        r, alpha, use_rslora, dropout, target_modules: the LoRA settings (paper defaults).
        modules_to_save: layers trained in full and saved with the adapter; default the
            classification heads the model has (``classifier``, ``projector``, ``score``).
        compute_dtype: dtype of the 4-bit matmuls (bf16 as in the paper).
        quant_type: ``"nf4"`` (QLoRA's NormalFloat) or ``"fp4"``.
        double_quant: quantize the quantization constants too (QLoRA's double quant).
        gradient_checkpointing: passed to PEFT's ``prepare_model_for_kbit_training``.
        device_map: where to load; default the current GPU when there is one, else CPU.
        model_class: the ``transformers`` class to load; default from the config.

    The full-precision source stays reachable for :func:`merge_qlora` (attribute
    ``hf_quads_base``), so merging needs no other argument.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    if r <= 0 or alpha <= 0:
        raise RecoveryError(f"LoRA r and alpha must be positive, got r={r}, alpha={alpha}")
    if quant_type not in ("nf4", "fp4"):
        raise RecoveryError(f"quant_type must be 'nf4' or 'fp4', got {quant_type!r}")
    if not 0.0 <= dropout < 1.0:
        raise RecoveryError(f"dropout must be in [0, 1), got {dropout}")

    keep_alive = None
    if isinstance(model_or_path, nn.Module):
        keep_alive = tempfile.TemporaryDirectory(prefix="hf-quads-qlora-base-")
        model_or_path.save_pretrained(keep_alive.name)
        source: str | os.PathLike = keep_alive.name
        cls = model_class or type(model_or_path)
    else:
        source = model_or_path
        cls = model_class or _model_class(source)

    with torch.device("meta"):
        skeleton = cls._from_config(cls.config_class.from_pretrained(source))
    skips = _full_precision_skips(skeleton)
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant_type,
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=skips,
    )
    if device_map is None and torch.cuda.is_available():
        device_map = {"": torch.cuda.current_device()}
    model = cls.from_pretrained(source, quantization_config=quantization, device_map=device_map)
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=gradient_checkpointing
    )
    if modules_to_save is None:
        modules_to_save = sorted(
            {n.rsplit(".", 1)[-1] for n in skips if n.rsplit(".", 1)[-1] in HEAD_NAMES}
        )
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        use_rslora=use_rslora,
        lora_dropout=dropout,
        target_modules=target_modules,
        modules_to_save=modules_to_save or None,
    )
    peft_model = get_peft_model(model, config)
    disable_cpu_repack(peft_model)
    peft_model.hf_quads_base = str(source)
    peft_model.hf_quads_base_class = cls
    peft_model._hf_quads_keep_alive = keep_alive  # the temporary base lives as long as the model
    return peft_model


def merge_qlora(
    peft_model: Any,
    output_dir: str | os.PathLike | None = None,
    *,
    base: str | os.PathLike | nn.Module | None = None,
    processor: Any = None,
    dtype: torch.dtype | str | None = None,
) -> nn.Module:
    """Merge trained LoRA adapters into the full-precision base: a plain ``transformers`` model.

    The adapters (and ``modules_to_save``) are applied to the unquantized weights
    (``base``: default the source :func:`prepare_qlora` loaded), then
    ``merge_and_unload`` folds them in. With ``output_dir`` the merged model (and
    ``processor``) is written atomically, loadable with ``from_pretrained``.
    A base given as a path is loaded on the CPU in ``dtype``, by default the one it
    was saved in (a bf16 7B model takes 15 GB, not the 30 GB of fp32).
    """
    from peft import PeftModel

    from ..atomic import atomic_directory

    if base is None:
        base = getattr(peft_model, "hf_quads_base", None)
        if base is None:
            raise RecoveryError(
                "this PeftModel was not made by prepare_qlora: pass base= (the full-precision "
                "model or its directory)"
            )
    if isinstance(base, nn.Module):
        base_model = base
    else:
        cls = getattr(peft_model, "hf_quads_base_class", None) or _model_class(base)
        base_model = cls.from_pretrained(base, dtype=dtype or "auto")
    with tempfile.TemporaryDirectory(prefix="hf-quads-adapter-") as adapter_dir:
        peft_model.save_pretrained(adapter_dir)
        merged = PeftModel.from_pretrained(base_model, adapter_dir).merge_and_unload()
    merged.eval()
    if output_dir is not None:
        with atomic_directory(output_dir) as tmp:
            merged.save_pretrained(tmp)
            if processor is not None:
                processor.save_pretrained(tmp)
    return merged


__all__ = [
    "HEAD_NAMES",
    "RecoveryError",
    "disable_cpu_repack",
    "merge_qlora",
    "prepare_qlora",
]
