"""``hf-quads export MODEL_DIR --out DIR [--quantization int8|int4]``: ONNX export + parity check."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

HELP = "export a saved model to ONNX (fp32, int8 or 4-bit) and check parity with PyTorch"

DESCRIPTION = """\
Export a save_pretrained directory (plain, or an hf-quads packed checkpoint, which
is dequantized first) to ONNX through Optimum: audio classifiers (Whisper,
Wav2Vec2, HuBERT) as audio-classification, Whisper encoder-decoders as
automatic-speech-recognition-with-past. --quantization int8 applies ONNX Runtime
dynamic quantization to MatMul; int4 applies ONNX Runtime's 4-bit MatMulNBits.

The exported model is run beside the PyTorch one on spoken sentences (espeak-ng)
and the argmax / greedy-token agreement and largest logit difference are printed
and saved as parity.json in --out. Loads with ORTModelForAudioClassification /
ORTModelForSpeechSeq2Seq. Needs the `export` extra: pip install 'hf-quads[export]'.
"""

POSITIONAL = ("model_dir",)


@dataclass
class Arguments:
    """Options of ``hf-quads export``."""

    model_dir: str = field(metadata={"help": "saved model directory (config.json + weights)"})
    out: str = field(metadata={"help": "output directory (replaced if present)"})
    quantization: Literal["none", "int8", "int4"] = field(
        default="none",
        metadata={"help": "none (fp32), int8 (dynamic, MatMul) or int4 (MatMulNBits)"},
    )
    parity_examples: int = field(
        default=8, metadata={"help": "spoken sentences in the parity check"}
    )
    max_new_tokens: int = field(
        default=32, metadata={"help": "seq2seq: greedy tokens generated in the parity check"}
    )


def run(args: Arguments) -> int:
    """Export, then print the files, their size and the parity numbers."""
    from ..export import export_onnx

    result = export_onnx(
        args.model_dir,
        args.out,
        None if args.quantization == "none" else args.quantization,
        num_parity_examples=args.parity_examples,
        max_new_tokens=args.max_new_tokens,
    )
    print(json.dumps(result.to_dict(), indent=2))
    return 0
