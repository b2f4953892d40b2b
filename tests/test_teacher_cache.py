"""Teacher-output cache: build, reuse, keys, atomicity, coverage of every row."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import WhisperConfig, WhisperForAudioClassification

from hf_quads.distill import (
    TeacherCache,
    TeacherCacheError,
    index_batches,
    pool_hidden_states,
    teacher_hash,
)

NUM_ROWS = 10
MELS, FRAMES = 8, 16


def _tiny_whisper(seed: int = 0) -> WhisperForAudioClassification:
    torch.manual_seed(seed)
    config = WhisperConfig(
        num_mel_bins=MELS,
        d_model=16,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=32,
        max_source_positions=FRAMES // 2,
        classifier_proj_size=8,
        num_labels=3,
    )
    return WhisperForAudioClassification(config).eval()


@pytest.fixture
def teacher() -> WhisperForAudioClassification:
    return _tiny_whisper()


@pytest.fixture
def dataset() -> Dataset:
    rng = np.random.default_rng(0)
    data = {
        "input_features": rng.standard_normal((NUM_ROWS, MELS, FRAMES)).astype(np.float32),
        "label": rng.integers(0, 3, NUM_ROWS),
    }
    return Dataset.from_dict({k: list(v) for k, v in data.items()}).with_format("torch")


class CountingTeacher:
    """teacher_fn that counts its calls and can fail on a given call."""

    def __init__(self, model, fail_on_call: int | None = None):
        self.model = model
        self.calls = 0
        self.fail_on_call = fail_on_call

    def __call__(self, inputs):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("teacher crashed")
        return _teacher_outputs(self.model, inputs["input_features"])


def _teacher_outputs(model, features: torch.Tensor) -> dict[str, torch.Tensor]:
    out = model(input_features=features, output_hidden_states=True)
    return {"logits": out.logits, "pooled": pool_hidden_states(out.hidden_states[-1])}


def _key(dataset, model) -> str:
    return TeacherCache.key(dataset._fingerprint, teacher_hash(model), settings={"pooling": "mean"})


def test_build_matches_direct_teacher_forward(tmp_path, teacher, dataset):
    key = _key(dataset, teacher)
    cache = TeacherCache.build(
        tmp_path, key, NUM_ROWS, index_batches(dataset, 4), CountingTeacher(teacher), progress=False
    )
    assert cache.keys == ("logits", "pooled") and cache.num_rows == len(cache) == NUM_ROWS
    assert cache.path == tmp_path / key
    assert sorted(p.name for p in cache.path.iterdir()) == ["logits.npy", "meta.json", "pooled.npy"]
    rows = torch.tensor([7, 0, 3, 9])
    with torch.no_grad():
        direct = _teacher_outputs(teacher, dataset[rows.tolist()]["input_features"])
    got = cache.get(rows)
    assert set(got) == {"logits", "pooled"}
    for name in got:
        assert got[name].dtype == torch.float32
        torch.testing.assert_close(got[name], direct[name], rtol=1e-5, atol=1e-6)
    assert cache.get(rows, device="cpu")["logits"].shape == (4, 3)


def test_second_load_reuses_without_calling_teacher(tmp_path, teacher, dataset):
    key = _key(dataset, teacher)
    assert TeacherCache.load(tmp_path, key) is None
    first_fn = CountingTeacher(teacher)
    built = TeacherCache.build(
        tmp_path, key, NUM_ROWS, index_batches(dataset, 3), first_fn, progress=False
    )
    assert first_fn.calls == 4
    second_fn = CountingTeacher(teacher)
    loaded = TeacherCache.load(tmp_path, key)
    assert loaded is not None
    again = TeacherCache.load_or_build(
        tmp_path, key, NUM_ROWS, index_batches(dataset, 3), second_fn, progress=False
    )
    assert second_fn.calls == 0
    rows = torch.arange(NUM_ROWS)
    for cache in (loaded, again):
        for name, value in built.get(rows).items():
            torch.testing.assert_close(cache.get(rows)[name], value, rtol=0, atol=0)


def test_key_changes_with_dataset_teacher_and_settings(teacher, dataset):
    key = _key(dataset, teacher)
    assert key == _key(dataset, copy.deepcopy(teacher))
    assert key == _key(dataset, _tiny_whisper(seed=0))
    other_rows = dataset.select(range(NUM_ROWS - 1))
    assert other_rows._fingerprint != dataset._fingerprint
    assert _key(other_rows, teacher) != key
    changed = copy.deepcopy(teacher)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-3
    assert teacher_hash(changed) != teacher_hash(teacher)
    assert _key(dataset, changed) != key
    assert _key(dataset, _tiny_whisper(seed=1)) != key
    digest = teacher_hash(teacher)
    assert TeacherCache.key(dataset._fingerprint, digest, settings={"pooling": "max"}) != key
    # The checkpoint path a teacher was loaded from does not matter, its weights do.
    renamed = copy.deepcopy(teacher)
    renamed.config._name_or_path = "somewhere/else"
    assert teacher_hash(renamed) == digest


def test_interrupted_build_leaves_nothing(tmp_path, teacher, dataset):
    key = _key(dataset, teacher)
    failing = CountingTeacher(teacher, fail_on_call=2)
    with pytest.raises(RuntimeError, match="teacher crashed"):
        TeacherCache.build(
            tmp_path, key, NUM_ROWS, index_batches(dataset, 4), failing, progress=False
        )
    assert TeacherCache.load(tmp_path, key) is None
    assert list(tmp_path.iterdir()) == []


def test_incomplete_cache_on_disk_is_ignored(tmp_path, teacher, dataset):
    key = _key(dataset, teacher)
    cache = TeacherCache.build(
        tmp_path, key, NUM_ROWS, index_batches(dataset, 5), CountingTeacher(teacher), progress=False
    )
    meta = cache.path / "meta.json"
    meta.write_text(meta.read_text().replace('"complete": true', '"complete": false'))
    assert TeacherCache.load(tmp_path, key) is None
    rebuilt = TeacherCache.load_or_build(
        tmp_path, key, NUM_ROWS, index_batches(dataset, 5), CountingTeacher(teacher), progress=False
    )
    assert TeacherCache.load(tmp_path, key) is not None
    assert rebuilt.num_rows == NUM_ROWS
    (cache.path / "pooled.npy").unlink()
    assert TeacherCache.load(tmp_path, key) is None


def _arange_batches(*index_lists):
    for rows in index_lists:
        yield torch.tensor(rows), {"x": torch.tensor(rows, dtype=torch.float32)}


def _double(inputs):
    return {"y": inputs["x"].unsqueeze(-1) * 2}


@pytest.mark.parametrize(
    ("index_lists", "match"),
    [
        (([0, 1, 2], [3, 4]), "left 1 of 6 rows"),
        (([0, 1, 2], [2, 3, 4, 5]), "row 2 appears more than once"),
        (([0, 1, 1], [2, 3, 4, 5]), "row 1 appears more than once"),
        (([0, 1, 2], [3, 4, 6]), r"row index 6 is outside 0\.\.5"),
    ],
)
def test_batches_must_cover_every_row_exactly_once(tmp_path, index_lists, match):
    with pytest.raises(TeacherCacheError, match=match):
        TeacherCache.build(tmp_path, "k", 6, _arange_batches(*index_lists), _double, progress=False)
    assert TeacherCache.load(tmp_path, "k") is None
    assert list(tmp_path.iterdir()) == []


def test_rows_in_any_order_and_float16_storage(tmp_path):
    cache = TeacherCache.build(
        tmp_path,
        "k",
        6,
        _arange_batches([5, 0], [3, 1, 4], [2]),
        lambda inputs: {**_double(inputs), "argmax": inputs["x"].long()},
        dtype="float16",
        progress=False,
    )
    got = cache.get([4, 1, 5])
    assert got["y"].dtype == torch.float16 and got["argmax"].dtype == torch.int64
    torch.testing.assert_close(got["y"].float(), torch.tensor([[8.0], [2.0], [10.0]]))
    assert cache.get([4], dtype=torch.float32)["y"].dtype == torch.float32
    assert cache.get([4], dtype=torch.float32)["argmax"].dtype == torch.int64
    with pytest.raises(TeacherCacheError, match=r"0\.\.5"):
        cache.get([6])


def test_outputs_must_keep_their_row_shape(tmp_path):
    shapes = iter([(2, 4), (2, 5)])

    def ragged(inputs):
        return {"logits": torch.zeros(next(shapes))}

    with pytest.raises(TeacherCacheError, match="pad sequence outputs"):
        TeacherCache.build(
            tmp_path, "k", 4, _arange_batches([0, 1], [2, 3]), ragged, progress=False
        )
    with pytest.raises(TeacherCacheError, match="first dimension"):
        TeacherCache.build(
            tmp_path, "k", 4, _arange_batches([0, 1], [2, 3]), lambda _: {"a": torch.zeros(3)}
        )
    assert list(tmp_path.iterdir()) == []


def test_pickled_cache_reopens_its_memory_maps(tmp_path):
    cache = TeacherCache.build(
        tmp_path, "k", 4, _arange_batches([0, 1, 2, 3]), _double, progress=False
    )
    cache.get([0])
    clone = pickle.loads(pickle.dumps(cache))
    assert len(pickle.dumps(cache)) < 1000
    torch.testing.assert_close(clone.get([3, 2]), cache.get([3, 2]), rtol=0, atol=0)


def test_build_runs_teacher_without_gradients(tmp_path):
    layer = torch.nn.Linear(1, 1)
    seen = []

    def fn(inputs):
        out = layer(inputs["x"].unsqueeze(-1))
        seen.append(out.requires_grad)
        return {"y": out}

    TeacherCache.build(tmp_path, "k", 2, _arange_batches([0, 1]), fn, progress=False)
    assert seen == [False]
