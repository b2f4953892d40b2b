"""Accuracy and macro-F1 for intent classification (the QUADS paper's two columns).

Pure functions on lists or 1-D numpy arrays of hashable labels (class ids or names).

Macro-F1 follows scikit-learn's ``f1_score(average="macro")``:

* per class ``c``: ``F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c)``, and 0 when that
  denominator is 0 (sklearn's ``zero_division`` default acts as 0);
* the classes averaged are, by default, those present in references ∪ predictions
  (sklearn's ``labels=None``). A class no utterance has and no prediction names
  therefore does not drag the mean down;
* with an explicit ``labels`` list, exactly those classes are averaged, in the
  sklearn way: a listed class absent from both sides counts as F1 = 0, and
  predictions of classes outside the list still count as errors for the true class
  (false negatives), they just get no F1 of their own.

The official SLURP scorer's macro-averaged label F1 (``FMeasure``) is the same
number as the default here: it averages over every label seen in gold or
predictions, and its ``2PR/(P+R)`` equals ``2TP/(2TP+FP+FN)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from hf_quads.metrics._common import MetricInputError, aligned


def accuracy(predictions: Sequence[Hashable], references: Sequence[Hashable]) -> float:
    """Fraction of predictions equal to their reference, in [0, 1]."""
    preds, refs = aligned(predictions, references)
    return sum(p == r for p, r in zip(preds, refs, strict=True)) / len(refs)


def accuracy_by_group(
    predictions: Sequence[Hashable],
    references: Sequence[Hashable],
    groups: Sequence[Hashable],
) -> dict[Hashable, float]:
    """Accuracy within each group (e.g. each speaker), in order of first appearance.

    Where a corpus average hides a few voices the model fails on, this shows them.
    """
    preds, refs = aligned(predictions, references)
    if len(groups) != len(refs):
        raise MetricInputError(f"{len(groups)} groups for {len(refs)} predictions")
    hits: dict[Hashable, list[int]] = {}
    for p, r, g in zip(preds, refs, groups, strict=True):
        hits.setdefault(g, []).append(p == r)
    return {g: sum(h) / len(h) for g, h in hits.items()}


def per_class_f1(
    predictions: Sequence[Hashable],
    references: Sequence[Hashable],
    labels: Iterable[Hashable] | None = None,
) -> dict[Hashable, float]:
    """F1 of every class (see the module docstring for which classes are listed)."""
    preds, refs = aligned(predictions, references)
    tp: Counter[Any] = Counter()
    fp: Counter[Any] = Counter()
    fn: Counter[Any] = Counter()
    for p, r in zip(preds, refs, strict=True):
        if p == r:
            tp[r] += 1
        else:
            fp[p] += 1
            fn[r] += 1
    if labels is None:
        classes: list[Any] = _sorted_labels(set(preds) | set(refs))
    else:
        classes = list(dict.fromkeys(labels))
        if not classes:
            raise MetricInputError("labels is empty; give at least one class, or None")
    scores: dict[Hashable, float] = {}
    for c in classes:
        denominator = 2 * tp[c] + fp[c] + fn[c]
        scores[c] = 2 * tp[c] / denominator if denominator else 0.0
    return scores


def macro_f1(
    predictions: Sequence[Hashable],
    references: Sequence[Hashable],
    labels: Iterable[Hashable] | None = None,
) -> float:
    """Unweighted mean of the per-class F1 scores, in [0, 1] (sklearn's ``average="macro"``)."""
    scores = per_class_f1(predictions, references, labels)
    return sum(scores.values()) / len(scores)


def classification_scores(
    predictions: Sequence[Hashable],
    references: Sequence[Hashable],
    labels: Iterable[Hashable] | None = None,
) -> dict[str, float]:
    """``{"accuracy": ..., "macro_f1": ...}`` in one call."""
    return {
        "accuracy": accuracy(predictions, references),
        "macro_f1": macro_f1(predictions, references, labels),
    }


def _sorted_labels(labels: set[Any]) -> list[Any]:
    """Sorted when the labels are comparable (ids, names), else in a stable repr order."""
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=repr)
