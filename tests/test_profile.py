"""hf_quads.profile and ``hf-quads profile``: every number checked against a hand count."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hf_quads.cli import main
from hf_quads.profile import (
    ProfileError,
    count_macs,
    count_parameters,
    disk_usage,
    dummy_inputs,
    profile_model,
    profile_model_dir,
    theoretical_bytes,
    theoretical_size,
)

# --------------------------------------------------------------------------- toy model


class Toy(nn.Module):
    """Conv1d -> LayerNorm -> Linear -> Linear, plus a tied and an untied embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, kernel_size=3)  # weight 8*4*3 = 96, bias 8
        self.norm = nn.LayerNorm(8)  # 8 + 8, frozen below
        self.fc = nn.Linear(8, 7)  # weight 56, bias 7
        self.head = nn.Linear(7, 3, bias=False)  # weight 21
        self.emb = nn.Embedding(10, 8)  # weight 80
        self.tied = nn.Linear(8, 10, bias=False)
        self.tied.weight = self.emb.weight  # shared: counted once, under Embedding
        self.pos = nn.Embedding(6, 4)  # weight 24
        self.register_buffer("scale", torch.ones(3))  # persistent: saved, so counted
        self.register_buffer("tmp", torch.ones(7), persistent=False)  # not saved
        self.norm.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x).transpose(1, 2)  # (batch, time - 2, 8)
        return self.head(self.fc(self.norm(h)))


# Elements outside the default quantized set: conv.bias 8, norm 16, fc.bias 7,
# pos 24, buffer "scale" 3 -> 58 float32 values.
OTHER_BYTES = 58 * 4


def test_count_parameters_per_type() -> None:
    counts = count_parameters(Toy())
    assert counts.by_type == {
        "Conv1d": 96 + 8,
        "Embedding": 80 + 24,
        "Linear": 56 + 7 + 21,
        "LayerNorm": 16,
    }
    assert counts.total == 104 + 104 + 84 + 16 == 308
    assert counts.trainable == 308 - 16
    assert counts.total == sum(p.numel() for p in Toy().parameters())  # tied counted once


def test_count_parameters_weight_norm_goes_to_the_conv() -> None:
    model = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Conv1d(2, 4, 3), dim=2))
    counts = count_parameters(model)
    # g: 1 x 1 x 3, v: 4 x 2 x 3, bias 4
    assert counts.by_type == {"Conv1d": 3 + 24 + 4}


def test_count_parameters_on_meta() -> None:
    with torch.device("meta"):
        model = Toy()
    assert count_parameters(model).total == 308


# --------------------------------------------------------------------------- disk


def test_disk_usage_sums_regular_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    files = {
        "config.json": 100,
        "model.safetensors": 5000,
        "sub/pytorch_model.bin": 321,
        "sub/notes.txt": 7,
    }
    for name, size in files.items():
        (tmp_path / name).write_bytes(b"x" * size)
    os.symlink(tmp_path / "config.json", tmp_path / "link.json")  # followed: +100
    usage = disk_usage(tmp_path)
    assert usage.total_bytes == sum(files.values()) + 100
    assert usage.num_files == 5
    assert usage.weight_bytes == 5000 + 321
    assert usage.num_weight_files == 2
    assert usage.total_bytes == sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    own = disk_usage(tmp_path, recursive=False)
    assert (own.weight_bytes, own.num_files) == (5000, 3)  # sub/ is not the model's


def test_disk_usage_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"not found: .*nope"):
        disk_usage(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProfileError, match="not a directory"):
        disk_usage(tmp_path / "file")


# --------------------------------------------------------------------------- theoretical size

# Quantized by default: conv.weight 96, fc.weight 56, head.weight 21 and the tied
# emb/tied weight 80 (a Linear owns it) -> 4 tensors, 253 values.


def test_theoretical_size_unquantized_is_the_model_size() -> None:
    model = Toy()
    assert theoretical_bytes(model, 32) == 308 * 4 + 3 * 4  # parameters + persistent buffer
    assert theoretical_size(model, 32).quantized_tensors == 0
    half = Toy().half()
    assert theoretical_bytes(half, 16) == 308 * 2 + 3 * 2  # bits >= dtype bits: kept as is


