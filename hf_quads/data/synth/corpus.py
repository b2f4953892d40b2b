"""Plan and synthesise the default corpora: FSC layout (intents) and CoVoST layout (En->De).

Planning (speakers, who says what, file names, seeds) is pure Python and cheap, so
the size of a corpus can be checked without synthesising it
(:func:`plan_fsc_corpus`, :func:`plan_st_corpus`). Synthesis runs one job per
speaker in a pool of spawned worker processes, each with its own espeak-ng engine.
Everything is derived from ``seed``: the same seed gives byte-identical WAV files
and manifests whatever ``num_workers`` is. Training speakers get random voice
effects (:mod:`.voice_effects`) unless ``voice_effects=0``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...errors import HfQuadsError
from ..fsc import FSC_INTENT_TRIPLES, FSC_SPLIT_FILES, fsc_intent_name
from .espeak import espeak_paths, overlay_capacity, variant_overlay
from .fsc_phrasings import FSC_PHRASINGS, FSC_PHRASINGS_PER_INTENT
from .render import SAMPLE_RATE, RenderJob, render_indexed
from .speakers import (
    SPLITS,
    Speaker,
    derive_seed,
    make_speakers,
    partition_variants,
    resolve_variants,
    resolve_voices,
    seeded_random,
)
from .st_phrasings import ST_SENTENCE_PAIRS
from .voice_effects import add_voice_effects, apply_voice_effects

TASKS: tuple[str, ...] = ("fsc", "st")
#: CoVoST 2 manifest names of the ``st`` corpus, per split.
ST_SPLIT_FILES: dict[str, str] = {
    "train": "covost_v2.en_de.train.tsv",
    "validation": "covost_v2.en_de.dev.tsv",
    "test": "covost_v2.en_de.test.tsv",
}
ST_COLUMNS: tuple[str, ...] = ("path", "sentence", "translation", "client_id")
FSC_HEADER: tuple[str, ...] = (
    "",
    "path",
    "speakerId",
    "transcription",
    "action",
    "object",
    "location",
)
#: Written into every corpus directory; its presence marks the directory as ours.
MARKER_FILE = "hf_quads_synth.json"
#: Who each speaker is (split, espeak voice and variant, rate, pitch), one row per speaker.
SPEAKERS_FILE = "speakers.csv"
SPEAKERS_HEADER = (
    "speaker_id", "split", "voice", "variant", "rate", "pitch", "pitch_range", "effects",
)  # fmt: skip

DEFAULT_SPEAKERS: dict[str, int] = {"train": 75, "validation": 16, "test": 16}
DEFAULT_PHRASINGS_PER_INTENT = 3
DEFAULT_SENTENCES_PER_SPEAKER = 60
#: Share of the training speakers given random voice effects.
DEFAULT_VOICE_EFFECTS = 1.0
#: Accepted ``snr_db`` values.
SNR_DB_RANGE: tuple[float, float] = (-10.0, 100.0)

#: Settings that change a corpus's audio or manifests (recorded in its marker).
_PLAN_SETTINGS = frozenset(
    {"seed", "train_speakers", "valid_speakers", "test_speakers", "phrasings_per_intent",
     "voices", "variants", "voice_effects", "snr_db"}
)  # fmt: skip

_OWNED_PATHS: dict[str, tuple[str, ...]] = {
    "fsc": ("data", "wavs", SPEAKERS_FILE),
    "st": ("clips", *ST_SPLIT_FILES.values(), SPEAKERS_FILE),
}


class SynthConfigError(HfQuadsError, ValueError):
    """Invalid settings for a synthetic corpus, or an output directory it must not touch."""


@dataclass(frozen=True)
class PlannedUtterance:
    """One clip to synthesise."""

    split: str
    speaker: Speaker
    text: str  # what is spoken
    path: str  # FSC: relative to the corpus root; ST: file name inside clips/
    seed: int
    labels: tuple[str, ...]  # FSC: (action, object, location); ST: (German translation,)


@dataclass
class CorpusPlan:
    """Everything about a corpus except its audio."""

    task: str
    seed: int
    speakers: dict[str, list[Speaker]]
    variants: dict[str, tuple[str, ...]]
    utterances: list[PlannedUtterance]

    @property
    def num_utterances(self) -> int:
        return len(self.utterances)

    def counts(self) -> dict[str, int]:
        """Utterances per split."""
        out = dict.fromkeys(SPLITS, 0)
        for u in self.utterances:
            out[u.split] += 1
        return out


@dataclass
class CorpusStats:
    """What :func:`synthesize_fsc_corpus` / :func:`synthesize_st_corpus` wrote."""

    task: str
    out_dir: str
    seed: int
    utterances: dict[str, int]
    speakers: dict[str, int]
    variants: dict[str, list[str]]
    intents: int  # FSC: distinct intents (31); ST: 0
    distinct_texts: int  # FSC: distinct transcriptions; ST: distinct sentence pairs
    hours: float
    seconds: float
    num_workers: int
    snr_db: float | None = None

    @property
    def total_utterances(self) -> int:
        return sum(self.utterances.values())

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """A small table for the terminal."""
        name = {"fsc": "FSC-layout intent", "st": "CoVoST-layout En->De"}[self.task]
        noise = "clean" if self.snr_db is None else f"white noise at {self.snr_db:g} dB SNR"
        lines = [
            f"Synthetic {name} corpus in {self.out_dir} (seed {self.seed}, {noise})",
            f"  {'split':<11} {'utterances':>10} {'speakers':>9} {'variants':>9}",
        ]
        for split in SPLITS:
            lines.append(
                f"  {split:<11} {self.utterances[split]:>10} {self.speakers[split]:>9} "
                f"{len(self.variants[split]):>9}"
            )
        lines.append(
            f"  {'total':<11} {self.total_utterances:>10} {sum(self.speakers.values()):>9} "
            f"{sum(len(v) for v in self.variants.values()):>9}"
        )
        what = (
            f"intents: {self.intents}, distinct transcriptions: {self.distinct_texts}"
            if self.task == "fsc"
            else f"distinct sentence pairs: {self.distinct_texts}"
        )
        how = "in one process" if self.num_workers == 0 else f"with {self.num_workers} worker(s)"
        lines.append(f"  {what}; audio: {self.hours:.2f} h; took {self.seconds:.1f} s {how}")
        return "\n".join(lines)


# -- planning ----------------------------------------------------------------------------


def _check_speaker_counts(
    seed: int, train_speakers: int, valid_speakers: int, test_speakers: int
) -> dict[str, int]:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise SynthConfigError(f"seed must be an integer, got {seed!r}")
    counts = {"train": train_speakers, "validation": valid_speakers, "test": test_speakers}
    for split, n in counts.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SynthConfigError(f"{split} speakers must be a positive integer, got {n!r}")
    return counts


def _plan_speakers(
    counts: dict[str, int],
    seed: int,
    voices: Sequence[str] | None,
    variants: Sequence[str] | None,
    voice_effects: float,
) -> tuple[dict[str, list[Speaker]], dict[str, tuple[str, ...]]]:
    if (
        not isinstance(voice_effects, (int, float))
        or isinstance(voice_effects, bool)
        or not 0.0 <= voice_effects <= 1.0
    ):
        raise SynthConfigError(
            f"voice_effects is the share of training speakers given random voice effects, "
            f"between 0 and 1; got {voice_effects!r}"
        )
    voices = resolve_voices(voices)
    parts = partition_variants(resolve_variants(variants), seed)
    ids: set[str] = set()
    settings: set[tuple] = set()
    speakers = {
        split: make_speakers(
            split,
            counts[split],
            variants=parts[split],
            voices=voices,
            seed=seed,
            taken_ids=ids,
            taken_settings=settings,
        )
        for split in SPLITS
    }
    speakers["train"] = add_voice_effects(speakers["train"], float(voice_effects), seed)
    used = {s: tuple(sorted({sp.variant for sp in speakers[s]})) for s in SPLITS}
    return speakers, used


def _utterance_seed_and_name(seed: int, split: str, spk: int, utt: int) -> tuple[int, str]:
    """A per-utterance seed and an FSC-like (version-1 looking) UUID file stem."""
    digest = hashlib.blake2b(repr((seed, "clip", split, spk, utt)).encode(), digest_size=16)
    return derive_seed(seed, "utterance", split, spk, utt), str(
        uuid.UUID(bytes=digest.digest(), version=1)
    )


def plan_fsc_corpus(
    *,
    seed: int = 0,
    train_speakers: int = DEFAULT_SPEAKERS["train"],
    valid_speakers: int = DEFAULT_SPEAKERS["validation"],
    test_speakers: int = DEFAULT_SPEAKERS["test"],
    phrasings_per_intent: int = DEFAULT_PHRASINGS_PER_INTENT,
    voices: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    voice_effects: float = DEFAULT_VOICE_EFFECTS,
) -> CorpusPlan:
    """Plan an FSC-layout corpus: every speaker says ``phrasings_per_intent`` phrasings of each of the 31 intents.

    Within a split the phrasings of an intent are dealt out in a seeded cycle, so
    all eight are used about equally; every intent has exactly
    ``speakers * phrasings_per_intent`` utterances in every split. A
    ``voice_effects`` share of the training speakers speak with random voice
    effects (see :mod:`hf_quads.data.synth.voice_effects`).
    """
    counts = _check_speaker_counts(seed, train_speakers, valid_speakers, test_speakers)
    if not 1 <= phrasings_per_intent <= FSC_PHRASINGS_PER_INTENT:
        raise SynthConfigError(
            f"phrasings_per_intent must be between 1 and {FSC_PHRASINGS_PER_INTENT}, "
            f"got {phrasings_per_intent}"
        )
    speakers, used = _plan_speakers(counts, seed, voices, variants, voice_effects)
    k = phrasings_per_intent
    utterances: list[PlannedUtterance] = []
    for split in SPLITS:
        cycles = {}
        for triple in FSC_INTENT_TRIPLES:
            order = list(FSC_PHRASINGS[triple])
            seeded_random(seed, "phrasings", split, fsc_intent_name(*triple)).shuffle(order)
            cycles[triple] = order
        for j, spk in enumerate(speakers[split]):
            said = [
                (triple, cycles[triple][(j * k + t) % len(cycles[triple])])
                for triple in FSC_INTENT_TRIPLES
                for t in range(k)
            ]
            seeded_random(seed, "utterance-order", split, j).shuffle(said)
            for u, (triple, text) in enumerate(said):
                utt_seed, stem = _utterance_seed_and_name(seed, split, j, u)
                utterances.append(
                    PlannedUtterance(
                        split=split,
                        speaker=spk,
                        text=text,
                        path=f"wavs/speakers/{spk.speaker_id}/{stem}.wav",
                        seed=utt_seed,
                        labels=triple,
                    )
                )
    return CorpusPlan("fsc", seed, speakers, used, utterances)


def plan_st_corpus(
    *,
    seed: int = 0,
    train_speakers: int = DEFAULT_SPEAKERS["train"],
    valid_speakers: int = DEFAULT_SPEAKERS["validation"],
    test_speakers: int = DEFAULT_SPEAKERS["test"],
    sentences_per_speaker: int = DEFAULT_SENTENCES_PER_SPEAKER,
    voices: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    voice_effects: float = DEFAULT_VOICE_EFFECTS,
) -> CorpusPlan:
    """Plan a CoVoST-layout En->De corpus: every speaker reads ``sentences_per_speaker`` pairs.

    Within a split the pairs of :data:`ST_SENTENCE_PAIRS` are dealt out in a seeded
    cycle, so a split with enough speakers covers every pair about equally often.
    """
    counts = _check_speaker_counts(seed, train_speakers, valid_speakers, test_speakers)
    n_pairs = len(ST_SENTENCE_PAIRS)
    if not 1 <= sentences_per_speaker <= n_pairs:
        raise SynthConfigError(
            f"sentences_per_speaker must be between 1 and {n_pairs}, got {sentences_per_speaker}"
        )
    speakers, used = _plan_speakers(counts, seed, voices, variants, voice_effects)
    m = sentences_per_speaker
    utterances: list[PlannedUtterance] = []
    for split in SPLITS:
        order = list(ST_SENTENCE_PAIRS)
        seeded_random(seed, "sentences", split).shuffle(order)
        for j, spk in enumerate(speakers[split]):
            for u in range(m):
                english, german = order[(j * m + u) % n_pairs]
                utt_seed, stem = _utterance_seed_and_name(seed, split, j, u)
                utterances.append(
                    PlannedUtterance(
                        split=split,
                        speaker=spk,
                        text=english,
                        path=f"{stem}.wav",
                        seed=utt_seed,
                        labels=(german,),
                    )
                )
    return CorpusPlan("st", seed, speakers, used, utterances)


# -- output directory ----------------------------------------------------------------------


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _prepare_out_dir(out: Path, task: str, overwrite: bool) -> None:
    """Create ``out`` or clear what an earlier corpus left there; refuse foreign content."""
    if out.exists() and not out.is_dir():
        raise SynthConfigError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER_FILE
    owned = set(_OWNED_PATHS[task])
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8")).get("task")
        except (OSError, ValueError, AttributeError):
            previous = None
        owned.update(_OWNED_PATHS.get(previous, ()))
    elif any(out.iterdir()) and not overwrite:
        raise SynthConfigError(
            f"{out} is not empty and holds no earlier synthetic corpus (no {MARKER_FILE}); "
            f"pick an empty or new directory, or pass overwrite=True (--overwrite) to write "
            f"into it, replacing {', '.join(sorted(_OWNED_PATHS[task]))} there"
        )
    for name in sorted(owned):
        _remove(out / name)
    _remove(marker)


def _write_marker(out: Path, task: str, complete: bool, config: dict, stats: dict | None) -> None:
    payload = {
        "format": "hf-quads synthetic corpus",
        "task": task,
        "complete": complete,
        "config": config,
        "stats": stats,
    }
    (out / MARKER_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


# -- synthesis -----------------------------------------------------------------------------


def _check_run_settings(snr_db: float | None, num_workers: int) -> None:
    if snr_db is not None:
        try:
            value = float(snr_db)
        except (TypeError, ValueError):
            raise SynthConfigError(f"snr_db must be a number of decibels, got {snr_db!r}") from None
        low, high = SNR_DB_RANGE
        if not math.isfinite(value) or not low <= value <= high:
            raise SynthConfigError(
                f"snr_db must be a finite number between {low:g} and {high:g} dB "
                f"(or None for clean audio), got {snr_db!r}"
            )
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise SynthConfigError(
            f"num_workers must be 0 (synthesise in this process) or more, got {num_workers!r}"
        )


def _jobs(
    plan: CorpusPlan,
    audio_root: Path,
    snr_db: float | None,
    espeak_data: Mapping[str, str] | None = None,
) -> list[RenderJob]:
    """One job per speaker; ``espeak_data`` maps a speaker's espeak variant to the
    overlay that holds it (variants not in it use the bundled data)."""
    espeak_data = espeak_data or {}
    by_speaker: dict[str, list[PlannedUtterance]] = {}
    for u in plan.utterances:
        by_speaker.setdefault(u.speaker.speaker_id, []).append(u)
    jobs = []
    for items in by_speaker.values():
        spk = items[0].speaker
        jobs.append(
            RenderJob(
                voice=spk.espeak_voice,
                rate=spk.rate,
                pitch=spk.pitch,
                pitch_range=spk.pitch_range,
                items=tuple((str(audio_root / u.path), u.text, u.seed) for u in items),
                snr_db=None if snr_db is None else float(snr_db),
                espeak_data=espeak_data.get(spk.espeak_variant),
            )
        )
    return jobs


def _effect_variants(plan: CorpusPlan) -> dict[str, str]:
    """The variant files the plan's speakers with voice effects need: name -> text."""
    vdir = Path(espeak_paths()[1]) / "voices" / "!v"
    return {
        sp.espeak_variant: apply_voice_effects(
            (vdir / sp.variant).read_text(encoding="utf-8", errors="replace"), sp.effects
        )
        for split in SPLITS
        for sp in plan.speakers[split]
        if sp.effects
    }


