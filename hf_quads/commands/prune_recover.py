"""``hf-quads prune-recover RECIPE.yaml``: iterative layer pruning, then QLoRA + KD recovery."""

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
"""

POSITIONAL = ("recipe",)


@dataclass
class Arguments:
    """Options of ``hf-quads prune-recover``."""

    recipe: str = field(metadata={"help": "recipe YAML file (trainers/iwslt25-*.yaml)"})
    output_dir: str | None = field(
        default=None, metadata={"help": "write here instead of the recipe's output_dir"}
    )


def run(args: Arguments) -> int:
    """Run the recipe and print the scores before pruning, after pruning and after recovery."""
    from ..recipes import PruneRecoverRecipe, run_prune_recover

    recipe = PruneRecoverRecipe.from_yaml(args.recipe)
    if args.output_dir is not None:
        recipe.output_dir = args.output_dir
    report = run_prune_recover(recipe)
    metric = report["metric"]
    summary = {
        stage: {metric: round(report[stage][metric], 2), "layers": report[stage]["layers"]}
        for stage in ("teacher", "pruned", "recovered")
    }
    print(json.dumps({"removed_layers": report["removed_layers"], **summary}, indent=2))
    return 0
