"""Audio decoding and feature preparation.

Decoding goes through soundfile (libsndfile bundled in its wheels) and resampling
through soxr, so no FFmpeg or torchcodec is needed. Every waveform leaves here as
mono float32 at the requested rate, or an :class:`AudioDecodeError` names the file
and what is wrong with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioDecodeError

AudioLike = str | os.PathLike | np.ndarray

#: The feature extractor attribute that turns on :func:`trim_leading_silence` (its value
#: is the threshold). ``save_pretrained`` writes it to ``preprocessor_config.json`` and
#: ``from_pretrained`` reads it back, so a reloaded model is fed the way it was trained.
TRIM_ATTRIBUTE = "trim_leading_silence"
#: Audio kept ahead of the first loud sample: the onset of a soft consonant.
TRIM_MARGIN_SECONDS = 0.05


def load_audio(
    path: str | os.PathLike,
    sampling_rate: int = 16_000,
    *,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to a mono float32 waveform at ``sampling_rate``.

    ``offset`` and ``duration`` (seconds) select a segment, as MuST-C manifests need.
    Channels are averaged; the result is resampled with soxr when the file's rate
    differs.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioDecodeError(f"{path}: audio file does not exist")
    if os.path.getsize(path) == 0:
        raise AudioDecodeError(f"{path}: audio file is empty (0 bytes)")
    try:
        info = sf.info(path)
        start = round(offset * info.samplerate)
        stop = None if duration is None else start + round(duration * info.samplerate)
        if start > info.frames or (stop is not None and stop > info.frames + 1):
            raise AudioDecodeError(
                f"{path}: segment offset={offset}s duration={duration}s lies outside the "
                f"file ({info.frames / info.samplerate:.3f}s long)"
            )
        data, file_rate = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioDecodeError(f"{path}: cannot decode audio ({err})") from err
    if data.shape[0] == 0:
        raise AudioDecodeError(f"{path}: audio has zero length (no samples)")
    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wave).all():
        raise AudioDecodeError(f"{path}: audio contains NaN or infinite samples")
    if file_rate != sampling_rate:
        wave = soxr.resample(wave, file_rate, sampling_rate, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(wave, dtype=np.float32)


def _as_waveform(item: AudioLike | dict, sampling_rate: int) -> np.ndarray:
    if isinstance(item, dict):  # datasets' Audio(decode=False) cell or a decoded one
        if item.get("array") is not None:
            return _check_array(np.asarray(item["array"]), item.get("sampling_rate"), sampling_rate)
        path = item.get("path") or item.get("audio")
        return load_audio(
            path, sampling_rate, offset=item.get("offset") or 0.0, duration=item.get("duration")
        )
    if isinstance(item, np.ndarray):
        return _check_array(item, sampling_rate, sampling_rate)
    return load_audio(item, sampling_rate)


def _check_array(wave: np.ndarray, rate: int | None, sampling_rate: int) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=0 if wave.shape[0] < wave.shape[1] else 1)
    if wave.ndim != 1 or wave.size == 0:
        raise AudioDecodeError(
            f"in-memory audio: expected a non-empty 1-D waveform, got shape {wave.shape}"
        )
    if not np.isfinite(wave).all():
        raise AudioDecodeError("in-memory audio: contains NaN or infinite samples")
    if rate is not None and rate != sampling_rate:
        wave = soxr.resample(wave, rate, sampling_rate, quality="HQ").astype(np.float32)
    return wave


def _check_threshold(threshold: float) -> float:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not (0.0 < threshold < 1.0)
    ):
        raise ValueError(
            f"the silence threshold ({TRIM_ATTRIBUTE}) is a share of the peak, in (0, 1); "
            f"got {threshold!r}"
        )
    return float(threshold)


def trim_leading_silence(
    wave: np.ndarray, sampling_rate: int, threshold: float = 0.01
) -> np.ndarray:
    """``wave`` from 50 ms ahead of its first sample above ``threshold`` x its peak.

    A fixed window then holds more speech: short-command clips often open with a
    fifth of a second of silence. The margin (:data:`TRIM_MARGIN_SECONDS`) keeps the
    onset of a soft first sound. The threshold is relative to the clip's own peak, so
    loud and quiet recordings are cut alike; a clip whose noise floor is above it is
    left whole, as is a silent one.
    """
    _check_threshold(threshold)
    magnitude = np.abs(wave)
    peak = float(magnitude.max()) if magnitude.size else 0.0
    if peak == 0.0:
        return wave
    first = int(np.argmax(magnitude > threshold * peak))
    return wave[max(0, first - round(TRIM_MARGIN_SECONDS * sampling_rate)) :]


def set_silence_trim(feature_extractor: Any, threshold: float | None = 0.01) -> Any:
    """Have :func:`prepare_features` trim leading silence for this extractor (None: stop).

    :func:`featurize` and everything else that prepares features goes through
    :func:`prepare_features`, so they all trim (see :func:`trim_leading_silence`).
    The setting lives on the extractor (:data:`TRIM_ATTRIBUTE`) and is saved with it,
    as its window length is: training, evaluation, export checks and a model reloaded
    later read the same preprocessing from one place. Calling the extractor directly
    does not trim. Returns the extractor.
    """
    if threshold is None:
        if hasattr(feature_extractor, TRIM_ATTRIBUTE):
            delattr(feature_extractor, TRIM_ATTRIBUTE)
    else:
        setattr(feature_extractor, TRIM_ATTRIBUTE, _check_threshold(threshold))
    return feature_extractor


def prepare_features(
    audio: Sequence[AudioLike | dict],
    feature_extractor: Any,
    *,
    max_seconds: float | None = None,
    return_tensors: str | None = "np",
) -> Any:
    """Turn a batch of audio into model inputs.

    Items may be paths, 1-D arrays, ``datasets`` audio cells (``{"path"}`` or
    ``{"array", "sampling_rate"}``) or segment dicts ``{"audio", "offset", "duration"}``
    (MuST-C rows).

    Works with any Hugging Face feature extractor: log-mel ones (Whisper) are padded
    to the extractor's fixed window, raw-waveform ones (wav2vec2, HuBERT) to the
    longest clip of the batch with an attention mask. An extractor given
    :func:`set_silence_trim` has each clip's leading silence trimmed first;
    ``max_seconds`` then cuts each clip before extraction. Arrays are taken to be at
    the extractor's sampling rate.
    """
    rate = int(feature_extractor.sampling_rate)
    waves = [_as_waveform(item, rate) for item in audio]
    threshold = getattr(feature_extractor, TRIM_ATTRIBUTE, None)
    if threshold is not None:
        waves = [trim_leading_silence(w, rate, threshold) for w in waves]
    if max_seconds is not None:
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        limit = round(max_seconds * rate)
        waves = [w[:limit] for w in waves]
    log_mel = "input_features" in getattr(feature_extractor, "model_input_names", ())
    kwargs: dict[str, Any] = {"sampling_rate": rate, "return_tensors": return_tensors}
    if log_mel:
        kwargs["padding"] = "max_length"
    else:
        kwargs["padding"] = "longest"
        kwargs["return_attention_mask"] = True
    return feature_extractor(waves, **kwargs)


def feature_map_fn(
    feature_extractor: Any,
    *,
    audio_column: str = "audio",
    label_column: str | None = "label",
    max_seconds: float | None = None,
) -> Callable[[dict[str, list]], dict[str, Any]]:
    """A function for ``Dataset.map(fn, batched=True)`` that adds model inputs to each row.

    Labels (if ``label_column`` is present) are copied to ``labels``, the name
    ``transformers`` models expect.
    """

    def fn(batch: dict[str, list]) -> dict[str, Any]:
        features = prepare_features(
            batch[audio_column], feature_extractor, max_seconds=max_seconds, return_tensors=None
        )
        out = {key: list(value) for key, value in features.items()}
        if label_column is not None and label_column in batch:
            out["labels"] = list(batch[label_column])
        return out

    return fn


#: Fixed-window features larger than this per clip are computed on the fly by default
#: (Whisper's 30 s window is 80 x 3000 float32 = 937.5 KiB a clip; a 3 s window is 94 KiB).
ON_THE_FLY_BYTES = 256 * 1024


def fixed_feature_bytes(feature_extractor: Any) -> int | None:
    """Bytes one clip's features take when stored, for fixed-window log-mel extractors (else None)."""
    frames = getattr(feature_extractor, "nb_max_frames", None)
    if "input_features" not in getattr(feature_extractor, "model_input_names", ()) or not frames:
        return None
    return int(feature_extractor.feature_size) * int(frames) * 4


