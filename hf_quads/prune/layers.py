"""Find a model's layer stacks and remove layers from them, keeping the model consistent.

One function, :func:`remove_layers`, for every architecture: it rebuilds the
``nn.ModuleList``, fixes the layer counts and per-layer lists in every config that
describes the stack (``encoder_layers``, ``decoder_layers``, ``num_hidden_layers``,
nested ``text_config`` / ``audio_config``, ``layer_types``, ``max_window_layers``),
slices learned per-layer weights (``use_weighted_layer_sum``) and renumbers the
attention ``layer_idx`` so the KV cache of the pruned model lines up. A pruned model
therefore saves and loads with ``save_pretrained`` / ``from_pretrained`` as is.

Named stacks (found on plain and PEFT-wrapped models, transformers 4.x and 5.x):

========================  ==========================================  ================
model                     stacks                                      default
========================  ==========================================  ================
Whisper seq2seq           ``encoder``, ``decoder``                    ``decoder``
Whisper classifier        ``encoder``                                 ``encoder``
Wav2Vec2 / HuBERT         ``encoder``                                 ``encoder``
Qwen2-Audio               ``decoder`` (the LLM), ``audio_encoder``    ``decoder``
decoder-only LMs          ``decoder``                                 ``decoder``
========================  ==========================================  ================

Any other ``nn.ModuleList`` is reached by its dotted path (``"model.layers"``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .importance import PruningError

_COUNT_KEYS = ("num_hidden_layers", "encoder_layers", "decoder_layers", "num_layers", "n_layer")
_PER_LAYER_LISTS = ("layer_types",)


@dataclass(frozen=True)
class _Rule:
    name: str
    suffixes: tuple[str, ...]
    sub_config: str  # attribute of an ancestor's config that describes this stack ("" = itself)
    count_keys: tuple[str, ...]
    exact: tuple[str, ...] = ()  # whole paths (a bare base model's "layers")


# Order matters: the first rule whose suffix matches a ModuleList's path names it.
_RULES = (
    _Rule("audio_encoder", ("audio_tower.layers",), "audio_config", ("encoder_layers",)),
    _Rule(
        "decoder",
        ("language_model.model.layers", "language_model.layers"),
        "text_config",
        ("num_hidden_layers",),
    ),
    _Rule("encoder", ("encoder.layers",), "", ("encoder_layers", "num_hidden_layers")),
    _Rule("decoder", ("decoder.layers",), "", ("decoder_layers",)),
    _Rule(
        "decoder",
        ("model.layers",),
        "",
        ("num_hidden_layers", "num_layers", "n_layer"),
        ("layers",),
    ),
)


@dataclass
class LayerStack:
    """One prunable stack of layers and the configs that count them."""

    name: str
    path: str
    modules: nn.ModuleList
    configs: list[Any] = field(default_factory=list)
    count_keys: tuple[str, ...] = ()

    @property
    def num_layers(self) -> int:
        return len(self.modules)


@dataclass
class RemovalRecord:
    """Everything :func:`restore_layers` needs to undo one :func:`remove_layers`."""

    stack: LayerStack
    layers: list[nn.Module]
    removed: list[int]
    config_values: list[tuple[Any, str, Any]]
    layer_idx: list[tuple[nn.Module, int]]
    layer_weights: tuple[nn.Module, torch.nn.Parameter] | None


def _owner_configs(model: nn.Module, path: str, rule: _Rule | None) -> list[Any]:
    """The distinct config objects, on the stack's ancestors, that hold its layer count."""
    found: dict[int, Any] = {}
    parts = path.split(".")
    module = model
    ancestors = [model]
    for part in parts[:-1]:
        module = getattr(module, part)
        ancestors.append(module)
    for ancestor in ancestors:
        config = getattr(ancestor, "config", None)
        if config is None:
            continue
        if rule is not None and rule.sub_config and hasattr(config, rule.sub_config):
            config = getattr(config, rule.sub_config)
        keys = rule.count_keys if rule is not None else _COUNT_KEYS
        if any(key in vars(config) for key in keys):
            found.setdefault(id(config), config)
    return list(found.values())


def find_layer_stacks(model: nn.Module) -> dict[str, LayerStack]:
    """The named layer stacks of ``model`` (see the module docstring for the names)."""
    stacks: dict[str, LayerStack] = {}
    for path, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or not path.endswith("layers"):
            continue
        for rule in _RULES:
            if path in rule.exact or any(
                path == s or path.endswith("." + s) for s in rule.suffixes
            ):
                if rule.name in stacks:
                    break
                configs = _owner_configs(model, path, rule)
                stacks[rule.name] = LayerStack(rule.name, path, module, configs, rule.count_keys)
                break
    return stacks


def _resolve_path(model: nn.Module, path: str) -> LayerStack:
    module: Any = model
    for part in path.split("."):
        if not hasattr(module, part):
            raise PruningError(f"{type(model).__name__} has no attribute path {path!r}")
        module = getattr(module, part)
    if not isinstance(module, nn.ModuleList):
        raise PruningError(f"{path!r} is a {type(module).__name__}, not an nn.ModuleList")
    n = len(module)
    configs = [
        c
        for c in _owner_configs(model, path, None)
        if any(vars(c).get(k) == n for k in _COUNT_KEYS)
    ]
    return LayerStack(path, path, module, configs, _COUNT_KEYS)


