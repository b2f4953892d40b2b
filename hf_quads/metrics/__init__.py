"""Metrics for the compressed models: intent accuracy/macro-F1, the SLURP scorer, chrF/BLEU.

Three layers:

* pure functions on lists / numpy arrays (:mod:`.classification`, :mod:`.slurp`,
  :mod:`.translation`), no ``evaluate`` needed;
* ``evaluate`` modules bundled with the package (``modules/<name>/<name>.py``),
  loaded offline from their folder by :func:`load_metric` (``evaluate.load("accuracy")``
  would fetch from the Hub);
* ``compute_metrics`` factories for ``transformers.Trainer`` (:func:`make_compute_metrics`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_quads.metrics._common import MetricInputError
from hf_quads.metrics.classification import (
    accuracy,
    accuracy_by_group,
    classification_scores,
    macro_f1,
    per_class_f1,
)
from hf_quads.metrics.slurp import (
    SlurpScorer,
    char_distance,
    gold_by_recording,
    gold_entities,
    slurp_example,
    slurp_scores,
    word_distance,
)
from hf_quads.metrics.trainer import make_compute_metrics
from hf_quads.metrics.translation import bleu, chrf, chrf_plus_plus, translation_scores

if TYPE_CHECKING:
    import evaluate

#: Folder holding the bundled evaluate modules, one sub-folder per metric.
MODULES_DIR = Path(__file__).resolve().parent / "modules"

__all__ = [
    "MODULES_DIR",
    "MetricInputError",
    "SlurpScorer",
    "accuracy",
    "accuracy_by_group",
    "available_metrics",
    "bleu",
    "char_distance",
    "chrf",
    "chrf_plus_plus",
    "classification_scores",
    "gold_by_recording",
    "gold_entities",
    "load_metric",
    "macro_f1",
    "make_compute_metrics",
    "metric_path",
    "per_class_f1",
    "slurp_example",
    "slurp_scores",
    "translation_scores",
    "word_distance",
]


def available_metrics() -> list[str]:
    """Names of the bundled evaluate modules (folders holding ``<name>/<name>.py``)."""
    if not MODULES_DIR.is_dir():
        return []
    return sorted(p.name for p in MODULES_DIR.iterdir() if (p / f"{p.name}.py").is_file())


def metric_path(name: str) -> Path:
    """Folder of the bundled evaluate module ``name``, to pass to ``evaluate.load``."""
    names = available_metrics()
    if name not in names:
        raise ValueError(f"unknown metric {name!r}; the bundled metrics are: {', '.join(names)}")
    return MODULES_DIR / name


def load_metric(name: str, **kwargs: Any) -> evaluate.EvaluationModule:
    """Load a bundled metric with ``evaluate.load(<its folder>)``: works offline.

    ``name`` is one of :func:`available_metrics` (``intent_classification``,
    ``slurp``, ``speech_translation``); ``kwargs`` go to ``evaluate.load``
    (``experiment_id``, ``keep_in_memory``, ...). evaluate copies the script into its
    modules cache and imports it from there; the scripts import their logic from
    the installed ``hf_quads`` package, so no relative import is needed.
    """
    import evaluate

    return evaluate.load(str(metric_path(name)), **kwargs)
