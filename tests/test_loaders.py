"""Dataset loaders on fixtures written in the real layouts, and their bad-input errors."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_quads.data import (
    FSC_INTENTS,
    load_audio,
    load_covost,
    load_fsc,
    load_mustc,
    load_slurp,
)
from hf_quads.errors import DatasetFormatError
from hf_quads.metrics import gold_entities

SILENCE = np.zeros(1_600, dtype=np.float32)

# ---------------------------------------------------------------------------- FSC

FSC_HEADER = ",path,speakerId,transcription,action,object,location\n"
FSC_ROWS = {
    "train_data.csv": [
        ("spkA", "Turn on the kitchen lights", "activate", "lights", "kitchen"),
        ("spkA", "Change language", "change language", "none", "none"),
        ("spkB", "Bring me my socks", "bring", "socks", "none"),
    ],
    "valid_data.csv": [("spkC", "Louder please", "increase", "volume", "none")],
    "test_data.csv": [("spkD", "Switch to Korean", "change language", "Korean", "none")],
}


def write_fsc(root: Path, rows=FSC_ROWS) -> Path:
    (root / "data").mkdir(parents=True)
    for name, split_rows in rows.items():
        lines = [FSC_HEADER]
        for i, (spk, text, action, obj, loc) in enumerate(split_rows):
            rel = f"wavs/speakers/{spk}/{name[:2]}{i:04d}.wav"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / rel, SILENCE, 16_000, subtype="PCM_16")
            lines.append(f"{i},{rel},{spk},{text},{action},{obj},{loc}\n")
        (root / "data" / name).write_text("".join(lines))
    return root


def test_fsc_intents_are_the_31_documented_ones():
    assert len(FSC_INTENTS) == 31 == len(set(FSC_INTENTS))
    assert list(FSC_INTENTS) == sorted(FSC_INTENTS)
    assert FSC_INTENTS.index("activate_lights_kitchen") == 2


def test_load_fsc_reads_the_released_layout(tmp_path):
    root = write_fsc(tmp_path / "fluent_speech_commands_dataset")
    ds = load_fsc(root)
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].num_rows == 3 and ds["test"].num_rows == 1
    assert ds["train"].features["label"].names == list(FSC_INTENTS)
    row = ds["train"][0]
    assert row["intent"] == "activate_lights_kitchen"
    assert row["label"] == FSC_INTENTS.index("activate_lights_kitchen")
    assert row["speaker_id"] == "spkA" and Path(row["audio"]).is_file()
    assert ds["test"][0]["intent"] == "change language_Korean_none"
    assert load_audio(row["audio"]).shape == SILENCE.shape


def test_fsc_missing_column(tmp_path):
    root = write_fsc(tmp_path / "fsc")
    csv_path = root / "data" / "valid_data.csv"
    csv_path.write_text(csv_path.read_text().replace(",location", ",place"))
    with pytest.raises(
        DatasetFormatError, match=r"valid_data\.csv: missing column\(s\) \['location'\]"
    ):
        load_fsc(root)


def test_fsc_unknown_intent_names_line(tmp_path):
    rows = dict(FSC_ROWS)
    rows["test_data.csv"] = [("spkD", "Dance", "dance", "none", "none")]
    root = write_fsc(tmp_path / "fsc", rows)
    with pytest.raises(
        DatasetFormatError, match=r"test_data\.csv, line 2: unknown intent 'dance_none_none'"
    ):
        load_fsc(root)


def test_fsc_missing_audio_names_line_and_file(tmp_path):
    root = write_fsc(tmp_path / "fsc")
    victim = root / "wavs/speakers/spkB/tr0002.wav"
    victim.unlink()
    with pytest.raises(DatasetFormatError) as info:
        load_fsc(root)
    assert "train_data.csv, line 4" in str(info.value) and str(victim) in str(info.value)


def test_fsc_not_a_root(tmp_path):
    with pytest.raises(DatasetFormatError, match="not an FSC root"):
        load_fsc(tmp_path)


# -------------------------------------------------------------------------- SLURP


def _record(slurp_id, sentence, scenario, action, entities, files):
    tokens = [
        {"surface": w, "id": i, "lemma": w, "pos": "X"} for i, w in enumerate(sentence.split())
    ]
    return {
        "slurp_id": slurp_id,
        "sentence": sentence,
        "sentence_annotation": sentence,
        "intent": f"{scenario}_{action}",
        "action": action,
        "scenario": scenario,
        "tokens": tokens,
        "entities": entities,
        "recordings": [
            {"file": f, "wer": 0.0, "ent_wer": None, "status": "correct"} for f in files
        ],
    }


SLURP_FIXTURE = {
    "train.jsonl": [
        _record(
            1,
            "wake me up at seven am",
            "alarm",
            "set",
            [{"span": [4, 5], "type": "time"}],
            ["audio-1-headset.flac", "audio-1.flac"],
        ),
        _record(
            2,
            "play jazz",
            "play",
            "music",
            [{"span": [1], "type": "music_genre"}],
            ["audio-2.flac"],
        ),
    ],
    "devel.jsonl": [
        _record(3, "what time is it", "datetime", "query", [], ["audio-3-headset.flac"])
    ],
    "test.jsonl": [
        _record(
            4,
            "turn the lights off",
            "iot",
            "hue_lightoff",
            [],
            ["audio-4-headset.flac", "audio-4.flac"],
        ),
    ],
    "train_synthetic.jsonl": [
        _record(
            5,
            "play some rock",
            "play",
            "music",
            [{"span": [2], "type": "music_genre"}],
            ["audio-5.flac"],
        ),
    ],
}


def write_slurp(root: Path, records=SLURP_FIXTURE) -> Path:
    jsonl_dir = root / "dataset" / "slurp"
    jsonl_dir.mkdir(parents=True)
    for name, recs in records.items():
        (jsonl_dir / name).write_text("".join(json.dumps(r) + "\n" for r in recs))
        sub = "slurp_synth" if "synthetic" in name else "slurp_real"
        for rec in recs:
            for item in rec["recordings"]:
                path = root / "audio" / sub / item["file"]
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, SILENCE, 16_000, format="FLAC")
    return root


def test_load_slurp_recording_selection(tmp_path):
    root = write_slurp(tmp_path / "slurp")
    headset = load_slurp(root)
    assert [r["slurp_id"] for r in headset["train"]] == [1]
    far = load_slurp(root, recordings="far_field")
    assert [r["slurp_id"] for r in far["train"]] == [1, 2]
    both = load_slurp(root, recordings="both")
    assert both["train"].num_rows == 3 and both["test"].num_rows == 2
    assert sorted(both["train"]["headset"]) == [False, False, True]


def test_load_slurp_labels_entities_and_synthetic(tmp_path):
    root = write_slurp(tmp_path / "slurp")
    ds = load_slurp(root, recordings="both", include_synthetic=True)
    names = ds["train"].features["label"].names
    assert names == sorted(["alarm_set", "play_music", "datetime_query", "iot_hue_lightoff"])
    for split in ds.values():  # one label list for all splits
        assert split.features["label"].names == names
    assert ds["train"].num_rows == 4
    synth = ds["train"][-1]
    assert "slurp_synth" in synth["audio"] and synth["entities"] == [
        {"type": "music_genre", "filler": "rock"}
    ]
    first = ds["train"][0]
    assert first["intent"] == "alarm_set" and names[first["label"]] == "alarm_set"
    assert first["entities"] == [{"type": "time", "filler": "seven am"}]


def test_slurp_missing_audio_and_fields(tmp_path):
    root = write_slurp(tmp_path / "slurp")
    missing = root / "audio" / "slurp_real" / "audio-3-headset.flac"
    missing.unlink()
    with pytest.raises(DatasetFormatError) as info:
        load_slurp(root)
    assert "devel.jsonl, line 1 (slurp_id 3)" in str(info.value) and str(missing) in str(info.value)
    assert load_slurp(root, skip_missing_audio=True)["validation"].num_rows == 0

    bad = dict(SLURP_FIXTURE)
    bad["test.jsonl"] = [
        {k: v for k, v in SLURP_FIXTURE["test.jsonl"][0].items() if k != "scenario"}
    ]
    root2 = write_slurp(tmp_path / "slurp2", bad)
    with pytest.raises(
        DatasetFormatError, match=r"test\.jsonl, line 1: missing field\(s\) \['scenario'\]"
    ):
        load_slurp(root2)
    with pytest.raises(ValueError, match="recordings must be"):
        load_slurp(root2, recordings="close")


def test_slurp_given_label_names_must_cover_intents(tmp_path):
    root = write_slurp(tmp_path / "slurp")
    with pytest.raises(DatasetFormatError, match="not in the given label_names"):
        load_slurp(root, label_names=["alarm_set"])


def test_slurp_loader_on_real_devel_annotations(tmp_path, slurp_devel_path):
    """The real devel file: several recordings per record, null ent_wer, multi-token spans."""
    root = tmp_path / "slurp"
    (root / "dataset" / "slurp").mkdir(parents=True)
    os.symlink(slurp_devel_path, root / "dataset" / "slurp" / "devel.jsonl")
    audio_dir = root / "audio" / "slurp_real"
    audio_dir.mkdir(parents=True)
    silent = tmp_path / "silent.flac"
    sf.write(silent, SILENCE, 16_000, format="FLAC")
    records = [json.loads(line) for line in slurp_devel_path.open()]
    for rec in records:
        for item in rec["recordings"]:
            os.link(silent, audio_dir / item["file"])

    n_headset = sum(
        r["file"].endswith("-headset.flac") for rec in records for r in rec["recordings"]
    )
    n_all = sum(len(rec["recordings"]) for rec in records)
    dev = load_slurp(root, splits=("validation",), recordings="headset")["validation"]
    assert dev.num_rows == n_headset
    both = load_slurp(root, splits=("validation",), recordings="both")["validation"]
    assert both.num_rows == n_all == 8_690
    intents = {f"{rec['scenario']}_{rec['action']}" for rec in records}
    assert both.features["label"].names == sorted(intents)
    # The raw `intent` field is sometimes only the action ("music"); the label never is.
    action_only = next(rec for rec in records if rec["intent"] == rec["action"])
    row = next(r for r in both if r["slurp_id"] == action_only["slurp_id"])
    assert (
        row["intent"]
        == f"{action_only['scenario']}_{action_only['action']}"
        != action_only["intent"]
    )
    by_id = {rec["slurp_id"]: rec for rec in records}
    multi = next(rec for rec in records if any(len(e["span"]) > 1 for e in rec["entities"]))
    row = next(r for r in both if r["slurp_id"] == multi["slurp_id"])
    assert row["entities"] == gold_entities(by_id[multi["slurp_id"]])
    ent = next(e for e in multi["entities"] if len(e["span"]) > 1)
    words = multi["sentence"].split()
    filler = " ".join(words[i] for i in ent["span"]).lower()
    assert {"type": ent["type"], "filler": filler} in row["entities"]


# ------------------------------------------------------------------------- CoVoST

COVOST_HEADER = ["path", "sentence", "translation", "client_id"]
COVOST_ROWS = [
    ["a.wav", 'He said "hello"\tand left', 'Er sagte "hallo"\tund ging', "spk1"],
    ["b.wav", "back\\slash", "Rück\\strich", "spk2"],
]


def write_covost_tsv(path: Path, rows, header=COVOST_HEADER):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(
            handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n"
        )
        writer.writerow(header)
        writer.writerows(rows)


def _clips(root: Path, names):
    (root / "clips").mkdir(parents=True, exist_ok=True)
    for name in names:
        sf.write(root / "clips" / name, SILENCE, 16_000)


def test_covost_per_split_files_with_escapes(tmp_path):
    root = tmp_path / "covost"
    _clips(root, ["a.wav", "b.wav"])
    write_covost_tsv(root / "covost_v2.en_de.train.tsv", COVOST_ROWS)
    write_covost_tsv(root / "covost_v2.en_de.dev.tsv", COVOST_ROWS[1:])
    raw = (root / "covost_v2.en_de.train.tsv").read_text()
    assert "\\\t" in raw and "\\\\" in raw  # the file really carries escapes
    ds = load_covost(root)
    assert set(ds) == {"train", "validation"}
    first = ds["train"][0]
    assert first["sentence"] == 'He said "hello"\tand left'
    assert first["translation"] == 'Er sagte "hallo"\tund ging'
    assert ds["train"][1]["translation"] == "Rück\\strich"
    assert ds["validation"][0]["client_id"] == "spk2"


def test_covost_single_file_with_split_column(tmp_path):
    root = tmp_path / "covost"
    _clips(root, ["a.wav", "b.wav"])
    rows = [[*r, s] for r, s in zip(COVOST_ROWS, ["train", "test"], strict=True)]
    write_covost_tsv(root / "covost_v2.en_de.tsv", rows, [*COVOST_HEADER, "split"])
    ds = load_covost(root)
    assert ds["train"].num_rows == 1 and ds["test"].num_rows == 1


def test_covost_errors(tmp_path):
    root = tmp_path / "covost"
    _clips(root, ["a.wav"])
    with pytest.raises(DatasetFormatError, match="no CoVoST manifest"):
        load_covost(root)
    write_covost_tsv(
        root / "covost_v2.en_de.train.tsv",
        [r[:1] + r[2:] for r in COVOST_ROWS],
        ["path", "translation", "client_id"],
    )
    with pytest.raises(DatasetFormatError, match=r"missing column\(s\) \['sentence'\]"):
        load_covost(root)
    (root / "covost_v2.en_de.train.tsv").write_text(
        "path\tsentence\ttranslation\tclient_id\na.wav\tan unescaped\ttab\tEin\tspk\n"
    )
    with pytest.raises(DatasetFormatError, match=r"line 2: 5 fields where the header has 4"):
        load_covost(root)
    write_covost_tsv(root / "covost_v2.en_de.train.tsv", COVOST_ROWS)
    with pytest.raises(
        DatasetFormatError, match=r"train\.tsv, line 3: audio file .*b\.wav does not exist"
    ):
        load_covost(root)


# ------------------------------------------------------------------------- MuST-C


def write_mustc(root: Path, split="dev", n_text=2):
    txt, wav = root / "data" / split / "txt", root / "data" / split / "wav"
    txt.mkdir(parents=True)
    wav.mkdir(parents=True)
    talk = np.linspace(-0.5, 0.5, 16_000 * 4, dtype=np.float32)
    sf.write(wav / "ted_1.wav", talk, 16_000, subtype="FLOAT")
    (txt / f"{split}.yaml").write_text(
        "- {duration: 1.500000, offset: 0.500000, rW: 3, uW: 0, speaker_id: spk.1, wav: ted_1.wav}\n"
        "- {duration: 1.000000, offset: 2.250000, rW: 2, uW: 0, speaker_id: spk.1, wav: ted_1.wav}\n"
    )
    (txt / f"{split}.en").write_text("\n".join(["Hello there.", "Thank you."][:n_text]) + "\n")
    (txt / f"{split}.de").write_text("Hallo zusammen.\nDanke schön.\n")
    return talk


def test_mustc_segments(tmp_path):
    talk = write_mustc(tmp_path / "en-de")
    ds = load_mustc(tmp_path / "en-de", splits=("dev",))
    assert list(ds) == ["validation"]
    row = ds["validation"][1]
    assert (row["sentence"], row["translation"]) == ("Thank you.", "Danke schön.")
    assert (row["offset"], row["duration"], row["speaker_id"]) == (2.25, 1.0, "spk.1")
    seg = load_audio(row["audio"], 16_000, offset=row["offset"], duration=row["duration"])
    np.testing.assert_array_equal(seg, talk[36_000:52_000])


def test_mustc_misaligned_files(tmp_path):
    write_mustc(tmp_path / "en-de", n_text=1)
    with pytest.raises(
        DatasetFormatError, match=r"2 segments, dev\.en 1 lines and dev\.de 2 lines"
    ):
        load_mustc(tmp_path / "en-de", splits=("dev",))
    with pytest.raises(DatasetFormatError, match="missing MuST-C file"):
        load_mustc(tmp_path / "en-de", splits=("train",))


def test_subset_is_seeded_and_bounded():
    import datasets

    from hf_quads.data import subset

    ds = datasets.Dataset.from_dict({"x": list(range(20))})
    assert subset(ds, None) is ds and subset(ds, 20) is ds and subset(ds, 50) is ds
    five = subset(ds, 5, seed=3)
    assert len(five) == 5 and len(set(five["x"])) == 5
    assert five["x"] == subset(ds, 5, seed=3)["x"]  # the same rows for the same seed
    assert five["x"] != subset(ds, 5, seed=4)["x"]
    with pytest.raises(ValueError, match="n must be >= 0"):
        subset(ds, -1)
