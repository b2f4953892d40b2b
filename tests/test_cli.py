"""The ``hf-quads`` entry point: command discovery, help, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hf_quads import __version__
from hf_quads.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for words in COMMANDS:
        assert " ".join(words) in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("words", list(COMMANDS))
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as info:
        main([*words, "--help"])
    assert info.value.code == 0
    assert f"hf-quads {' '.join(words)}" in capsys.readouterr().out


def test_bad_input_is_a_message_not_a_traceback(tmp_path, capsys):
    (tmp_path / "foreign.txt").write_text("not a corpus")
    assert main(["data", "synth", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hf-quads data synth: error:") and "Traceback" not in err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "hf-quads"
    assert script.is_file(), f"console script missing beside {sys.executable}"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "usage: hf-quads" in result.stdout


def test_prune_recover_reports_a_bad_recipe_in_one_line(tmp_path, capsys):
    assert main(["prune", str(tmp_path / "missing.yaml")]) == 2
    assert "no such recipe file" in capsys.readouterr().err
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("output_dir: out\nteacher: {}\nprune: {num_layers: 2}\n")
    assert main(["prune", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "recipe.prune: unknown key(s) ['num_layers']" in err and "Traceback" not in err


def test_settings_an_arguments_dataclass_refuses_are_a_one_line_error(capsys):
    assert main(["demo", "--bits", "9", "--quant_epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("hf-quads demo: error: bits must be from 1 to 8") and "Traceback" not in err
    )


def test_options_are_never_abbreviated(tmp_path, capsys):
    # `--js` must not be taken for `--json`: it is an unknown option
    assert main(["profile", str(tmp_path), "--js", "out.json"]) == 2
    assert "--js" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_bitsandbytes_missing_kernel_notice_is_dropped_other_messages_pass(capsys):
    import logging

    assert main(["--version"]) == 0
    bnb = logging.getLogger("bitsandbytes.backends.cpu.ops")

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord(bnb.name, logging.WARNING, __file__, 1, msg, (), None)

    assert not bnb.filter(record("Failed to load CPU gemm_4bit_forward from kernels-community"))
    assert bnb.filter(record("some other bitsandbytes warning"))
