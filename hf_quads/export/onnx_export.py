"""ONNX export through Optimum, with ONNX Runtime int8 / 4-bit quantization and a parity check.

``export_onnx(model_dir, out_dir, quantization=None | "int8" | "int4")``:

1. loads the checkpoint (an hf-quads packed checkpoint is dequantized to the exact
   float weights its codes stand for) and saves a plain copy with its processor;
2. exports it with ``optimum.exporters.onnx.main_export``: ``audio-classification``
   for Whisper / Wav2Vec2 / HuBERT classifiers, ``automatic-speech-recognition-with-past``
   for Whisper encoder-decoders (encoder, decoder, decoder with past);
3. quantizes every ``.onnx`` file: ``int8`` is ONNX Runtime dynamic quantization of
   ``MatMul`` only (the Wav2Vec2 weight-normed positional conv cannot be quantized),
   ``int4`` is ONNX Runtime's ``MatMulNBits`` (block 32, symmetric);
4. checks parity on speech: the PyTorch model and the exported one on the same clips,
   argmax (or greedy token) agreement and the largest logit difference, saved as
   ``parity.json`` beside the model.

The result loads with ``ORTModelForAudioClassification`` / ``ORTModelForSpeechSeq2Seq``.
Needs the ``export`` extra (optimum-onnx caps transformers below 4.58).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import HfQuadsError

Quantization = Literal["int8", "int4"]
PARITY_NAME = "parity.json"
#: Sentences spoken (espeak-ng) for the parity check when no audio is given.
PARITY_SENTENCES: tuple[str, ...] = (
    "Turn on the lights in the kitchen.",
    "Decrease the volume.",
    "Bring me my shoes, please.",
    "Switch the language to German.",
    "Set the heating to twenty degrees.",
    "Turn off the music in the bedroom.",
    "Increase the temperature in the washroom.",
    "Change the language to Korean.",
)


class ExportError(HfQuadsError, ValueError):
    """A model or setting ONNX export cannot handle, or the export extra is missing."""


def require_export_extra() -> None:
    """Raise :class:`ExportError` naming the extra when optimum-onnx cannot be imported."""
    try:
        import optimum.exporters.onnx
        import optimum.onnxruntime  # noqa: F401
    except Exception as error:  # ImportError, or optimum failing against transformers 5
        raise ExportError(
            "ONNX export needs the `export` extra: pip install 'hf-quads[export]' "
            "(optimum-onnx, which requires transformers < 4.58; "
            f"here: {type(error).__name__}: {error})"
        ) from None


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote and how closely it matches PyTorch."""

    out_dir: str
    task: str
    quantization: str | None
    files: list[str]
    size_bytes: int
    parity: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------- task
def _kind(config: Any) -> Literal["classification", "seq2seq"]:
    architectures = config.architectures or []
    if any(a.endswith("ForConditionalGeneration") for a in architectures):
        if config.model_type != "whisper":
            raise ExportError(f"seq2seq export supports Whisper, not {config.model_type!r}")
        return "seq2seq"
    if any(
        a.endswith(("ForAudioClassification", "ForSequenceClassification")) for a in architectures
    ):
        return "classification"
    raise ExportError(
        f"cannot export architectures {architectures}: supported are audio classifiers "
        "(Whisper, Wav2Vec2, HuBERT) and Whisper encoder-decoders"
    )


def load_dequantized(model_dir: str | os.PathLike) -> torch.nn.Module:
    """A saved classifier or Whisper seq2seq as plain float PyTorch, in eval mode.

    hf-quads packed checkpoints are dequantized to the float weights their codes stand for.
    """
    from transformers import AutoConfig, AutoModelForAudioClassification, AutoModelForSpeechSeq2Seq

    from ..quant import dequantize

    kind = _kind(AutoConfig.from_pretrained(model_dir))
    cls = AutoModelForSpeechSeq2Seq if kind == "seq2seq" else AutoModelForAudioClassification
    model = cls.from_pretrained(model_dir)
    return dequantize(model).eval()


def _copy_processor_files(src: Path, dst: Path) -> None:
    """The checkpoint's own processor files (feature extractor, tokenizer, chat template).

    They overwrite what the exporter re-saved, which may be a converted tokenizer class.
    """
    skip = {"config.json", "generation_config.json", "model.safetensors.index.json"}
    for path in src.iterdir():
        wanted = path.suffix in (".json", ".txt", ".model", ".jinja") and path.name not in skip
        if path.is_file() and wanted:
            shutil.copy2(path, dst / path.name)


# -------------------------------------------------------------------------- quantization
def quantize_onnx_file(path: Path, quantization: Quantization) -> None:
    """Quantize one ``.onnx`` file in place (int8 MatMul dynamic, or 4-bit MatMulNBits)."""
    import onnx

    tmp = path.with_suffix(".quant.onnx")
    if quantization == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            path, tmp, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
            per_channel=True, extra_options={"MatMulConstBOnly": True},
        )  # fmt: skip
    elif quantization == "int4":
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(onnx.load(path), block_size=32, is_symmetric=True)
        quantizer.process()
        quantizer.model.save_model_to_file(str(tmp), use_external_data_format=False)
    else:
        raise ExportError(f"quantization must be None, 'int8' or 'int4', got {quantization!r}")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------- parity
def parity_audio(n: int = 8, sampling_rate: int = 16_000) -> list[np.ndarray]:
    """``n`` spoken sentences (espeak-ng) at ``sampling_rate``: inputs for the parity check."""
    import soxr

    from ..data.synth import Espeak

    engine = Espeak()
    clips = []
    for i in range(n):
        text = PARITY_SENTENCES[i % len(PARITY_SENTENCES)]
        wave = engine.synthesize(text, seed=i).astype(np.float32) / 32768.0
        clips.append(soxr.resample(wave, engine.sample_rate, sampling_rate).astype(np.float32))
    return clips


