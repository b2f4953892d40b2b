"""Pushing compressed checkpoints: a loopback Hub receives the files byte for byte, with the card."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import LoopbackHub
from huggingface_hub import ModelCard
from tiny_models import whisper_classifier, whisper_feature_extractor

from hf_quads.hub import PushError, collect_files, push_folder, spec_from_checkpoint

TOKEN = "hf_loopbackSECRETtoken0123456789"


def _online(monkeypatch, hub: LoopbackHub) -> None:
    """Let huggingface_hub reach the loopback Hub (the suite runs with HF_HUB_OFFLINE=1)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the loopback Hub speaks LFS
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    try:  # huggingface_hub < 1.0 mounts an offline adapter on a cached requests session
        from huggingface_hub.utils import reset_sessions
    except ImportError:
        from huggingface_hub.utils._http import close_session as reset_sessions
    reset_sessions()


@pytest.fixture
def hub(monkeypatch):
    server = LoopbackHub(token=TOKEN).start()
    _online(monkeypatch, server)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def packed_4bit(tmp_path_factory) -> Path:
    """A saved 4-bit k-means Whisper classifier with eval results and training leftovers."""
    from hf_quads.quant import QuantSpec, quantize_, save_quantized

    model = whisper_classifier(d_model=64, layers=2, seed=0)
    quantize_(model, QuantSpec(bits=4), step="convert")
    out = tmp_path_factory.mktemp("packed")
    save_quantized(model, out)
    whisper_feature_extractor().save_pretrained(out)
    (out / "eval_results.json").write_text(json.dumps({"eval_accuracy": 0.91, "eval_loss": 0.3}))
    (out / "checkpoint-10").mkdir()
    (out / "checkpoint-10" / "model.safetensors").write_bytes(b"training state")
    (out / ".cache").mkdir()
    (out / ".cache" / "x").write_bytes(b"hidden")
    return out


def _all_sent_bytes(hub: LoopbackHub) -> bytes:
    return b"".join(r["body"] for r in hub.requests)


def test_collect_files_skips_training_leftovers_and_maps_onnx(packed_4bit, tmp_path):
    files = collect_files(packed_4bit)
    assert "model.safetensors" in files and "config.json" in files
    assert not any(name.startswith(("checkpoint-", ".cache")) for name in files)
    onnx = tmp_path / "export"
    onnx.mkdir()
    with pytest.raises(PushError, match=r"no \.onnx file"):
        collect_files(packed_4bit, onnx)


def test_spec_from_checkpoint_measures_the_saved_model(packed_4bit):
    spec = spec_from_checkpoint(packed_4bit, base_model="openai/whisper-base")
    (row,) = spec.rows
    assert row.name == "student (4-bit)" and row.metrics == {"accuracy": 0.91}
    assert row.size_bytes == (packed_4bit / "model.safetensors").stat().st_size
    fp32 = whisper_classifier(d_model=64, layers=2, seed=0)
    assert row.parameters == sum(p.numel() for p in fp32.parameters())  # not the packed codes
    assert row.gmacs > 0
    assert spec.task == "audio-classification" and spec.base_model_relation == "quantized"
    assert spec.method == {"bits": 4, "quant_method": "kmeans"}
    # The inputs, from the saved preprocessor_config.json (a 3 s window, nothing trimmed).
    (window,) = spec.preprocessing
    assert "80 log-mel bins over a 3 s window" in window


