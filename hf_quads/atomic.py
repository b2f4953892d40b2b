"""Atomic directory writes: build a directory beside the target, then swap it in.

:func:`atomic_directory` yields a fresh temporary sibling directory; when the
``with`` block ends without an exception its content is moved into place, and
when it raises (or is interrupted) the temporary directory is removed and the
target is left exactly as it was.

Two ways to put the result in place:

* ``mode="replace"`` (default): the target becomes the new directory (an existing
  target is renamed aside, the new one renamed in, the old one deleted).
* ``mode="merge"``: each new file replaces the target's file of the same name
  (``os.replace``, atomic per file) and other target entries are kept, except
  those matching ``stale_patterns`` (glob patterns, e.g. old weight shards), which
  are deleted first. Use it for folders that also hold other things (a Trainer
  ``output_dir`` with its ``checkpoint-*`` folders).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

__all__ = ["atomic_directory"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkdtemp makes 0700 directories; the swapped-in one should look like any mkdir.
_DIR_MODE = 0o777 & ~_umask()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _replace(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    _remove(old)


def _merge(tmp: Path, target: Path, stale_patterns: Sequence[str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    new_names = {p.name for p in tmp.iterdir()}
    for entry in target.iterdir():
        if entry.name not in new_names and any(
            fnmatch.fnmatch(entry.name, pattern) for pattern in stale_patterns
        ):
            _remove(entry)
    for entry in sorted(tmp.iterdir()):
        dest = target / entry.name
        if entry.is_dir() and dest.is_dir() and not dest.is_symlink():
            _replace(entry, dest)
        else:
            if dest.is_dir() and not dest.is_symlink():
                _remove(dest)
            os.replace(entry, dest)
    tmp.rmdir()


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike[str],
    *,
    mode: Literal["replace", "merge"] = "replace",
    stale_patterns: Sequence[str] = (),
) -> Iterator[Path]:
    """Yield a temporary directory whose content replaces ``path`` on success.

    See the module docstring for ``mode`` and ``stale_patterns``. The parent of
    ``path`` is created when missing. Nothing is left behind when the block raises.
    """
    if mode not in ("replace", "merge"):
        raise ValueError(f"mode must be 'replace' or 'merge', got {mode!r}")
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(tmp, _DIR_MODE)
        yield tmp
        if mode == "replace":
            _replace(tmp, target)
        else:
            _merge(tmp, target, stale_patterns)
    except BaseException:
        _remove(tmp)
        raise
