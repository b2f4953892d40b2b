"""A reproducible random subset of a split (``max_train_samples``-style limits)."""

from __future__ import annotations

from typing import Any


def subset(dataset: Any, n: int | None, seed: int = 0) -> Any:
    """``n`` rows of ``dataset`` drawn at random with ``seed``; all of it when ``n`` is None or larger."""
    if n is not None and n < 0:
        raise ValueError(f"subset: n must be >= 0 or None, got {n}")
    if n is None or n >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(n))


__all__ = ["subset"]
