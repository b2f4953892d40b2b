"""The SLURP scorer: scenario/action/intent accuracy, entity span F1 and SLU-F1.

A re-implementation (no code copied) of the official scorer of *SLURP: A Spoken
Language Understanding Resource Package* (Bastianelli et al., EMNLP 2020), repo
``pswietojanski/slurp``, ``scripts/evaluation/{evaluate.py, util.py,
metrics/metrics.py, metrics/distance.py}``. Definitions reproduced:

* **Gold fillers** (``util.release2prediction``): a gold entity is a list of token
  indices ``span`` over ``tokens``; its filler is the lower-cased ``surface`` of
  those tokens joined by single spaces. Predicted fillers are used **as given**
  (not lower-cased, not stripped): "Dance Class" does not match "dance class".
* **Scenario / action / intent** (``FMeasure``): per example, a hit is a TP of
  the predicted label, a miss an FP of the predicted and an FN of the gold label.
  Intent is ``f"{scenario}_{action}"``. Micro-averaged, precision = recall = F1 =
  accuracy; the ``*_f1`` keys give the chosen average (macro: mean over the labels
  seen in gold or predictions).
* **Entity span F1** (``SpanFMeasure``): a predicted entity is a TP of its type
  when an identical ``(type, filler)`` is still unmatched in the gold list of that
  example (that gold entity is then used up), else an FP; gold entities left over
  are FNs.
* **Distance F1** (``SpanDistanceFMeasure``), once with the word and once with the
  char distance: predicted entities are taken in order; if one has a type that
  some still unmatched gold entity of the example has, it is paired with the
  first such gold entity of lowest distance ``d`` (strict ``<``), and counts
  ``TP += 1, FP += d, FN += d`` for its type; a predicted entity whose type no
  unmatched gold entity has is ``FP += 1``; unmatched gold entities ``FN += 1``.
  Note a pair of the right type with an entirely wrong filler still adds a TP.
* **Word distance** (``WordDistance`` = ``jiwer.wer`` 2.0.0, default transform):
  runs of 2+ whitespace characters become one space, the text is stripped and
  split on single spaces, empty words dropped; WER = word edit distance / number
  of gold words. It is **not** capped at 1 (a long prediction for a one-word gold
  filler gives ``d > 1``), as in the official code.
* **Char distance** (``CharDistance`` = ``textdistance`` ``levenshtein.
  normalized_distance``): character Levenshtein distance / length of the longer
  string. Case-sensitive, spaces count.
* **SLU-F1** (``SLUF1``): per entity type, the word-distance and the char-distance
  TP/FP/FN are **summed**, and precision/recall/F1 are computed from the sums.
* **Averaging** (``ErrorMetric.get_metric``): ``"micro"`` (the official default)
  sums TP/FP/FN over all types first; ``"macro"`` averages per-type precision,
  recall and F1 (each from its own counts) over every type seen in gold or
  predictions. ``P = TP/(TP+FP)`` (0 when ``TP = FP = 0``), ``R = TP/(TP+FN)``
  (0 when ``TP = FN = 0``), ``F1 = 2PR/(P+R)`` (0 when ``P = R = 0``).

Where this module has to decide something the official code does not:

* A corpus with no entity at all on either side scores entity/word/char/SLU
  precision, recall and F1 of **0.0**, as the official micro average gives (its
  macro average divides by zero there; we give 0.0 too).
* An empty gold filler makes the official word distance raise (jiwer refuses an
  empty reference). It cannot occur with real SLURP spans (never empty); here the
  word distance is then 0.0 against an empty prediction and 1.0 otherwise, and the
  char distance of two empty strings is 0.0.
* The official script scores each **recording** (it copies a record's gold to
  every one of its ``recordings`` and keys predictions by file name) and skips
  gold recordings that have no prediction. :func:`slurp_scores` scores aligned
  lists as given: use :func:`gold_by_recording` to build the per-recording gold
  and pass only the pairs you want scored.
* Entities are compared on ``type`` and ``filler`` only; other keys (``span``)
  are ignored, where the official exact match compares whole dicts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from hf_quads.metrics._common import MetricInputError, aligned

Average = Literal["micro", "macro"]

#: The entity-level metrics, as named in :meth:`SlurpScorer.label_scores` and the score keys.
ENTITY_METRICS: tuple[str, ...] = ("entity", "word", "char", "slu")
#: The utterance-level label metrics.
LABEL_METRICS: tuple[str, ...] = ("scenario", "action", "intent")


# --------------------------------------------------------------------------- formats


def gold_entities(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """Turn a SLURP jsonl record's token-span ``entities`` into ``{"type", "filler"}`` dicts.

    The filler is the lower-cased surfaces of the span's tokens joined by spaces,
    exactly as the official ``util.release2prediction`` forms gold fillers.
    """
    tokens = record.get("tokens")
    if not isinstance(tokens, Sequence):
        raise MetricInputError(
            f"SLURP record {_record_id(record)} has no 'tokens' list to form entity fillers"
        )
    entities = []
    for entity in _entity_list(record, "gold"):
        span = entity.get("span")
        if not isinstance(span, Sequence) or isinstance(span, str):
            raise MetricInputError(
                f"entity {dict(entity)!r} of SLURP record {_record_id(record)} has no 'span' list"
            )
        try:
            words = [str(tokens[i]["surface"]).lower() for i in span]
        except (IndexError, KeyError, TypeError) as err:
            raise MetricInputError(
                f"entity span {list(span)!r} of SLURP record {_record_id(record)} does not index "
                f"its {len(tokens)} tokens ({err!r})"
            ) from None
        entities.append({"type": _entity_type(entity, record), "filler": " ".join(words)})
    return entities


def slurp_example(item: Mapping[str, Any], role: str = "gold") -> dict[str, Any]:
    """Normalise a record to ``{"scenario", "action", "entities": [{"type", "filler"}]}``.

    Accepts a SLURP jsonl record (entities as token ``span`` s, converted by
    :func:`gold_entities`) or an already simplified dict (entities with
    ``filler``, used as given). ``role`` ("gold" or "prediction") only names the
    item in error messages.
    """
    if not isinstance(item, Mapping):
        raise MetricInputError(f"each {role} item must be a dict, got {type(item).__name__}")
    for key in ("scenario", "action"):
        if key not in item:
            raise MetricInputError(
                f"{role} item {_record_id(item)} has no {key!r} (keys: {sorted(item)})"
            )
    raw = _entity_list(item, role)
    if any(isinstance(e, Mapping) and "filler" not in e and "span" in e for e in raw):
        entities = gold_entities(item)
    else:
        entities = []
        for entity in raw:
            if not isinstance(entity, Mapping) or "filler" not in entity:
                raise MetricInputError(
                    f"entity {entity!r} of {role} item {_record_id(item)} needs 'type' and "
                    "'filler' (or a token 'span' with the record's 'tokens')"
                )
            filler = entity["filler"]
            if not isinstance(filler, str):
                raise MetricInputError(
                    f"entity filler {filler!r} of {role} item {_record_id(item)} is not a string"
                )
            entities.append({"type": _entity_type(entity, item), "filler": filler})
    return {"scenario": str(item["scenario"]), "action": str(item["action"]), "entities": entities}


def gold_by_recording(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map every recording file name to its record's gold example, as the official scorer does.

    Official test-set numbers are per recording: a record with eight recordings
    counts eight times. Build the aligned lists from this mapping and the
    predictions keyed by the same file names.
    """
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        example = slurp_example(record, "gold")
        for recording in record.get("recordings") or ():
            out[str(recording["file"])] = example
    return out