def test_theoretical_size_codebook_by_hand() -> None:
    model = Toy()
    size = theoretical_size(model, 4)  # overhead="codebook"
    payload = 96 * 4 // 8 + 56 * 4 // 8 + 11 + 80 * 4 // 8  # head: 21*4 = 84 bits -> 11 bytes
    assert payload == 127
    assert size.quantized_bytes == payload
    assert size.overhead_bytes == 4 * 2**4 * 4  # 16 fp32 centroids per tensor
    assert size.other_bytes == OTHER_BYTES
    assert size.total_bytes == 127 + 256 + 232 == 615
    assert (size.quantized_tensors, size.quantized_params) == (4, 253)

    # 3 bits: 288/8 = 36, 168/8 = 21, 63 bits -> 8 bytes, 240/8 = 30; 8 centroids each.
    assert theoretical_bytes(model, 3) == (36 + 21 + 8 + 30) + 4 * 8 * 4 + OTHER_BYTES == 455
    assert theoretical_bytes(model, 4, overhead="none") == 127 + OTHER_BYTES
    # fp16 model at 8 bits: 256 fp32 centroids per tensor, the rest at 2 bytes.
    assert theoretical_bytes(Toy().half(), 8) == 253 + 4 * 256 * 4 + 58 * 2


def test_theoretical_size_scales_by_hand() -> None:
    model = Toy()
    # per output channel: 8 + 7 + 3 + 10 rows, one fp32 scale each
    size = theoretical_size(model, 8, overhead="scales")
    assert size.quantized_bytes == 253
    assert size.overhead_bytes == (8 + 7 + 3 + 10) * 4
    assert size.total_bytes == 253 + 112 + OTHER_BYTES == 597
    # groups of 5 along a row, scale + zero point: conv rows of 12 -> 3 groups x 8 rows,
    # fc rows of 8 -> 2 x 7, head rows of 7 -> 2 x 3, tied rows of 8 -> 2 x 10.
    groups = 3 * 8 + 2 * 7 + 2 * 3 + 2 * 10
    size = theoretical_size(model, 4, overhead="scales", group_size=5, zero_point=True)
    assert size.overhead_bytes == groups * 8 == 512
    assert size.total_bytes == 127 + 512 + OTHER_BYTES == 871


def test_theoretical_size_embeddings_and_exclusions() -> None:
    model = Toy()
    # pos (24 values) joins: +12 payload bytes, +16 centroids, -24 float32 values
    assert theoretical_bytes(model, 4, include_embeddings=True) == 615 + 12 + 64 - 96
    # head left at fp32: -11 payload, -64 codebook, +21 float32 values
    assert theoretical_bytes(model, 4, exclude_modules=["head"]) == 615 - 11 - 64 + 84
    assert theoretical_bytes(model, 4, module_types=[nn.Conv1d]) == (48 + 64 + (308 - 96) * 4 + 12)
    with pytest.raises(ValueError, match="bits"):
        theoretical_size(model, 0)
    with pytest.raises(ValueError, match="overhead"):
        theoretical_size(model, 4, overhead="lut")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- MACs


def test_count_macs_toy_exact() -> None:
    model = Toy()
    x = torch.randn(2, 4, 20)  # conv output: 18 steps
    per_item = 8 * 4 * 3 * 18 + 18 * 8 * 7 + 18 * 7 * 3
    for use_meta in (True, False):
        result = count_macs(model, {"x": x}, use_meta=use_meta)
        assert result.macs == 2 * per_item == 6228
        assert result.by_operator == {
            "aten.convolution": 2 * 1728,
            "aten.addmm": 2 * 1008,
            "aten.mm": 2 * 378,
        }
        assert result.inputs == {"x": [2, 4, 20]}
    assert count_macs(model, {"x": x}).device == "meta"
    assert not any(p.is_meta for p in model.parameters())


