"""The prune-and-recover recipe: schema, the recipe files, and a short end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_quads.recipes import PruneRecoverRecipe, RecipeError, run_prune_recover

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("bitsandbytes", reason="the recovery step trains with QLoRA (bitsandbytes)")


def tiny_recipe(tmp_path: Path, **prune) -> dict:
    return {
        "teacher": {
            "d_model": 32, "encoder_layers": 1, "decoder_layers": 3, "heads": 4, "seconds": 4,
            "vocab_size": 300,
            "training": {"num_train_epochs": 2, "per_device_train_batch_size": 8,
                         "learning_rate": 3e-3, "disable_tqdm": True},
        },
        "data": {
            "root": str(tmp_path / "st"), "dev_samples": 6, "eval_samples": 6,
            "synthesize": {"train_speakers": 2, "valid_speakers": 1, "test_speakers": 1,
                           "sentences_per_speaker": 10, "num_workers": 0, "progress": False},
        },
        "prune": {"num_layers_to_remove": 1, "generation": {"max_new_tokens": 12},
                  "batch_size": 8, **prune},
        "recover": {
            "qlora": {"r": 4, "alpha": 8},
            "training": {"num_train_epochs": 1, "per_device_train_batch_size": 8,
                         "learning_rate": 1e-3, "disable_tqdm": True},
        },
        "output_dir": str(tmp_path / "out"),
    }  # fmt: skip


def test_recipe_files_parse():
    files = sorted((ROOT / "trainers").glob("iwslt25-*.yaml"))
    assert {f.name for f in files} >= {
        "iwslt25-qwen2audio-ende.yaml",
        "iwslt25-qwen2audio-enzh.yaml",
        "iwslt25-tiny-whisper-ende.yaml",
    }
    for path in files:
        recipe = PruneRecoverRecipe.from_yaml(path)
        assert recipe.prune.protect == [0, -1]
        assert recipe.recover.qlora.bnb_4bit_quant_type == "nf4"
    paper = PruneRecoverRecipe.from_yaml(ROOT / "trainers/iwslt25-qwen2audio-enzh.yaml")
    assert (paper.prune.metric, paper.prune.num_layers_to_remove) == ("chrf", 8)
    assert (paper.recover.qlora.r, paper.recover.qlora.alpha) == (64, 128)
    assert paper.recover.training["learning_rate"] == 1e-5


def test_recipe_errors(tmp_path):
    raw = tiny_recipe(tmp_path)
    with pytest.raises(RecipeError, match=r"recipe\.prune: unknown key\(s\) \['layers'\]"):
        PruneRecoverRecipe.from_dict({**raw, "prune": {"layers": 3}})
    with pytest.raises(RecipeError, match="exactly one of model_name_or_path"):
        PruneRecoverRecipe.from_dict({**raw, "model_name_or_path": "x"})
    with pytest.raises(RecipeError, match="say when to stop"):
        PruneRecoverRecipe.from_dict({**raw, "prune": {"metric": "chrf"}})
    with pytest.raises(RecipeError, match="no such recipe file"):
        PruneRecoverRecipe.from_yaml(tmp_path / "missing.yaml")


def test_tiny_prune_recover_run_writes_its_reports(tmp_path):
    report = run_prune_recover(PruneRecoverRecipe.from_dict(tiny_recipe(tmp_path)))
    out = tmp_path / "out"
    for name in ("pruning_report.json", "pruning_plot.png", "prune_recover_report.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "prune_recover_report.json").read_text())["metric"] == "chrf++"
    pruning = json.loads((out / "pruning_report.json").read_text())
    assert pruning["removal_order"] == report["removed_layers"]
    assert len(report["removed_layers"]) == 1 and report["removed_layers"][0] in (1,)
    assert (report["teacher"]["layers"], report["pruned"]["layers"]) == (3, 2)
    assert report["pruned"]["parameters"] < report["teacher"]["parameters"]
    assert report["recovered"]["parameters"] == report["pruned"]["parameters"]
    for stage in ("teacher", "pruned", "recovered"):
        assert 0.0 <= report[stage]["chrf++"] <= 100.0
    assert report["sequence_kd"]["reference"] == 20
    assert report["sequence_kd"]["teacher"] >= 0
    from transformers import WhisperForConditionalGeneration

    from hf_quads.models import SpeechTextProcessor

    recovered = WhisperForConditionalGeneration.from_pretrained(out / "recovered")
    assert recovered.config.decoder_layers == 2
    processor = SpeechTextProcessor.from_pretrained(out / "recovered")
    assert processor.tokenizer.eos_token == "</s>"
