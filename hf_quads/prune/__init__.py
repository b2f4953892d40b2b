"""Layer pruning: find stacks, remove layers consistently, choose them by importance.

The IWSLT 2025 recipe: remove, one at a time, the layer whose removal hurts a dev
metric least (:class:`LayerPruner`), then recover with :mod:`hf_quads.recover`.
"""

from .importance import (
    ClassificationScorer,
    GenerationScorer,
    PruningError,
    TrainerScorer,
    angular_distance,
    block_influence,
    capture_layer_io,
    translation_score,
)
from .layers import (
    LayerStack,
    RemovalRecord,
    find_layer_stacks,
    get_layer_stack,
    layers_removed,
    remove_layers,
    restore_layers,
)
from .pruner import MODES, LayerPruner, PruningResult, plot_pruning

__all__ = [
    "MODES",
    "ClassificationScorer",
    "GenerationScorer",
    "LayerPruner",
    "LayerStack",
    "PruningError",
    "PruningResult",
    "RemovalRecord",
    "TrainerScorer",
    "angular_distance",
    "block_influence",
    "capture_layer_io",
    "find_layer_stacks",
    "get_layer_stack",
    "layers_removed",
    "plot_pruning",
    "remove_layers",
    "restore_layers",
    "translation_score",
]
