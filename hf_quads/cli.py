"""The ``hf-quads`` command line.

Each command lives in ``hf_quads/commands/<name>.py`` and exposes ``Arguments`` (a
dataclass that ``HfArgumentParser`` turns into options), ``run(args) -> int``,
a one-line ``HELP`` and optionally ``POSITIONAL``: the field names that may be
given as leading positional words (``hf-quads profile DIR``), and ``OVERRIDES =
True`` when the command takes a recipe's ``--key value`` overrides after its own
options (they reach ``run(args, overrides)``). This module only
finds the command, parses its options and calls it; commands are imported lazily
so ``hf-quads --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

#: Command words -> module that implements them.
COMMANDS: dict[tuple[str, ...], str] = {
    ("data", "synth"): "hf_quads.commands.data_synth",
    ("profile",): "hf_quads.commands.profile",
    ("train",): "hf_quads.commands.train",
    ("demo",): "hf_quads.commands.demo",
    ("prune",): "hf_quads.commands.prune",
    ("export",): "hf_quads.commands.export",
    ("card",): "hf_quads.commands.card",
    ("push",): "hf_quads.commands.push",
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the paragraphs of a command's description and show option defaults."""


def _usage() -> str:
    lines = ["usage: hf-quads <command> [options]", "", "commands:"]
    for words, module_name in COMMANDS.items():
        help_text = getattr(importlib.import_module(module_name), "HELP", "")
        lines.append(f"  {' '.join(words):<14} {help_text}")
    lines += ["", "Run `hf-quads <command> --help` for the options of one command."]
    return "\n".join(lines)


def _find_command(argv: Sequence[str]) -> tuple[tuple[str, ...], ModuleType] | None:
    for words in sorted(COMMANDS, key=len, reverse=True):
        if tuple(argv[: len(words)]) == words:
            return words, importlib.import_module(COMMANDS[words])
    return None


def _positional_to_options(module: ModuleType, rest: list[str]) -> list[str]:
    """Rewrite leading positional words into ``--field value`` for HfArgumentParser."""
    names = list(getattr(module, "POSITIONAL", ()))
    out: list[str] = []
    while rest and names and not rest[0].startswith("-"):
        out += [f"--{names.pop(0)}", rest.pop(0)]
    return out + rest


def _not_kernel_notice(record: logging.LogRecord) -> bool:
    """False for bitsandbytes' import-time notice that an optional CPU kernel package is absent.

    The Trainer imports bitsandbytes; on AVX512-BF16 CPUs it then warns that the
    ``kernels`` package is missing, on every command, though it falls back to its own
    4-bit path. Other bitsandbytes messages pass.
    """
    return "gemm_4bit_forward" not in record.getMessage()


def _quiet_optional_kernel_warning() -> None:
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_not_kernel_notice)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hf-quads`` console script."""
    _quiet_optional_kernel_warning()
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"hf-quads {__version__}")
        return 0
    found = _find_command(argv)
    if found is None:
        print(f"hf-quads: unknown command {' '.join(argv[:2])!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    words, module = found
    parser = HfArgumentParser(
        module.Arguments,
        prog=f"hf-quads {' '.join(words)}",
        description=getattr(module, "DESCRIPTION", module.HELP),
        formatter_class=_HelpFormatter,
        allow_abbrev=False,  # `--out` must not silently become `--output_dir`
    )
    rest = _positional_to_options(module, argv[len(words) :])
    overrides: list[str] = []
    try:  # an Arguments dataclass may refuse a combination in __post_init__
        if getattr(module, "OVERRIDES", False):
            args, overrides = parser.parse_args_into_dataclasses(
                args=rest, return_remaining_strings=True
            )
        else:
            (args,) = parser.parse_args_into_dataclasses(args=rest)
    except ValueError as err:
        print(f"hf-quads {' '.join(words)}: error: {err}", file=sys.stderr)
        return 2
    import torch

    from .distributed import close_process_group
    from .errors import HfQuadsError

    # Denormal floats make AdamW on small models over 10x slower on CPUs.
    torch.set_flush_denormal(True)

    try:
        if getattr(module, "OVERRIDES", False):
            code = int(module.run(args, overrides) or 0)
        else:
            code = int(module.run(args) or 0)
    except HfQuadsError as err:  # bad input the user can fix: a message, not a traceback
        print(f"hf-quads {' '.join(words)}: error: {err}", file=sys.stderr)
        return 2
    close_process_group()  # under torchrun: no gloo abort at interpreter exit
    return code


if __name__ == "__main__":
    raise SystemExit(main())
