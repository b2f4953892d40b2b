"""Teacher outputs computed once and reused from disk.

The teacher is frozen, so on an un-augmented training set its outputs (logits,
pooled features) are the same every epoch. :class:`TeacherCache` runs the teacher
once over the dataset, stores each output as a memory-mapped ``.npy`` array whose
row ``i`` belongs to dataset row ``i``, and serves rows by index afterwards; a
later run with the same dataset and teacher loads it instead of recomputing.

Layout: ``<cache_dir>/<key>/{<output>.npy, meta.json}``. The directory is written
under a temporary name and renamed into place once complete, so a directory
named ``<key>`` is always a finished cache.

The key (:meth:`TeacherCache.key`) hashes the dataset fingerprint
(``datasets.Dataset._fingerprint``), the teacher digest (:func:`teacher_hash`) and
any settings that change what is stored (pooling, dtype, ...). The cache is only
valid for inputs that do not change between epochs: no random augmentation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .losses import DistillError

__all__ = ["TeacherCache", "TeacherCacheError", "index_batches", "teacher_hash"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_FILE = "meta.json"
_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STORE_DTYPES = {"float32": np.float32, "float16": np.float16}


class TeacherCacheError(DistillError):
    """A teacher cache cannot be built from the batches or outputs it was given."""


def teacher_hash(model: nn.Module) -> str:
    """Stable hex digest (SHA-256) of a model's class, config and every parameter and buffer.

    Names, shapes, dtypes and raw bytes of all tensors are hashed, so any change of
    weights gives a new digest, while a copy or a re-load of the same weights gives
    the same one. Config entries starting with ``_`` (such as ``_name_or_path``) are
    ignored. Cost: every byte is read once (and copied to the CPU if the model lives
    elsewhere), roughly a second per GB of weights.
    """
    hasher = hashlib.sha256()
    hasher.update(f"{type(model).__module__}.{type(model).__qualname__}\n".encode())
    hasher.update(_config_json(model).encode())
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    for name in sorted(tensors):
        tensor = tensors[name].detach()
        if tensor.is_meta:
            raise TeacherCacheError(
                f"cannot hash teacher tensor {name!r}: it is on the meta device; load the "
                "teacher's weights first."
            )
        hasher.update(f"\n{name}|{tuple(tensor.shape)}|{tensor.dtype}\n".encode())
        flat = tensor.reshape(-1).contiguous().cpu()
        hasher.update(flat.view(torch.uint8).numpy().data)
    return hasher.hexdigest()


def index_batches(
    dataset: Any,
    batch_size: int,
    collate_fn: Callable[[list[Any]], Mapping[str, Any]] | None = None,
) -> Iterator[tuple[Tensor, Mapping[str, Any]]]:
    """Yield ``(row indices, collated inputs)`` over ``dataset`` in order, for :meth:`TeacherCache.build`.

    ``collate_fn`` receives a list of rows (``dataset[i]``), like a DataLoader's;
    the default stacks them with :func:`torch.utils.data.default_collate`.
    """
    if batch_size < 1:
        raise TeacherCacheError(f"batch_size must be >= 1; got {batch_size}.")
    collate = collate_fn or torch.utils.data.default_collate
    for start in range(0, len(dataset), batch_size):
        stop = min(start + batch_size, len(dataset))
        yield torch.arange(start, stop), collate([dataset[i] for i in range(start, stop)])


class TeacherCache:
    """Teacher outputs on disk, one memory-mapped array per output, row ``i`` = dataset row ``i``.

    Get one with :meth:`build`, :meth:`load` or :meth:`load_or_build`, then read a
    batch's rows with :meth:`get`.

    Attributes:
        path: the cache directory.
        keys: names of the stored outputs.
        num_rows: number of dataset rows covered.
    """

    def __init__(self, path: str | os.PathLike[str], meta: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.meta = dict(meta)
        self.num_rows: int = int(meta["num_rows"])
        self.keys: tuple[str, ...] = tuple(meta["arrays"])
        self._arrays: dict[str, np.ndarray] | None = None

    # -- keys --------------------------------------------------------------------------

    @classmethod
    def key(
        cls,
        dataset_fingerprint: str,
        teacher_digest: str,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> str:
        """Cache key for a dataset fingerprint, a :func:`teacher_hash` digest and optional settings.

        ``settings`` (JSON-serialisable) must name everything else that changes the
        stored outputs: pooling, storage dtype, maximum length, feature layer, ...
        """
        for name, value in (
            ("dataset_fingerprint", dataset_fingerprint),
            ("teacher_digest", teacher_digest),
        ):
            if not isinstance(value, str) or not value:
                raise TeacherCacheError(f"{name} must be a non-empty string; got {value!r}.")
        try:
            settings_json = json.dumps(dict(settings or {}), sort_keys=True, default=str)
        except (TypeError, ValueError) as err:
            raise TeacherCacheError(f"settings must be JSON-serialisable: {err}") from err
        payload = json.dumps([FORMAT_VERSION, dataset_fingerprint, teacher_digest, settings_json])
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    # -- building and loading --------------------------------------------------------

    @classmethod
    def build(
        cls,
        cache_dir: str | os.PathLike[str],
        key: str,
        num_rows: int,
        batches: Iterable[tuple[Tensor | Sequence[int], Mapping[str, Any]]],
        teacher_fn: Callable[[Mapping[str, Any]], Mapping[str, Tensor]],
        *,
        dtype: str = "float32",
        progress: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> TeacherCache:
        """Run ``teacher_fn`` (without gradients) over ``batches`` and store its outputs.

        Args:
            cache_dir: parent directory; the cache goes to ``cache_dir/key``, replacing
                any cache already there.
            key: from :meth:`key`.
            num_rows: dataset size; the batches' indices must cover ``0..num_rows-1``
                exactly once.
            batches: ``(indices, inputs)`` pairs, e.g. from :func:`index_batches`.
            teacher_fn: maps ``inputs`` to named tensors whose first dimension is the
                batch; every row of an output must have the same shape in all batches
                (pad sequence outputs to a fixed length).
            dtype: storage dtype of floating outputs, ``"float32"`` or ``"float16"``;
                integer and boolean outputs are stored as they come.
            progress: show a tqdm bar over rows.
            metadata: extra JSON-serialisable facts recorded in ``meta.json``.

        Nothing is left behind if a batch or ``teacher_fn`` fails.
        """
        if dtype not in _STORE_DTYPES:
            raise TeacherCacheError(f"dtype must be one of {sorted(_STORE_DTYPES)}; got {dtype!r}.")
        if num_rows < 1:
            raise TeacherCacheError(f"num_rows must be >= 1; got {num_rows}.")
        _check_key(key)
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{key}.tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            writer = _RowWriter(tmp, num_rows, _STORE_DTYPES[dtype])
            with tqdm(
                total=num_rows, unit="row", desc="teacher cache", disable=not progress
            ) as bar:
                for indices, inputs in batches:
                    rows = writer.claim(indices)
                    with torch.no_grad():
                        outputs = teacher_fn(inputs)
                    writer.write(rows, outputs)
                    bar.update(len(rows))
            meta = writer.finish(key=key, metadata=metadata)
            _write_json(tmp / META_FILE, meta)
            final = cache_dir / key
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info(
            "teacher cache written to %s (%d rows, outputs %s)",
            final,
            num_rows,
            list(meta["arrays"]),
        )
        return cls(final, meta)

    @classmethod
    def load(cls, cache_dir: str | os.PathLike[str], key: str) -> TeacherCache | None:
        """The finished cache ``cache_dir/key``, or ``None`` when it is absent, incomplete or unreadable."""
        path = Path(cache_dir) / key
        try:
            meta = json.loads((path / META_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not (
            isinstance(meta, dict)
            and meta.get("complete") is True
            and meta.get("format_version") == FORMAT_VERSION
            and meta.get("key") == key
        ):
            return None
        cache = cls(path, meta)
        try:
            cache._open()
        except (OSError, ValueError, KeyError, TeacherCacheError) as err:
            logger.warning("ignoring unreadable teacher cache %s: %s", path, err)
            return None
        return cache

    @classmethod
    def load_or_build(
        cls,
        cache_dir: str | os.PathLike[str],
        key: str,
        num_rows: int,
        batches: Iterable[tuple[Tensor | Sequence[int], Mapping[str, Any]]],
        teacher_fn: Callable[[Mapping[str, Any]], Mapping[str, Tensor]],
        **build_kwargs: Any,
    ) -> TeacherCache:
        """:meth:`load` the cache, or :meth:`build` it when there is none (``batches`` untouched on a hit)."""
        cache = cls.load(cache_dir, key)
        if cache is not None and cache.num_rows == num_rows:
            return cache
        return cls.build(cache_dir, key, num_rows, batches, teacher_fn, **build_kwargs)

    # -- reading -----------------------------------------------------------------------

    def get(
        self,
        indices: Tensor | Sequence[int],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> dict[str, Tensor]:
        """The stored outputs for dataset rows ``indices``, each ``(len(indices), ...)``.

        ``dtype`` casts floating outputs (e.g. float16 storage to float32).
        """
        rows = _as_index_array(indices)
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_rows):
            raise TeacherCacheError(
                f"row indices must lie in 0..{self.num_rows - 1}; got {rows.min()}..{rows.max()}. "
                "Pass dataset row indices, not positions within a shuffled batch."
            )
        result = {}
        for name, array in self._open().items():
            tensor = torch.from_numpy(np.ascontiguousarray(array[rows]))
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            result[name] = tensor.to(device) if device is not None else tensor
        return result

    def __len__(self) -> int:
        return self.num_rows

    def __repr__(self) -> str:
        shapes = {name: tuple(spec["shape"]) for name, spec in self.meta["arrays"].items()}
        return f"TeacherCache(path={str(self.path)!r}, num_rows={self.num_rows}, outputs={shapes})"

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps are reopened in the receiving process instead of being pickled whole.
        return {"path": str(self.path), "meta": self.meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["meta"])

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            arrays = {}
            for name, spec in self.meta["arrays"].items():
                array = np.load(self.path / f"{name}.npy", mmap_mode="r")
                if list(array.shape) != list(spec["shape"]) or str(array.dtype) != spec["dtype"]:
                    raise TeacherCacheError(
                        f"{name}.npy holds {array.dtype}{list(array.shape)}, meta.json says "
                        f"{spec['dtype']}{spec['shape']}; delete {self.path} to rebuild it."
                    )
                arrays[name] = array
            self._arrays = arrays
        return self._arrays


class _RowWriter:
    """Writes batches of outputs into memory-mapped arrays and tracks which rows are done."""

    def __init__(self, directory: Path, num_rows: int, float_dtype: type[np.floating]) -> None:
        self.directory = directory
        self.num_rows = num_rows
        self.float_dtype = float_dtype
        self.arrays: dict[str, np.memmap] = {}
        self.written = np.zeros(num_rows, dtype=bool)

    def write(self, rows: np.ndarray, outputs: Mapping[str, Tensor]) -> None:
        """Store one batch's ``outputs`` at dataset ``rows`` (from :meth:`claim`)."""
        if not outputs:
            raise TeacherCacheError("teacher_fn returned no outputs; return a dict of tensors.")
        if set(outputs) != set(self.arrays) and self.arrays:
            raise TeacherCacheError(
                f"teacher_fn returned outputs {sorted(outputs)} after {sorted(self.arrays)}; "
                "it must return the same names for every batch."
            )
        for name, tensor in outputs.items():
            values = self._to_numpy(name, tensor, len(rows))
            self._array_for(name, values)[rows] = values
        self.written[rows] = True

    def finish(self, *, key: str, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        missing = np.flatnonzero(~self.written)
        if missing.size:
            shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if missing.size > 10 else "")
            raise TeacherCacheError(
                f"the batches left {missing.size} of {self.num_rows} rows without teacher "
                f"outputs (rows {shown}); iterate over the whole dataset once, unshuffled, "
                "without drop_last."
            )
        for array in self.arrays.values():
            array.flush()
        return {
            "format_version": FORMAT_VERSION,
            "key": key,
            "num_rows": self.num_rows,
            "complete": True,
            "arrays": {
                name: {"dtype": str(array.dtype), "shape": list(array.shape)}
                for name, array in self.arrays.items()
            },
            "metadata": dict(metadata or {}),
        }

    def claim(self, indices: Tensor | Sequence[int]) -> np.ndarray:
        """Check a batch's row indices (in range, not seen before) and return them as an array."""
        rows = _as_index_array(indices)
        if rows.size == 0:
            raise TeacherCacheError("a batch has no row indices.")
        outside = rows[(rows < 0) | (rows >= self.num_rows)]
        if outside.size:
            raise TeacherCacheError(
                f"row index {int(outside[0])} is outside 0..{self.num_rows - 1}; num_rows must "
                "be the dataset's length."
            )
        unique, counts = np.unique(rows, return_counts=True)
        repeated = unique[(counts > 1) | self.written[unique]]
        if repeated.size:
            raise TeacherCacheError(
                f"row {int(repeated[0])} appears more than once in the batches; each dataset "
                "row must be covered exactly once (use a sequential sampler, no padding rows)."
            )
        return rows

    def _to_numpy(self, name: str, tensor: Tensor, batch: int) -> np.ndarray:
        if not _OUTPUT_NAME.match(name) or name == Path(META_FILE).stem:
            raise TeacherCacheError(
                f"output name {name!r} cannot be a file name; use letters, digits, '_', '.', '-'."
            )
        if not isinstance(tensor, Tensor) or tensor.dim() == 0 or tensor.shape[0] != batch:
            shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
            raise TeacherCacheError(
                f"output {name!r} must be a tensor with the batch ({batch} rows) as its first "
                f"dimension; got {shape}."
            )
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            return tensor.float().numpy().astype(self.float_dtype, copy=False)
        return tensor.numpy()

    def _array_for(self, name: str, values: np.ndarray) -> np.memmap:
        if name not in self.arrays:
            self.arrays[name] = np.lib.format.open_memmap(
                self.directory / f"{name}.npy",
                mode="w+",
                dtype=values.dtype,
                shape=(self.num_rows, *values.shape[1:]),
            )
        array = self.arrays[name]
        if array.shape[1:] != values.shape[1:] or array.dtype != values.dtype:
            raise TeacherCacheError(
                f"output {name!r} has rows of {values.dtype}{list(values.shape[1:])} in this "
                f"batch but {array.dtype}{list(array.shape[1:])} before; every row must have "
                "the same shape (pad sequence outputs to a fixed length)."
            )
        return array


def _as_index_array(indices: Tensor | Sequence[int]) -> np.ndarray:
    if isinstance(indices, Tensor):
        indices = indices.detach().cpu().numpy()
    rows = np.asarray(indices)
    if rows.ndim != 1 or not (rows.size == 0 or np.issubdtype(rows.dtype, np.integer)):
        raise TeacherCacheError(
            f"row indices must be a 1-D sequence of integers; got {rows.dtype}{list(rows.shape)}."
        )
    return rows.astype(np.int64, copy=False)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _OUTPUT_NAME.match(key):
        raise TeacherCacheError(
            f"cache key {key!r} is not a plain directory name; use TeacherCache.key(...)."
        )


def _config_json(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    if config is None:
        return "{}"
    to_json = getattr(config, "to_json_string", None)
    data = json.loads(to_json(use_diff=False)) if callable(to_json) else vars(config)
    return json.dumps(_drop_private(data), sort_keys=True, default=str)


def _drop_private(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_private(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_drop_private(v) for v in value]
    return value


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
        handle.flush()
        os.fsync(handle.fileno())