class DataDependent(nn.Module):
    """Branches on a tensor value: cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if bool(x.sum() >= 0) else self.fc(-x)


def test_count_macs_falls_back_to_real_weights() -> None:
    result = count_macs(DataDependent(), {"x": torch.ones(3, 4)})
    assert result.device == "cpu"
    assert result.macs == 3 * 4 * 2


class Attention(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, k)


@pytest.mark.parametrize("use_meta", [True, False])
def test_count_macs_counts_sdpa_on_cpu_and_meta(use_meta: bool) -> None:
    q, k = torch.randn(1, 2, 10, 4), torch.randn(1, 2, 6, 4)
    # Q K^T and A V: 2 * (batch * heads * 10 * 6 * 4)
    assert count_macs(Attention(), {"q": q, "k": k}, use_meta=use_meta).macs == 2 * 2 * 10 * 6 * 4


# --------------------------------------------------------------------------- Whisper

D, LAYERS, FFN, MELS, POS, PROJ, LABELS = 64, 2, 256, 80, 150, 32, 31


def _whisper_config(**overrides):
    from transformers import WhisperConfig

    kwargs = {
        "d_model": D,
        "encoder_layers": LAYERS,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": FFN,
        "decoder_layers": 1,
        "decoder_attention_heads": 4,
        "decoder_ffn_dim": FFN,
        "num_mel_bins": MELS,
        "max_source_positions": POS,
        "max_target_positions": 32,
        "classifier_proj_size": PROJ,
        "num_labels": LABELS,
        "vocab_size": 100,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "decoder_start_token_id": 3,
        "suppress_tokens": None,
        "begin_suppress_tokens": None,
    }
    kwargs.update(overrides)
    return WhisperConfig(**kwargs)


def _encoder_macs() -> int:
    frames, steps = 2 * POS, POS  # 300 log-mel frames; conv2 has stride 2
    conv1 = MELS * D * 3 * frames
    conv2 = D * D * 3 * steps
    qkvo = 4 * steps * D * D
    attention = 2 * steps * steps * D  # Q K^T and A V over all heads
    ffn = 2 * steps * D * FFN
    return conv1 + conv2 + LAYERS * (qkvo + attention + ffn)


def test_whisper_classifier_macs_by_hand() -> None:
    from transformers import WhisperForAudioClassification

    model = WhisperForAudioClassification(_whisper_config())
    projector = POS * D * PROJ  # applied to every frame before mean pooling
    classifier = PROJ * LABELS
    expected = _encoder_macs() + projector + classifier
    result = count_macs(model)
    assert result.device == "meta"
    # Exact: FlopCounterMode counts only matmuls and convolutions.
    assert result.macs == expected == 27_264_992
    assert result.seconds == pytest.approx(3.0)
    assert result.inputs == {"input_features": [1, MELS, 2 * POS]}
    before = model.config._attn_implementation
    real = count_macs(model, use_meta=False)
    assert real.macs == expected
    assert real.by_operator["aten.bmm"] == LAYERS * 2 * POS * POS * D  # eager attention ran
    assert model.config._attn_implementation == before  # restored
    assert count_macs(model, seconds=3.0).macs == expected
    with pytest.raises(ProfileError, match="exactly 300 log-mel frames"):
        count_macs(model, seconds=5)


def test_whisper_seq2seq_encoder_and_decoder_by_hand() -> None:
    from transformers import WhisperForConditionalGeneration, WhisperModel

    model = WhisperForConditionalGeneration(_whisper_config())
    encoder_only = count_macs(model)
    assert encoder_only.device == "meta"
    assert encoder_only.counted == "encoder"
    assert encoder_only.macs == _encoder_macs()
    assert count_macs(WhisperModel(_whisper_config())).macs == _encoder_macs()

    n, steps, vocab = 4, POS, 100
    decoder = (
        4 * n * D * D  # self-attention q, k, v, o
        + 2 * n * n * D  # self-attention Q K^T, A V (full n x n, no cache)
        + 2 * n * D * D  # cross-attention q, o
        + 2 * steps * D * D  # cross-attention k, v over the encoder output
        + 2 * n * steps * D  # cross-attention Q K^T, A V
        + 2 * n * D * FFN  # fc1, fc2
    )
    full = count_macs(model, decoder_tokens=n)
    assert full.macs == _encoder_macs() + decoder + n * D * vocab  # + proj_out
    assert full.inputs["decoder_input_ids"] == [1, n]
    assert full.device == "meta"  # no data-dependent mask code on 4.57 or 5.x
    with pytest.raises(ProfileError, match="decoder_tokens"):
        count_macs(model, decoder_tokens=33)


def test_whisper_base_size_on_meta() -> None:
    """A Whisper-base-sized encoder at 30 s: the QUADS paper's 43.7 GMACs."""
    from transformers import WhisperForAudioClassification

    config = _whisper_config(
        d_model=512,
        encoder_layers=6,
        encoder_attention_heads=8,
        encoder_ffn_dim=2048,
        decoder_layers=1,
        decoder_attention_heads=8,
        decoder_ffn_dim=2048,
        max_source_positions=1500,
        max_target_positions=448,
    )
    with torch.device("meta"):
        model = WhisperForAudioClassification(config)
    encoder = count_macs(model.encoder)
    conv = 80 * 512 * 3 * 3000 + 512 * 512 * 3 * 1500
    layer = 4 * 1500 * 512 * 512 + 2 * 1500 * 1500 * 512 + 2 * 1500 * 512 * 2048
    assert encoder.macs == conv + 6 * layer == 43_683_840_000
    assert round(encoder.gmacs, 1) == 43.7
    assert encoder.seconds == pytest.approx(30.0)