def featurize(
    dataset: Any,
    feature_extractor: Any,
    *,
    audio_column: str = "audio",
    label_column: str | None = "label",
    max_seconds: float | None = None,
    num_proc: int | None = None,
    on_the_fly: bool | None = None,
    desc: str = "features",
) -> Any:
    """A classification ``datasets.Dataset`` of model inputs, ready for the Trainer.

    Features come from :func:`prepare_features`, so an extractor given
    :func:`set_silence_trim` trims (the setting is part of the cache fingerprint).
    Keeps only the model inputs and ``labels``, in torch format. Log-mel inputs
    (Whisper) are stored as fixed-shape ``Array2D`` columns, so batches are read as
    one block instead of nested Python lists: over 10,000 clips this is the
    difference between seconds and minutes per epoch. ``num_proc`` > 1 forks worker
    processes: do it before torch has run multi-threaded in this process (a forked
    OpenMP pool deadlocks); one process with torch's own threads is usually as fast.

    ``on_the_fly=True`` stores nothing: features are computed each time a batch is
    read (``dataloader_num_workers`` spreads the work). The default (``None``) picks it
    when stored features would exceed :data:`ON_THE_FLY_BYTES` a clip, as Whisper's
    30 s window does (real FSC's 23k training clips would fill 21 GB of cache).
    """
    import datasets

    if len(dataset) == 0:
        raise ValueError("featurize: the dataset has no rows")
    if on_the_fly is None:
        size = fixed_feature_bytes(feature_extractor)
        on_the_fly = size is not None and size > ON_THE_FLY_BYTES
    if on_the_fly:
        return _featurize_on_the_fly(
            dataset,
            feature_extractor,
            audio_column=audio_column,
            label_column=label_column,
            max_seconds=max_seconds,
        )
    fn = feature_map_fn(
        feature_extractor,
        audio_column=audio_column,
        label_column=label_column,
        max_seconds=max_seconds,
    )
    features = None
    if "input_features" in getattr(feature_extractor, "model_input_names", ()):
        probe = fn(dataset[:1])["input_features"][0]
        shape = tuple(np.asarray(probe).shape)
        features = datasets.Features({"input_features": datasets.Array2D(shape, "float32")})
        if label_column is not None and label_column in dataset.column_names:
            features["labels"] = datasets.Value("int64")
    out = dataset.map(
        fn,
        batched=True,
        batch_size=64,
        features=features,
        remove_columns=dataset.column_names,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        desc=desc,
    )
    return out.with_format("torch")


