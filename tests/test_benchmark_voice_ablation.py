"""benchmarks/voice_ablation.py: the variant versions it makes, and a run on a tiny corpus."""

from __future__ import annotations

import json

import pytest
from conftest import benchmark_module


@pytest.fixture(scope="module")
def bench():
    yield from benchmark_module("voice_ablation")


def test_each_attribute_is_dropped_once_with_all_its_lines(bench):
    text = "language variant\nname X\necho 40 50\nformant 1 90 100 100\nformant 2 80 100 100\n"
    versions = bench.ablations(text)
    assert list(versions) == ["original", "-echo", "-formant", "plain"]
    assert versions["original"] == text
    assert (
        versions["-echo"]
        == "language variant\nname X\nformant 1 90 100 100\nformant 2 80 100 100\n"
    )
    assert "formant" not in versions["-formant"] and "echo 40 50" in versions["-formant"]
    assert versions["plain"] == "language variant\n"


def test_a_run_reproduces_the_voice_and_scores_every_version(bench, tmp_path):
    from transformers import WhisperFeatureExtractor

    from hf_quads.data import FSC_INTENTS, set_silence_trim
    from hf_quads.data.synth import read_speakers, synthesize_fsc_corpus
    from hf_quads.models import whisper_classifier

    corpus = tmp_path / "fsc"
    synthesize_fsc_corpus(
        corpus, train_speakers=3, valid_speakers=1, test_speakers=1, phrasings_per_intent=1,
        num_workers=0, progress=False,
    )  # fmt: skip
    model_dir = tmp_path / "model"
    whisper_classifier(
        FSC_INTENTS, d_model=16, encoder_layers=1, heads=2, seconds=3
    ).save_pretrained(model_dir)
    extractor = set_silence_trim(WhisperFeatureExtractor(feature_size=80, chunk_length=3))
    extractor.save_pretrained(model_dir)  # the model's own inputs, as the demo saves them
    (variant,) = [v["variant"] for v in read_speakers(corpus).values() if v["split"] == "test"]
    out = tmp_path / "ablation.json"
    bench.main([str(model_dir), "--data_dir", str(corpus), "--variant", variant, "--out", str(out)])
    result = json.loads(out.read_text())  # "original" was checked byte for byte against the corpus
    assert result["speaker"]["variant"] == variant and result["speaker"]["utterances"] == 31
    assert {"original", "plain"} <= set(result["accuracy"])
    assert all(0.0 <= a <= 1.0 for a in result["accuracy"].values())
    assert result["features"] == {"seconds": 3, "trim_leading_silence": 0.01}
    with pytest.raises(SystemExit, match="no test speaker"):
        bench.main([str(model_dir), "--data_dir", str(corpus), "--variant", "no-such-voice"])
    with pytest.raises(SystemExit, match="not a synthetic corpus"):
        bench.main([str(model_dir), "--data_dir", str(tmp_path / "nothing-here")])


def test_the_model_s_own_extractor_is_used_with_seconds_as_the_fallback(bench, tmp_path):
    from transformers import WhisperFeatureExtractor

    from hf_quads.data import set_silence_trim

    fallback = bench.model_extractor(tmp_path, seconds=4)  # no preprocessor_config.json
    assert fallback.chunk_length == 4 and not hasattr(fallback, "trim_leading_silence")
    set_silence_trim(WhisperFeatureExtractor(feature_size=80, chunk_length=2)).save_pretrained(
        tmp_path
    )
    saved = bench.model_extractor(tmp_path, seconds=4)
    assert saved.chunk_length == 2 and saved.trim_leading_silence == 0.01