def test_push_delivers_every_file_byte_for_byte_with_the_card(packed_4bit, hub, caplog, tmp_path):
    with caplog.at_level(logging.DEBUG):
        result = push_folder(packed_4bit, "whisper-fsc-4bit", token=TOKEN, private=True)
    assert result.repo_id == "tester/whisper-fsc-4bit"
    assert result.commit_url.startswith(f"{hub.url}/tester/whisper-fsc-4bit/commit/")
    stored = hub.repos["tester/whisper-fsc-4bit"]
    local = collect_files(packed_4bit)
    assert set(stored) == set(local) | {"README.md"} == set(result.files)
    for name, path in local.items():
        assert stored[name] == path.read_bytes(), name
    assert hub.lfs_paths() == {"model.safetensors"}  # the weights went through LFS
    assert hub.private["tester/whisper-fsc-4bit"] is True
    assert len(hub.commits) == 1
    # The card rendered from the checkpoint parses back with its metadata.
    (tmp_path / "README.md").write_bytes(stored["README.md"])
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "transformers"
    assert {"hf-quads", "quantized", "4-bit"} <= set(card.data.tags)
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("accuracy", 0.91)]
    assert 'from_pretrained("tester/whisper-fsc-4bit")' in card.text
    # The token went only in the Authorization header: never in a body, the card or the logs.
    assert TOKEN.encode() not in _all_sent_bytes(hub)
    assert all(TOKEN.encode() not in content for content in stored.values())
    assert TOKEN not in caplog.text
    assert all(
        r["headers"].get("authorization") == f"Bearer {TOKEN}"
        for r in hub.requests
        if r["method"] == "POST"
    )


def test_push_keeps_an_existing_card_and_commits_again(packed_4bit, hub, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name, path in collect_files(packed_4bit).items():
        (folder / name).write_bytes(path.read_bytes())
    (folder / "README.md").write_text("---\nlibrary_name: transformers\n---\n# mine\n")
    push_folder(folder, "someorg/model", token=TOKEN)
    (folder / "README.md").write_text("---\nlibrary_name: transformers\n---\n# mine, v2\n")
    push_folder(folder, "someorg/model", token=TOKEN, commit_message="second")
    stored = hub.repos["someorg/model"]
    assert stored["README.md"].endswith(b"# mine, v2\n")
    assert [c.summary for c in hub.commits] == ["Upload compressed model with hf-quads", "second"]
    # The second commit re-sent no LFS object: the Hub already had the weights.
    assert sum(1 for r in hub.requests if r["method"] == "PUT") == 1


def test_a_refused_token_raises_without_showing_it(packed_4bit, hub):
    wrong = "hf_wrongSECRETtoken9876543210"
    with pytest.raises(PushError) as info:
        push_folder(packed_4bit, "whisper", token=wrong)
    assert "401" in str(info.value) or "Unauthorized" in str(info.value)
    assert wrong not in str(info.value) and TOKEN not in str(info.value)
    assert hub.repos == {}


def test_a_token_from_the_environment_is_masked_too(packed_4bit, hub, monkeypatch):
    wrong = "hf_envSECRETtoken5555555555"
    monkeypatch.setenv("HF_TOKEN", wrong)
    with pytest.raises(PushError) as info:
        push_folder(packed_4bit, "whisper")  # no token argument: huggingface_hub reads HF_TOKEN
    assert "401" in str(info.value) or "Unauthorized" in str(info.value)
    assert wrong not in str(info.value)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(PushError, match=r"no config\.json"):
        push_folder(tmp_path, "x", token=TOKEN)


def _hub_env(hub: LoopbackHub) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, HF_HUB_OFFLINE="0", HF_HUB_DISABLE_XET="1")
    return env