def _features(model_dir: Path, audio: Sequence[Any]) -> dict[str, torch.Tensor]:
    from transformers import AutoFeatureExtractor

    from ..data import prepare_features

    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    feats = prepare_features(list(audio), extractor, return_tensors="pt")
    return {
        k: v for k, v in feats.items() if k in ("input_features", "input_values", "attention_mask")
    }


def _classification_parity(torch_model, ort_model, inputs) -> dict[str, Any]:
    with torch.no_grad():
        reference = torch_model(**inputs).logits.float()
    exported = ort_model(**inputs).logits.float()
    return {
        "examples": int(reference.shape[0]),
        "argmax_agreement": float((reference.argmax(-1) == exported.argmax(-1)).float().mean()),
        "max_abs_logit_diff": float((reference - exported).abs().max()),
    }


def _seq2seq_parity(torch_model, ort_model, inputs, max_new_tokens: int) -> dict[str, Any]:
    features = inputs["input_features"]
    start = torch_model.generation_config.decoder_start_token_id
    decoder_input_ids = torch.full((features.shape[0], 1), start, dtype=torch.long)
    with torch.no_grad():
        reference = torch_model(input_features=features, decoder_input_ids=decoder_input_ids)
        reference_ids = torch_model.generate(
            input_features=features, max_new_tokens=max_new_tokens, do_sample=False
        )
    exported = ort_model(input_features=features, decoder_input_ids=decoder_input_ids)
    exported_ids = ort_model.generate(
        input_features=features, max_new_tokens=max_new_tokens, do_sample=False
    )
    width = max(reference_ids.shape[1], exported_ids.shape[1])
    pad = torch_model.generation_config.pad_token_id or 0

    def padded(ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad)

    a, b = padded(reference_ids), padded(exported_ids)
    return {
        "examples": int(features.shape[0]),
        "token_agreement": float((a == b).float().mean()),
        "sequence_agreement": float((a == b).all(-1).float().mean()),
        "max_abs_logit_diff": float((reference.logits - exported.logits).abs().max()),
    }


def _ort_model(out_dir: Path, kind: str) -> Any:
    from optimum.onnxruntime import ORTModelForAudioClassification, ORTModelForSpeechSeq2Seq

    if kind == "seq2seq":
        return ORTModelForSpeechSeq2Seq.from_pretrained(out_dir, use_cache=True)
    return ORTModelForAudioClassification.from_pretrained(out_dir)


# -------------------------------------------------------------------------------- export
def export_onnx(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    quantization: Quantization | None = None,
    *,
    audio: Sequence[Any] | None = None,
    num_parity_examples: int = 8,
    max_new_tokens: int = 32,
    opset: int | None = None,
) -> ExportResult:
    """Export a saved model to ONNX (optionally int8 / int4) and check it against PyTorch.

    Args:
        model_dir: a ``save_pretrained`` directory (plain or hf-quads packed) with its
            feature extractor (and tokenizer, for seq2seq).
        out_dir: where the ONNX model, its config and processor files, and
            ``parity.json`` go (replaced if present).
        quantization: ``None`` (fp32), ``"int8"`` or ``"int4"``.
        audio: clips (paths or 16 kHz arrays) for the parity check; default
            ``num_parity_examples`` sentences spoken by espeak-ng.
        max_new_tokens: greedy generation length of the seq2seq parity check.
    """
    require_export_extra()
    from optimum.exporters.onnx import main_export
    from transformers import AutoConfig

    from ..atomic import atomic_directory

    if quantization not in (None, "int8", "int4"):
        raise ExportError(f"quantization must be None, 'int8' or 'int4', got {quantization!r}")
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"{model_dir}: no config.json (not a save_pretrained directory)")
    config = AutoConfig.from_pretrained(model_dir)
    kind = _kind(config)
    task = "automatic-speech-recognition-with-past" if kind == "seq2seq" else "audio-classification"
    torch_model = load_dequantized(model_dir)
    shapes = {}
    if config.model_type == "whisper":
        shapes["nb_max_frames"] = 2 * config.max_source_positions

    with (
        tempfile.TemporaryDirectory(prefix="hf-quads-export-") as work,
        atomic_directory(out_dir) as tmp,
    ):
        plain = Path(work) / "plain"
        torch_model.save_pretrained(plain)
        _copy_processor_files(model_dir, plain)
        main_export(str(plain), tmp, task=task, opset=opset, do_validation=False, **shapes)
        _copy_processor_files(model_dir, tmp)
        onnx_files = sorted(tmp.glob("*.onnx"))
        if quantization is not None:
            for path in onnx_files:
                quantize_onnx_file(path, quantization)
        inputs = _features(
            model_dir, audio if audio is not None else parity_audio(num_parity_examples)
        )
        ort_model = _ort_model(tmp, kind)
        if kind == "seq2seq":
            parity = _seq2seq_parity(torch_model, ort_model, inputs, max_new_tokens)
        else:
            parity = _classification_parity(torch_model, ort_model, inputs)
        parity.update({"quantization": quantization, "reference": "PyTorch fp32 (dequantized)"})
        (tmp / PARITY_NAME).write_text(json.dumps(parity, indent=2) + "\n")
        files = sorted(p.name for p in tmp.iterdir())
        size = sum(p.stat().st_size for p in onnx_files)
    return ExportResult(str(out_dir), task, quantization, files, size, parity)


__all__ = [
    "PARITY_NAME",
    "ExportError",
    "ExportResult",
    "export_onnx",
    "load_dequantized",
    "parity_audio",
    "quantize_onnx_file",
    "require_export_extra",
]
