"""featurize: stored Array2D features and the on-the-fly transform give the same batches."""

from __future__ import annotations

import datasets
import numpy as np
import soundfile as sf
import torch
from tiny_models import whisper_classifier, whisper_feature_extractor
from transformers import WhisperFeatureExtractor

from hf_quads.config import DistillQuantConfig
from hf_quads.data import (
    ON_THE_FLY_BYTES,
    featurize,
    fixed_feature_bytes,
    prepare_features,
    set_silence_trim,
    trim_leading_silence,
)
from hf_quads.trainer import DistillQuantTrainer


def _clips(tmp_path, n: int = 12) -> datasets.Dataset:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        seconds = 0.5 + 0.2 * (i % 5)
        t = np.arange(int(seconds * 16_000)) / 16_000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.01 * rng.normal(size=t.size)
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], wave.astype(np.float32), 16_000)
    labels = [i % 4 for i in range(n)]
    return datasets.Dataset.from_dict({"audio": paths, "speaker_id": ["s"] * n, "label": labels})


def test_on_the_fly_gives_the_stored_features(tmp_path):
    ds = _clips(tmp_path)
    fe = whisper_feature_extractor()
    stored = featurize(ds, fe, on_the_fly=False)
    lazy = featurize(ds, fe, on_the_fly=True)
    assert isinstance(stored.features["input_features"], datasets.Array2D)
    assert lazy.column_names == ["input_features", "labels"]
    assert len(lazy) == len(ds)
    torch.testing.assert_close(lazy[:]["input_features"], stored[:]["input_features"])
    assert lazy[:]["labels"].tolist() == stored[:]["labels"].tolist() == ds["label"]
    row = lazy[3]
    assert row["input_features"].shape == (80, 300) and int(row["labels"]) == 3
    # The fingerprint follows the feature settings, so caches keyed on it do not go stale.
    cut = featurize(ds, fe, on_the_fly=True, max_seconds=0.5)
    assert cut._fingerprint != lazy._fingerprint
    assert not torch.equal(cut[4]["input_features"], lazy[4]["input_features"])


def test_silence_trim_changes_the_features_and_their_fingerprint(tmp_path):
    ds = _clips(tmp_path, n=4)
    silent_start = str(tmp_path / "late.wav")
    tone = sf.read(ds[0]["audio"], dtype="float32")[0]
    sf.write(silent_start, np.concatenate([np.zeros(8_000, np.float32), tone]), 16_000)
    ds = ds.add_item({"audio": silent_start, "speaker_id": "s", "label": 0})
    fe = whisper_feature_extractor()
    late = sf.read(silent_start, dtype="float32")[0]
    expected = torch.as_tensor(
        prepare_features([trim_leading_silence(late, 16_000)], fe)["input_features"][0]
    )
    outputs = {}
    for trim in (False, True):
        for on_the_fly in (False, True):
            extractor = set_silence_trim(whisper_feature_extractor(), 0.01 if trim else None)
            outputs[trim, on_the_fly] = featurize(ds, extractor, on_the_fly=on_the_fly)
    for on_the_fly in (False, True):
        plain, trimmed = outputs[False, on_the_fly], outputs[True, on_the_fly]
        # Caches keyed on the fingerprint must not hand back untrimmed features.
        assert plain._fingerprint != trimmed._fingerprint
        # The clip with half a second of silence lost it; the others start loud.
        torch.testing.assert_close(trimmed[4]["input_features"], expected)
        assert not torch.equal(plain[4]["input_features"], expected)
        torch.testing.assert_close(trimmed[0]["input_features"], plain[0]["input_features"])
    torch.testing.assert_close(outputs[True, False][:]["input_features"],
                               outputs[True, True][:]["input_features"])  # fmt: skip
    assert not hasattr(fe, "trim_leading_silence")


def test_default_streams_long_windows_and_stores_short_ones(tmp_path):
    ds = _clips(tmp_path, n=2)
    whisper_30s = WhisperFeatureExtractor()  # 80 mels x 3000 frames
    assert fixed_feature_bytes(whisper_30s) == 80 * 3000 * 4 > ON_THE_FLY_BYTES
    assert fixed_feature_bytes(whisper_feature_extractor()) == 80 * 300 * 4 < ON_THE_FLY_BYTES
    lazy = featurize(ds, whisper_30s)
    assert lazy.format["type"] == "custom"
    assert lazy[0]["input_features"].shape == (80, 3000)
    stored = featurize(ds, whisper_feature_extractor())
    assert isinstance(stored.features["input_features"], datasets.Array2D)


def test_trainer_with_teacher_cache_on_the_fly_matches_stored(tmp_path):
    ds = _clips(tmp_path, n=16)
    fe = whisper_feature_extractor()

    def run(on_the_fly: bool):
        out = tmp_path / f"run-{on_the_fly}"
        trainer = DistillQuantTrainer(
            model=whisper_classifier(seed=2),
            teacher_model=whisper_classifier(d_model=48, seed=1),
            args=DistillQuantConfig(
                output_dir=str(out), report_to="none", max_steps=4, learning_rate=3e-3,
                per_device_train_batch_size=4, per_device_eval_batch_size=8,
                save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
                schedule="distill:1,quant:1", teacher_cache=True,
                teacher_cache_dir=str(out / "cache"),
            ),
            train_dataset=featurize(ds, fe, on_the_fly=on_the_fly),
            eval_dataset=featurize(ds, fe, on_the_fly=on_the_fly),
        )  # fmt: skip
        trainer.train()
        return trainer

    stored, lazy = run(False), run(True)
    assert (tmp_path / "run-True" / "cache").is_dir()
    for a, b in zip(stored.model.parameters(), lazy.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert np.isfinite(lazy.evaluate()["eval_loss"])


def test_on_the_fly_waveform_inputs_pad_per_batch_with_a_mask(tmp_path):
    from transformers import Wav2Vec2FeatureExtractor

    ds = _clips(tmp_path, n=3).rename_column("label", "labels")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, return_attention_mask=True)
    lazy = featurize(ds, fe, on_the_fly=True, label_column="labels")
    assert lazy.column_names == ["input_values", "labels"]
    batch = lazy[:3]
    longest = max(len(sf.read(p)[0]) for p in ds["audio"])
    assert batch["input_values"].shape == batch["attention_mask"].shape == (3, longest)
    assert batch["attention_mask"].sum(1).tolist() == [len(sf.read(p)[0]) for p in ds["audio"]]