def get_layer_stack(model: nn.Module, stack: str | None = None) -> LayerStack:
    """The stack named ``stack`` (or reached by that dotted path); default: the main one.

    The default is the decoder where there is one (the paper prunes the LLM / text
    decoder), else the encoder.
    """
    stacks = find_layer_stacks(model)
    if stack is None:
        for name in ("decoder", "encoder"):
            if name in stacks:
                return stacks[name]
        if len(stacks) == 1:
            return next(iter(stacks.values()))
        raise PruningError(
            f"could not find a layer stack in {type(model).__name__}; pass stack= as a dotted "
            "path to its nn.ModuleList (e.g. 'model.layers')"
        )
    if stack in stacks:
        return stacks[stack]
    if "." in stack or hasattr(model, stack):
        return _resolve_path(model, stack)
    raise PruningError(
        f"{type(model).__name__} has no {stack!r} stack; it has {sorted(stacks) or 'none'} "
        "(or pass a dotted path to an nn.ModuleList)"
    )


def _normalise(indices: Sequence[int], n: int) -> list[int]:
    out = []
    for index in indices:
        if not -n <= index < n:
            raise PruningError(f"layer index {index} is outside the stack's {n} layers")
        out.append(index % n)
    if len(set(out)) != len(out):
        raise PruningError(f"layer indices repeat: {list(indices)}")
    if len(out) >= n:
        raise PruningError(f"cannot remove all {n} layers of a stack")
    return sorted(out)


def _weighted_layer_sum(model: nn.Module, stack: LayerStack) -> nn.Module | None:
    """The module holding ``layer_weights`` (one per layer + embeddings) for this stack."""
    if stack.name != "encoder":
        return None
    for module in model.modules():
        weights = getattr(module, "layer_weights", None)
        if isinstance(weights, nn.Parameter) and weights.numel() == stack.num_layers + 1:
            return module
    return None


def remove_layers(
    model: nn.Module, indices: Sequence[int], stack: str | None = None
) -> RemovalRecord:
    """Remove the layers at ``indices`` (current positions) of a stack, in place.

    Returns a record that :func:`restore_layers` uses to put them back.
    """
    target = get_layer_stack(model, stack)
    n = target.num_layers
    removed = _normalise(indices, n)
    kept = [i for i in range(n) if i not in removed]
    old_layers = list(target.modules)

    config_values: list[tuple[Any, str, Any]] = []
    for config in target.configs:
        for key in target.count_keys:
            # Only keys that count this stack (Whisper keeps num_hidden_layers = encoder_layers).
            if vars(config).get(key) == n:
                config_values.append((config, key, getattr(config, key)))
                setattr(config, key, len(kept))
        for key in _PER_LAYER_LISTS:
            value = vars(config).get(key)
            if isinstance(value, list) and len(value) == n:
                config_values.append((config, key, value))
                setattr(config, key, [value[i] for i in kept])
        window = vars(config).get("max_window_layers")
        if isinstance(window, int) and window < n:
            # Qwen2: layers at index >= max_window_layers use sliding attention.
            config_values.append((config, "max_window_layers", window))
            config.max_window_layers = sum(1 for i in kept if i < window)

    layer_weights = None
    owner = _weighted_layer_sum(model, target)
    if owner is not None:
        old = owner.layer_weights
        layer_weights = (owner, old)
        rows = [0] + [i + 1 for i in kept]
        owner.layer_weights = nn.Parameter(old.detach()[rows].clone(), old.requires_grad)

    # Replace the contents of the same ModuleList so references to it stay valid.
    for i in range(n - 1, -1, -1):
        del target.modules[i]
    for i in kept:
        target.modules.append(old_layers[i])

    layer_idx: list[tuple[nn.Module, int]] = []
    for position, layer in enumerate(target.modules):
        for sub in layer.modules():
            value = getattr(sub, "layer_idx", None)
            if isinstance(value, int) and not isinstance(value, bool):
                layer_idx.append((sub, value))
                sub.layer_idx = position
    return RemovalRecord(target, old_layers, removed, config_values, layer_idx, layer_weights)


def restore_layers(model: nn.Module, record: RemovalRecord) -> None:
    """Undo :func:`remove_layers`: the same modules, configs and layer numbering as before."""
    modules = record.stack.modules
    for i in range(len(modules) - 1, -1, -1):
        del modules[i]
    for layer in record.layers:
        modules.append(layer)
    for config, key, value in reversed(record.config_values):
        setattr(config, key, value)
    for sub, value in record.layer_idx:
        sub.layer_idx = value
    if record.layer_weights is not None:
        owner, weights = record.layer_weights
        owner.layer_weights = weights


@contextlib.contextmanager
def layers_removed(
    model: nn.Module, indices: Sequence[int], stack: str | None = None
) -> Iterator[RemovalRecord]:
    """Remove layers for the duration of a ``with`` block, then put them back."""
    record = remove_layers(model, indices, stack)
    try:
        yield record
    finally:
        restore_layers(model, record)


__all__ = [
    "LayerStack",
    "RemovalRecord",
    "find_layer_stacks",
    "get_layer_stack",
    "layers_removed",
    "remove_layers",
    "restore_layers",
]
