"""The synthetic espeak-ng corpora: layout, splits, determinism, noise, CLI and errors."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_quads.data import FSC_INTENT_TRIPLES, FSC_INTENTS, load_covost, load_fsc
from hf_quads.data.fsc import FSC_ACTIONS, FSC_LOCATIONS, FSC_OBJECTS
from hf_quads.data.synth import (
    ENGLISH_VOICES,
    FSC_PHRASINGS,
    MARKER_FILE,
    SPLITS,
    ST_SENTENCE_PAIRS,
    ST_SPLIT_FILES,
    VARIANT_FAMILIES,
    Espeak,
    SynthConfigError,
    UnknownVoiceError,
    ensure_fsc_corpus,
    partition_variants,
    plan_fsc_corpus,
    plan_st_corpus,
    read_speakers,
    synthesize_fsc_corpus,
    synthesize_st_corpus,
)
from hf_quads.data.synth.speakers import resolve_variants

SMALL = {"train_speakers": 4, "valid_speakers": 2, "test_speakers": 2, "phrasings_per_intent": 2}
TINY = {"train_speakers": 1, "valid_speakers": 1, "test_speakers": 1, "phrasings_per_intent": 1}
FSC_HEADER_LINE = ",path,speakerId,transcription,action,object,location"
CSV_NAMES = {"train": "train_data.csv", "validation": "valid_data.csv", "test": "test_data.csv"}


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def fsc_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fsc") / "corpus"
    stats = synthesize_fsc_corpus(out, seed=0, num_workers=2, progress=False, **SMALL)
    assert stats.total_utterances == 8 * 31 * 2
    return out


@pytest.fixture(scope="module")
def fsc_dir_in_process(tmp_path_factory) -> Path:
    """The same corpus again, synthesised in this process (num_workers=0)."""
    out = tmp_path_factory.mktemp("fsc_again") / "corpus"
    synthesize_fsc_corpus(out, seed=0, num_workers=0, progress=False, **SMALL)
    return out


# -- the phrasing tables -------------------------------------------------------------------


def test_phrasing_table_covers_every_intent_with_five_or_more_phrasings():
    assert set(FSC_PHRASINGS) == set(FSC_INTENT_TRIPLES)
    all_texts = [t for texts in FSC_PHRASINGS.values() for t in texts]
    assert len(all_texts) == len(set(all_texts)), "a phrasing maps to two intents"
    for (action, obj, location), texts in FSC_PHRASINGS.items():
        assert action in FSC_ACTIONS and obj in FSC_OBJECTS and location in FSC_LOCATIONS
        assert len(texts) >= 5 and len(set(texts)) == len(texts)
        assert all(t and t == t.strip() and "," not in t for t in texts)
    assert {len(t) for t in FSC_PHRASINGS.values()} == {8}  # equal counts keep "all" balanced
    assert "Turn on the lights in the kitchen" in FSC_PHRASINGS[("activate", "lights", "kitchen")]
    assert "Switch the language to German" in FSC_PHRASINGS[("change language", "German", "none")]


def test_st_table_has_hundreds_of_pairs_with_real_umlauts():
    english = [en for en, _ in ST_SENTENCE_PAIRS]
    assert len(ST_SENTENCE_PAIRS) >= 300 and len(set(english)) == len(english)
    pairs = dict(ST_SENTENCE_PAIRS)
    assert pairs["Turn on the lights in the kitchen."] == "Schalte das Licht in der Küche ein."
    assert pairs["Make the music louder."] == "Mach die Musik lauter."
    assert pairs["Bring me my shoes."] == "Bring mir meine Schuhe."
    assert pairs["Close the window in the office."] == "Schließ das Fenster im Büro."
    assert pairs["Translate this into French."] == "Übersetze das ins Französische."
    for en, de in ST_SENTENCE_PAIRS:
        assert unicodedata.is_normalized("NFC", de)
        assert not re.search(r"Kueche|Buero|Gaeste|Schliess|Tuer\b|naechste|moechte|Uebers", de)
        assert "\t" not in en + de and "\\" not in en + de and '"' not in en + de
        if "kitchen" in en:
            assert "Küche" in de
        if "guest room" in en:
            assert "Gästezimmer" in de
        assert en[-1] in ".?" and de[-1] == en[-1]


# -- planning ------------------------------------------------------------------------------


def test_default_plan_has_about_ten_thousand_balanced_utterances():
    plan = plan_fsc_corpus()
    counts = plan.counts()
    total = sum(counts.values())
    assert total >= 2000 and 9000 <= total <= 11000
    assert 0.65 <= counts["train"] / total <= 0.75
    for split in ("validation", "test"):
        assert 0.12 <= counts[split] / total <= 0.18
    for split in SPLITS:
        per_intent = Counter(u.labels for u in plan.utterances if u.split == split)
        assert set(per_intent) == set(FSC_INTENT_TRIPLES)
        assert len(set(per_intent.values())) == 1, f"{split}: intents are not balanced"
    st = plan_st_corpus()
    assert st.num_utterances >= 2000
    assert {(u.text, u.labels[0]) for u in st.utterances if u.split == "train"} == set(
        ST_SENTENCE_PAIRS
    )


def test_default_plan_speakers_are_distinct_and_variants_unseen():
    plan = plan_fsc_corpus()
    speakers = [s for split in SPLITS for s in plan.speakers[split]]
    assert len({s.speaker_id for s in speakers}) == len(speakers)
    assert len({s.settings for s in speakers}) == len(speakers)
    assert all(re.fullmatch(r"[A-Za-z0-9]{16}", s.speaker_id) for s in speakers)
    train, valid, test = (set(plan.variants[s]) for s in SPLITS)
    assert not train & test and not train & valid and not valid & test
    assert {s.voice for s in speakers} == set(ENGLISH_VOICES)
    # Test speakers get distinct variants before any repeats.
    assert len({s.variant for s in plan.speakers["test"]}) == len(plan.speakers["test"])


def test_variant_partition_is_seeded_stratified_and_disjoint():
    pool = resolve_variants()
    a, b = partition_variants(pool, 0), partition_variants(pool, 1)
    assert a != b
    for parts in (a, b):
        assert sorted(v for s in SPLITS for v in parts[s]) == sorted(pool)
        assert all(parts[s] for s in SPLITS)
        for family, members in VARIANT_FAMILIES.items():  # stratified: every family everywhere
            if len(members) >= 3:
                assert all(set(parts[s]) & set(members) for s in SPLITS), family
    assert partition_variants(pool, 0) == a
    small = partition_variants(["m1", "m2", "m3"], 5)
    assert sorted(len(v) for v in small.values()) == [1, 1, 1]


# -- the FSC corpus ------------------------------------------------------------------------


def test_fsc_csvs_have_the_exact_fsc_header_and_index(fsc_dir):
    for split, name in CSV_NAMES.items():
        text = (fsc_dir / "data" / name).read_text(encoding="utf-8")
        assert text.split("\n", 1)[0] == FSC_HEADER_LINE
        assert text.endswith("\n") and "\r" not in text
        rows = _read_csv(fsc_dir / "data" / name)[1:]
        assert [int(r[0]) for r in rows] == list(range(len(rows)))
        for _, path, speaker, transcription, action, obj, location in rows:
            assert re.fullmatch(
                rf"wavs/speakers/{speaker}/[0-9a-f]{{8}}-[0-9a-f]{{4}}-1[0-9a-f]{{3}}-"
                r"[89ab][0-9a-f]{3}-[0-9a-f]{12}\.wav",
                path,
            )
            assert re.fullmatch(r"[A-Za-z0-9]{16}", speaker)
            assert transcription in FSC_PHRASINGS[(action, obj, location)]
        assert len(rows) == {"train": 4, "validation": 2, "test": 2}[split] * 62


def test_load_fsc_reads_the_corpus_with_disjoint_speakers(fsc_dir):
    data = load_fsc(fsc_dir)
    assert set(data) == {"train", "validation", "test"}
    assert set(data["train"]["intent"]) == set(FSC_INTENTS)
    assert len(set(data["train"]["label"])) == 31
    speakers = {split: set(data[split]["speaker_id"]) for split in data}
    assert not speakers["train"] & speakers["test"]
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["validation"] & speakers["test"]
    for split in data:
        counts = Counter(data[split]["intent"])
        assert set(counts) == set(FSC_INTENTS) and len(set(counts.values())) == 1


def test_test_and_validation_variants_are_never_heard_in_training(fsc_dir):
    marker = json.loads((fsc_dir / MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["complete"] is True and marker["task"] == "fsc"
    used = {split: set(v) for split, v in marker["stats"]["variants"].items()}
    assert not used["test"] & used["train"]
    assert not used["validation"] & used["train"]
    assert not used["validation"] & used["test"]
    plan = plan_fsc_corpus(seed=0, **SMALL)
    train_variants = {s.variant for s in plan.speakers["train"]}
    assert all(s.variant not in train_variants for s in plan.speakers["test"])


def test_speakers_file_says_who_speaks_in_each_split(fsc_dir):
    speakers = read_speakers(fsc_dir)
    plan = plan_fsc_corpus(seed=0, **SMALL)
    assert len(speakers) == sum(len(v) for v in plan.speakers.values())
    for split in SPLITS:
        for sp in plan.speakers[split]:
            row = speakers[sp.speaker_id]
            assert (row["split"], row["voice"], row["variant"]) == (split, sp.voice, sp.variant)
            assert int(row["rate"]) == sp.rate and int(row["pitch"]) == sp.pitch
    csv_speakers = {r[2] for r in _read_csv(fsc_dir / "data" / "test_data.csv")[1:]}
    assert csv_speakers == {k for k, v in speakers.items() if v["split"] == "test"}
    assert read_speakers(fsc_dir / "data") == {}  # no speakers.csv (a real corpus): empty


def test_ensure_fsc_corpus_keeps_an_existing_corpus_and_fills_an_empty_folder(tmp_path, fsc_dir):
    before = _tree_digest(fsc_dir)
    with pytest.warns(UserWarning, match="other settings .seed: 0 there, 5 asked"):
        assert ensure_fsc_corpus(fsc_dir, seed=5, **TINY) == fsc_dir
    assert _tree_digest(fsc_dir) == before  # used as it is: nothing re-synthesised
    out = ensure_fsc_corpus(tmp_path / "new", seed=0, num_workers=0, progress=False, **TINY)
    assert len(load_fsc(out)["train"]) == 31


def test_wavs_are_16k_mono_pcm16(fsc_dir):
    wavs = sorted((fsc_dir / "wavs" / "speakers").rglob("*.wav"))
    assert len(wavs) == 8 * 62
    for path in wavs:
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.4 < info.duration < 6.0
    audio, _ = sf.read(str(wavs[0]), dtype="float32")
    assert 0.1 < np.abs(audio).max() < 1.0


def test_same_seed_is_byte_identical_for_any_worker_count(fsc_dir, fsc_dir_in_process):
    first, second = _tree_digest(fsc_dir), _tree_digest(fsc_dir_in_process)
    assert len(first) == 8 * 62 + 3 + 2  # wavs, three CSVs, speakers.csv, the marker
    assert first == second


def test_a_different_seed_changes_speakers_and_audio(tmp_path, fsc_dir):
    out = tmp_path / "seed1"
    synthesize_fsc_corpus(out, seed=1, num_workers=1, progress=False, **TINY)
    speakers0 = {r[2] for r in _read_csv(fsc_dir / "data" / "train_data.csv")[1:]}
    rows1 = _read_csv(out / "data" / "train_data.csv")[1:]
    assert not speakers0 & {r[2] for r in rows1}
    assert plan_fsc_corpus(seed=0, **TINY).speakers != plan_fsc_corpus(seed=1, **TINY).speakers
    digests0 = set(_tree_digest(fsc_dir / "wavs").values())
    assert not digests0 & set(_tree_digest(out / "wavs").values())


def test_snr_noise_is_added_at_the_requested_level(tmp_path):
    clean_dir, noisy_dir = tmp_path / "clean", tmp_path / "noisy"
    synthesize_fsc_corpus(clean_dir, seed=3, num_workers=0, progress=False, **TINY)
    stats = synthesize_fsc_corpus(
        noisy_dir, seed=3, snr_db=10.0, num_workers=0, progress=False, **TINY
    )
    assert stats.snr_db == 10.0
    clean_rows = _read_csv(clean_dir / "data" / "test_data.csv")[1:]
    assert clean_rows == _read_csv(noisy_dir / "data" / "test_data.csv")[1:]
    snrs = []
    for row in clean_rows:
        clean, _ = sf.read(str(clean_dir / row[1]), dtype="float64")
        noisy, _ = sf.read(str(noisy_dir / row[1]), dtype="float64")
        assert clean.shape == noisy.shape and not np.array_equal(clean, noisy)
        voiced = np.nonzero(clean)[0]
        speech = clean[voiced[0] : voiced[-1] + 1]
        noise = noisy - clean
        assert np.abs(noise[: voiced[0]]).max() > 0  # noise in the leading silence too
        snrs.append(10 * np.log10(np.mean(speech**2) / np.mean(noise**2)))
    assert abs(np.mean(snrs) - 10.0) < 0.3
    assert all(abs(s - 10.0) < 1.0 for s in snrs)


# -- the speech-translation corpus ---------------------------------------------------------


def test_st_corpus_is_covost_layout_with_german_translations(tmp_path):
    out = tmp_path / "st"
    stats = synthesize_st_corpus(
        out,
        seed=0,
        train_speakers=2,
        valid_speakers=1,
        test_speakers=1,
        sentences_per_speaker=10,
        num_workers=2,
        progress=False,
    )
    assert stats.utterances == {"train": 20, "validation": 10, "test": 10}
    pairs = dict(ST_SENTENCE_PAIRS)
    clients: dict[str, set[str]] = {}
    for split, name in ST_SPLIT_FILES.items():
        with open(out / name, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
            header, *rows = list(reader)
        assert header == ["path", "sentence", "translation", "client_id"]
        assert len(rows) == stats.utterances[split]
        for path, sentence, translation, client in rows:
            assert pairs[sentence] == translation
            assert re.fullmatch(r"[0-9a-f]{128}", client)
            info = sf.info(str(out / "clips" / path))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        clients[split] = {r[3] for r in rows}
    assert not clients["train"] & clients["test"] and not clients["train"] & clients["validation"]
    data = load_covost(out)
    assert data["train"].num_rows == 20 and data["test"].num_rows == 10
    assert any(ch in "".join(pairs.values()) for ch in "äöüßÄÖÜ")


# -- the engine ----------------------------------------------------------------------------


def test_engine_output_depends_only_on_its_arguments():
    engine = Espeak()
    try:
        assert engine.sample_rate == 22050
        first = engine.synthesize("Pause the music", voice="en-us+klatt3", seed=7)
        engine.synthesize("Something else entirely, to disturb the state.", voice="en+f2")
        again = engine.synthesize("Pause the music", voice="en-us+klatt3", seed=7)
        assert first.dtype == np.int16 and first.size > 5000
        assert np.array_equal(first, again)
        other = engine.synthesize("Pause the music", voice="en-gb-x-rp+m3", seed=7)
        assert not np.array_equal(first[: other.size], other[: first.size])
    finally:
        engine.close()


def test_unknown_voices_and_variants_are_refused():
    engine = Espeak()
    try:
        for bad in ("xx-nope", "en-gb", "en-us+no-such-variant"):
            with pytest.raises(UnknownVoiceError):
                engine.check_voice(bad)
        engine.check_voice("en-us+m3")
        engine.check_voice("en+klatt")
    finally:
        engine.close()
    with pytest.raises(UnknownVoiceError, match="British English 'en'"):
        plan_fsc_corpus(voices=["en-gb"])
    with pytest.raises(UnknownVoiceError, match="unknown espeak-ng variant"):
        plan_fsc_corpus(variants=["m1", "m2", "nope"])
    with pytest.raises(UnknownVoiceError, match="at least 3 variants"):
        plan_fsc_corpus(variants=["m1", "m2"])


# -- errors and the output directory -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"snr_db": float("nan")}, "snr_db"),
        ({"snr_db": float("inf")}, "snr_db"),
        ({"snr_db": 500.0}, "snr_db"),
        ({"num_workers": -1}, "num_workers"),
        ({"phrasings_per_intent": 0}, "phrasings_per_intent"),
        ({"phrasings_per_intent": 9}, "phrasings_per_intent"),
        ({"test_speakers": 0}, "test speakers"),
        ({"seed": "zero"}, "seed"),
    ],
)
def test_invalid_settings_are_refused_before_writing(tmp_path, kwargs, match):
    settings = {**TINY, **kwargs}
    out = tmp_path / "never"
    with pytest.raises(SynthConfigError, match=match):
        synthesize_fsc_corpus(out, progress=False, **settings)
    assert not out.exists()


def test_non_empty_foreign_directory_needs_overwrite(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SynthConfigError, match="--overwrite"):
        synthesize_fsc_corpus(out, num_workers=0, progress=False, **TINY)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    synthesize_fsc_corpus(out, num_workers=0, overwrite=True, progress=False, **TINY)
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "data" / "train_data.csv").is_file()
    # A directory holding an earlier corpus is replaced without --overwrite, stale files go.
    stale = out / "wavs" / "speakers" / "stale.wav"
    stale.write_bytes(b"old")
    synthesize_st_corpus(
        out,
        num_workers=0,
        progress=False,
        train_speakers=1,
        valid_speakers=1,
        test_speakers=1,
        sentences_per_speaker=2,
    )
    assert not (out / "wavs").exists() and not (out / "data").exists()
    assert (out / "clips").is_dir() and (out / "notes.txt").is_file()


# -- the command line ----------------------------------------------------------------------


def test_cli_writes_a_corpus_and_prints_statistics(tmp_path, capsys):
    from hf_quads.cli import main

    out = tmp_path / "cli"
    argv = ["data", "synth", "--out", str(out), "--seed", "2", "--num-workers", "1"]
    argv += ["--train-speakers", "1", "--valid_speakers", "1", "--test-speakers", "1"]
    argv += ["--phrasings-per-intent", "1", "--snr-db", "20", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "utterances" in printed and "intents: 31" in printed and "20 dB SNR" in printed
    assert re.search(r"train\s+31\s+1\s+1", printed)
    assert load_fsc(out)["test"].num_rows == 31

    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--voices", "en-gb"]) == 2
    assert "British English 'en'" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f.txt").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path / "full"), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(tmp_path / "y"), "--snr-db", "nan"]) == 2
    assert "snr_db" in capsys.readouterr().err
