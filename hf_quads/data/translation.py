"""Speech-translation manifests: CoVoST 2 and MuST-C, to rows of audio, source, translation.

CoVoST 2 ships TSV files read with ``QUOTE_NONE`` and backslash escapes. Either
per-split files ``covost_v2.<src>_<tgt>.<split>.tsv`` (the output of CoVoST's split
script; columns ``path sentence translation client_id``) or one file
``covost_v2.<src>_<tgt>.tsv`` with a ``split`` column; audio under ``clips/``.

MuST-C (``<root>`` = ``MUSTC_v1.0/en-de``) has per split
``data/<split>/txt/<split>.yaml`` (a list of ``{duration, offset, speaker_id, wav}``)
aligned line by line with ``<split>.en`` and ``<split>.<tgt>``; each row is a segment
of a long talk in ``data/<split>/wav/``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..errors import DatasetFormatError

COVOST_COLUMNS: tuple[str, ...] = ("path", "sentence", "translation")
#: CoVoST split names -> DatasetDict keys.
COVOST_SPLITS: dict[str, str] = {"train": "train", "dev": "validation", "test": "test"}
#: MuST-C split names -> DatasetDict keys; other MuST-C splits keep their own name.
MUSTC_SPLITS: dict[str, str] = {"train": "train", "dev": "validation", "tst-COMMON": "test"}


def read_covost_tsv(tsv_path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a CoVoST 2 TSV (``QUOTE_NONE``, backslash escapes) into dicts, checking columns."""
    tsv_path = Path(tsv_path)
    csv.field_size_limit(1 << 24)
    with open(tsv_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetFormatError(f"{tsv_path}: empty file, expected a header line") from None
        missing = [c for c in COVOST_COLUMNS if c not in header]
        if missing:
            raise DatasetFormatError(f"{tsv_path}: missing column(s) {missing} (header: {header})")
        rows = []
        for line_no, fields in enumerate(reader, start=2):
            if len(fields) != len(header):
                raise DatasetFormatError(
                    f"{tsv_path}, line {line_no}: {len(fields)} fields where the header has "
                    f"{len(header)} (an unescaped tab?)"
                )
            row = dict(zip(header, fields, strict=True))
            row["_line"] = str(line_no)
            rows.append(row)
    return rows


def load_covost(
    root: str | os.PathLike,
    *,
    source_lang: str = "en",
    target_lang: str = "de",
    clips_dir: str | os.PathLike | None = None,
):
    """Load a CoVoST 2 language pair as a ``DatasetDict`` (train / validation / test).

    Columns: ``audio`` (absolute path), ``sentence`` (source text), ``translation``
    and ``client_id`` (the speaker). A missing column, a malformed line or a missing
    clip raises :class:`DatasetFormatError` naming the file and line.
    """
    import datasets

    root = Path(root)
    clips = Path(clips_dir) if clips_dir else root / "clips"
    stem = f"covost_v2.{source_lang}_{target_lang}"
    per_split: dict[str, list[tuple[Path, dict]]] = {}
    combined = root / f"{stem}.tsv"
    split_files = {s: root / f"{stem}.{s}.tsv" for s in COVOST_SPLITS}
    if any(p.is_file() for p in split_files.values()):
        for split, path in split_files.items():
            if path.is_file():
                per_split[COVOST_SPLITS[split]] = [(path, r) for r in read_covost_tsv(path)]
    elif combined.is_file():
        for row in read_covost_tsv(combined):
            if "split" not in row:
                raise DatasetFormatError(
                    f"{combined}: no 'split' column and no per-split TSV files"
                )
            key = COVOST_SPLITS.get(row["split"], row["split"])
            per_split.setdefault(key, []).append((combined, row))
    else:
        raise DatasetFormatError(
            f"{root}: no CoVoST manifest found (looked for {stem}.{{train,dev,test}}.tsv and {stem}.tsv)"
        )
    out = {}
    for key, rows in per_split.items():
        cols: dict[str, list[str]] = {
            "audio": [],
            "sentence": [],
            "translation": [],
            "client_id": [],
        }
        for path, row in rows:
            audio = clips / row["path"]
            if not audio.is_file():
                raise DatasetFormatError(
                    f"{path}, line {row['_line']}: audio file {audio} does not exist"
                )
            cols["audio"].append(str(audio))
            cols["sentence"].append(row["sentence"])
            cols["translation"].append(row["translation"])
            cols["client_id"].append(row.get("client_id", ""))
        out[key] = datasets.Dataset.from_dict(cols)
    return datasets.DatasetDict(out)


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetFormatError(f"missing MuST-C file {path}")
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def read_mustc_split(
    root: str | os.PathLike, split: str, target_lang: str = "de"
) -> dict[str, list]:
    """Read one MuST-C split into columns, checking the yaml and text files align."""
    import yaml

    root = Path(root)
    txt = root / "data" / split / "txt"
    wav_dir = root / "data" / split / "wav"
    yaml_path = txt / f"{split}.yaml"
    if not yaml_path.is_file():
        raise DatasetFormatError(f"missing MuST-C file {yaml_path}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(yaml_path, encoding="utf-8") as handle:
        segments = yaml.load(handle, Loader=loader) or []
    sources = _read_lines(txt / f"{split}.en")
    targets = _read_lines(txt / f"{split}.{target_lang}")
    if not (len(segments) == len(sources) == len(targets)):
        raise DatasetFormatError(
            f"{txt}: {yaml_path.name} has {len(segments)} segments, {split}.en {len(sources)} lines "
            f"and {split}.{target_lang} {len(targets)} lines; they must align line by line"
        )
    cols: dict[str, list] = {
        k: [] for k in ("audio", "offset", "duration", "speaker_id", "sentence", "translation")
    }
    for i, (seg, src, tgt) in enumerate(zip(segments, sources, targets, strict=True), start=1):
        missing = [k for k in ("duration", "offset", "wav") if k not in seg]
        if missing:
            raise DatasetFormatError(f"{yaml_path}, segment {i}: missing key(s) {missing}")
        audio = wav_dir / seg["wav"]
        if not audio.is_file():
            raise DatasetFormatError(f"{yaml_path}, segment {i}: audio file {audio} does not exist")
        cols["audio"].append(str(audio))
        cols["offset"].append(float(seg["offset"]))
        cols["duration"].append(float(seg["duration"]))
        cols["speaker_id"].append(str(seg.get("speaker_id", "")))
        cols["sentence"].append(src)
        cols["translation"].append(tgt)
    return cols


def load_mustc(
    root: str | os.PathLike,
    *,
    target_lang: str = "de",
    splits: tuple[str, ...] = ("train", "dev", "tst-COMMON"),
):
    """Load MuST-C (``root`` = ``MUSTC_v1.0/en-<tgt>``) as a ``DatasetDict``.

    Rows are talk segments: ``audio`` (the talk's wav), ``offset`` and ``duration``
    in seconds (pass the row as a dict to :func:`hf_quads.data.prepare_features`, or
    to :func:`hf_quads.data.load_audio` with ``offset``/``duration``), ``speaker_id``,
    ``sentence`` and ``translation``. ``dev`` becomes ``validation`` and
    ``tst-COMMON`` becomes ``test``.
    """
    import datasets

    return datasets.DatasetDict(
        {
            MUSTC_SPLITS.get(split, split): datasets.Dataset.from_dict(
                read_mustc_split(root, split, target_lang)
            )
            for split in splits
        }
    )