def _overlays(dest: Path, variants: Mapping[str, str]) -> dict[str, str]:
    """espeak-ng data overlays in ``dest`` for ``variants`` (name -> text), as many as
    espeak-ng's voice list needs; returns variant name -> its overlay's folder."""
    names = sorted(variants)
    size = overlay_capacity()
    if names and size < 1:
        raise SynthConfigError("the bundled espeak-ng data leaves no room for new variants")
    where: dict[str, str] = {}
    for k in range(0, len(names), size):
        chunk = {name: variants[name] for name in names[k : k + size]}
        root = str(variant_overlay(dest / f"overlay-{k // size}", chunk))
        where.update(dict.fromkeys(chunk, root))
    return where


def _render(jobs: list[RenderJob], num_workers: int, progress: bool, desc: str) -> list[list[int]]:
    from tqdm.auto import tqdm

    results: list[list[int]] = [[] for _ in jobs]
    total = sum(len(job.items) for job in jobs)
    with tqdm(total=total, desc=desc, unit="utt", disable=not progress) as bar:
        if num_workers == 0:
            for i, job in enumerate(jobs):
                results[i] = render_indexed((i, job))[1]
                bar.update(len(job.items))
        else:
            # spawn: workers start clean (no inherited espeak or thread state) on every OS.
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(processes=min(num_workers, len(jobs))) as pool:
                for i, lengths in pool.imap_unordered(render_indexed, list(enumerate(jobs))):
                    results[i] = lengths
                    bar.update(len(lengths))
    return results


