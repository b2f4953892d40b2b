"""``LayerPruner``: iterative layer-importance pruning (Moslem, IWSLT 2025).

Each iteration tries every remaining candidate layer, scores the model without it
on a dev set, and removes for good the layer whose removal scores best; it stops
after ``num_layers_to_remove`` layers, at ``target_num_layers``, or before a
removal that would cost more than ``max_metric_drop``. Cheaper modes:
``"prefix"`` gives the same choices for encoder-side stacks while recomputing only
the layers above each candidate, and the proxies ``"block_influence"`` and
``"angular_distance"`` rank layers from one pass over calibration data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn

from .importance import (
    CLASSIFICATION_METRICS,
    ClassificationScorer,
    GenerationScorer,
    PruningError,
    Scorer,
    TrainerScorer,
    angular_distance,
    block_influence,
    capture_layer_io,
)
from .layers import get_layer_stack, layers_removed, remove_layers
from .prefix import PrefixReuse

Mode = Literal["exact", "prefix", "block_influence", "angular_distance"]
MODES: tuple[str, ...] = ("exact", "prefix", "block_influence", "angular_distance")
REPORT_NAME = "pruning_report.json"
PLOT_NAME = "pruning_plot.png"


def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _state_bytes(model: nn.Module) -> int:
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


@dataclass
class PruningResult:
    """What a pruning run did, in the original layer numbering of the stack."""

    stack: str
    metric: str
    higher_is_better: bool
    mode: str
    num_layers_before: int
    baseline_score: float | None
    removal_order: list[int] = field(default_factory=list)
    #: Score of the model after each removal (exact modes; proxies: None until scored).
    scores: list[float | None] = field(default_factory=list)
    #: Per iteration, every candidate's score (exact) or importance (proxies), by original index.
    candidate_scores: list[dict[int, float]] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    stopped_because: str = ""
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    @property
    def num_layers_after(self) -> int:
        return self.num_layers_before - len(self.removal_order)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report (the model itself is left out)."""
        data = asdict(self)
        data.pop("model")
        data["num_layers_after"] = self.num_layers_after
        data["candidate_scores"] = [
            {str(k): v for k, v in scores.items()} for scores in self.candidate_scores
        ]
        return data

    def save_report(self, output_dir: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``pruning_report.json`` and ``pruning_plot.png`` into ``output_dir``."""
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        report = out / REPORT_NAME
        report.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        plot = out / PLOT_NAME
        plot_pruning(self, plot)
        return report, plot


def plot_pruning(result: PruningResult, path: str | os.PathLike) -> None:
    """Metric against layers removed; each iteration's candidates as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    exact = result.mode in ("exact", "prefix")
    if exact:
        for step, scores in enumerate(result.candidate_scores, start=1):
            ax.scatter([step] * len(scores), list(scores.values()), s=14, color="0.6",
                       label="candidates" if step == 1 else None, zorder=2)  # fmt: skip
    xs = list(range(len(result.removal_order) + 1))
    ys = [result.baseline_score, *result.scores]
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if points:
        ax.plot(*zip(*points, strict=True), marker="o", color="tab:blue", label="chosen", zorder=3)
        for (x, y), layer in zip(points[1:], result.removal_order, strict=False):
            ax.annotate(f"-L{layer}", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xlabel("layers removed")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(result.metric if exact or points else f"{result.mode} (importance)")
    ax.set_title(f"{result.stack}: {result.num_layers_before} -> {result.num_layers_after} layers "
                 f"({result.mode})")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


class LayerPruner:
    """Greedy, iterative removal of the layers whose removal hurts a dev metric least.

    Args:
        model: the model to prune (changed in place; ``result.model`` is it).
        processor: its processor / feature extractor / tokenizer, used to build
            inputs from an ``audio`` column and to decode generations.
        eval_dataset: the dev set: model input columns (``input_features`` ...) or
            an ``audio`` column, plus references (``translation``) or labels.
        metric: ``"chrf++"`` (default), ``"chrf"`` or ``"bleu"`` score generated
            text; ``"accuracy"`` or ``"cross_entropy"`` score a classifier; any other
            name is read from ``trainer.evaluate()`` (pass ``trainer``).
        stack: which layers (``"decoder"``, ``"encoder"``, ``"audio_encoder"`` or a
            dotted path to an ``nn.ModuleList``); default: the model's main stack.
        protect: layers never removed (original indices; negative ones count from
            the end). Default: the first and the last, as in the paper.
        num_layers_to_remove / target_num_layers / max_metric_drop: when to stop
            (at least one; the first reached wins). ``max_metric_drop`` is in metric
            units below the unpruned score (e.g. 2.0 chrF++ points).
        mode: ``"exact"`` (the paper's loop), ``"prefix"`` (same choices, reuses the
            layers below each candidate; encoder-side stacks), ``"block_influence"``
            or ``"angular_distance"`` (one pass over calibration data, no metric).
        scorer: a ready :class:`~hf_quads.prune.importance.Scorer` instead of
            ``metric`` / ``eval_dataset``.
        generate_fn / inputs_fn: ``(model, batch) -> list[str]`` and
            ``(rows) -> batch`` for models that need a prompt: the ``generate`` and
            ``inputs`` of an :class:`~hf_quads.audio_llm.AudioLLMTranslator`
            (Qwen2-Audio).

    Ties between candidates go to the lowest original layer index, so runs are
    deterministic.
    """

    def __init__(
        self,
        model: nn.Module,
        processor: Any = None,
        eval_dataset: Any = None,
        *,
        metric: str = "chrf++",
        stack: str | None = None,
        protect: Sequence[int] | None = None,
        num_layers_to_remove: int | None = None,
        target_num_layers: int | None = None,
        max_metric_drop: float | None = None,
        mode: Mode = "exact",
        scorer: Scorer | None = None,
        trainer: Any = None,
        generate_fn: Callable[[nn.Module, Any], list[str]] | None = None,
        inputs_fn: Callable[[dict[str, list]], dict[str, Any]] | None = None,
        generation_kwargs: dict[str, Any] | None = None,
        reference_column: str = "translation",
        label_column: str = "label",
        batch_size: int = 8,
        angular_n: int | None = None,
        progress: bool = True,
    ) -> None:
        if mode not in MODES:
            raise PruningError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if num_layers_to_remove is None and target_num_layers is None and max_metric_drop is None:
            raise PruningError(
                "say when to stop: num_layers_to_remove, target_num_layers or max_metric_drop"
            )
        if (
            mode == "angular_distance"
            and angular_n is None
            and num_layers_to_remove is None
            and (target_num_layers is None)
        ):
            raise PruningError(
                "mode='angular_distance' removes a block of n layers: give num_layers_to_remove, "
                "target_num_layers or angular_n"
            )
        self.model = model
        self.mode = mode
        self.stack_name = stack
        self.stack = get_layer_stack(model, stack)
        total = self.stack.num_layers
        self.num_layers_before = total
        self.protect = self._resolve_protect(protect, total)
        self.num_layers_to_remove = num_layers_to_remove
        self.target_num_layers = target_num_layers
        self.max_metric_drop = max_metric_drop
        self.angular_n = angular_n
        self.progress = progress
        self.limit = self._removal_limit(total)
        self.scorer = scorer or self._make_scorer(
            processor, eval_dataset, metric, trainer, generate_fn, inputs_fn, generation_kwargs,
            reference_column, label_column, batch_size,
        )  # fmt: skip

    # ---------------------------------------------------------------- settings
    @staticmethod
    def _resolve_protect(protect: Sequence[int] | None, total: int) -> set[int]:
        raw = [0, -1] if protect is None else list(protect)
        out = set()
        for index in raw:
            resolved = index + total if index < 0 else index
            if not 0 <= resolved < total:
                raise PruningError(f"protect index {index} is outside the stack's {total} layers")
            out.add(resolved)
        return out

    def _removal_limit(self, total: int) -> int:
        limits = [total - len(self.protect)]
        if self.num_layers_to_remove is not None:
            if self.num_layers_to_remove < 0:
                raise PruningError("num_layers_to_remove must be >= 0")
            limits.append(self.num_layers_to_remove)
        if self.target_num_layers is not None:
            if not 1 <= self.target_num_layers <= total:
                raise PruningError(
                    f"target_num_layers must be between 1 and the stack's {total} layers, "
                    f"got {self.target_num_layers}"
                )
            limits.append(total - self.target_num_layers)
        if self.max_metric_drop is not None and self.max_metric_drop < 0:
            raise PruningError("max_metric_drop must be >= 0 (metric units below the baseline)")
        return max(0, min(limits))

    def _make_scorer(
        self, processor, eval_dataset, metric, trainer, generate_fn, inputs_fn, generation_kwargs,
        reference_column, label_column, batch_size,
    ) -> Scorer:  # fmt: skip
        if trainer is not None:
            return TrainerScorer(trainer, metric)
        if eval_dataset is None:
            raise PruningError("pass eval_dataset (the dev set), a trainer, or a scorer")
        if metric in CLASSIFICATION_METRICS:
            return ClassificationScorer(
                eval_dataset, processor, metric, label_column=label_column, batch_size=batch_size
            )
        return GenerationScorer(
            eval_dataset, processor, metric, reference_column=reference_column,
            batch_size=batch_size, generation_kwargs=generation_kwargs, generate_fn=generate_fn,
            inputs_fn=inputs_fn,
        )  # fmt: skip

    # ------------------------------------------------------------------ helpers
    def _better(self, a: float, b: float) -> bool:
        return a > b if self.scorer.higher_is_better else a < b

    def _drop(self, baseline: float, score: float) -> float:
        return baseline - score if self.scorer.higher_is_better else score - baseline

    def _progress(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False)

    def _new_result(self, baseline: float | None) -> PruningResult:
        return PruningResult(
            stack=self.stack.name,
            metric=self.scorer.name,
            higher_is_better=self.scorer.higher_is_better,
            mode=self.mode,
            num_layers_before=self.num_layers_before,
            baseline_score=baseline,
            params_before=_param_count(self.model),
            bytes_before=_state_bytes(self.model),
        )

    def _finish(self, result: PruningResult, reason: str) -> PruningResult:
        result.params_after = _param_count(self.model)
        result.bytes_after = _state_bytes(self.model)
        result.stopped_because = reason
        result.model = self.model
        return result

    # -------------------------------------------------------------------- prune
    def prune(self) -> PruningResult:
        """Run the pruning and return what was removed and what it cost."""
        if self.mode in ("exact", "prefix"):
            return self._prune_iteratively()
        return self._prune_by_proxy()

    def _prune_iteratively(self) -> PruningResult:
        alive = list(range(self.num_layers_before))  # current position -> original index
        prefix = (
            PrefixReuse(self.model, self.stack_name, self.scorer) if self.mode == "prefix" else None
        )
        baseline = prefix.capture() if prefix else self.scorer(self.model)
        result = self._new_result(baseline)
        reason = "reached the number of layers to remove"
        for _ in range(self.limit):
            candidates = [pos for pos, orig in enumerate(alive) if orig not in self.protect]
            if not candidates:
                reason = "only protected layers are left"
                break
            scores: dict[int, float] = {}
            with self._progress(len(candidates), f"pruning: {len(alive)} layers") as bar:
                for pos in candidates:
                    remove = lambda p: layers_removed(self.model, [p], self.stack_name)  # noqa: E731
                    if prefix is not None:
                        score = prefix.score_without(pos, remove)
                    else:
                        with remove(pos):
                            score = self.scorer(self.model)
                    scores[alive[pos]] = score
                    bar.update(1)
            best = min(scores, key=lambda orig: (-scores[orig], orig)) if self.scorer.higher_is_better \
                else min(scores, key=lambda orig: (scores[orig], orig))  # fmt: skip
            if (
                self.max_metric_drop is not None
                and self._drop(baseline, scores[best]) > self.max_metric_drop
            ):
                result.candidate_scores.append(scores)
                reason = (
                    f"the best removal (layer {best}) would drop {self.scorer.name} by "
                    f"{self._drop(baseline, scores[best]):.3f} > max_metric_drop {self.max_metric_drop}"
                )
                break
            remove_layers(self.model, [alive.index(best)], self.stack_name)
            alive.remove(best)
            result.removal_order.append(best)
            result.scores.append(scores[best])
            result.candidate_scores.append(scores)
            if prefix is not None and len(result.removal_order) < self.limit:
                prefix.capture()
        else:
            if self.limit == 0:
                reason = "nothing to remove"
        return self._finish(result, reason)

    def _prune_by_proxy(self) -> PruningResult:
        """Rank once from captured hidden states, then remove the least important layers.

        The metric is still measured before and after each removal (k + 1 evaluations
        instead of one per candidate per iteration), so the report shows what the
        ranking cost, and ``max_metric_drop`` can stop it.
        """
        layers = get_layer_stack(self.model, self.stack_name).modules
        batches = self.scorer.batches()
        if not batches:
            raise PruningError(f"mode={self.mode!r} needs calibration batches: pass eval_dataset")
        inputs, outputs = capture_layer_io(self.model, layers, batches)
        if self.mode == "block_influence":
            importance = dict(enumerate(block_influence(inputs, outputs)))
            ranking = sorted(
                (i for i in importance if i not in self.protect), key=lambda i: (importance[i], i)
            )
            chosen = ranking[: self.limit]
        else:
            # Gromov et al.: the contiguous block of n layers whose input and output are
            # closest in angle; n defaults to the number of layers to remove.
            n = self.angular_n or self.limit
            importance = dict(enumerate(angular_distance(inputs, outputs, max(n, 1))))
            blocks = [s for s in importance if not set(range(s, s + n)) & self.protect]
            chosen = []
            if blocks and self.limit > 0:
                start = min(blocks, key=lambda s: (importance[s], s))
                chosen = list(range(start, start + n))[: self.limit]
        baseline = self.scorer(self.model)
        result = self._new_result(baseline)
        result.candidate_scores.append(importance)
        reason = f"removed the {len(chosen)} least important layers by {self.mode}"
        for orig in chosen:
            position = self._position(orig, result.removal_order)
            with layers_removed(self.model, [position], self.stack_name):
                score = self.scorer(self.model)
            if (
                self.max_metric_drop is not None
                and self._drop(baseline, score) > self.max_metric_drop
            ):
                reason = (
                    f"removing layer {orig} would drop {self.scorer.name} beyond max_metric_drop"
                )
                break
            remove_layers(self.model, [position], self.stack_name)
            result.removal_order.append(orig)
            result.scores.append(score)
        return self._finish(result, reason)

    @staticmethod
    def _position(original: int, removed: Sequence[int]) -> int:
        return original - sum(1 for r in removed if r < original)


__all__ = ["MODES", "LayerPruner", "PruningResult", "plot_pruning"]
