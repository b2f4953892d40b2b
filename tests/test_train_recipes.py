"""Recipes in trainers/, the recipe loader's errors, `hf-quads train` and the quick demo."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hf_quads import DistillQuantConfig
from hf_quads.cli import main
from hf_quads.recipes.demo import (
    QUICK,
    DemoArguments,
    check_goals,
    format_table,
    per_voice_accuracy,
    voice_summary,
)
from hf_quads.recipes.loading import (
    RecipeError,
    apply_dotted_overrides,
    parse_recipe,
    recipe_task,
)
from hf_quads.recipes.quads import QuadsDataArguments, QuadsModelArguments

ROOT = Path(__file__).resolve().parent.parent
QUADS_TYPES = (QuadsModelArguments, QuadsDataArguments, DistillQuantConfig)


@pytest.mark.parametrize("path", sorted((ROOT / "trainers").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_parses_and_validates(path, tmp_path):
    task = recipe_task(path)
    if task == "quads":
        model, data, config = parse_recipe(
            path, QUADS_TYPES, ["--data_root", str(tmp_path), "--bf16", "false"]
        )
        assert config.schedule == "quads" and config.num_train_epochs == 20
        assert config.quant_method == "kmeans" and config.bits == 4
        assert model.student_model_name_or_path == "openai/whisper-base"
        assert data.dataset in ("fsc", "slurp")
    elif task == "demo":
        (args,) = parse_recipe(path, (DemoArguments,))
        assert dataclasses.asdict(args) == dataclasses.asdict(DemoArguments()), (
            "the demo recipe and DemoArguments' defaults must say the same"
        )
    else:
        from hf_quads.recipes import PruneRecoverRecipe

        assert task == "prune"
        assert PruneRecoverRecipe.from_yaml(path).prune.protect == [0, -1]


def test_the_paper_recipes_exist():
    names = {p.name for p in (ROOT / "trainers").glob("*.yaml")}
    assert {
        "quads-fsc.yaml",
        "quads-slurp.yaml",
        "iwslt25-qwen2audio-ende.yaml",
        "iwslt25-qwen2audio-enzh.yaml",
        "demo-speech-commands.yaml",
    } <= names


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_recipe_errors_name_the_key_and_the_file(tmp_path):
    base = f"task: quads\noutput_dir: {tmp_path}/out\ndata_root: {tmp_path}\nstudent_config: {{d_model: 16}}\n"
    cases = {
        "bitz: 4\n": "unknown key 'bitz'",
        "learning_rate: fast\n": "recipe.yaml: learning_rate: invalid float value: 'fast'",
        "bits: [4, 2]\n": "bits: expected one value",
        "bits: 12\n": "bits must be",
        f"slurp_audio_dir: {tmp_path}/nowhere\n": "slurp_audio_dir: no such file or directory",
        "quant_method: gptq\n": "recipe.yaml: quant_method: invalid choice: 'gptq'",
    }
    for extra, message in cases.items():
        path = write(tmp_path, base + extra)
        with pytest.raises(RecipeError) as info:
            parse_recipe(path, QUADS_TYPES)
        assert str(info.value).startswith(str(path)), info.value
        assert message in str(info.value), info.value
    path = write(tmp_path, base.replace(f"data_root: {tmp_path}", "data_root: /no/such/fsc"))
    with pytest.raises(RecipeError, match=r"recipe\.yaml: data_root: no such directory"):
        parse_recipe(path, QUADS_TYPES)
    path = write(tmp_path, base)
    with pytest.raises(
        RecipeError, match=r"recipe\.yaml \(with command line overrides\): bits: invalid int"
    ):
        parse_recipe(path, QUADS_TYPES, ["--bits", "four"])
    with pytest.raises(RecipeError, match="not valid YAML"):
        recipe_task(write(tmp_path, "task: [quads\n"))


def test_cli_train_reports_recipe_errors_in_one_line(tmp_path, capsys):
    path = write(tmp_path, f"task: quads\noutput_dir: {tmp_path}\nbitz: 4\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: unknown key 'bitz'" in err and "Traceback" not in err
    assert main(["train", str(write(tmp_path, "task: fly\n"))]) == 2
    assert "unknown task 'fly'" in capsys.readouterr().err


def test_cli_train_fields_lists_the_recipe_keys(capsys):
    assert main(["train", str(ROOT / "trainers/quads-fsc.yaml"), "--fields"]) == 0
    out = capsys.readouterr().out
    assert "--student_model_name_or_path" in out and "--centroid_weight" in out
    assert "--learning_rate" in out


def test_dotted_overrides_of_a_prune_recipe():
    raw = {"prune": {"metric": "chrf++"}, "output_dir": "a"}
    out = apply_dotted_overrides(
        raw, ["--prune.num_layers_to_remove", "4", "--recover.qlora.r", "8", "--output_dir", "b"],
        "cli",
    )  # fmt: skip
    assert out == {
        "prune": {"metric": "chrf++", "num_layers_to_remove": 4},
        "recover": {"qlora": {"r": 8}},
        "output_dir": "b",
    }
    assert raw["prune"] == {"metric": "chrf++"}
    with pytest.raises(RecipeError, match=r"expected --section\.key value pairs"):
        apply_dotted_overrides(raw, ["--prune.metric"], "cli")
    with pytest.raises(RecipeError, match="'output_dir' is not a section"):
        apply_dotted_overrides(raw, ["--output_dir.x", "1"], "cli")


@pytest.fixture(scope="module")
def tiny_fsc(tmp_path_factory) -> Path:
    from hf_quads.data.synth import synthesize_fsc_corpus

    root = tmp_path_factory.mktemp("fsc")
    synthesize_fsc_corpus(root, train_speakers=3, valid_speakers=1, test_speakers=1,
                          phrasings_per_intent=1, num_workers=0, progress=False)  # fmt: skip
    return root


def test_cli_train_runs_a_quads_recipe_with_overrides(tiny_fsc, tmp_path):
    from hf_quads.data import FSC_INTENTS
    from hf_quads.models import whisper_classifier

    teacher = tmp_path / "teacher"
    whisper_classifier(FSC_INTENTS, d_model=32, encoder_layers=1, seconds=3).save_pretrained(
        teacher
    )
    recipe = write(
        tmp_path,
        f"""task: quads