def _featurize_on_the_fly(
    dataset: Any,
    feature_extractor: Any,
    *,
    audio_column: str,
    label_column: str | None,
    max_seconds: float | None,
) -> Any:
    """``featurize`` without storing: a transform turns audio into model inputs on read.

    The audio column is renamed to the model's first input and the labels to
    ``labels``, so the Trainer's ``remove_unused_columns`` keeps both; columns added
    later (the teacher cache's row index) pass through the transform untouched.
    """
    import hashlib

    import torch

    if audio_column not in dataset.column_names:
        raise KeyError(f"featurize: no column {audio_column!r} in {dataset.column_names}")
    input_name = feature_extractor.model_input_names[0]
    mapping = {audio_column: input_name}
    if label_column is not None and label_column in dataset.column_names:
        mapping[label_column] = "labels"
    settings = f"{dataset._fingerprint}|{feature_extractor.to_json_string()}|{max_seconds}"
    fingerprint = hashlib.blake2b(settings.encode(), digest_size=8).hexdigest()
    # Audio cells stay undecoded until read; only the renamed columns are kept.
    renames = {old: new for old, new in mapping.items() if old != new}
    slim = dataset.select_columns(list(mapping)).rename_columns(
        renames, new_fingerprint=fingerprint
    )

    def transform(batch: dict[str, list]) -> dict[str, Any]:
        features = prepare_features(
            batch[input_name], feature_extractor, max_seconds=max_seconds, return_tensors="pt"
        )
        out: dict[str, Any] = dict(features)
        for key, values in batch.items():
            if key != input_name:
                out[key] = torch.as_tensor(values)
        return out

    return slim.with_transform(transform)
