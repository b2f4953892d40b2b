"""The README stays true: every DistillQuantConfig field is documented with its default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from transformers import TrainingArguments

from hf_quads.config import DistillQuantConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_config_field_is_documented_with_its_default():
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", README.read_text(), flags=re.M))
    base = {f.name for f in dataclasses.fields(TrainingArguments)}
    for f in dataclasses.fields(DistillQuantConfig):
        if f.name in base:
            continue
        assert f.name in rows, f"README does not document DistillQuantConfig.{f.name}"
        default = (
            "None"
            if f.default is None
            else repr(f.default)
            if isinstance(f.default, str)
            else str(f.default)
        )
        assert rows[f.name] == default, (
            f"README says {f.name} defaults to {rows[f.name]}, code {default}"
        )


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test\n" in ci
