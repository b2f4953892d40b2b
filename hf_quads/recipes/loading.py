"""Read a flat YAML recipe into ``HfArgumentParser`` dataclasses, with command-line overrides.

A recipe is a mapping of field names to values (``learning_rate: 3.0e-3``,
``bits: 4``, ``schedule: quads``), plus an optional ``task:`` that says which
runner it is for. Each value is turned into the ``--key value`` words the
dataclasses' own parser reads, so the recipe, ``hf-quads train R.yaml --bits 2``
and a Python ``HfArgumentParser`` script accept exactly the same things, with the
same types and checks. Errors name the file (or the command line) and the key:
an unknown key, a value of the wrong type, a missing local path, a failed
``__post_init__`` validation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import HfQuadsError

#: Class attribute of a recipe dataclass: the fields that must name an existing local path.
EXISTING_PATHS = "existing_paths"


class RecipeError(HfQuadsError, ValueError):
    """A recipe (or override) that does not describe a run; the message names file and key."""


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a YAML recipe file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of settings, got {type(raw).__name__}")
    return raw


class _Parser:
    """``HfArgumentParser`` whose errors become :class:`RecipeError` naming where they came from."""

    def __init__(self, dataclass_types: Sequence[type]) -> None:
        from transformers import HfArgumentParser

        class Parser(HfArgumentParser):
            where = ""

            def error(self, message: str) -> Any:  # argparse would print and exit
                # "argument --bits/--bits-x: invalid int value" -> "bits: invalid int value"
                message = re.sub(r"argument --([\w.]+)(?:/--[\w.-]+)?: ", r"\1: ", message)
                raise RecipeError(f"{self.where}: {message}")

        self.dataclass_types = tuple(dataclass_types)
        self.parser = Parser(list(dataclass_types), allow_abbrev=False)
        self.actions = {
            action.dest: action
            for action in self.parser._actions
            if action.option_strings and action.dest != "help"
        }

    def check_types(self, argv: list[str], where: str) -> None:
        """argparse's checks alone (keys, types, choices): no dataclass is built."""
        self.parser.where = where
        self.parser.parse_args(argv)

    def parse(self, argv: list[str], where: str) -> tuple[Any, ...]:
        self.parser.where = where
        try:
            return tuple(self.parser.parse_args_into_dataclasses(args=argv))
        except RecipeError:
            raise
        except (ValueError, TypeError) as error:  # a dataclass's __post_init__ validation
            raise RecipeError(f"{where}: {error}") from None


def _words(key: str, value: Any, action: argparse.Action) -> list[str]:
    option = f"--{key}"
    if isinstance(value, bool):
        return [option, "true" if value else "false"]
    if isinstance(value, dict):
        return [option, json.dumps(value)]
    if isinstance(value, (list, tuple)):
        if action.nargs not in ("+", "*"):
            raise TypeError(f"expected one value, got the list {value!r}")
        return [option, *(json.dumps(v) if isinstance(v, dict) else str(v) for v in value)]
    return [option, str(value)]


def _recipe_argv(raw: dict[str, Any], parser: _Parser, where: str) -> list[str]:
    """The ``--key value`` words of a recipe mapping; unknown keys are errors naming ``where``."""
    argv: list[str] = []
    for key, value in raw.items():
        if key not in parser.actions:
            names = ", ".join(t.__name__ for t in parser.dataclass_types)
            raise RecipeError(f"{where}: unknown key {key!r} (not a field of {names})")
        if value is None:
            continue  # the field's default
        try:
            argv += _words(key, value, parser.actions[key])
        except TypeError as error:
            raise RecipeError(f"{where}: {key}: {error}") from None
    return argv


def _check_paths(parsed: Sequence[Any], where: str) -> None:
    for obj in parsed:
        for name in getattr(type(obj), EXISTING_PATHS, ()):
            value = getattr(obj, name)
            if value is not None and not Path(value).exists():
                raise RecipeError(f"{where}: {name}: no such file or directory: {value}")


def parse_recipe(
    path: str | os.PathLike, dataclass_types: Sequence[type], overrides: Sequence[str] = ()
) -> tuple[Any, ...]:
    """Parse a recipe file and ``--key value`` overrides into ``dataclass_types`` instances.

    The overrides win over the file; its ``task:`` key is not a field and is skipped.
    """
    where = str(path)
    raw = {k: v for k, v in read_recipe(path).items() if k != "task"}
    parser = _Parser(dataclass_types)
    argv = _recipe_argv(raw, parser, where)
    if overrides:
        # The file's own values are checked alone; validation waits for the overrides,
        # which may fix what the file leaves to the user (``--data_root``).
        parser.check_types(argv, where)
        where = f"{where} (with command line overrides)"
        argv += list(overrides)
    parsed = parser.parse(argv, where)
    _check_paths(parsed, where)
    return parsed


def apply_dotted_overrides(
    raw: dict[str, Any], overrides: Sequence[str], where: str
) -> dict[str, Any]:
    """``--section.key value`` words applied to a nested recipe (values read as YAML)."""
    import copy

    import yaml

    out = copy.deepcopy(raw)
    words = list(overrides)
    while words:
        option = words.pop(0)
        if not option.startswith("--") or not words or words[0].startswith("--"):
            raise RecipeError(f"{where}: expected --section.key value pairs, got {option!r}")
        keys = option[2:].split(".")
        node = out
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise RecipeError(f"{where}: {option}: {key!r} is not a section")
            node = child
        node[keys[-1]] = yaml.safe_load(words.pop(0))
    return out


def recipe_task(path: str | os.PathLike) -> str:
    """The ``task:`` a recipe file declares (``quads``, ``prune``, ``demo``)."""
    task = read_recipe(path).get("task")
    if not isinstance(task, str):
        raise RecipeError(f"{path}: task: say which run this is (quads, prune or demo)")
    return task


__all__ = [
    "EXISTING_PATHS",
    "RecipeError",
    "apply_dotted_overrides",
    "parse_recipe",
    "read_recipe",
    "recipe_task",
]
