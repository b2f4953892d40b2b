"""chrF, chrF++ and BLEU through sacrebleu's corpus-level scorers.

The layer-pruning recipe (Moslem, IWSLT 2025) picks the layer to drop by chrF++
for German and chrF for Chinese, and logs BLEU. All three are corpus scores on a
0-100 scale, exactly sacrebleu's ``CHRF().corpus_score`` (character n-grams up to
6, beta 2), ``CHRF(word_order=2)`` (chrF++: word uni- and bigrams added) and
``BLEU(tokenize=...)`` (default ``"13a"``; use ``"zh"`` for Chinese output).

``references`` holds one entry per prediction: a string, or a list of strings
when a segment has several references (their number may vary per segment).
"""

from __future__ import annotations

from collections.abc import Sequence

from hf_quads.metrics._common import MetricInputError, aligned

References = Sequence[str] | Sequence[Sequence[str]]


def reference_streams(references: References, num_predictions: int) -> list[list[str | None]]:
    """Transpose per-segment references into sacrebleu's list of reference streams.

    Segments with fewer references than the most are padded with ``None``, which
    sacrebleu skips.
    """
    per_segment: list[list[str]] = []
    for index, ref in enumerate(references):
        refs = [ref] if isinstance(ref, str) else list(ref)
        if not refs or not all(isinstance(r, str) for r in refs):
            raise MetricInputError(
                f"reference {index} must be a string or a non-empty list of strings, got {ref!r}"
            )
        per_segment.append(refs)
    if len(per_segment) != num_predictions:
        raise MetricInputError(
            f"got {num_predictions} predictions and {len(per_segment)} references"
        )
    depth = max(len(refs) for refs in per_segment)
    return [[refs[k] if k < len(refs) else None for refs in per_segment] for k in range(depth)]


def _prepare(predictions: Sequence[str], references: References) -> tuple[list[str], list]:
    preds, refs = aligned(predictions, references)
    for index, pred in enumerate(preds):
        if not isinstance(pred, str):
            raise MetricInputError(f"prediction {index} is not a string: {pred!r}")
    return preds, reference_streams(refs, len(preds))


def chrf(
    predictions: Sequence[str],
    references: References,
    *,
    word_order: int = 0,
    lowercase: bool = False,
) -> float:
    """Corpus chrF (``word_order=0``) or chrF++ (``word_order=2``), 0-100."""
    from sacrebleu.metrics import CHRF

    preds, streams = _prepare(predictions, references)
    metric = CHRF(word_order=word_order, lowercase=lowercase)
    return float(metric.corpus_score(preds, streams).score)


def chrf_plus_plus(predictions: Sequence[str], references: References) -> float:
    """Corpus chrF++ (chrF with word uni- and bigrams, ``word_order=2``), 0-100."""
    return chrf(predictions, references, word_order=2)


def bleu(
    predictions: Sequence[str],
    references: References,
    *,
    tokenize: str = "13a",
    lowercase: bool = False,
) -> float:
    """Corpus BLEU with sacrebleu's tokenizer ``tokenize`` ("13a", "zh", "intl", ...), 0-100."""
    from sacrebleu.metrics import BLEU

    preds, streams = _prepare(predictions, references)
    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    return float(metric.corpus_score(preds, streams).score)


def translation_scores(
    predictions: Sequence[str],
    references: References,
    *,
    tokenize: str = "13a",
) -> dict[str, float]:
    """``{"chrf", "chrf_plus_plus", "bleu"}`` (0-100) for one system output."""
    return {
        "chrf": chrf(predictions, references),
        "chrf_plus_plus": chrf_plus_plus(predictions, references),
        "bleu": bleu(predictions, references, tokenize=tokenize),
    }