def _marker_config(settings: dict[str, Any], snr_db: float | None) -> dict[str, Any]:
    """What the marker file records of a run: the plan's settings (JSON-ready) and the noise."""
    config: dict[str, Any] = {"seed": settings["seed"], "snr_db": snr_db}
    for key, value in settings.items():
        if key in ("voices", "variants") and value is not None:
            value = list(value)
        config.setdefault(key, value)
    return config


def _synthesize(
    plan: CorpusPlan,
    out_dir: str | os.PathLike,
    *,
    snr_db: float | None,
    num_workers: int,
    overwrite: bool,
    progress: bool,
    config: dict,
) -> CorpusStats:
    _check_run_settings(snr_db, num_workers)
    start = time.perf_counter()
    out = Path(out_dir)
    _prepare_out_dir(out, plan.task, overwrite)
    _write_marker(out, plan.task, False, config, None)
    audio_root = out if plan.task == "fsc" else out / "clips"
    for d in sorted({(audio_root / u.path).parent for u in plan.utterances}):
        d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hf-quads-espeak-data-") as tmp:
        jobs = _jobs(plan, audio_root, snr_db, _overlays(Path(tmp), _effect_variants(plan)))
        lengths = _render(jobs, num_workers, progress, desc=f"synth {plan.task}")
    total_samples = sum(sum(x) for x in lengths)
    if plan.task == "fsc":
        _write_fsc_csvs(out, plan)
    else:
        _write_st_tsvs(out, plan)
    _write_speakers(out, plan)
    counts = plan.counts()
    stats = CorpusStats(
        task=plan.task,
        out_dir=str(out),
        seed=plan.seed,
        utterances=counts,
        speakers={s: len(plan.speakers[s]) for s in SPLITS},
        variants={s: list(plan.variants[s]) for s in SPLITS},
        intents=len({u.labels for u in plan.utterances}) if plan.task == "fsc" else 0,
        distinct_texts=len({(u.text, *u.labels) for u in plan.utterances})
        if plan.task == "st"
        else len({u.text for u in plan.utterances}),
        hours=total_samples / SAMPLE_RATE / 3600.0,
        seconds=0.0,
        num_workers=num_workers,
        snr_db=None if snr_db is None else float(snr_db),
    )
    stats.seconds = time.perf_counter() - start
    # The marker holds nothing that varies between runs (no timing), so it is reproducible too.
    varying = ("seconds", "num_workers", "out_dir")
    summary = {k: v for k, v in stats.to_dict().items() if k not in varying}
    _write_marker(out, plan.task, True, config, summary)
    return stats


