"""The example scripts in examples/, run end to end as a user runs them, on tiny inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_example(script: str, *args: str, timeout: float = 240) -> str:
    """Run ``examples/<script>`` in a fresh interpreter, offline; its stdout, or a failure."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, f"examples/{script}", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


@pytest.mark.slow
def test_quads_fsc_example_writes_a_4bit_checkpoint_with_test_metrics(tmp_path):
    from transformers import AutoModelForAudioClassification, WhisperFeatureExtractor

    import hf_quads  # noqa: F401  (registers the "hf_quads" quantizer with transformers)
    from hf_quads.data import FSC_INTENTS
    from hf_quads.data.synth import synthesize_fsc_corpus
    from hf_quads.models import whisper_classifier

    fsc = tmp_path / "fluent_speech_commands_dataset"
    synthesize_fsc_corpus(
        fsc, train_speakers=3, valid_speakers=1, test_speakers=1, phrasings_per_intent=1,
        num_workers=0, progress=False,
    )  # fmt: skip
    teacher = whisper_classifier(FSC_INTENTS, d_model=32, encoder_layers=1, seconds=3)
    teacher.save_pretrained(tmp_path / "teacher")
    WhisperFeatureExtractor(feature_size=80, chunk_length=3).save_pretrained(tmp_path / "teacher")
    out = tmp_path / "student"

    stdout = run_example(
        "quads_fsc.py", "--fsc_root", str(fsc), "--teacher", str(tmp_path / "teacher"),
        "--student_config", '{"d_model": 16, "encoder_layers": 1, "heads": 2, "seconds": 3}',
        "--max_steps", "6", "--bits", "4", "--max_train_samples", "64",
        "--max_eval_samples", "16", "--output_dir", str(out),
    )  # fmt: skip

    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["bits"] == 4
    assert config["quantization_config"]["method"] == "kmeans"
    assert config["d_model"] == 16 and len(config["id2label"]) == len(FSC_INTENTS)
    results = json.loads((out / "test_results.json").read_text())
    assert 0.0 <= results["test_accuracy"] <= 1.0 and 0.0 <= results["test_macro_f1"] <= 1.0
    card = (out / "README.md").read_text()
    assert "- 4-bit" in card and "phase schedule `quads`" in card
    assert f"value: {results['test_accuracy']}" in card  # the card reports the test metrics
    assert (out / "preprocessor_config.json").is_file()
    assert f"test accuracy {results['test_accuracy']:.4f}" in stdout and str(out) in stdout

    model = AutoModelForAudioClassification.from_pretrained(out)  # the packed 4-bit student
    assert type(model).__name__ == "WhisperForAudioClassification"
    assert model.config.quantization_config.bits == 4
    with torch.no_grad():
        logits = model(input_features=torch.zeros(1, 80, 300)).logits
    assert logits.shape == (1, len(FSC_INTENTS)) and torch.isfinite(logits).all()


@pytest.mark.slow
def test_prune_qwen2_audio_example_prunes_recovers_and_merges(tmp_path):
    pytest.importorskip("bitsandbytes", reason="the recovery step trains with QLoRA")
    from tiny_models import qwen2_audio_with_processor
    from transformers import Qwen2AudioForConditionalGeneration

    from hf_quads.data.synth import synthesize_st_corpus
    from hf_quads.prune import get_layer_stack

    model, processor = qwen2_audio_with_processor(
        ["turn on the lights", "Mach das Licht an.", "Musik lauter, bitte."] * 4, text_layers=3
    )
    model.save_pretrained(tmp_path / "teacher")
    processor.save_pretrained(tmp_path / "teacher")
    synthesize_st_corpus(
        tmp_path / "st", train_speakers=1, valid_speakers=1, test_speakers=1,
        sentences_per_speaker=8, num_workers=0, progress=False,
    )  # fmt: skip
    out = tmp_path / "out"

    stdout = run_example(
        "prune_qwen2_audio.py", "--model", str(tmp_path / "teacher"),
        "--data_root", str(tmp_path / "st"), "--output_dir", str(out),
        "--num_layers_to_remove", "1", "--dev_samples", "4", "--eval_samples", "4",
        "--train_samples", "4", "--lora_r", "4", "--epochs", "1", "--learning_rate", "1e-3",
        "--batch_size", "4", "--max_new_tokens", "4", "--max_seconds", "3",
    )  # fmt: skip

    summary = json.loads(stdout[stdout.rindex('{\n  "removed_layers"') :])  # the last print
    report = json.loads((out / "pruning_report.json").read_text())
    assert report["stack"] == "decoder" and report["num_layers_before"] == 3
    assert report["removal_order"] == summary["removed_layers"] == [1]  # 0 and -1 are protected
    assert summary["llm_layers"] == [3, 2]
    assert summary["sequence_kd_rows"]["reference"] == 4  # + the teacher's new translations
    assert set(summary["chrf++"]) == {"teacher", "pruned", "recovered"}
    assert all(0.0 <= score <= 100.0 for score in summary["chrf++"].values())
    assert (out / "pruning_plot.png").is_file()
    pruned = json.loads((out / "pruned" / "config.json").read_text())
    assert pruned["text_config"]["num_hidden_layers"] == 2
    recovered = Qwen2AudioForConditionalGeneration.from_pretrained(out / "recovered")
    assert recovered.config.text_config.num_hidden_layers == 2
    assert recovered.config.audio_config.encoder_layers == 2  # the audio encoder stays whole
    assert get_layer_stack(recovered, "decoder").num_layers == 2
    before = Qwen2AudioForConditionalGeneration.from_pretrained(out / "pruned").state_dict()
    after = recovered.state_dict()
    assert before.keys() == after.keys()  # the adapters are merged away: a plain checkpoint
    changed = [k for k in after if "layers" in k and not torch.equal(before[k], after[k])]
    assert any("proj" in k for k in changed)  # the QLoRA step trained and was merged in
    assert (out / "recovered" / "tokenizer_config.json").is_file()
