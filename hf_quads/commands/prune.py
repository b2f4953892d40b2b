"""``hf-quads prune RECIPE.yaml``: iterative layer pruning, then QLoRA + KD recovery."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

HELP = "prune layers by a dev metric, then recover with QLoRA + sequence-level KD (a recipe YAML)"

DESCRIPTION = """\
Run a prune-and-recover recipe (see trainers/iwslt25-*.yaml): load or build the
teacher, remove the decoder layers whose removal hurts chrF++ least one at a time,
add the teacher's translations of the training audio to the references, fine-tune
the pruned model with QLoRA and merge the adapters.

Writes into the recipe's output_dir: pruning_report.json and pruning_plot.png,
prune_recover_report.json (the metric of the teacher, the pruned and the recovered
model on the evaluation split, sizes, timings), and the models in teacher/ (tiny
recipes), pruned/ and recovered/.

Options after the recipe override its keys, by section: `--prune.num_layers_to_remove 4
--recover.training.learning_rate 1e-4` (values are read as YAML).
"""

POSITIONAL = ("recipe",)
OVERRIDES = True


@dataclass
class Arguments:
    """Options of ``hf-quads prune``."""

    recipe: str = field(metadata={"help": "recipe YAML file (trainers/iwslt25-*.yaml)"})
    output_dir: str | None = field(
        default=None, metadata={"help": "write here instead of the recipe's output_dir"}
    )


def run(args: Arguments, overrides: list[str]) -> int:
    """Run the recipe (with ``--output_dir`` and the overrides)."""
    if args.output_dir is not None:
        overrides = [*overrides, "--output_dir", args.output_dir]
    return run_recipe(args.recipe, overrides)


def run_recipe(path: str, overrides: list[str]) -> int:
    """Run a prune recipe and print the scores before pruning, after pruning and after recovery."""
    from ..recipes import PruneRecoverRecipe, run_prune_recover
    from ..recipes.loading import apply_dotted_overrides, read_recipe

    raw = apply_dotted_overrides(read_recipe(path), overrides, f"command line overrides of {path}")
    recipe = PruneRecoverRecipe.from_dict(raw)
    report = run_prune_recover(recipe)
    metric = report["metric"]
    summary = {
        stage: {metric: round(report[stage][metric], 2), "layers": report[stage]["layers"]}
        for stage in ("teacher", "pruned", "recovered")
    }
    print(json.dumps({"removed_layers": report["removed_layers"], **summary}, indent=2))
    return 0
