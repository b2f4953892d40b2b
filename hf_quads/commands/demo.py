"""``hf-quads demo``: compress a speech-commands model end to end (the README's main command)."""

from __future__ import annotations

from ..recipes.demo import DemoArguments as Arguments

HELP = "QUADS end to end on synthetic speech commands: teacher, 32/8/4/2-bit students, table"

DESCRIPTION = """\
Synthesise the speech-commands corpus (espeak-ng) if it is absent, train a
teacher (a small Whisper-style classifier), distil a smaller fp32 student with
DistillQuantTrainer, quantize it to each of --bits (k-means codebooks, retrained),
evaluate every model on speakers with unseen voices, export the 4-bit student to
ONNX int8, write its model card, and print a table like the QUADS paper's
(parameters, size on disk, GMACs, accuracy, macro-F1, reduction vs the teacher).
Writes results.json and results.png into --output_dir. --quick runs every step
on a tiny corpus in about a minute. trainers/demo-speech-commands.yaml holds the
same settings for `hf-quads train`.
"""

__all__ = ["DESCRIPTION", "HELP", "Arguments", "run"]


def run(args: Arguments) -> int:
    """Run the demo."""
    from ..recipes.demo import run_demo

    run_demo(args)
    return 0
