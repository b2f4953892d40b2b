"""How much a model is worth, and how much each layer matters.

Two kinds of signal:

* **Scorers** measure the whole model on a dev set: translation quality of
  generated outputs (chrF++, chrF, BLEU through sacrebleu), classification accuracy
  or cross-entropy, or any ``compute_metrics`` through a ``Trainer``. The iterative pruner calls one
  per candidate, so each precomputes its inputs once.
* **Proxies** rank layers from one pass over calibration data without a metric:
  Block Influence (ShortGPT: ``1 - cos(input, output)`` of a layer) and the angular
  distance between the input of layer ``l`` and the input of layer ``l + n``
  (Gromov et al.). Both are pure functions of captured hidden states.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from ..errors import HfQuadsError

#: Columns that are model inputs when a dataset carries them already.
INPUT_COLUMNS: tuple[str, ...] = ("input_features", "input_values", "attention_mask", "input_ids")
TRANSLATION_METRICS: tuple[str, ...] = ("chrf++", "chrf", "bleu")
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "cross_entropy")


class PruningError(HfQuadsError, ValueError):
    """Bad pruning settings or data."""


class Scorer(Protocol):
    """Scores a model on a fixed dev set; ``higher_is_better`` says which way is good."""

    name: str
    higher_is_better: bool

    def batches(self) -> Sequence[Mapping[str, torch.Tensor]]: ...

    def __call__(self, model: nn.Module) -> float: ...


# --------------------------------------------------------------------------- inputs
def _input_batches(
    dataset: Any,
    batch_size: int,
    feature_extractor: Any | None,
    audio_column: str,
    max_seconds: float | None,
    inputs_fn: Callable[[dict[str, list]], dict[str, torch.Tensor]] | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Model inputs of ``dataset`` in fixed batches: ``inputs_fn(rows)``, its input columns,
    or features of its audio."""
    from ..data import prepare_features

    columns = [c for c in INPUT_COLUMNS if c in dataset.column_names]
    batches = []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        if inputs_fn is not None:
            batch = dict(inputs_fn(rows))
        elif columns:
            batch = {c: torch.as_tensor(rows[c]) for c in columns}
            for key in ("input_features", "input_values"):
                if key in batch:
                    batch[key] = batch[key].float()
        elif audio_column in rows and feature_extractor is not None:
            feats = prepare_features(rows[audio_column], feature_extractor, max_seconds=max_seconds)
            batch = {k: torch.as_tensor(v) for k, v in feats.items()}
        else:
            raise PruningError(
                f"the dev set has neither model input columns {list(INPUT_COLUMNS)} nor an "
                f"{audio_column!r} column with a feature extractor to compute them"
            )
        batches.append(batch)
    if not batches:
        raise PruningError("the dev set is empty")
    return batches


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _to(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def _over_batches(
    model: nn.Module,
    batches: Sequence[Mapping[str, torch.Tensor]],
    fn: Callable[[nn.Module, dict[str, torch.Tensor]], Any],
    on_batch: Callable[[int], None] | None = None,
) -> list[Any]:
    """``fn(model, batch)`` per batch in eval mode on the model's device (``on_batch(i)`` first)."""
    was_training = model.training
    model.eval()
    device = _device_of(model)
    try:
        out = []
        for i, batch in enumerate(batches):
            if on_batch is not None:
                on_batch(i)
            out.append(fn(model, _to(batch, device)))
        return out
    finally:
        model.train(was_training)


def _feature_extractor(processor: Any) -> Any | None:
    if processor is None:
        return None
    return getattr(processor, "feature_extractor", processor)


def _tokenizer(processor: Any) -> Any | None:
    if processor is None:
        return None
    return getattr(processor, "tokenizer", processor)


# -------------------------------------------------------------------------- scorers
def translation_score(metric: str, hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF++ / chrF / BLEU (0-100) of ``hypotheses`` against one reference each."""
    from ..metrics.translation import bleu, chrf, chrf_plus_plus

    functions: dict[str, Callable[[Sequence[str], Sequence[str]], float]] = {
        "chrf++": chrf_plus_plus,
        "chrf": chrf,
        "bleu": bleu,
    }
    if metric not in functions:
        raise PruningError(f"unknown translation metric {metric!r}; use one of {list(functions)}")
    return float(functions[metric](list(hypotheses), list(references)))


class GenerationScorer:
    """Generate for every dev example and score against references (chrF++, chrF, BLEU).

    ``generate_fn(model, batch) -> list[str]`` turns a batch of model inputs into
    text; the default calls ``model.generate`` (greedy) and decodes with the
    processor's tokenizer, which fits Whisper-style seq2seq models.
    ``inputs_fn(rows) -> batch`` builds the model inputs of a slice of dataset rows;
    the default computes audio features. Audio LLMs such as Qwen2-Audio need a
    prompt: pass the ``inputs`` and ``generate`` of an
    :class:`~hf_quads.audio_llm.AudioLLMTranslator`.
    """

    def __init__(
        self,
        dataset: Any,
        processor: Any = None,
        metric: str = "chrf++",
        *,
        reference_column: str = "translation",
        audio_column: str = "audio",
        batch_size: int = 8,
        max_seconds: float | None = None,
        generation_kwargs: Mapping[str, Any] | None = None,
        generate_fn: Callable[[nn.Module, Mapping[str, torch.Tensor]], list[str]] | None = None,
        inputs_fn: Callable[[dict[str, list]], dict[str, torch.Tensor]] | None = None,
    ) -> None:
        if metric not in TRANSLATION_METRICS:
            raise PruningError(f"metric must be one of {list(TRANSLATION_METRICS)}, got {metric!r}")
        if reference_column not in dataset.column_names:
            raise PruningError(
                f"the dev set has no {reference_column!r} column with references "
                f"(columns: {dataset.column_names})"
            )
        if generate_fn is None and _tokenizer(processor) is None:
            raise PruningError(
                "generation scoring needs a processor with a tokenizer, or a generate_fn"
            )
        self.name = metric
        self.higher_is_better = True
        self.references = list(dataset[reference_column])
        self._batches = _input_batches(
            dataset, batch_size, _feature_extractor(processor), audio_column, max_seconds, inputs_fn
        )
        self.generation_kwargs = {"do_sample": False, "num_beams": 1, **(generation_kwargs or {})}
        self.generate_fn = generate_fn or self._default_generate
        self.processor = processor
        self.last_hypotheses: list[str] = []

    def batches(self) -> list[dict[str, torch.Tensor]]:
        return self._batches

    def _default_generate(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> list[str]:
        ids = model.generate(**batch, **self.generation_kwargs)
        return _tokenizer(self.processor).batch_decode(ids, skip_special_tokens=True)

    @torch.no_grad()
    def hypotheses(
        self, model: nn.Module, on_batch: Callable[[int], None] | None = None
    ) -> list[str]:
        """Generated text for the whole dev set, batch by batch."""
        outputs = _over_batches(model, self._batches, self.generate_fn, on_batch)
        return [text.strip() for texts in outputs for text in texts]

    def __call__(self, model: nn.Module, on_batch: Callable[[int], None] | None = None) -> float:
        self.last_hypotheses = self.hypotheses(model, on_batch)
        return translation_score(self.name, self.last_hypotheses, self.references)


class ClassificationScorer:
    """A classifier on the dev set: ``accuracy`` (%) of the argmax, or ``cross_entropy``.

    Cross-entropy (lower is better) is continuous, so it separates candidates that
    accuracy on a small dev set scores alike.
    """

    def __init__(
        self,
        dataset: Any,
        processor: Any = None,
        metric: str = "accuracy",
        *,
        label_column: str = "label",
        audio_column: str = "audio",
        batch_size: int = 16,
        max_seconds: float | None = None,
    ) -> None:
        if metric not in CLASSIFICATION_METRICS:
            raise PruningError(
                f"metric must be one of {list(CLASSIFICATION_METRICS)}, got {metric!r}"
            )
        column = label_column if label_column in dataset.column_names else "labels"
        if column not in dataset.column_names:
            raise PruningError(f"the dev set has no {label_column!r} (or 'labels') column")
        self.name = metric
        self.higher_is_better = metric == "accuracy"
        self.labels = torch.as_tensor(dataset[column])
        self._batches = _input_batches(
            dataset, batch_size, _feature_extractor(processor), audio_column, max_seconds
        )

    def batches(self) -> list[dict[str, torch.Tensor]]:
        return self._batches

    @torch.no_grad()
    def __call__(self, model: nn.Module, on_batch: Callable[[int], None] | None = None) -> float:
        logits = torch.cat(
            _over_batches(model, self._batches, lambda m, b: m(**b).logits.float().cpu(), on_batch)
        )
        if self.name == "cross_entropy":
            return nn.functional.cross_entropy(logits, self.labels).item()
        return 100.0 * (logits.argmax(-1) == self.labels).float().mean().item()


class TrainerScorer:
    """Any ``compute_metrics`` through a ``Trainer`` / ``Seq2SeqTrainer`` holding the model.

    ``metric`` is a key of ``trainer.evaluate()`` (with or without the ``eval_``
    prefix). The trainer must hold the very model being pruned: the pruner changes
    it in place.
    """

    def __init__(self, trainer: Any, metric: str, *, higher_is_better: bool | None = None) -> None:
        self.trainer = trainer
        self.key = metric if metric.startswith("eval_") else f"eval_{metric}"
        self.name = metric
        if higher_is_better is None:
            higher_is_better = bool(
                getattr(trainer.args, "greater_is_better", None) or "loss" not in metric
            )
        self.higher_is_better = higher_is_better

    def batches(self) -> list[dict[str, torch.Tensor]]:
        return []

    def __call__(self, model: nn.Module, on_batch: Callable[[int], None] | None = None) -> float:
        if self.trainer.model is not model:
            raise PruningError("TrainerScorer: the trainer must hold the model being pruned")
        metrics = self.trainer.evaluate()
        if self.key not in metrics:
            raise PruningError(
                f"trainer.evaluate() returned no {self.key!r}; it has {sorted(metrics)}"
            )
        return float(metrics[self.key])


# -------------------------------------------------------------------------- proxies
def _hidden(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, tuple | list) else value


def _takes_decoder_inputs(model: nn.Module) -> bool:
    return "decoder_input_ids" in inspect.signature(model.forward).parameters


class _LayerIO:
    """Captures every layer's input and output hidden states during forward passes."""

    def __init__(self, layers: nn.ModuleList) -> None:
        self.inputs: list[list[torch.Tensor]] = [[] for _ in layers]
        self.outputs: list[list[torch.Tensor]] = [[] for _ in layers]
        self._handles = []
        for i, layer in enumerate(layers):
            self._handles.append(layer.register_forward_pre_hook(self._pre(i), with_kwargs=True))
            self._handles.append(layer.register_forward_hook(self._post(i)))

    def _pre(self, i: int) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            hidden = args[0] if args else kwargs.get("hidden_states")
            self.inputs[i].append(hidden.detach().float())

        return hook

    def _post(self, i: int) -> Callable:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            self.outputs[i].append(_hidden(output).detach().float())

        return hook

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def capture_layer_io(
    model: nn.Module, layers: nn.ModuleList, batches: Sequence[Mapping[str, torch.Tensor]]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer, the concatenated (over batches) input and output hidden states, flattened
    to (tokens, hidden). Padding frames are dropped where the batch has an attention mask
    the encoder's frames can be matched to.
    """
    from ..distill.features import frame_attention_mask

    capture = _LayerIO(layers)
    device = _device_of(model)
    masks: list[torch.Tensor | None] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                n_before = len(capture.inputs[0])
                forward_batch = _to(batch, device)
                if _takes_decoder_inputs(model) and "decoder_input_ids" not in forward_batch:
                    start = getattr(model.config, "decoder_start_token_id", None) or 0
                    size = next(iter(forward_batch.values())).shape[0]
                    forward_batch["decoder_input_ids"] = torch.full((size, 1), start, device=device)
                model(**forward_batch)
                if len(capture.inputs[0]) != n_before + 1:
                    raise PruningError("each layer must run exactly once per forward to be ranked")
                attention = batch.get("attention_mask")
                frames = capture.inputs[0][-1].shape[1]
                masks.append(
                    None
                    if attention is None
                    else frame_attention_mask(model, frames, attention.to(device)).cpu()
                )
    finally:
        capture.close()
        model.train(was_training)

    def flat(tensors: list[torch.Tensor]) -> torch.Tensor:
        rows = []
        for hidden, mask in zip(tensors, masks, strict=True):
            hidden = hidden.cpu()
            rows.append(hidden[mask] if mask is not None else hidden.reshape(-1, hidden.shape[-1]))
        return torch.cat(rows)

    return [flat(x) for x in capture.inputs], [flat(x) for x in capture.outputs]


def block_influence(inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> list[float]:
    """ShortGPT's Block Influence per layer: mean over tokens of ``1 - cos(input, output)``.

    Low means the layer barely changes its input: a candidate for removal.
    """
    if len(inputs) != len(outputs):
        raise PruningError(f"{len(inputs)} layer inputs but {len(outputs)} outputs")
    return [
        float((1 - nn.functional.cosine_similarity(x.double(), y.double(), dim=-1)).mean())
        for x, y in zip(inputs, outputs, strict=True)
    ]


def angular_distance(
    inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor], n: int = 1
) -> list[float]:
    """Gromov et al.: angular distance ``arccos(cos(h_l, h_{l+n})) / pi`` per start layer ``l``.

    ``h_l`` is the input of layer ``l`` and ``h_{l+n}`` the output of layer
    ``l + n - 1``; entry ``l`` scores removing the block ``l .. l+n-1`` (small: the
    block maps its input to nearly the same direction). ``len(inputs) - n + 1`` entries.
    """
    if not 1 <= n <= len(inputs):
        raise PruningError(f"n must be between 1 and the number of layers ({len(inputs)}), got {n}")
    scores = []
    for start in range(len(inputs) - n + 1):
        # float64: arccos near 1 turns float32 rounding into a visible distance.
        x, y = inputs[start].double(), outputs[start + n - 1].double()
        cos = nn.functional.cosine_similarity(x, y, dim=-1)
        scores.append(float((torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi).mean()))
    return scores