teacher_model_name_or_path: {teacher}
student_config: {{d_model: 16, encoder_layers: 1, heads: 2, seconds: 3}}
data_root: {tiny_fsc}
schedule: "distill:1,quant:1"
bits: 4
max_steps: 6
per_device_train_batch_size: 16
learning_rate: 3.0e-3
output_dir: {tmp_path}/out
report_to: none
disable_tqdm: true
use_cpu: true
""",
    )
    assert main(["train", str(recipe), "--bits", "2", "--max_train_samples", "64"]) == 0
    out = tmp_path / "out"
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["bits"] == 2
    results = json.loads((out / "test_results.json").read_text())
    assert 0.0 <= results["test_accuracy"] <= 1.0 and "test_macro_f1" in results
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model_relation == "quantized" and "2-bit" in card.data.tags
    assert {r.metric_type for r in card.data.eval_results} >= {"accuracy", "macro_f1"}


def test_quick_demo_runs_every_step(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--quick", "--output_dir", str(out), "--data_dir", str(tmp_path / "fsc")])
    assert code == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    names = [row["name"] for row in results["rows"]]
    assert names == ["teacher", "student fp32", "student 8-bit", "student 4-bit", "student 2-bit"]
    assert results["table"] in printed and "wall time" in printed
    sizes = {row["name"]: row["size_bytes"] for row in results["rows"]}
    assert sizes["student 2-bit"] < sizes["student 4-bit"] < sizes["student 8-bit"]
    assert sizes["student 8-bit"] < sizes["student fp32"] < sizes["teacher"]
    params = {row["name"]: row["parameters"] for row in results["rows"]}
    assert params["student 2-bit"] == params["student fp32"] < params["teacher"]
    for row in results["rows"]:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["gmacs"] > 0
    assert set(results["goals"]) == {
        "teacher_accuracy_at_least_95",
        "wall_time_at_most_15_min",
        "student_4bit_within_1_point",
        "student_2bit_within_5_points",
    }
    assert set(results["timings_seconds"]) >= {"data", "teacher", "distill", "evaluate"}
    assert (out / "results.png").stat().st_size > 0
    # Accuracy per unseen test voice, named by its espeak variant, for every model.
    per_voice = results["per_voice"]
    assert len(per_voice) == QUICK["test_speakers"]
    assert all(row["variant"] and row["utterances"] > 0 for row in per_voice)
    assert all(0.0 <= row[name] <= 1.0 for row in per_voice for name in names)
    assert [row["teacher"] for row in per_voice] == sorted(row["teacher"] for row in per_voice)
    total = sum(row["utterances"] for row in per_voice)
    weighted = sum(row["teacher"] * row["utterances"] for row in per_voice) / total
    assert weighted == pytest.approx(results["rows"][0]["accuracy"])
    assert "teacher: " in printed and "test voices at >= 95 %" in printed
    card = ModelCard.load(out / "student-4bit" / "README.md")
    assert card.data.base_model_relation == "quantized"
    assert "| teacher |" in card.text
    # Clips were trimmed of leading silence; the saved extractor and the card say so.
    saved = json.loads((out / "student-4bit" / "preprocessor_config.json").read_text())
    assert saved["trim_leading_silence"] == 0.01 and saved["chunk_length"] == 2
    assert "Each clip's leading silence is trimmed first" in card.text
    export = results["export"]
    if "skipped" in export:
        assert "export" in export["skipped"]
    else:
        assert export["parity"]["argmax_agreement"] >= 0.9
        assert (Path(export["dir"]) / "model.onnx").is_file()


def test_demo_refuses_teacher_settings_out_of_range():
    for key, value, message in (
        ("heads", 3, r"heads must divide teacher_d_model \(64\), got 3"),
        ("heads", 0, "heads must divide"),
        ("teacher_epochs", 0.0, "teacher_epochs must be > 0"),
        ("teacher_label_smoothing", 1.0, r"teacher_label_smoothing must be in \[0, 1\)"),
        ("teacher_label_smoothing", -0.1, "teacher_label_smoothing"),
        ("teacher_weight_decay", -1e-3, "teacher_weight_decay must be >= 0"),
        ("seconds", 0, "seconds must be a whole number >= 1, got 0"),
    ):
        with pytest.raises(ValueError, match=message):
            DemoArguments(**{key: value})
    assert DemoArguments(teacher_label_smoothing=0.0, teacher_weight_decay=0.0)
    assert DemoArguments(heads=4).heads == 4


def test_goals_and_table_from_rows():
    def row(name, acc, size, bits=None):
        out = {"name": name, "parameters": 1000, "size_bytes": size, "gmacs": 0.5,
               "accuracy": acc, "macro_f1": acc}  # fmt: skip
        return {**out, "bits": bits} if bits else out

    rows = [row("teacher", 0.96, 4_000_000), row("student fp32", 0.955, 400_000),
            row("student 4-bit", 0.952, 100_000, 4), row("student 2-bit", 0.90, 80_000, 2)]  # fmt: skip
    assert check_goals(rows, [4, 2], 600.0) == {
        "teacher_accuracy_at_least_95": True,
        "wall_time_at_most_15_min": True,
        "student_4bit_within_1_point": True,
        "student_2bit_within_5_points": False,  # 6 points below the teacher
    }
    assert not check_goals(rows, [4, 2], 901.0)["wall_time_at_most_15_min"]
    table = format_table(rows)
    assert "40.0x smaller" in table and "50.0x smaller" in table
    assert "| 95.20 " in table and table.splitlines()[1].startswith("---")


def test_per_voice_rows_and_summary():
    labels = [0, 1, 2, 0, 1, 2]
    predictions = {"teacher": [0, 1, 2, 0, 0, 0], "student 4-bit": [0, 1, 0, 0, 1, 2]}
    speaker_ids = ["a", "a", "a", "b", "b", "b"]
    speakers = {"a": {"variant": "m3", "voice": "en-us"}}  # b: not in speakers.csv
    rows = per_voice_accuracy(predictions, labels, speaker_ids, speakers)
    assert [r["speaker_id"] for r in rows] == ["b", "a"]  # the teacher's worst first
    assert rows[0] == {"speaker_id": "b", "variant": None, "voice": None, "utterances": 3,
                       "teacher": pytest.approx(1 / 3), "student 4-bit": 1.0}  # fmt: skip
    assert rows[1]["variant"] == "m3" and rows[1]["student 4-bit"] == pytest.approx(2 / 3)
    assert voice_summary(rows, "teacher") == (
        "teacher: 1 of 2 test voices at >= 95 %; below: b 33.3 %"
    )
    assert voice_summary(rows, "student 4-bit", threshold=0.5) == (
        "student 4-bit: 2 of 2 test voices at >= 50 %"
    )
