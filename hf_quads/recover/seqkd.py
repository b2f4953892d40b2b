"""Sequence-level knowledge distillation data (Kim & Rush; the IWSLT 2025 recipe).

The teacher translates the training audio; each translation is added to the
training set next to the human reference, unless it repeats it, and the pruned
student is fine-tuned on the union.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

#: Value of the ``origin`` column: where a row's target text comes from.
ORIGINS: tuple[str, ...] = ("reference", "teacher")


def normalise_text(text: str) -> str:
    """The text compared for deduplication: stripped, inner whitespace collapsed."""
    return " ".join(text.split())


def merge_teacher_outputs(
    references: list[str], hypotheses: list[str], keys: list[Any] | None = None
) -> list[int]:
    """Which examples get an extra teacher row: indices whose hypothesis is new.

    A hypothesis is dropped when it is empty, equals its reference, or repeats a
    text already kept for the same audio (``keys[i]``, default the index).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    keys = list(range(len(references))) if keys is None else keys
    seen = {(k, normalise_text(r)) for k, r in zip(keys, references, strict=True)}
    added = []
    for i, (key, hypothesis) in enumerate(zip(keys, hypotheses, strict=True)):
        text = normalise_text(hypothesis)
        if text and (key, text) not in seen:
            seen.add((key, text))
            added.append(i)
    return added


def build_sequence_kd_dataset(
    teacher: nn.Module,
    dataset: Any,
    processor: Any = None,
    *,
    reference_column: str = "translation",
    audio_column: str = "audio",
    batch_size: int = 8,
    max_seconds: float | None = None,
    generation_kwargs: Mapping[str, Any] | None = None,
    generate_fn: Callable[[nn.Module, Mapping[str, torch.Tensor]], list[str]] | None = None,
    inputs_fn: Callable[[dict[str, list]], dict[str, torch.Tensor]] | None = None,
    chunk_size: int = 256,
    progress: bool = True,
) -> Any:
    """The training set plus the teacher's translations of its audio, deduplicated.

    Every original row is kept (``origin="reference"``); for each row whose
    greedy teacher translation is new (see :func:`merge_teacher_outputs`), a copy
    with that translation in ``reference_column`` is appended
    (``origin="teacher"``). Generation runs in chunks of ``chunk_size`` rows, so
    the features of a large training set are never all in memory. ``generate_fn`` and
    ``inputs_fn`` as in :class:`~hf_quads.prune.GenerationScorer` (audio LLMs).
    """
    import datasets
    from tqdm.auto import tqdm

    from ..prune.importance import GenerationScorer

    hypotheses: list[str] = []
    with tqdm(total=len(dataset), desc="teacher translations", disable=not progress) as bar:
        for start in range(0, len(dataset), chunk_size):
            chunk = dataset.select(range(start, min(start + chunk_size, len(dataset))))
            scorer = GenerationScorer(
                chunk,
                processor,
                reference_column=reference_column,
                audio_column=audio_column,
                batch_size=batch_size,
                max_seconds=max_seconds,
                generation_kwargs=generation_kwargs,
                generate_fn=generate_fn,
                inputs_fn=inputs_fn,
            )
            hypotheses += scorer.hypotheses(teacher)
            bar.update(len(chunk))
    references = list(dataset[reference_column])
    audio = dataset[audio_column] if audio_column in dataset.column_names else None
    keys = list(audio) if audio is not None and all(isinstance(a, str) for a in audio) else None
    added = merge_teacher_outputs(references, hypotheses, keys)

    original = dataset.add_column("origin", ["reference"] * len(dataset))
    extra = dataset.select(added)
    extra = extra.remove_columns(reference_column).add_column(
        reference_column, [hypotheses[i] for i in added]
    )
    extra = extra.add_column("origin", ["teacher"] * len(added))
    extra = extra.cast(original.features)
    return datasets.concatenate_datasets([original, extra])


__all__ = ["ORIGINS", "build_sequence_kd_dataset", "merge_teacher_outputs", "normalise_text"]
