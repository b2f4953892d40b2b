"""SLURP: a loader for the released layout, one row per recording.

Layout (the SLURP repository after its audio download script)::

    dataset/slurp/{train,devel,test,train_synthetic}.jsonl
    audio/slurp_real/audio-<id>[-headset].flac
    audio/slurp_synth/audio-<id>.flac

Each jsonl record holds a sentence, its ``scenario`` and ``action``, ``tokens``,
``entities`` (token spans with a type) and ``recordings``. The intent label is
``scenario + "_" + action`` (the raw ``intent`` field is sometimes only the action
and is not used). One label list serves all splits so ids agree between them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from ..errors import DatasetFormatError
from ..metrics.slurp import MetricInputError, gold_entities

SLURP_SPLIT_FILES: dict[str, str] = {
    "train": "train.jsonl",
    "validation": "devel.jsonl",
    "test": "test.jsonl",
}
SLURP_SYNTHETIC_FILE = "train_synthetic.jsonl"
SLURP_REQUIRED_FIELDS: tuple[str, ...] = (
    "slurp_id",
    "sentence",
    "scenario",
    "action",
    "tokens",
    "entities",
    "recordings",
)

Recordings = Literal["headset", "far_field", "both"]


def slurp_intent(record: dict) -> str:
    """The intent label of a SLURP record: ``scenario_action``."""
    return f"{record['scenario']}_{record['action']}"


def is_headset(file_name: str) -> bool:
    """True for close-talk recordings (``audio-<id>-headset.flac``)."""
    return Path(file_name).stem.endswith("-headset")


def _find_dir(root: Path, *candidates: str) -> Path:
    for candidate in candidates:
        if (root / candidate).is_dir():
            return root / candidate
    return root / candidates[0]


def read_slurp_jsonl(
    jsonl_path: str | os.PathLike,
    audio_dir: str | os.PathLike,
    *,
    recordings: Recordings = "headset",
    skip_missing_audio: bool = False,
) -> list[dict]:
    """Read one SLURP jsonl file into rows (one per selected recording), checking each."""
    jsonl_path, audio_dir = Path(jsonl_path), Path(audio_dir)
    if recordings not in ("headset", "far_field", "both"):
        raise ValueError(f"recordings must be 'headset', 'far_field' or 'both', got {recordings!r}")
    rows: list[dict] = []
    with open(jsonl_path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetFormatError(
                    f"{jsonl_path}, line {line_no}: not valid JSON ({err})"
                ) from err
            missing = [k for k in SLURP_REQUIRED_FIELDS if k not in record]
            if missing:
                raise DatasetFormatError(
                    f"{jsonl_path}, line {line_no}: missing field(s) {missing}"
                )
            try:
                entities = gold_entities(record)
            except MetricInputError as err:
                raise DatasetFormatError(f"{jsonl_path}, line {line_no}: {err}") from err
            for rec in record["recordings"]:
                headset = is_headset(rec["file"])
                if (recordings == "headset" and not headset) or (
                    recordings == "far_field" and headset
                ):
                    continue
                audio = audio_dir / rec["file"]
                if not audio.is_file():
                    if skip_missing_audio:
                        continue
                    raise DatasetFormatError(
                        f"{jsonl_path}, line {line_no} (slurp_id {record['slurp_id']}): audio file "
                        f"{audio} does not exist (pass skip_missing_audio=True to drop such rows)"
                    )
                rows.append(
                    {
                        "audio": str(audio),
                        "slurp_id": int(record["slurp_id"]),
                        "sentence": record["sentence"],
                        "scenario": record["scenario"],
                        "action": record["action"],
                        "intent": slurp_intent(record),
                        "entities": entities,
                        "headset": headset,
                    }
                )
    return rows


def load_slurp(
    root: str | os.PathLike,
    *,
    recordings: Recordings = "headset",
    include_synthetic: bool = False,
    splits: tuple[str, ...] = ("train", "validation", "test"),
    label_names: list[str] | None = None,
    audio_dir: str | os.PathLike | None = None,
    synthetic_audio_dir: str | os.PathLike | None = None,
    skip_missing_audio: bool = False,
):
    """Load SLURP as a ``DatasetDict`` with one row per recording.

    ``recordings`` picks close-talk (``"headset"``), far-field (``"far_field"``) or
    ``"both"`` recordings of the real speech; ``include_synthetic`` appends
    ``train_synthetic.jsonl`` (its audio in ``slurp_synth/``) to the train split.
    Columns: ``audio``, ``slurp_id``, ``sentence``, ``scenario``, ``action``,
    ``intent``, ``label`` (``ClassLabel`` over one sorted list shared by all splits,
    or ``label_names`` to reuse a model's ids), ``entities`` (``{"type","filler"}``
    for SLU-F1) and ``headset``.
    """
    import datasets

    root = Path(root)
    jsonl_dir = _find_dir(root, "dataset/slurp", "slurp", ".")
    audio_dir = Path(audio_dir) if audio_dir else _find_dir(root, "audio/slurp_real", "slurp_real")
    synth_dir = (
        Path(synthetic_audio_dir)
        if synthetic_audio_dir
        else _find_dir(root, "audio/slurp_synth", "slurp_synth")
    )
    per_split: dict[str, list[dict]] = {}
    for split in splits:
        if split not in SLURP_SPLIT_FILES:
            raise ValueError(
                f"unknown SLURP split {split!r}; choose from {list(SLURP_SPLIT_FILES)}"
            )
        path = jsonl_dir / SLURP_SPLIT_FILES[split]
        if not path.is_file():
            raise DatasetFormatError(f"{root}: missing {path} (expected dataset/slurp/*.jsonl)")
        per_split[split] = read_slurp_jsonl(
            path, audio_dir, recordings=recordings, skip_missing_audio=skip_missing_audio
        )
        if split == "train" and include_synthetic:
            synth_path = jsonl_dir / SLURP_SYNTHETIC_FILE
            if not synth_path.is_file():
                raise DatasetFormatError(
                    f"{root}: include_synthetic=True but {synth_path} is missing"
                )
            per_split[split] += read_slurp_jsonl(
                synth_path, synth_dir, recordings="both", skip_missing_audio=skip_missing_audio
            )
    if label_names is None:
        label_names = sorted({row["intent"] for rows in per_split.values() for row in rows})
    label_ids = {name: i for i, name in enumerate(label_names)}
    features = datasets.Features(
        {
            "audio": datasets.Value("string"),
            "slurp_id": datasets.Value("int64"),
            "sentence": datasets.Value("string"),
            "scenario": datasets.Value("string"),
            "action": datasets.Value("string"),
            "intent": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(label_names)),
            "entities": [{"type": datasets.Value("string"), "filler": datasets.Value("string")}],
            "headset": datasets.Value("bool"),
        }
    )
    out = {}
    for split, rows in per_split.items():
        for row in rows:
            if row["intent"] not in label_ids:
                raise DatasetFormatError(
                    f"{split}: intent {row['intent']!r} (slurp_id {row['slurp_id']}) is not in the "
                    f"given label_names"
                )
            row["label"] = label_ids[row["intent"]]
        columns = {name: [row[name] for row in rows] for name in features}
        out[split] = datasets.Dataset.from_dict(columns, features=features)
    return datasets.DatasetDict(out)