def _write_speakers(out: Path, plan: CorpusPlan) -> None:
    with open(out / SPEAKERS_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SPEAKERS_HEADER)
        for split in SPLITS:
            for sp in plan.speakers[split]:
                effects = sp.effects.describe() if sp.effects else ""
                writer.writerow([sp.speaker_id, split, *sp.settings, effects])


def read_speakers(corpus_dir: str | os.PathLike) -> dict[str, dict[str, str]]:
    """``speaker_id -> {split, voice, variant, rate, pitch, pitch_range, effects}`` of a synthetic corpus.

    ``effects`` is the :meth:`VoiceEffects.describe` text (empty: the plain variant).

    Empty for corpora without :data:`SPEAKERS_FILE` (real ones, or synthesised
    before it was written).
    """
    path = Path(corpus_dir) / SPEAKERS_FILE
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        return {row.pop("speaker_id"): row for row in csv.DictReader(handle)}


def _write_fsc_csvs(out: Path, plan: CorpusPlan) -> None:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        rows = [u for u in plan.utterances if u.split == split]
        with open(data / FSC_SPLIT_FILES[split], "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(FSC_HEADER)
            for i, u in enumerate(rows):
                writer.writerow([i, u.path, u.speaker.speaker_id, u.text, *u.labels])


def _client_id(seed: int, speaker: Speaker) -> str:
    """A CoVoST-like client id: 128 hex digits."""
    return hashlib.sha512(f"{seed}:{speaker.speaker_id}".encode()).hexdigest()


def _write_st_tsvs(out: Path, plan: CorpusPlan) -> None:
    for split in SPLITS:
        rows = [u for u in plan.utterances if u.split == split]
        with open(out / ST_SPLIT_FILES[split], "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(
                handle,
                delimiter="\t",
                quoting=csv.QUOTE_NONE,
                escapechar="\\",
                lineterminator="\n",
            )
            writer.writerow(ST_COLUMNS)
            for u in rows:
                writer.writerow([u.path, u.text, u.labels[0], _client_id(plan.seed, u.speaker)])


def synthesize_fsc_corpus(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    snr_db: float | None = None,
    num_workers: int = 2,
    train_speakers: int = DEFAULT_SPEAKERS["train"],
    valid_speakers: int = DEFAULT_SPEAKERS["validation"],
    test_speakers: int = DEFAULT_SPEAKERS["test"],
    phrasings_per_intent: int = DEFAULT_PHRASINGS_PER_INTENT,
    voices: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    voice_effects: float = DEFAULT_VOICE_EFFECTS,
    overwrite: bool = False,
    progress: bool = True,
) -> CorpusStats:
    """Synthesise a Fluent-Speech-Commands-layout corpus into ``out_dir``.

    Writes ``data/{train,valid,test}_data.csv`` (header
    ``,path,speakerId,transcription,action,object,location``) and
    ``wavs/speakers/<speakerId>/<uuid>.wav`` (16 kHz mono PCM_16), readable by
    :func:`hf_quads.data.load_fsc`. The defaults give 107 speakers (75/16/16) x 93
    utterances = 9,951 clips. ``voice_effects`` is the share of training speakers
    that speak with random voice effects (formants, breath, echo...; see
    :mod:`hf_quads.data.synth.voice_effects`), ``0`` for none. ``snr_db`` adds
    seeded white noise; ``num_workers=0`` synthesises in this process. With worker
    processes (spawned), call this from under ``if __name__ == "__main__":`` in a
    script.

    ``out_dir`` must be new, empty or an earlier synthetic corpus (which is
    replaced), unless ``overwrite``.
    """
    settings = {
        "seed": seed,
        "train_speakers": train_speakers,
        "valid_speakers": valid_speakers,
        "test_speakers": test_speakers,
        "phrasings_per_intent": phrasings_per_intent,
        "voices": voices,
        "variants": variants,
        "voice_effects": voice_effects,
    }
    return _synthesize(
        plan_fsc_corpus(**settings),
        out_dir,
        snr_db=snr_db,
        num_workers=num_workers,
        overwrite=overwrite,
        progress=progress,
        config=_marker_config(settings, snr_db),
    )


def ensure_fsc_corpus(out_dir: str | os.PathLike, **kwargs: Any) -> Path:
    """``out_dir``, after synthesising an FSC-layout corpus there if it holds none.

    A folder with ``data/train_data.csv`` (synthetic or the real FSC) is used as
    it is; otherwise ``kwargs`` go to :func:`synthesize_fsc_corpus`. A synthetic
    corpus made with other settings than ``kwargs`` is kept too, with a warning
    that names them.
    """
    out = Path(out_dir)
    if not (out / "data" / FSC_SPLIT_FILES["train"]).is_file():
        print(f"synthesising the speech-commands corpus into {out} (espeak-ng)", flush=True)
        synthesize_fsc_corpus(out, **kwargs)
        return out
    differ = _settings_differ(out, kwargs)
    if differ:
        warnings.warn(
            f"{out} holds a synthetic corpus made with other settings ({'; '.join(differ)}); "
            "it is used as it is: delete the folder to have it synthesised with the ones asked",
            stacklevel=2,
        )
    return out


def _settings_differ(corpus_dir: Path, requested: dict[str, Any]) -> list[str]:
    """``key: theirs != asked`` for each plan setting where the corpus's marker differs.

    Corpora from before a setting existed were made without it (``voice_effects``: 0).
    """
    try:
        config = json.loads((corpus_dir / MARKER_FILE).read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # not one of ours (the real FSC), or unreadable: nothing to compare
    asked = {"voice_effects": DEFAULT_VOICE_EFFECTS, **requested}
    absent = {"voice_effects": 0.0}
    out = []
    for key, value in asked.items():
        if key not in _PLAN_SETTINGS:
            continue
        theirs = config.get(key, absent.get(key))
        if isinstance(value, (list, tuple)):
            value = list(value)
        if theirs != value:
            out.append(f"{key}: {theirs!r} there, {value!r} asked")
    return out


def synthesize_st_corpus(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    snr_db: float | None = None,
    num_workers: int = 2,
    train_speakers: int = DEFAULT_SPEAKERS["train"],
    valid_speakers: int = DEFAULT_SPEAKERS["validation"],
    test_speakers: int = DEFAULT_SPEAKERS["test"],
    sentences_per_speaker: int = DEFAULT_SENTENCES_PER_SPEAKER,
    voices: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    voice_effects: float = DEFAULT_VOICE_EFFECTS,
    overwrite: bool = False,
    progress: bool = True,
) -> CorpusStats:
    """Synthesise a CoVoST-2-layout English->German corpus into ``out_dir``.

    Writes ``covost_v2.en_de.{train,dev,test}.tsv`` (``path sentence translation
    client_id``, tab-separated, ``QUOTE_NONE`` with backslash escapes) and the clips
    in ``clips/`` (16 kHz mono PCM_16), readable by
    :func:`hf_quads.data.load_covost`. The defaults give 107 speakers x 60 sentences
    = 6,420 clips over the hand-written pairs of :data:`ST_SENTENCE_PAIRS`. Other
    arguments as in :func:`synthesize_fsc_corpus`.
    """
    settings = {
        "seed": seed,
        "train_speakers": train_speakers,
        "valid_speakers": valid_speakers,
        "test_speakers": test_speakers,
        "sentences_per_speaker": sentences_per_speaker,
        "voices": voices,
        "variants": variants,
        "voice_effects": voice_effects,
    }
    return _synthesize(
        plan_st_corpus(**settings),
        out_dir,
        snr_db=snr_db,
        num_workers=num_workers,
        overwrite=overwrite,
        progress=progress,
        config=_marker_config(settings, snr_db),
    )
