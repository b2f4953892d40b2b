"""Input checks shared by the metric functions.

Every metric takes ``predictions`` and ``references`` as two aligned sequences; the
checks here turn numpy arrays into lists and fail early, with both lengths named,
when the two do not line up (a silent ``zip`` would score a truncated set).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hf_quads.errors import HfQuadsError


class MetricInputError(HfQuadsError, ValueError):
    """Predictions or references are malformed: lengths differ, empty input, bad fields."""


def as_list(values: Any, name: str) -> list[Any]:
    """Return ``values`` as a Python list (numpy arrays must be 1-D)."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise MetricInputError(
                f"{name} must be 1-D, got an array of shape {tuple(values.shape)}"
            )
        return values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise MetricInputError(f"{name} must be a sequence, got {type(values).__name__}")
    return list(values)


def aligned(predictions: Any, references: Any) -> tuple[list[Any], list[Any]]:
    """Both inputs as lists of equal, non-zero length, or a :class:`MetricInputError`."""
    preds = as_list(predictions, "predictions")
    refs = as_list(references, "references")
    if len(preds) != len(refs):
        raise MetricInputError(
            f"got {len(preds)} predictions and {len(refs)} references; they must be aligned "
            "one to one"
        )
    if not preds:
        raise MetricInputError("got 0 predictions and 0 references; nothing to score")
    return preds, refs
