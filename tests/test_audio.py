"""Audio decoding, resampling and feature preparation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from hf_quads.data import (
    TRIM_ATTRIBUTE,
    feature_map_fn,
    load_audio,
    prepare_features,
    set_silence_trim,
    trim_leading_silence,
)
from hf_quads.errors import AudioDecodeError


def _sine(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    left, right = _sine(1.0, 44_100), _sine(1.0, 44_100, freq=220.0)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44_100, subtype="PCM_16")
    wave = load_audio(path, 16_000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16_000) <= 1
    # Downmix = mean of channels: compare with the mean resampled on its own.
    import soxr

    expected = soxr.resample((left + right) / 2, 44_100, 16_000, quality="HQ")
    assert np.max(np.abs(wave[:15_000] - expected[:15_000])) < 2e-3


def test_flac_at_target_rate_is_unchanged(tmp_path):
    wave = _sine(0.5, 16_000)
    sf.write(tmp_path / "a.flac", wave, 16_000, subtype="PCM_24")
    out = load_audio(tmp_path / "a.flac", 16_000)
    assert out.shape == wave.shape
    np.testing.assert_allclose(out, wave, atol=1e-6)


def test_segment_offset_and_duration(tmp_path):
    wave = np.arange(16_000 * 3, dtype=np.float32) / (16_000 * 3)
    sf.write(tmp_path / "talk.wav", wave, 16_000, subtype="FLOAT")
    seg = load_audio(tmp_path / "talk.wav", 16_000, offset=1.0, duration=0.5)
    np.testing.assert_array_equal(seg, wave[16_000:24_000])


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
        (lambda p: p.write_bytes(b"RIFF0000WAVEnot really audio at all"), "cannot decode"),
        (lambda p: sf.write(p, np.zeros(0, dtype=np.float32), 16_000), "zero length"),
        (
            lambda p: sf.write(
                p, np.array([0.1, np.nan, 0.2], dtype=np.float32), 16_000, subtype="FLOAT"
            ),
            "NaN or infinite",
        ),
    ],
    ids=["missing", "empty-file", "garbage", "zero-length", "non-finite"],
)
def test_bad_audio_names_file_and_problem(tmp_path, make, problem):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path, 16_000)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_segment_outside_file_is_an_error(tmp_path):
    sf.write(tmp_path / "short.wav", _sine(1.0, 16_000), 16_000)
    with pytest.raises(AudioDecodeError, match="outside the file"):
        load_audio(tmp_path / "short.wav", 16_000, offset=5.0, duration=1.0)


def test_whisper_features_use_the_extractor_window(tmp_path):
    fe = WhisperFeatureExtractor(feature_size=80, chunk_length=3)
    paths = []
    for i, seconds in enumerate((0.7, 2.0, 4.5)):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], _sine(seconds, 22_050), 22_050)
    feats = prepare_features(paths, fe)
    assert feats["input_features"].shape == (3, 80, 300)
    # max_seconds cuts before extraction: with a 1 s cut the 2 s and 4.5 s clips agree with
    # a 1 s clip in every frame.
    cut = prepare_features(paths[1:], fe, max_seconds=1.0)["input_features"]
    one_second = prepare_features([load_audio(paths[1], 16_000)[:16_000]], fe)["input_features"]
    np.testing.assert_allclose(cut[0], one_second[0], atol=1e-5)
    np.testing.assert_allclose(cut[1], one_second[0], atol=1e-5)


def test_waveform_features_pad_to_longest_with_mask():
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, return_attention_mask=True)
    waves = [_sine(0.5, 16_000), _sine(1.5, 16_000)]
    feats = prepare_features(waves, fe)
    assert feats["input_values"].shape == (2, 24_000)
    assert feats["attention_mask"].sum(axis=1).tolist() == [8_000, 24_000]
    cut = prepare_features(waves, fe, max_seconds=1.0)
    assert cut["input_values"].shape == (2, 16_000)


def test_in_memory_bad_array_is_an_error():
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000)
    with pytest.raises(AudioDecodeError, match="non-empty 1-D"):
        prepare_features([np.zeros(0, dtype=np.float32)], fe)
    with pytest.raises(ValueError, match="max_seconds"):
        prepare_features([_sine(0.1, 16_000)], fe, max_seconds=0)


def test_feature_map_fn_with_datasets(tmp_path):
    import datasets

    fe = WhisperFeatureExtractor(feature_size=80, chunk_length=3)
    paths = []
    for i in range(4):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], _sine(0.5 + 0.2 * i, 16_000, 200 + 50 * i), 16_000)
    ds = datasets.Dataset.from_dict({"audio": paths, "label": [0, 1, 2, 1]})
    mapped = ds.map(
        feature_map_fn(fe, max_seconds=2.0), batched=True, batch_size=3, remove_columns=["audio"]
    )
    assert mapped["labels"] == [0, 1, 2, 1]
    assert np.asarray(mapped[0]["input_features"]).shape == (80, 300)


def _silence_then_tone(silence: float, rate: int = 16_000, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    wave = np.concatenate([np.zeros(int(silence * rate), np.float32), _sine(1.0, rate)])
    return (wave + noise * rng.standard_normal(wave.size)).astype(np.float32)


def test_trim_leading_silence_keeps_50_ms_before_the_onset():
    wave = _silence_then_tone(0.3)
    trimmed = trim_leading_silence(wave, 16_000)
    # The tone starts at sample 4800 (its first sample is 0, the second above 1 % of
    # the peak); 800 samples (50 ms) ahead of that are kept.
    assert len(trimmed) == len(wave) - (4801 - 800)
    np.testing.assert_array_equal(trimmed, wave[4001:])
    # Relative to the clip's peak: a quieter copy is cut at the same sample.
    np.testing.assert_array_equal(trim_leading_silence(0.01 * wave, 16_000), 0.01 * wave[4001:])
    # Nothing to trim: a clip that starts loud, a silent clip, a noise floor above 1 %.
    tone = _sine(0.5, 16_000)
    assert len(trim_leading_silence(tone, 16_000)) == len(tone)
    silent = np.zeros(1000, np.float32)
    assert trim_leading_silence(silent, 16_000) is silent
    noisy = _silence_then_tone(0.3, noise=0.02)
    assert len(trim_leading_silence(noisy, 16_000)) == len(noisy)
    with pytest.raises(ValueError, match="share of the peak"):
        trim_leading_silence(wave, 16_000, threshold=1.0)


def test_extractor_trim_setting_reaches_prepare_features_and_survives_save(tmp_path):
    fe = WhisperFeatureExtractor(feature_size=80, chunk_length=2)
    wave = _silence_then_tone(0.8)
    plain = prepare_features([wave], fe)["input_features"]
    assert set_silence_trim(fe) is fe and getattr(fe, TRIM_ATTRIBUTE) == 0.01
    trimmed = prepare_features([wave], fe)["input_features"]
    expected = prepare_features([wave[12_001:]], WhisperFeatureExtractor(
        feature_size=80, chunk_length=2))["input_features"]  # fmt: skip
    np.testing.assert_allclose(trimmed, expected, atol=1e-6)
    assert not np.allclose(trimmed, plain)
    # Saved with the extractor, so a reloaded model's inputs are prepared the same way.
    fe.save_pretrained(tmp_path)
    for cls in (WhisperFeatureExtractor, AutoFeatureExtractor):
        again = cls.from_pretrained(tmp_path)
        assert getattr(again, TRIM_ATTRIBUTE) == 0.01
        np.testing.assert_allclose(prepare_features([wave], again)["input_features"], trimmed)
    set_silence_trim(fe, None)
    assert not hasattr(fe, TRIM_ATTRIBUTE)
    np.testing.assert_allclose(prepare_features([wave], fe)["input_features"], plain)
    with pytest.raises(ValueError, match="share of the peak"):
        set_silence_trim(fe, 0.0)
    # A hand-edited preprocessor_config.json with a bad value names the setting.
    setattr(fe, TRIM_ATTRIBUTE, "yes")
    with pytest.raises(ValueError, match=r"silence threshold \(trim_leading_silence\).*'yes'"):
        prepare_features([wave], fe)