# --------------------------------------------------------------------------- distances


def _jiwer_words(text: str) -> list[str]:
    """Split like jiwer 2.0.0's default transform (what the official WordDistance uses)."""
    text = re.sub(r"\s\s+", " ", text).strip()
    return [word for word in text.split(" ") if word.strip() != ""]


def _levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Unit-cost edit distance (insertions, deletions, substitutions) between two sequences."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def word_distance(truth: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``truth`` (can exceed 1), as the official scorer."""
    truth_words = _jiwer_words(truth)
    hypothesis_words = _jiwer_words(hypothesis)
    if not truth_words:
        return 0.0 if not hypothesis_words else 1.0
    return _levenshtein(truth_words, hypothesis_words) / len(truth_words)


def char_distance(truth: str, hypothesis: str) -> float:
    """Character Levenshtein distance divided by the longer length, in [0, 1]."""
    longest = max(len(truth), len(hypothesis))
    if longest == 0:
        return 0.0
    return _levenshtein(truth, hypothesis) / longest


_DISTANCES = {"word": word_distance, "char": char_distance}


# --------------------------------------------------------------------------- counting


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts, with the official zero conventions."""
    precision = 0.0 if tp == 0 and fp == 0 else tp / (tp + fp)
    recall = 0.0 if tp == 0 and fn == 0 else tp / (tp + fn)
    f1 = 0.0 if precision == 0 and recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


class _Tally:
    """Per-label TP/FP/FN (floats: the distance metrics add fractions)."""

    def __init__(self) -> None:
        self.tp: defaultdict[str, float] = defaultdict(float)
        self.fp: defaultdict[str, float] = defaultdict(float)
        self.fn: defaultdict[str, float] = defaultdict(float)

    def labels(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))

    def merged(self, other: _Tally) -> _Tally:
        total = _Tally()
        for source in (self, other):
            for label in source.labels():
                total.tp[label] += source.tp[label]
                total.fp[label] += source.fp[label]
                total.fn[label] += source.fn[label]
        return total

    def overall(self, average: Average) -> tuple[float, float, float]:
        labels = self.labels()
        if average == "micro" or not labels:
            return _prf(
                sum(self.tp[lb] for lb in labels),
                sum(self.fp[lb] for lb in labels),
                sum(self.fn[lb] for lb in labels),
            )
        per_label = [_prf(self.tp[lb], self.fp[lb], self.fn[lb]) for lb in labels]
        n = len(per_label)
        return (
            sum(p for p, _, _ in per_label) / n,
            sum(r for _, r, _ in per_label) / n,
            sum(f for _, _, f in per_label) / n,
        )

    def table(self) -> dict[str, dict[str, float]]:
        table = {}
        for label in self.labels():
            tp, fp, fn = self.tp[label], self.fp[label], self.fn[label]
            precision, recall, f1 = _prf(tp, fp, fn)
            table[label] = {
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "tp": tp,
                "fp": fp,
                "fn": fn,
            }
        return table


class SlurpScorer:
    """Accumulates SLURP scores one example at a time, like the official ``ErrorMetric`` s.

    ``add(gold, prediction)`` takes a SLURP jsonl record or a simplified
    ``{"scenario", "action", "entities": [{"type", "filler"}]}`` on each side;
    :meth:`scores` gives the flat dict of :func:`slurp_scores`, :meth:`label_scores`
    the per-label table of one metric.
    """

    def __init__(self) -> None:
        self.num_examples = 0
        self._correct = {name: 0 for name in LABEL_METRICS}
        self._tallies: dict[str, _Tally] = {
            name: _Tally() for name in (*LABEL_METRICS, "entity", "word", "char")
        }

    def add(self, gold: Mapping[str, Any], prediction: Mapping[str, Any]) -> None:
        """Score one gold/prediction pair into the running counts."""
        gold_ex = slurp_example(gold, "gold")
        pred_ex = slurp_example(prediction, "prediction")
        self.num_examples += 1
        gold_labels = {
            "scenario": gold_ex["scenario"],
            "action": gold_ex["action"],
            "intent": f"{gold_ex['scenario']}_{gold_ex['action']}",
        }
        pred_labels = {
            "scenario": pred_ex["scenario"],
            "action": pred_ex["action"],
            "intent": f"{pred_ex['scenario']}_{pred_ex['action']}",
        }
        for name in LABEL_METRICS:
            tally = self._tallies[name]
            if gold_labels[name] == pred_labels[name]:
                self._correct[name] += 1
                tally.tp[pred_labels[name]] += 1
            else:
                tally.fp[pred_labels[name]] += 1
                tally.fn[gold_labels[name]] += 1
        gold_ents = [(e["type"], e["filler"]) for e in gold_ex["entities"]]
        pred_ents = [(e["type"], e["filler"]) for e in pred_ex["entities"]]
        self._add_exact(gold_ents, pred_ents)
        for name in ("word", "char"):
            self._add_distance(self._tallies[name], _DISTANCES[name], gold_ents, pred_ents)

    def add_batch(
        self, gold: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]]
    ) -> None:
        """Add aligned lists of gold examples and predictions."""
        pred_list, gold_list = aligned(predictions, gold)
        for g, p in zip(gold_list, pred_list, strict=True):
            self.add(g, p)

    def _add_exact(self, gold: list[tuple[str, str]], pred: list[tuple[str, str]]) -> None:
        tally = self._tallies["entity"]
        remaining = list(gold)
        for entity in pred:
            if entity in remaining:
                tally.tp[entity[0]] += 1
                remaining.remove(entity)
            else:
                tally.fp[entity[0]] += 1
        for label, _ in remaining:
            tally.fn[label] += 1

    @staticmethod
    def _add_distance(
        tally: _Tally,
        distance: Any,
        gold: list[tuple[str, str]],
        pred: list[tuple[str, str]],
    ) -> None:
        remaining = list(gold)
        for label, filler in pred:
            best_index, best = -1, float("inf")
            for index, (gold_label, gold_filler) in enumerate(remaining):
                if gold_label == label:
                    d = distance(gold_filler, filler)
                    if d < best:
                        best_index, best = index, d
            if best_index < 0:
                tally.fp[label] += 1
                continue
            tally.tp[label] += 1
            tally.fp[label] += best
            tally.fn[label] += best
            remaining.pop(best_index)
        for label, _ in remaining:
            tally.fn[label] += 1

    def _tally(self, metric: str) -> _Tally:
        if metric == "slu":
            return self._tallies["word"].merged(self._tallies["char"])
        if metric not in self._tallies:
            raise ValueError(
                f"unknown SLURP metric {metric!r}; choose one of "
                f"{', '.join((*LABEL_METRICS, *ENTITY_METRICS))}"
            )
        return self._tallies[metric]

    def scores(self, average: Average = "micro") -> dict[str, float]:
        """All scores as a flat dict of floats in [0, 1] (see :func:`slurp_scores`)."""
        if average not in ("micro", "macro"):
            raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")
        if self.num_examples == 0:
            raise MetricInputError("no SLURP examples were added; nothing to score")
        out: dict[str, float] = {}
        for name in LABEL_METRICS:
            out[f"{name}_accuracy"] = self._correct[name] / self.num_examples
        for name in LABEL_METRICS:
            out[f"{name}_f1"] = self._tally(name).overall(average)[2]
        for name in ENTITY_METRICS:
            precision, recall, f1 = self._tally(name).overall(average)
            out[f"{name}_precision"] = precision
            out[f"{name}_recall"] = recall
            out[f"{name}_f1"] = f1
        return out

    def label_scores(self, metric: str) -> dict[str, dict[str, float]]:
        """Per-label ``precision, recall, f1, tp, fp, fn`` of one metric (``--full --errors``)."""
        return self._tally(metric).table()


def slurp_scores(
    gold: Sequence[Mapping[str, Any]],
    predictions: Sequence[Mapping[str, Any]],
    *,
    average: Average = "micro",
) -> dict[str, float]:
    """Score aligned SLURP gold examples and predictions with the official definitions.

    ``gold`` items are SLURP jsonl records (entities as token spans) or simplified
    ``{"scenario", "action", "entities": [{"type", "filler"}]}``; ``predictions``
    items the simplified form. Returns floats in [0, 1]:
    ``scenario_accuracy, action_accuracy, intent_accuracy`` (exact-match fractions),
    ``scenario_f1, action_f1, intent_f1`` (the official label F1 under ``average``;
    equal to the accuracies when micro), and ``{entity, word, char, slu}_{precision,
    recall, f1}``: exact span F1, the word- and char-distance F1 and SLU-F1.
    """
    scorer = SlurpScorer()
    scorer.add_batch(gold, predictions)
    return scorer.scores(average)


# --------------------------------------------------------------------------- helpers


def _record_id(item: Mapping[str, Any]) -> str:
    for key in ("slurp_id", "file", "id"):
        if isinstance(item, Mapping) and key in item:
            return f"{key}={item[key]!r}"
    return "(no id)"


def _entity_list(item: Mapping[str, Any], role: str) -> list[Any]:
    entities = item.get("entities")
    if entities is None:
        raise MetricInputError(f"{role} item {_record_id(item)} has no 'entities' list")
    if isinstance(entities, (str, bytes, Mapping)) or not isinstance(entities, Sequence):
        raise MetricInputError(
            f"'entities' of {role} item {_record_id(item)} must be a list, got "
            f"{type(entities).__name__}"
        )
    return list(entities)


def _entity_type(entity: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    if "type" not in entity:
        raise MetricInputError(f"entity {dict(entity)!r} of item {_record_id(item)} has no 'type'")
    return str(entity["type"])
