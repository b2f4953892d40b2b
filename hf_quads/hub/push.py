"""Push a compressed checkpoint to the Hub: weights, card and ONNX export in one commit.

:func:`push_folder` uploads a saved model directory (the packed low-bit
checkpoint ``DistillQuantTrainer.save_model`` writes, or any ``save_pretrained``
folder) with its ``README.md`` card, and the ONNX export if there is one: an
``onnx/`` subfolder, or ``onnx_dir`` given explicitly, uploaded as ``onnx/``.
A folder without a card gets one rendered from the checkpoint
(:func:`~hf_quads.hub.card.spec_from_checkpoint`).

Training leftovers (``checkpoint-*``, ``runs/``, hidden and temporary files) are
not uploaded. Everything goes through ``huggingface_hub.HfApi`` (``create_repo``
then one ``create_commit``), so ``HF_ENDPOINT``, ``HF_TOKEN`` and the cached login
are honoured. The token is never logged, and errors are re-raised with any
occurrence of it masked.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HfQuadsError

logger = logging.getLogger(__name__)

#: Path patterns (relative to the folder) that are never uploaded.
IGNORE_PATTERNS: tuple[str, ...] = (
    "checkpoint-*",
    "runs",
    ".*",
    "_*",
    "__pycache__",
    "*.tmp",
    "*.lock",
)
ONNX_FOLDER = "onnx"
DEFAULT_COMMIT_MESSAGE = "Upload compressed model with hf-quads"


class PushError(HfQuadsError, RuntimeError):
    """A push that could not be prepared or that the Hub refused (token masked)."""


@dataclass
class PushResult:
    """Where a push went: the repository, the commit and the files it holds."""

    repo_id: str
    commit_url: str
    commit_oid: str
    files: list[str] = field(default_factory=list)
    size_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ignored(relative: Path) -> bool:
    return any(
        fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in IGNORE_PATTERNS
    )


def collect_files(
    folder: str | os.PathLike, onnx_dir: str | os.PathLike | None = None
) -> dict[str, Path]:
    """The files a push uploads: ``{path in repo: local path}``, in a stable order.

    ``onnx_dir`` (an ``hf-quads export`` output) goes under ``onnx/``; it replaces
    an ``onnx/`` subfolder of ``folder`` if there is one.
    """
    root = Path(folder)
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not _ignored(relative):
            if onnx_dir is not None and relative.parts[0] == ONNX_FOLDER:
                continue
            files[relative.as_posix()] = path
    if onnx_dir is not None:
        onnx_root = Path(onnx_dir)
        if not any(onnx_root.glob("*.onnx")):
            raise PushError(f"{onnx_root}: no .onnx file (expected an `hf-quads export` output)")
        for path in sorted(onnx_root.rglob("*")):
            relative = path.relative_to(onnx_root)
            if path.is_file() and not _ignored(relative):
                files[f"{ONNX_FOLDER}/{relative.as_posix()}"] = path
    return files


def _onnx_quantization(files: dict[str, Path]) -> str | None:
    parity = files.get(f"{ONNX_FOLDER}/parity.json")
    if parity is None:
        return "fp32" if any(name.startswith(f"{ONNX_FOLDER}/") for name in files) else None
    return json.loads(parity.read_text(encoding="utf-8")).get("quantization") or "fp32"


def _mask(text: str, token: str | None) -> str:
    """``text`` without the token: the one given, or the one ``huggingface_hub`` found itself."""
    from huggingface_hub import get_token

    for secret in {token, get_token()} - {None, ""}:
        text = text.replace(secret, "hf_***")
    return text


@contextlib.contextmanager
def _hub_errors(what: str, token: str | None) -> Iterator[None]:
    """Re-raise a Hub failure as :class:`PushError`, with the token masked."""
    try:
        yield
    except HfQuadsError:
        raise
    except Exception as error:
        raise PushError(
            f"{what} failed: {type(error).__name__}: {_mask(str(error), token)}"
        ) from None


def create_repo(
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    endpoint: str | None = None,
) -> str:
    """Create a model repository if it does not exist; returns its full ``namespace/name``."""
    from huggingface_hub import HfApi

    with _hub_errors(f"creating the repository {repo_id!r}", token):
        url = HfApi(endpoint=endpoint, token=token).create_repo(
            repo_id, private=private, exist_ok=True
        )
    return url.repo_id


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    create_pr: bool = False,
    onnx_dir: str | os.PathLike | None = None,
    endpoint: str | None = None,
    create: bool = True,
) -> PushResult:
    """Create ``repo_id`` if needed and upload a saved compressed model in one commit.

    Args:
        folder: the saved model directory (``config.json`` + weights).
        repo_id: ``name`` or ``namespace/name``.
        token: a write token; default: ``HF_TOKEN`` or the cached login.
        onnx_dir: an ONNX export to upload as ``onnx/`` (default: ``folder/onnx`` if present).
        endpoint: the Hub URL; default: ``HF_ENDPOINT`` or https://huggingface.co.
        create: create the repository first (``False`` when ``repo_id`` is the full id of
            one :func:`create_repo` just made).

    Returns:
        A :class:`PushResult` with the commit URL and the uploaded paths.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    from .card import render_card, spec_from_checkpoint

    root = Path(folder)
    if not (root / "config.json").is_file():
        raise PushError(f"not a saved model directory: {root} has no config.json")
    files = collect_files(root, onnx_dir)
    operations = [CommitOperationAdd(name, str(path)) for name, path in files.items()]
    full_id = (
        create_repo(repo_id, token=token, private=private, endpoint=endpoint) if create else repo_id
    )
    if "README.md" not in files:
        logger.info("no README.md in %s: rendering a card from the checkpoint", root)
        spec = spec_from_checkpoint(
            root, repo_id=full_id, onnx_quantization=_onnx_quantization(files)
        )
        operations.append(CommitOperationAdd("README.md", str(render_card(spec)).encode("utf-8")))
    size = sum(path.stat().st_size for path in files.values())
    logger.info("pushing %d files (%.2f MB) to %s", len(operations), size / 1e6, full_id)
    with _hub_errors(f"pushing {root} to {full_id!r}", token):
        info = HfApi(endpoint=endpoint, token=token).create_commit(
            full_id,
            operations,
            commit_message=commit_message,
            revision=revision,
            create_pr=create_pr,
        )
    return PushResult(
        repo_id=full_id,
        commit_url=str(info.commit_url),
        commit_oid=str(info.oid),
        files=sorted(op.path_in_repo for op in operations),
        size_bytes=size,
    )


__all__ = [
    "IGNORE_PATTERNS",
    "PushError",
    "PushResult",
    "collect_files",
    "create_repo",
    "push_folder",
]
