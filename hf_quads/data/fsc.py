"""Fluent Speech Commands: the 31 intents and a loader for the released layout.

Layout (``fluent_speech_commands_dataset/``)::

    data/train_data.csv   data/valid_data.csv   data/test_data.csv
    wavs/speakers/<speakerId>/<uuid>.wav

Each CSV has the header ``,path,speakerId,transcription,action,object,location``
(an unnamed leading index column); ``path`` is relative to the root. The intent
is ``f"{action}_{object}_{location}"`` and its label id is its position in
:data:`FSC_INTENTS`, a fixed list, so ids mean the same in every run and every
checkpoint trained with hf-quads.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..errors import DatasetFormatError

FSC_ACTIONS: tuple[str, ...] = (
    "change language",
    "activate",
    "deactivate",
    "increase",
    "decrease",
    "bring",
)
FSC_OBJECTS: tuple[str, ...] = (
    "none",
    "music",
    "lights",
    "volume",
    "heat",
    "lamp",
    "newspaper",
    "juice",
    "socks",
    "shoes",
    "Chinese",
    "Korean",
    "English",
    "German",
)
FSC_LOCATIONS: tuple[str, ...] = ("none", "kitchen", "bedroom", "washroom")

#: The 31 (action, object, location) triples that occur in FSC, sorted; label id = index.
FSC_INTENT_TRIPLES: tuple[tuple[str, str, str], ...] = (
    ("activate", "lamp", "none"),
    ("activate", "lights", "bedroom"),
    ("activate", "lights", "kitchen"),
    ("activate", "lights", "none"),
    ("activate", "lights", "washroom"),
    ("activate", "music", "none"),
    ("bring", "juice", "none"),
    ("bring", "newspaper", "none"),
    ("bring", "shoes", "none"),
    ("bring", "socks", "none"),
    ("change language", "Chinese", "none"),
    ("change language", "English", "none"),
    ("change language", "German", "none"),
    ("change language", "Korean", "none"),
    ("change language", "none", "none"),
    ("deactivate", "lamp", "none"),
    ("deactivate", "lights", "bedroom"),
    ("deactivate", "lights", "kitchen"),
    ("deactivate", "lights", "none"),
    ("deactivate", "lights", "washroom"),
    ("deactivate", "music", "none"),
    ("decrease", "heat", "bedroom"),
    ("decrease", "heat", "kitchen"),
    ("decrease", "heat", "none"),
    ("decrease", "heat", "washroom"),
    ("decrease", "volume", "none"),
    ("increase", "heat", "bedroom"),
    ("increase", "heat", "kitchen"),
    ("increase", "heat", "none"),
    ("increase", "heat", "washroom"),
    ("increase", "volume", "none"),
)


def fsc_intent_name(action: str, obj: str, location: str) -> str:
    """The intent label string of an FSC row, e.g. ``"activate_lights_kitchen"``."""
    return f"{action}_{obj}_{location}"


#: Intent names in label-id order.
FSC_INTENTS: tuple[str, ...] = tuple(fsc_intent_name(*t) for t in FSC_INTENT_TRIPLES)

FSC_SPLIT_FILES: dict[str, str] = {
    "train": "train_data.csv",
    "validation": "valid_data.csv",
    "test": "test_data.csv",
}
FSC_COLUMNS: tuple[str, ...] = (
    "path",
    "speakerId",
    "transcription",
    "action",
    "object",
    "location",
)


def read_fsc_csv(csv_path: str | os.PathLike, root: str | os.PathLike) -> dict[str, list]:
    """Read one FSC split CSV into columns, checking every row.

    Raises :class:`DatasetFormatError` naming the file and line for a missing column,
    an intent outside :data:`FSC_INTENTS` or an audio file that does not exist.
    """
    csv_path, root = Path(csv_path), Path(root)
    intent_ids = {name: i for i, name in enumerate(FSC_INTENTS)}
    cols: dict[str, list] = {
        k: []
        for k in (
            "audio",
            "speaker_id",
            "transcription",
            "action",
            "object",
            "location",
            "intent",
            "label",
        )
    }
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in FSC_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetFormatError(
                f"{csv_path}: missing column(s) {missing}; the FSC header is "
                f"',{','.join(FSC_COLUMNS)}'"
            )
        for line, row in enumerate(reader, start=2):
            intent = fsc_intent_name(row["action"], row["object"], row["location"])
            if intent not in intent_ids:
                raise DatasetFormatError(
                    f"{csv_path}, line {line}: unknown intent {intent!r} (action={row['action']!r}, "
                    f"object={row['object']!r}, location={row['location']!r}); "
                    f"FSC has the 31 intents in hf_quads.data.FSC_INTENTS"
                )
            audio = root / row["path"]
            if not audio.is_file():
                raise DatasetFormatError(
                    f"{csv_path}, line {line}: audio file {audio} does not exist"
                )
            cols["audio"].append(str(audio))
            cols["speaker_id"].append(row["speakerId"])
            cols["transcription"].append(row["transcription"])
            cols["action"].append(row["action"])
            cols["object"].append(row["object"])
            cols["location"].append(row["location"])
            cols["intent"].append(intent)
            cols["label"].append(intent_ids[intent])
    return cols


def load_fsc(root: str | os.PathLike, splits: tuple[str, ...] = ("train", "validation", "test")):
    """Load Fluent Speech Commands from its released layout as a ``DatasetDict``.

    Columns: ``audio`` (absolute path), ``speaker_id``, ``transcription``, ``action``,
    ``object``, ``location``, ``intent`` and ``label`` (a ``ClassLabel`` over
    :data:`FSC_INTENTS`). ``root`` is the ``fluent_speech_commands_dataset`` folder.
    """
    import datasets

    root = Path(root)
    data_dir = root / "data"
    if not data_dir.is_dir():
        raise DatasetFormatError(f"{root}: not an FSC root (no data/ folder with *_data.csv)")
    features = datasets.Features(
        {
            "audio": datasets.Value("string"),
            "speaker_id": datasets.Value("string"),
            "transcription": datasets.Value("string"),
            "action": datasets.Value("string"),
            "object": datasets.Value("string"),
            "location": datasets.Value("string"),
            "intent": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(FSC_INTENTS)),
        }
    )
    out = {}
    for split in splits:
        if split not in FSC_SPLIT_FILES:
            raise ValueError(f"unknown FSC split {split!r}; choose from {list(FSC_SPLIT_FILES)}")
        csv_path = data_dir / FSC_SPLIT_FILES[split]
        if not csv_path.is_file():
            raise DatasetFormatError(f"{root}: missing {csv_path.relative_to(root)}")
        out[split] = datasets.Dataset.from_dict(read_fsc_csv(csv_path, root), features=features)
    return datasets.DatasetDict(out)
