"""Worker side of corpus synthesis: espeak-ng -> 16 kHz clip -> WAV file.

Each job is one speaker's utterances, spoken in a fixed order by an engine that is
reloaded at the start of the job, so a job's files depend only on the job and
never on which process ran it or what that process spoke before.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass

import numpy as np
import soxr

from .espeak import Espeak

#: Sample rate of every written clip.
SAMPLE_RATE = 16_000
#: Peak level of the clean speech, drawn per utterance (dBFS).
PEAK_DBFS_RANGE = (-12.0, -4.0)
#: Silence before and after the speech, drawn per utterance (seconds).
PAD_SECONDS_RANGE = (0.05, 0.3)

_ENGINE: Espeak | None = None
_ENGINE_DATA: str | None = None


def engine(data_dir: str | None = None) -> Espeak:
    """This process's espeak-ng engine (one at a time: espeak-ng has global state).

    ``data_dir`` is an ``espeak-ng-data`` folder (default: the bundled one); asking
    for another one replaces the engine.
    """
    global _ENGINE, _ENGINE_DATA
    if _ENGINE is None or data_dir != _ENGINE_DATA:
        if _ENGINE is not None:
            _ENGINE.close()
        _ENGINE, _ENGINE_DATA = Espeak(data_dir), data_dir
    return _ENGINE


@dataclass(frozen=True)
class RenderJob:
    """One speaker's utterances: ``items`` are ``(wav path, text, utterance seed)``."""

    voice: str
    rate: int
    pitch: int
    pitch_range: int
    items: tuple[tuple[str, str, int], ...]
    snr_db: float | None = None
    espeak_data: str | None = None  # espeak-ng-data folder (an overlay with its variant) or bundled


def finish_waveform(
    raw: np.ndarray,
    source_rate: int,
    *,
    seed: int,
    snr_db: float | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """espeak's int16 output -> the int16 clip that is written.

    Resamples with soxr, scales the speech to a seeded peak level, pads seeded
    silence on both sides and, with ``snr_db``, adds white Gaussian noise whose
    power is the speech power (over the unpadded speech) divided by
    ``10 ** (snr_db / 10)``. Level and padding come from one random stream and the
    noise from another, so the clean part is the same with or without noise.
    """
    speech = raw.astype(np.float32) / 32768.0
    if source_rate != sample_rate:
        speech = soxr.resample(speech, source_rate, sample_rate, quality="HQ")
    speech = np.asarray(speech, dtype=np.float64)
    rng = np.random.default_rng([seed, 1])
    peak_db = rng.uniform(*PEAK_DBFS_RANGE)
    lead, tail = (round(rng.uniform(*PAD_SECONDS_RANGE) * sample_rate) for _ in range(2))
    peak = float(np.abs(speech).max()) if speech.size else 0.0
    if peak > 0:
        speech *= 10.0 ** (peak_db / 20.0) / peak
    clip = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    if snr_db is not None and speech.size:
        speech_power = float(np.mean(speech**2))
        noise_std = np.sqrt(speech_power / 10.0 ** (snr_db / 10.0))
        clip += np.random.default_rng([seed, 2]).standard_normal(clip.size) * noise_std
    return np.clip(np.rint(clip * 32767.0), -32768, 32767).astype(np.int16)


def write_wav(path: str, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit PCM (a plain 44-byte RIFF header: the same bytes every time)."""
    with wave.open(path, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(samples.astype("<i2", copy=False).tobytes())


def render_job(job: RenderJob) -> list[int]:
    """Synthesise and write one job's clips; returns the length in samples of each."""
    eng = engine(job.espeak_data)
    eng.check_voice(job.voice)
    eng.reset()  # a fresh library: nothing carries over from earlier jobs
    lengths = []
    for path, text, seed in job.items:
        raw = eng.synthesize(
            text,
            voice=job.voice,
            rate=job.rate,
            pitch=job.pitch,
            pitch_range=job.pitch_range,
            seed=seed,
            fresh=False,
        )
        clip = finish_waveform(raw, eng.sample_rate, seed=seed, snr_db=job.snr_db)
        write_wav(path, clip)
        lengths.append(int(clip.size))
    return lengths


def render_indexed(indexed_job: tuple[int, RenderJob]) -> tuple[int, list[int]]:
    """:func:`render_job` for ``Pool.imap_unordered``: keeps the job's index with its result."""
    index, job = indexed_job
    return index, render_job(job)