@pytest.mark.export
def test_cli_push_uploads_checkpoint_card_and_onnx_export(packed_4bit, hub, tmp_path):
    """`hf-quads export` then `hf-quads card` then `hf-quads push`, as a user would."""
    from hf_quads.export import export_onnx

    folder = tmp_path / "model"
    folder.mkdir()
    for name, path in collect_files(packed_4bit).items():
        (folder / name).write_bytes(path.read_bytes())
    export_onnx(folder, folder / "onnx", "int8", num_parity_examples=2)
    cli = [sys.executable, "-m", "hf_quads.cli"]
    env = _hub_env(hub)
    card = subprocess.run(
        [*cli, "card", str(folder), "--repo_id", "tester/w4", "--base_model",
         "openai/whisper-base", "--onnx_quantization", "int8"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert card.returncode == 0, card.stderr
    push = subprocess.run(
        [*cli, "push", str(folder), "--repo_id", "w4"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr
    assert TOKEN not in push.stdout + push.stderr + card.stdout + card.stderr
    result = json.loads(push.stdout)
    stored = hub.repos["tester/w4"]
    local = collect_files(folder)
    assert set(stored) == set(local) == set(result["files"])
    assert {"onnx/model.onnx", "onnx/parity.json", "onnx/config.json"} <= set(stored)
    for name, path in local.items():
        assert stored[name] == path.read_bytes(), name
    assert {"model.safetensors", "onnx/model.onnx"} <= hub.lfs_paths()
    card_data = ModelCard(stored["README.md"].decode()).data
    assert card_data.base_model == "openai/whisper-base"
    assert card_data.base_model_relation == "quantized"
    assert "onnx" in card_data.tags


def test_cli_push_reads_endpoint_and_token_from_the_environment(packed_4bit, hub):
    push = subprocess.run(
        [sys.executable, "-m", "hf_quads.cli", "push", str(packed_4bit), "--repo_id", "org/w4",
         "--commit_message", "from the CLI"],
        env=_hub_env(hub), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr
    assert TOKEN not in push.stdout + push.stderr
    assert json.loads(push.stdout)["repo_id"] == "org/w4"
    assert set(hub.repos["org/w4"]) == set(collect_files(packed_4bit)) | {"README.md"}
    assert hub.commits[-1].summary == "from the CLI"


def test_trainer_push_to_hub_uploads_the_compressed_checkpoint(hub, tmp_path):
    from tiny_models import random_whisper_dataset

    from hf_quads import DistillQuantConfig, DistillQuantTrainer

    args = DistillQuantConfig(
        output_dir=str(tmp_path / "whisper-4bit"), report_to="none", max_steps=4,
        per_device_train_batch_size=8, learning_rate=3e-3, save_strategy="no",
        disable_tqdm=True, use_cpu=True, schedule="distill:1,quant:1", seed=0,
        hub_token=TOKEN, hub_private_repo=True,
    )  # fmt: skip
    data = random_whisper_dataset(16)
    trainer = DistillQuantTrainer(
        model=whisper_classifier(seed=2),
        teacher_model=whisper_classifier(seed=1),
        args=args,
        train_dataset=data,
        processing_class=whisper_feature_extractor(),
    )
    trainer.train()
    result = trainer.push_to_hub()
    assert result.repo_id == trainer.hub_model_id == "tester/whisper-4bit"
    stored = hub.repos["tester/whisper-4bit"]
    out = Path(args.output_dir)
    assert {"model.safetensors", "config.json", "README.md", "training_args.bin"} <= set(stored)
    for name in stored:
        assert stored[name] == (out / name).read_bytes(), name
    config = json.loads(stored["config.json"])
    assert config["quantization_config"]["bits"] == 4  # the packed checkpoint, not a training one
    card = ModelCard(stored["README.md"].decode())
    assert card.data.base_model_relation == "quantized"
    assert 'from_pretrained("tester/whisper-4bit")' in card.text
    assert all(TOKEN.encode() not in content for content in stored.values())
    assert hub.commits[-1].summary == "End of training"


def test_cli_card_writes_a_card_with_the_teacher_row(packed_4bit, tmp_path, capsys):
    from hf_quads.cli import main

    teacher = tmp_path / "teacher"
    whisper_classifier(d_model=64, layers=4, seed=1).save_pretrained(teacher)
    (teacher / "eval_results.json").write_text(json.dumps({"eval_accuracy": 0.95}))
    out = tmp_path / "card.md"
    code = main(
        ["card", str(packed_4bit), "--teacher_dir", str(teacher), "--out", str(out),
         "--base_model", "openai/whisper-base", "--dataset", "fsc", "--dataset_split", "test"]
    )  # fmt: skip
    assert code == 0 and str(out) in capsys.readouterr().out
    card = ModelCard.load(out)
    assert card.data.base_model_relation == "quantized" and card.data.datasets == ["fsc"]
    assert "| teacher |" in card.text and "x vs the teacher" in card.text
    assert main(["card", str(tmp_path / "missing")]) == 2
