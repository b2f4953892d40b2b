"""Ready recipes behind the YAML files in ``trainers/``."""

from .prune_recover import PruneRecoverRecipe, RecipeError, run_prune_recover

__all__ = ["PruneRecoverRecipe", "RecipeError", "run_prune_recover"]
