"""ONNX export: fp32 / int8 / 4-bit, packed checkpoints, parity JSON, ORT loading, the CLI."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from tiny_models import (
    synth_corpus,
    wav2vec2_classifier,
    wav2vec2_feature_extractor,
    whisper_classifier,
    whisper_feature_extractor,
)

from hf_quads.cli import main
from hf_quads.export import PARITY_NAME, ExportError, export_onnx, require_export_extra


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "optimum.onnxruntime", None)
    with pytest.raises(ExportError, match=r"pip install 'hf-quads\[export\]'"):
        require_export_extra()


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    from hf_quads.data import load_fsc

    root = synth_corpus(tmp_path_factory.mktemp("fsc"))
    return load_fsc(root)


@pytest.fixture(scope="module")
def packed_4bit_classifier(tmp_path_factory):
    """A tiny Whisper classifier with 4-bit k-means weights, saved packed."""
    from hf_quads.quant import QuantSpec, quantize_, save_quantized

    model = whisper_classifier(d_model=64, layers=2, seed=0)
    quantize_(model, QuantSpec(bits=4), step="convert")
    out = tmp_path_factory.mktemp("packed")
    save_quantized(model, out)
    whisper_feature_extractor().save_pretrained(out)
    return out


@pytest.mark.export
@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["int8", "int4"])
def test_packed_4bit_whisper_classifier_exports_with_parity(
    packed_4bit_classifier, speech, quantization, tmp_path
):
    from optimum.onnxruntime import ORTModelForAudioClassification

    config = json.loads((packed_4bit_classifier / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "hf_quads"
    clips = speech["train"]["audio"][:40]  # synthetic speech of 40 commands
    result = export_onnx(packed_4bit_classifier, tmp_path / "onnx", quantization, audio=clips)
    parity = json.loads((tmp_path / "onnx" / PARITY_NAME).read_text())
    assert parity == result.parity and parity["examples"] == 40
    assert parity["argmax_agreement"] >= 0.99, parity
    assert parity["quantization"] == quantization
    ort = ORTModelForAudioClassification.from_pretrained(tmp_path / "onnx")
    features = torch.randn(2, 80, 300)
    assert ort(input_features=features).logits.shape == (2, 31)
    ops = {
        node.op_type
        for node in __import__("onnx").load(tmp_path / "onnx" / "model.onnx").graph.node
    }
    assert ("MatMulNBits" if quantization == "int4" else "MatMulInteger") in ops


@pytest.mark.export
def test_wav2vec2_int8_quantizes_matmuls_only(tmp_path):
    import numpy as np

    model_dir = tmp_path / "w2v"
    wav2vec2_classifier(hidden=32, layers=2).save_pretrained(model_dir)
    wav2vec2_feature_extractor().save_pretrained(model_dir)
    clips = [np.sin(np.arange(16_000) * f / 100).astype(np.float32) * 0.1 for f in (1, 2, 3)]
    result = export_onnx(model_dir, tmp_path / "onnx", "int8", audio=clips)
    assert result.task == "audio-classification" and result.parity["examples"] == 3
    assert result.parity["max_abs_logit_diff"] < 0.05
    ops = {
        node.op_type
        for node in __import__("onnx").load(tmp_path / "onnx" / "model.onnx").graph.node
    }
    assert "MatMulInteger" in ops and "ConvInteger" not in ops  # the weight-normed conv stays fp32


@pytest.mark.export
def test_whisper_seq2seq_with_past_generates(tmp_path):
    from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
    from transformers import WhisperFeatureExtractor

    from hf_quads.models import SpeechTextProcessor, train_bpe_tokenizer, whisper_seq2seq

    tokenizer = train_bpe_tokenizer(["turn on the lights", "mach das Licht an"] * 3, vocab_size=200)
    torch.manual_seed(0)
    model = whisper_seq2seq(tokenizer, d_model=64, encoder_layers=2, decoder_layers=2, seconds=3)
    model_dir = tmp_path / "s2s"
    model.save_pretrained(model_dir)
    SpeechTextProcessor(
        WhisperFeatureExtractor(feature_size=80, chunk_length=3), tokenizer
    ).save_pretrained(model_dir)
    result = export_onnx(
        model_dir, tmp_path / "onnx", "int8", num_parity_examples=3, max_new_tokens=6
    )
    assert result.task == "automatic-speech-recognition-with-past"
    assert {"encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"} <= set(
        result.files
    )
    assert result.parity["token_agreement"] >= 0.9, result.parity
    ort = ORTModelForSpeechSeq2Seq.from_pretrained(tmp_path / "onnx", use_cache=True)
    ids = ort.generate(input_features=torch.randn(1, 80, 300), max_new_tokens=4, do_sample=False)
    assert ids.shape[0] == 1
    # The checkpoint's own tokenizer travels with the export.
    assert SpeechTextProcessor.from_pretrained(tmp_path / "onnx").tokenizer.eos_token == "</s>"


def test_export_errors(tmp_path):
    with pytest.raises(ExportError):  # no extra (leg 2) or no config.json (leg 1)
        export_onnx(tmp_path, tmp_path / "out")
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.export
def test_export_cli(tmp_path, capsys):
    model_dir = tmp_path / "m"
    whisper_classifier(d_model=32, layers=1).save_pretrained(model_dir)
    whisper_feature_extractor().save_pretrained(model_dir)
    code = main(["export", str(model_dir), "--out", str(tmp_path / "o"), "--quantization", "int4",
                 "--parity_examples", "2"])  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["quantization"] == "int4" and printed["parity"]["examples"] == 2
    assert (tmp_path / "o" / "model.onnx").is_file()
