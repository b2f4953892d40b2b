"""Exact candidate scoring with prefix reuse, for encoder-side layer stacks.

Removing layer ``i`` leaves layers ``0 .. i-1`` computing exactly what they
computed before, on every dev batch. So one capture pass over the current model
records each layer's output per batch, and each candidate then runs with those
first ``i`` layers replaced by stubs that return the recorded outputs: only the
layers above the removed one (and the rest of the model) are computed. The stubs
return the very objects the layers returned, so the scores, and the choices, are
those of the naive loop.

It pays off when the stack's layers dominate the cost of scoring (a wav2vec2 or
Whisper encoder scored by accuracy, or an encoder under a short decoder); it does
not apply to decoder stacks run token by token during generation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .importance import PruningError


class _Recorded(nn.Module):
    """Stands in for a layer: returns what the layer returned for the current batch."""

    def __init__(self, outputs: list[Any], batch: list[int]) -> None:
        super().__init__()
        self._outputs = outputs
        self._batch = batch

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._outputs[self._batch[0]]


class PrefixReuse:
    """Scores "the model without layer i" reusing the recorded outputs of layers below i."""

    def __init__(self, model: nn.Module, stack: str | None, scorer: Any) -> None:
        self.model = model
        self.stack = stack
        self.scorer = scorer
        self._batch = [0]
        self._outputs: list[list[Any]] = []

    def _set_batch(self, index: int) -> None:
        self._batch[0] = index

    def capture(self) -> float:
        """Score the current model once, recording every layer's output per batch."""
        layers = self._layers()
        self._outputs = [[] for _ in layers]
        handles = [layer.register_forward_hook(self._recorder(i)) for i, layer in enumerate(layers)]
        try:
            score = self.scorer(self.model, on_batch=self._set_batch)
        finally:
            for handle in handles:
                handle.remove()
        expected = len(self.scorer.batches())
        if any(len(outputs) != expected for outputs in self._outputs):
            raise PruningError(
                "prefix reuse needs every layer of the stack to run exactly once per dev batch "
                "(an encoder-side stack); use mode='exact' for this stack"
            )
        return score

    def _recorder(self, i: int) -> Callable:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            self._outputs[i].append(output)

        return hook

    def score_without(self, index: int, remove: Callable[[int], Any]) -> float:
        """Score with layer ``index`` removed (``remove(index)`` is a context manager)."""
        with remove(index):
            layers = self._layers()  # the rebuilt list: positions below index are unchanged
            originals = [layers[j] for j in range(index)]
            try:
                for j in range(index):
                    layers[j] = _Recorded(self._outputs[j], self._batch)
                return self.scorer(self.model, on_batch=self._set_batch)
            finally:
                for j, layer in enumerate(originals):
                    layers[j] = layer

    def _layers(self) -> nn.ModuleList:
        from .layers import get_layer_stack

        return get_layer_stack(self.model, self.stack).modules
