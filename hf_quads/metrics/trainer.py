"""``compute_metrics`` functions for ``transformers.Trainer`` / ``Seq2SeqTrainer``.

``Trainer`` calls ``compute_metrics(EvalPrediction)`` once per evaluation with the
gathered numpy ``predictions`` and ``label_ids`` and logs the returned dict (with an
``eval_`` prefix). The factories here build such functions:

* ``make_compute_metrics("intent")``: predictions are logits ``(N, C)`` (or a tuple
  whose first element is); the class is their argmax over the last axis. 1-D
  predictions are taken as class ids already (e.g. from
  ``preprocess_logits_for_metrics``). Returns
  ``accuracy`` and ``macro_f1`` (see :mod:`hf_quads.metrics.classification`).
* ``make_compute_metrics("slurp", label_names=...)``: the same, plus
  ``scenario_accuracy`` and ``action_accuracy`` read from SLURP intent names
  ``"<scenario>_<action>"`` (scenario names hold no underscore).
* ``make_compute_metrics("translation", tokenizer=...)``: predictions are generated
  token ids (``Seq2SeqTrainer(predict_with_generate=True)``; logits are argmaxed);
  ``-100`` in labels and predictions (the padding Trainer adds when gathering) is
  replaced by the pad id, both are decoded with ``skip_special_tokens=True`` and
  stripped, and ``chrf``, ``chrf_plus_plus``, ``bleu`` (0-100) are returned.

transformers is not imported here: anything with ``predictions`` and
``label_ids`` attributes, or a ``(predictions, labels)`` pair, is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from hf_quads.metrics._common import MetricInputError
from hf_quads.metrics.classification import accuracy, macro_f1
from hf_quads.metrics.translation import translation_scores

Task = Literal["intent", "slurp", "translation"]
ComputeMetrics = Callable[[Any], dict[str, float]]


def _unpack(eval_prediction: Any) -> tuple[Any, Any]:
    """``(predictions, label_ids)`` of an ``EvalPrediction`` or a plain pair."""
    if hasattr(eval_prediction, "predictions"):
        return eval_prediction.predictions, eval_prediction.label_ids
    predictions, labels = eval_prediction[0], eval_prediction[1]
    return predictions, labels


def _first(array_or_tuple: Any) -> np.ndarray:
    """The first element when a model returned several outputs (a tuple), as a numpy array."""
    while isinstance(array_or_tuple, tuple):
        if not array_or_tuple:
            raise MetricInputError("got an empty tuple of model outputs")
        array_or_tuple = array_or_tuple[0]
    return np.asarray(array_or_tuple)


def _class_ids(predictions: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    logits = _first(predictions)
    if logits.ndim < 1:
        raise MetricInputError(f"expected logits of shape (N, C), got shape {logits.shape}")
    pred_ids = logits.argmax(axis=-1) if logits.ndim > 1 else logits.astype(np.int64)
    label_ids = _first(labels).reshape(-1)
    pred_ids = pred_ids.reshape(-1)
    if pred_ids.shape != label_ids.shape:
        raise MetricInputError(
            f"got {pred_ids.shape[0]} predictions and {label_ids.shape[0]} references"
        )
    return pred_ids, label_ids


def make_compute_metrics(
    task: Task = "intent",
    *,
    label_names: Sequence[str] | None = None,
    tokenizer: Any = None,
    bleu_tokenize: str = "13a",
) -> ComputeMetrics:
    """Build a ``compute_metrics`` callable for ``Trainer``; see the module docstring.

    ``label_names`` (intent/slurp): the class names by id. When given for
    ``"intent"``, macro-F1 averages over all ``len(label_names)`` classes (sklearn's
    ``f1_score(labels=range(n), average="macro")``: a class absent from both sides
    counts as 0); when ``None`` it averages over the classes present in labels or
    predictions (sklearn's default, the QUADS paper's column). ``"slurp"`` needs
    the names and uses the default (present classes) macro-F1.
    ``tokenizer`` (translation): anything with ``batch_decode`` and ``pad_token_id``.
    ``bleu_tokenize``: sacrebleu's BLEU tokenizer ("zh" for Chinese output).
    """
    if task == "intent":
        return _intent_metrics(label_names, macro_over_all=label_names is not None)
    if task == "slurp":
        if not label_names:
            raise ValueError("task='slurp' needs label_names ('<scenario>_<action>' per id)")
        return _slurp_metrics(list(label_names))
    if task == "translation":
        if tokenizer is None:
            raise ValueError("task='translation' needs the tokenizer that decodes predictions")
        return _translation_metrics(tokenizer, bleu_tokenize)
    raise ValueError(f"unknown task {task!r}; choose 'intent', 'slurp' or 'translation'")


def _check_ids(ids: np.ndarray, label_names: Sequence[str] | None, what: str) -> None:
    if label_names is None or ids.size == 0:
        return
    bad = ids[(ids < 0) | (ids >= len(label_names))]
    if bad.size:
        raise MetricInputError(
            f"{what} holds class id {int(bad[0])}, outside the {len(label_names)} label_names"
        )


def _intent_metrics(label_names: Sequence[str] | None, macro_over_all: bool) -> ComputeMetrics:
    def compute_metrics(eval_prediction: Any) -> dict[str, float]:
        pred_ids, label_ids = _class_ids(*_unpack(eval_prediction))
        _check_ids(label_ids, label_names, "label_ids")
        _check_ids(pred_ids, label_names, "predictions")
        labels = range(len(label_names)) if macro_over_all and label_names else None
        preds, refs = pred_ids.tolist(), label_ids.tolist()
        return {"accuracy": accuracy(preds, refs), "macro_f1": macro_f1(preds, refs, labels)}

    return compute_metrics


def _slurp_metrics(label_names: list[str]) -> ComputeMetrics:
    for name in label_names:
        if "_" not in name:
            raise ValueError(f"SLURP intent name {name!r} is not '<scenario>_<action>'")
    scenarios = [name.split("_", 1)[0] for name in label_names]
    actions = [name.split("_", 1)[1] for name in label_names]
    base = _intent_metrics(label_names, macro_over_all=False)

    def compute_metrics(eval_prediction: Any) -> dict[str, float]:
        scores = base(eval_prediction)
        pred_ids, label_ids = _class_ids(*_unpack(eval_prediction))
        scores["scenario_accuracy"] = accuracy(
            [scenarios[i] for i in pred_ids], [scenarios[i] for i in label_ids]
        )
        scores["action_accuracy"] = accuracy(
            [actions[i] for i in pred_ids], [actions[i] for i in label_ids]
        )
        return scores

    return compute_metrics


def _translation_metrics(tokenizer: Any, bleu_tokenize: str) -> ComputeMetrics:
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(tokenizer, "eos_token_id", None)
    if pad_id is None:
        raise ValueError("the tokenizer has neither pad_token_id nor eos_token_id to replace -100")

    def decode(ids: Any) -> list[str]:
        array = _first(ids)
        if array.ndim == 3:  # logits, not generated ids
            array = array.argmax(axis=-1)
        array = np.where(array == -100, pad_id, array).astype(np.int64)
        texts = tokenizer.batch_decode(array.tolist(), skip_special_tokens=True)
        return [text.strip() for text in texts]

    def compute_metrics(eval_prediction: Any) -> dict[str, float]:
        predictions, labels = _unpack(eval_prediction)
        return translation_scores(decode(predictions), decode(labels), tokenize=bleu_tokenize)

    return compute_metrics
