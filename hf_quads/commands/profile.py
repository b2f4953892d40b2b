"""``hf-quads profile MODEL_DIR``: parameters, bytes on disk, theoretical size and GMACs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

HELP = "print parameters, size on disk, theoretical quantized size and GMACs of a saved model"

DESCRIPTION = """\
Profile a saved transformers model directory (config.json + weights).

Prints the parameters (total, trainable, per module type), the bytes of the
directory and of its weight files, the theoretical size with the Linear/Conv
weights stored at each of --bits bits (plus a k-means codebook of 2^bits fp32
centroids per tensor, or per-channel/group scales with --overhead scales), and
the GMACs of one forward pass counted with torch's FlopCounterMode on an
eager-attention, meta-device copy of the model.

Whisper models are counted at their fixed window (2 * max_source_positions
log-mel frames, 30 s for the released checkpoints): --seconds must be left out or
equal that window. Wav2Vec2/HuBERT models are counted on --seconds of waveform
(default 1 s). For Whisper encoder-decoders only the encoder is counted unless
--decoder_tokens N adds one teacher-forced decoder pass over N tokens.
"""

#: Leading positional words: ``hf-quads profile DIR`` == ``--model_dir DIR``.
POSITIONAL = ("model_dir",)


@dataclass
class Arguments:
    """Options of ``hf-quads profile``."""

    model_dir: str = field(
        metadata={"help": "saved model directory (from save_pretrained: config.json + weights)"}
    )
    seconds: float | None = field(
        default=None,
        metadata={
            "help": "audio duration for the GMAC count (default: Whisper's window; 1 s for "
            "wav2vec2/HuBERT)"
        },
    )
    bits: list[int] = field(
        default_factory=lambda: [32, 8, 4, 2],
        metadata={"help": "bit widths of the theoretical sizes"},
    )
    overhead: Literal["codebook", "scales", "none"] = field(
        default="codebook",
        metadata={
            "help": "per-tensor overhead of the theoretical sizes: codebook (k-means, 2^bits "
            "fp32 centroids), scales (one fp32 scale per channel or group), or none"
        },
    )
    group_size: int | None = field(
        default=None,
        metadata={"help": "with --overhead scales: one scale per this many weights of a row"},
    )
    zero_point: bool = field(
        default=False,
        metadata={"help": "with --overhead scales: an fp32 zero point beside each scale"},
    )
    include_embeddings: bool = field(
        default=False,
        metadata={"help": "also store embedding tables at --bits bits in the theoretical sizes"},
    )
    decoder_tokens: int | None = field(
        default=None,
        metadata={"help": "encoder-decoders: add one decoder pass over this many tokens"},
    )
    macs: bool = field(default=True, metadata={"help": "count GMACs (--no_macs to skip)"})
    json: str | None = field(
        default=None, metadata={"help": "also write the profile as JSON to this file"}
    )


def run(args: Arguments) -> int:
    """Profile ``args.model_dir``, print the table and optionally write JSON."""
    from ..profile import ProfileError, profile_model_dir

    for b in args.bits:
        if not 1 <= b <= 64:
            raise ProfileError(f"--bits values must be from 1 to 64, got {b}")
    if args.group_size is not None and args.group_size < 1:
        raise ProfileError(f"--group_size must be positive, got {args.group_size}")
    report = profile_model_dir(
        args.model_dir,
        seconds=args.seconds,
        bits=tuple(args.bits),
        overhead=args.overhead,
        include_embeddings=args.include_embeddings,
        group_size=args.group_size,
        zero_point=args.zero_point,
        decoder_tokens=args.decoder_tokens,
        macs=args.macs,
    )
    print(report.format())
    if args.json:
        target = Path(args.json)
        try:
            target.write_text(report.to_json() + "\n", encoding="utf-8")
        except OSError as err:
            raise ProfileError(f"cannot write {target}: {err}") from err
        print(f"wrote {target}")
    return 0
