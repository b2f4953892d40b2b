"""Packed checkpoints: save, size on disk, from_pretrained, pipeline, dequantize, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from tiny_models import hubert_classifier, wav2vec2_classifier, whisper_classifier
from torch import nn
from transformers import AutoModelForAudioClassification, WhisperFeatureExtractor

from hf_quads.atomic import atomic_directory
from hf_quads.profile import disk_usage, theoretical_size
from hf_quads.quant import (
    HfQuadsQuantizationConfig,
    QuantSpec,
    dequantize,
    packed_modules,
    qat_modules,
    quantize_,
    refit_,
    save_quantized,
    set_quantization_enabled,
    update_,
)
from hf_quads.quant.modules import PackedModule, QATModule

FEATURES = torch.randn(2, 80, 300, generator=torch.Generator().manual_seed(321))
REPO_ROOT = Path(__file__).resolve().parents[1]


def tiny_whisper(seed: int = 0) -> nn.Module:
    return whisper_classifier(d_model=64, seed=seed).eval()


def trained_qat(spec: QuantSpec, seed: int = 0) -> nn.Module:
    """A tiny Whisper after prepare, refit and one QAT step: eval mode, quantization on."""
    model = tiny_whisper(seed)
    quantize_(model, spec, step="prepare")
    refit_(model)
    set_quantization_enabled(model, True)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    model(input_features=FEATURES, labels=torch.tensor([3, 4])).loss.backward()
    optimizer.step()
    update_(model)
    return model.eval()


def logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_features=FEATURES).logits


def load(path: Path) -> nn.Module:
    return AutoModelForAudioClassification.from_pretrained(path)


def _overhead_options(spec: QuantSpec) -> dict:
    if spec.method == "kmeans":
        return {"overhead": "codebook"}
    return {"overhead": "scales", "zero_point": not spec.symmetric}


# --------------------------------------------------------------------------- save + load


CASES = [
    QuantSpec(bits=2),
    QuantSpec(bits=3),
    QuantSpec(bits=4),
    QuantSpec(bits=8),
    QuantSpec(method="uniform", bits=2),
    QuantSpec(method="uniform", bits=3),
    QuantSpec(method="uniform", bits=4),
    QuantSpec(method="uniform", bits=8),
]


@pytest.mark.parametrize("spec", CASES, ids=lambda s: f"{s.method}-{s.bits}bit")
def test_packed_checkpoint_loads_bit_identical_and_is_small(spec: QuantSpec, tmp_path) -> None:
    model = trained_qat(spec)
    expected = logits(model)
    out = save_quantized(model, tmp_path / "packed")
    # the caller's model is untouched: still QAT, same output
    assert qat_modules(model) and not packed_modules(model)
    assert torch.equal(logits(model), expected)

    config = json.loads((out / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "hf_quads" and config["format_version"] == 1
    assert config["method"] == spec.method and config["bits"] == spec.bits
    assert config["modules"]["encoder.layers.0.fc1"] == {
        "kind": "linear",
        "method": spec.method,
        "bits": spec.bits,
        "shape": [256, 64],
        "group_size": None if spec.method == "kmeans" else 64,
        "groups": 1 if spec.method == "kmeans" else 256,
        **({"symmetric": True} if spec.method == "uniform" else {}),
    }
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        packed = f.get_tensor("encoder.layers.0.fc1.weight_packed")
    assert "encoder.layers.0.fc1.weight" not in keys
    assert packed.dtype == torch.uint8 and packed.numel() == 256 * 64 * spec.bits // 8
    aux = "weight_codebook" if spec.method == "kmeans" else "weight_scale"
    assert f"encoder.conv1.{aux}" in keys and "encoder.layers.0.fc1.bias" in keys

    theory = theoretical_size(tiny_whisper(), spec.bits, **_overhead_options(spec)).total_bytes
    on_disk = disk_usage(out).total_bytes
    assert on_disk <= theory * 1.02 + 64 * 1024, (on_disk, theory)
    assert on_disk < theoretical_size(tiny_whisper(), 32).total_bytes * (spec.bits / 32 + 0.2)

    loaded = load(out)
    assert isinstance(loaded.encoder.layers[0].fc1, PackedModule)
    assert isinstance(loaded.config.quantization_config, HfQuadsQuantizationConfig)
    assert torch.equal(logits(loaded), expected)


def test_grouped_asymmetric_and_mixed_precision_round_trip(tmp_path) -> None:
    for i, spec in enumerate(
        [
            QuantSpec(bits=3, group_size=100, module_bits={"fc1": 5, "classifier": 8}),
            QuantSpec(
                method="uniform", bits=4, symmetric=False, granularity="group", group_size=48
            ),
            QuantSpec(method="uniform", bits=1, symmetric=False, granularity="tensor"),
        ]
    ):
        model = trained_qat(spec)
        expected = logits(model)
        loaded = load(save_quantized(model, tmp_path / str(i)))
        assert torch.equal(logits(loaded), expected), spec
        entries = loaded.config.quantization_config.modules
        if spec.module_bits:
            assert entries["encoder.layers.1.fc1"]["bits"] == 5
            assert entries["classifier"]["bits"] == 8
            assert entries["encoder.layers.1.fc2"]["bits"] == 3
            assert entries["encoder.conv1"]["groups"] == 64 * 3  # rows of 240: 100+100+40


def test_saving_a_loaded_packed_model_again_round_trips(tmp_path) -> None:
    model = trained_qat(QuantSpec(bits=4))
    expected = logits(model)
    first = load(save_quantized(model, tmp_path / "a"))
    first.save_pretrained(tmp_path / "b")
    second = load(tmp_path / "b")
    assert torch.equal(logits(second), expected)
    quantize_(model, QuantSpec(bits=4), step="convert")  # the in-place path saves the same
    model.save_pretrained(tmp_path / "c")
    assert torch.equal(logits(load(tmp_path / "c")), expected)
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "c" / "model.safetensors").read_bytes()


def test_never_converted_models_save_plain_checkpoints(tmp_path) -> None:
    model = tiny_whisper()
    model.save_pretrained(tmp_path / "plain")
    assert "quantization_config" not in json.loads((tmp_path / "plain" / "config.json").read_text())
    save_quantized(model, tmp_path / "plain2")  # nothing to pack: a plain checkpoint
    plain = load(tmp_path / "plain2")
    assert not packed_modules(plain) and torch.equal(logits(plain), logits(model))
    # a QAT model saved with save_pretrained (a Trainer checkpoint) keeps its quantizer state
    quantize_(model, QuantSpec(bits=2), step="prepare")
    model.save_pretrained(tmp_path / "qat")
    config = json.loads((tmp_path / "qat" / "config.json").read_text())
    assert "quantization_config" not in config
    with safe_open(str(tmp_path / "qat" / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("encoder.layers.0.fc1.labels").dtype == torch.uint8


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_wav2vec2_and_hubert_round_trip(kind: str, tmp_path) -> None:
    model = (wav2vec2_classifier if kind == "wav2vec2" else hubert_classifier)().eval()
    quantize_(model, QuantSpec(bits=3), step="prepare")
    refit_(model)
    set_quantization_enabled(model, True)
    audio = torch.randn(2, 1600)
    with torch.no_grad():
        expected = model(audio).logits
    loaded = load(save_quantized(model, tmp_path / kind))
    assert isinstance(loaded.projector, PackedModule)
    assert "pos_conv" not in " ".join(n for n, _ in packed_modules(loaded))
    with torch.no_grad():
        assert torch.equal(loaded(audio).logits, expected)


def test_audio_classification_pipeline_loads_the_packed_model(tmp_path) -> None:
    from transformers import pipeline

    out = save_quantized(trained_qat(QuantSpec(bits=4)), tmp_path / "packed")
    WhisperFeatureExtractor(feature_size=80, chunk_length=3).save_pretrained(out)
    classify = pipeline("audio-classification", model=str(out))
    assert isinstance(classify.model.encoder.conv1, PackedModule)
    audio = np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1
    result = classify(audio, top_k=3)
    assert len(result) == 3 and all(r["label"] in classify.model.config.label2id for r in result)


# --------------------------------------------------------------------------- import hook, dequantize


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_hf_quads_is_light_and_registers_the_quantizer(tmp_path) -> None:
    model = trained_qat(QuantSpec(bits=3))
    expected = logits(model)
    save_quantized(model, tmp_path / "packed")
    torch.save(FEATURES, tmp_path / "features.pt")
    result = _run(
        """
        import sys
        import hf_quads
        assert "torch" not in sys.modules and "transformers" not in sys.modules, "heavy import"
        import torch
        from transformers import AutoModelForAudioClassification
        model = AutoModelForAudioClassification.from_pretrained("packed")
        assert type(model.encoder.conv1).__name__ == "PackedConv1d"
        with torch.no_grad():
            torch.save(model(input_features=torch.load("features.pt")).logits, "logits.pt")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert torch.equal(torch.load(tmp_path / "logits.pt"), expected)


