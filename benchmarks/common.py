"""Shared by the benchmark scripts: the machine description, the JSON write, and the
command line and process pool of the demo benchmarks (runs named ``setting@seed``)."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import transformers


def machine_info(**versions: str) -> dict[str, str]:
    """Platform, Python, torch and transformers versions, plus any ``versions`` given."""
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        **versions,
    }


def write_result(result: dict[str, Any], out: Path) -> None:
    """Write ``result`` as indented JSON to ``out`` and print it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def run_names(settings: list[str], seeds: list[int] | None = None) -> list[str]:
    """The runs to train: each setting once (duplicates dropped), or once per seed as
    ``name@seed``; a run already named with its seed is kept as it is."""
    runs: list[str] = []
    for name in settings:
        runs += [f"{name}@{seed}" for seed in seeds] if seeds and "@" not in name else [name]
    return list(dict.fromkeys(runs))


def demo_runs_parser(
    description: str,
    settings: Iterable[str],
    run_name: Callable[[str], str],
    *,
    default: list[str],
    run_dir: str,
    out: Path,
) -> argparse.ArgumentParser:
    """The options every demo benchmark takes: the runs (``--settings``, ``--seeds``),
    the corpus (``--data_dir``, ``--quick``), the processes (``--parallel``,
    ``--threads``) and where things go (``--run_dir``, ``--out``). ``run_name``
    checks one ``NAME[@SEED]`` (raising ``argparse.ArgumentTypeError``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--settings", nargs="+", default=default, type=run_name, metavar="NAME[@SEED]",
        help=f"settings to run, each optionally with its seed: {', '.join(settings)}",
    )  # fmt: skip
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=None,
        help="run every setting once per training seed (runs named setting@seed)",
    )  # fmt: skip
    parser.add_argument("--data_dir", default=None, help="demo corpus (default: the demo's)")
    parser.add_argument("--parallel", type=int, default=2, help="runs trained at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--quick", action="store_true", help="the quick demo's tiny corpus")
    parser.add_argument("--run_dir", default=run_dir)
    parser.add_argument("--out", type=Path, default=out)
    return parser


def parse_demo_runs(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse and check a :func:`demo_runs_parser`'s options; ``settings`` becomes the
    runs, one per seed where ``--seeds`` is given."""
    args = parser.parse_args(argv)
    args.settings = run_names(args.settings, args.seeds)
    for name in ("parallel", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def demo_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``DemoArguments`` fields the shared options set (corpus and processes)."""
    overrides: dict[str, Any] = {"quick": args.quick, "num_proc": args.parallel}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    return overrides


def map_runs(function: Callable[[Any], Any], jobs: list[Any], parallel: int) -> list[Any]:
    """``function`` over ``jobs`` in up to ``parallel`` spawned processes, results in order
    (spawned, not forked: the parent's torch thread pool must not be inherited)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=min(parallel, len(jobs))) as pool:
        return pool.map(function, jobs, chunksize=1)