# --------------------------------------------------------------------------- wav2vec2 / HuBERT


def _wav2vec2_like(kind: str):
    import transformers

    cfg_cls = getattr(transformers, f"{kind}Config")
    model_cls = getattr(transformers, f"{kind}ForSequenceClassification")
    config = cfg_cls(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=8,
        num_labels=3,
    )
    return model_cls(config)


@pytest.mark.parametrize("kind", ["Wav2Vec2", "Hubert"])
def test_wav2vec2_like_macs(kind: str) -> None:
    model = _wav2vec2_like(kind)
    result = count_macs(model, seconds=0.5)
    assert result.device == "meta"
    assert result.inputs == {"input_values": [1, 8000]}
    assert result.macs > 0
    assert result.by_operator["aten.bmm"] > 0  # eager attention was counted
    assert count_macs(model, seconds=0.5, use_meta=False).macs == result.macs
    # 1 s by default, at 16 kHz
    assert dummy_inputs(model)["input_values"].shape == (1, 16_000)
    # feature encoder: conv0 over (8000 - 10) / 5 + 1 = 1599 steps, conv1 over 799
    conv = result.by_operator["aten.convolution"]
    pos_conv = 32 * (32 // 2) * 16 * 800  # grouped positional conv (padding 8, 799 + 1 outputs)
    assert conv == 16 * 1 * 10 * 1599 + 16 * 16 * 3 * 799 + pos_conv
    with pytest.raises(ProfileError, match="shorter than"):
        count_macs(model, seconds=0.0005)


# --------------------------------------------------------------------------- report and command


def test_profile_model_report() -> None:
    report = profile_model(Toy(), bits=(32, 4), inputs={"x": torch.zeros(1, 4, 20)})
    assert report.parameters.total == 308
    assert [s.total_bytes for s in report.sizes] == [1244, 615]
    assert report.macs is not None and report.macs.macs == 3114
    text = report.format()
    assert "308" in text and "3,114 MACs" in text and "4 bits" in text
    json.dumps(report.to_dict())
    # unknown architecture and no inputs: GMACs left out with the reason
    report = profile_model(Toy(), bits=(8,))
    assert report.macs is None and "inputs" in (report.macs_error or "")
    assert "not counted" in str(report)


@pytest.fixture
def whisper_dir(tmp_path: Path) -> Path:
    from transformers import WhisperForAudioClassification

    path = tmp_path / "tiny-whisper"
    WhisperForAudioClassification(_whisper_config()).save_pretrained(path)
    return path


def test_profile_model_dir(whisper_dir: Path) -> None:
    report = profile_model_dir(whisper_dir, bits=(32, 4))
    assert report.architecture == "WhisperForAudioClassification"
    assert report.disk is not None
    assert report.disk.total_bytes == sum(p.stat().st_size for p in whisper_dir.iterdir())
    assert report.macs is not None and report.macs.macs == 27_264_992
    # the safetensors file holds the fp32 tensors plus a small header
    weights = report.disk.weight_bytes
    assert report.sizes[0].total_bytes <= weights <= report.sizes[0].total_bytes + 64 * 1024


def test_cli_profile(whisper_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "profile.json"
    assert main(["profile", str(whisper_dir), "--bits", "8", "4", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "parameters" in out and "on disk" in out and "GMACs" in out
    assert "27,264,992 MACs" in out and "8 bits" in out and "4 bits" in out
    data = json.loads(out_json.read_text())
    assert data["macs"]["macs"] == 27_264_992
    assert [s["bits"] for s in data["theoretical_sizes"]] == [8, 4]
    assert data["disk"]["total_bytes"] == sum(p.stat().st_size for p in whisper_dir.iterdir())
    assert data["parameters"]["total"] == sum(data["parameters"]["by_type"].values())


def test_cli_profile_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    assert main(["profile", str(missing)]) != 0
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
    assert main(["profile", str(tmp_path)]) != 0
    assert "no config.json" in capsys.readouterr().err
