"""Model cards: metadata that huggingface_hub parses back, the compression table, the template."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from hf_quads.hub import (
    CardError,
    CardSpec,
    ModelRow,
    hub_model_id,
    latest_eval_metrics,
    latest_evaluation,
    render_card,
    template_path,
)


def quads_spec(**overrides) -> CardSpec:
    fields = {
        "repo_id": "someone/whisper-fsc-4bit",
        "task": "audio-classification",
        "rows": [
            ModelRow("teacher", 1_200_000, 4_800_000, 1.5, {"accuracy": 96.1, "macro_f1": 95.8}),
            ModelRow("student (fp32)", 134_000, 540_000, 0.2, {"accuracy": 95.5, "macro_f1": 95.0}),
            ModelRow(
                "student (4-bit)", 134_000, 128_500, 0.2, {"accuracy": 95.2, "macro_f1": 94.9}
            ),
        ],
        "base_model": "openai/whisper-base",
        "base_model_relation": "quantized",
        "method": {"bits": 4, "quant_method": "kmeans", "schedule": "quads"},
        "dataset": "fluent_speech_commands",
        "dataset_split": "test",
        "hyperparameters": {"learning_rate": 3e-3, "num_train_epochs": 20},
        "onnx_quantization": "int8",
    }
    fields.update(overrides)
    return CardSpec(**fields)


def test_card_metadata_round_trips_through_huggingface_hub(tmp_path):
    card = render_card(quads_spec())
    card.save(tmp_path / "README.md")
    back = ModelCard.load(tmp_path / "README.md")
    data = back.data
    assert data.base_model == "openai/whisper-base"
    assert data.base_model_relation == "quantized"
    assert data.library_name == "transformers"
    assert {"hf-quads", "quantized", "4-bit", "kmeans", "distillation", "onnx"} <= set(data.tags)
    results = {(r.metric_type, r.metric_value, r.dataset_split) for r in data.eval_results}
    assert results == {("accuracy", 95.2, "test"), ("macro_f1", 94.9, "test")}
    assert data.datasets == ["fluent_speech_commands"]


def test_card_body_has_the_table_reductions_usage_and_citations():
    text = str(render_card(quads_spec()))
    assert "| **student (4-bit)** (this model) | 134,000 | 0.129 | 0.20 | 95.20 | 94.90 |" in text
    assert "37.4x vs the teacher" in text and "4.2x vs the student (fp32)" in text
    assert "| `learning_rate` | `0.003` |" in text
    assert 'AutoModelForAudioClassification.from_pretrained("someone/whisper-fsc-4bit")' in text
    assert (
        'ORTModelForAudioClassification.from_pretrained("someone/whisper-fsc-4bit", subfolder="onnx")'
        in text
    )
    assert "@inproceedings{biswas2025quads" in text and "@inproceedings{moslem2025efficient" in text
    assert "{{ " not in text and "{%" not in text  # nothing left unrendered


def test_pruned_translation_card():
    spec = quads_spec(
        repo_id="someone/qwen2audio-ende-24l",
        task="translation",
        rows=[
            ModelRow("teacher", 8_400_000_000, 16_790_000_000, None, {"chrf++": 55.0}),
            ModelRow("pruned + QLoRA + KD", 4_120_000_000, 8_650_000_000, None, {"chrf++": 55.1}),
        ],
        base_model_relation="finetune",
        method={
            "pruned_layers": [28, 25, 9],
            "pruned_stack": "decoder",
            "recovery": "QLoRA r=64 + sequence-level KD",
        },
        dataset="acl6060",
        onnx_quantization=None,
    )
    card = render_card(spec)
    assert {"pruned", "qlora"} <= set(card.data.tags) and "quantized" not in card.data.tags
    text = str(card)
    assert "layers removed in order: 28, 25, 9" in text
    assert "AutoModelForSpeechSeq2Seq" in text and "onnx/" not in text
    assert "1.9x vs the teacher" in text


def test_template_and_errors():
    assert template_path().name == "compressed_model.md.jinja"
    with pytest.raises(CardError, match="not found"):
        template_path("missing.jinja")
    with pytest.raises(CardError, match="at least the row"):
        render_card(quads_spec(rows=[]))


@pytest.mark.slow
def test_the_wheel_ships_the_templates(tmp_path):
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", str(root), "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("hf_quads-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hf_quads/model_cards/compressed_model.md.jinja" in names
    assert "hf_quads/hub/card.py" in names


def test_latest_eval_metrics_reads_the_last_evaluation():
    history = [
        {"loss": 2.0, "step": 1},
        {"eval_loss": 1.0, "eval_accuracy": 50.0, "eval_runtime": 0.1, "step": 2},
        {"loss": 1.5, "step": 3},
        {"eval_loss": 0.9, "eval_accuracy": 60.0, "eval_macro_f1": 55.0, "epoch": 1.0},
        {"train_runtime": 3.0},
    ]
    assert latest_eval_metrics(history) == {"accuracy": 60.0, "macro_f1": 55.0}
    assert latest_eval_metrics([{"loss": 1.0}]) == {}
    # A test-set evaluation after training (metric_key_prefix="test") is what a card reports.
    history.append({"test_loss": 0.8, "test_accuracy": 58.0, "test_runtime": 0.2})
    assert latest_evaluation(history) == ("test", {"accuracy": 58.0})


def test_base_model_is_a_hub_id_never_a_local_path(tmp_path):
    assert hub_model_id("openai/whisper-base") == "openai/whisper-base"
    assert hub_model_id("gpt2") == "gpt2"
    for local in (str(tmp_path), "./teacher", "/data/teacher", "~/teacher", "a/b/c", None, ""):
        assert hub_model_id(local) is None, local


def test_hyperparameters_name_what_ended_the_run(tmp_path):
    from hf_quads.config import DistillQuantConfig
    from hf_quads.hub.card import training_hyperparameters

    common = {"output_dir": str(tmp_path), "report_to": "none", "use_cpu": True}
    by_steps = training_hyperparameters(DistillQuantConfig(max_steps=40, **common))
    assert by_steps["max_steps"] == 40 and "num_train_epochs" not in by_steps
    by_epochs = training_hyperparameters(DistillQuantConfig(num_train_epochs=7, **common))
    assert by_epochs["num_train_epochs"] == 7 and "max_steps" not in by_epochs
    assert by_epochs["bits"] == 4 and by_epochs["schedule"] == "quads"


def test_card_says_how_inputs_are_prepared(tmp_path):
    from types import SimpleNamespace

    from transformers import WhisperFeatureExtractor

    from hf_quads.data import set_silence_trim
    from hf_quads.hub import preprocessing_lines

    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=2)
    (window,) = preprocessing_lines(extractor)
    assert window.startswith("Audio at 16000 Hz becomes 80 log-mel bins over a 2 s window")
    set_silence_trim(extractor)
    lines = preprocessing_lines(extractor)
    assert len(lines) == 2 and "50 ms before its first sample above 1 % of its peak" in lines[1]
    # The saved config, a processor holding the extractor and the extractor agree.
    extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert preprocessing_lines(saved) == lines
    assert preprocessing_lines(tmp_path) == preprocessing_lines(str(tmp_path)) == lines
    assert preprocessing_lines(tmp_path / "no-such-model") == []
    assert preprocessing_lines(SimpleNamespace(feature_extractor=extractor)) == lines
    assert preprocessing_lines(None) == [] and preprocessing_lines(object()) == []
    text = str(render_card(quads_spec(preprocessing=lines)))
    assert "from transformers import AutoFeatureExtractor, AutoModelForAudioClassification" in text
    assert 'hf_quads.prepare_features(["clip.wav"], feature_extractor' in text
    assert "Inputs:\n\n- Audio at 16000 Hz" in text and "- Each clip's leading silence" in text
    plain = str(render_card(quads_spec()))
    assert "Inputs:" not in plain and "AutoFeatureExtractor" not in plain