def test_registration_when_the_integration_is_imported_first(tmp_path) -> None:
    result = _run(
        """
        from hf_quads.quant import HfQuadsQuantizationConfig  # imports transformers itself
        from transformers.quantizers import auto
        assert auto.AUTO_QUANTIZATION_CONFIG_MAPPING["hf_quads"] is HfQuadsQuantizationConfig
        assert auto.AUTO_QUANTIZER_MAPPING["hf_quads"].__name__ == "HfQuadsHfQuantizer"
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "could not register" not in result.stderr


def test_dequantized_checkpoint_loads_without_hf_quads(tmp_path) -> None:
    model = trained_qat(QuantSpec(method="uniform", bits=4))
    expected = logits(model)
    loaded = load(save_quantized(model, tmp_path / "packed"))
    plain = dequantize(loaded)
    assert not packed_modules(plain) and type(plain.encoder.conv1) is nn.Conv1d
    assert torch.equal(logits(plain), expected)
    plain.save_pretrained(tmp_path / "plain")
    assert "quantization_config" not in json.loads((tmp_path / "plain" / "config.json").read_text())
    torch.save(FEATURES, tmp_path / "features.pt")
    result = _run(
        """
        import sys
        import torch
        from transformers import AutoModelForAudioClassification
        model = AutoModelForAudioClassification.from_pretrained("plain")
        assert "hf_quads" not in sys.modules
        with torch.no_grad():
            torch.save(model(input_features=torch.load("features.pt")).logits, "logits.pt")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = torch.load(tmp_path / "logits.pt")
    assert torch.allclose(got, expected, rtol=0, atol=1e-6)
    assert torch.equal(got, expected)


def test_transformers_dequantize_entry_point() -> None:
    model = trained_qat(QuantSpec(bits=2))
    expected = logits(model)
    quantize_(model, QuantSpec(bits=2), step="convert")
    model.dequantize()  # transformers' PreTrainedModel.dequantize -> our quantizer
    assert not packed_modules(model) and type(model.classifier) is nn.Linear
    assert torch.equal(logits(model), expected)


# --------------------------------------------------------------------------- atomic writes


def _debris(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_atomic_directory_replace_and_failure(tmp_path) -> None:
    target = tmp_path / "ckpt"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's 0700
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("two")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert (target / "a.txt").read_text() == "one"
    with atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("three")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert _debris(tmp_path) == []
    with pytest.raises(ValueError, match="mode"), atomic_directory(target, mode="swap"):
        pass


def test_atomic_directory_merge_keeps_other_entries(tmp_path) -> None:
    target = tmp_path / "out"
    (target / "checkpoint-10").mkdir(parents=True)
    (target / "model-00001-of-00002.safetensors").write_text("old shard")
    (target / "config.json").write_text("old")
    with atomic_directory(target, mode="merge", stale_patterns=["model*.safetensors"]) as tmp:
        (tmp / "config.json").write_text("new")
        (tmp / "model.safetensors").write_text("new weights")
    names = sorted(p.name for p in target.iterdir())
    assert names == ["checkpoint-10", "config.json", "model.safetensors"]
    assert (target / "config.json").read_text() == "new"
    assert _debris(tmp_path) == [] and _debris(target) == []


def test_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch) -> None:
    out = tmp_path / "packed"
    model = trained_qat(QuantSpec(bits=4))
    save_quantized(model, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cls = type(model)
    original = cls.save_pretrained

    def broken(self, save_directory, **kwargs):
        original(self, save_directory, **kwargs)  # everything written...
        (Path(save_directory) / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # ...then interrupted

    monkeypatch.setattr(cls, "save_pretrained", broken)
    with pytest.raises(KeyboardInterrupt):
        save_quantized(trained_qat(QuantSpec(bits=2), seed=1), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _debris(tmp_path) == []
    monkeypatch.undo()
    assert torch.equal(logits(load(out)), logits(model))


def test_save_quantized_refuses_push_to_hub(tmp_path) -> None:
    from hf_quads.quant import QuantizationError

    with pytest.raises(QuantizationError, match="push"):
        save_quantized(tiny_whisper(), tmp_path / "x", push_to_hub=True)
    with pytest.raises(QuantizationError, match="save_pretrained"):
        save_quantized(nn.Linear(2, 2), tmp_path / "y")
    assert not (tmp_path / "x").exists()


def test_qat_module_classes_survive_deepcopy_and_pickle(tmp_path) -> None:
    model = trained_qat(QuantSpec(bits=2))
    torch.save(model, tmp_path / "whole.pt")
    again = torch.load(tmp_path / "whole.pt", weights_only=False)
    assert isinstance(again.encoder.layers[0].fc1, QATModule)
    assert torch.equal(logits(again), logits(model))
