"""``hf-quads train RECIPE.yaml [--key value ...]``: run a recipe from ``trainers/``."""

from __future__ import annotations

from dataclasses import dataclass, field

HELP = "run a recipe YAML (QUADS training, the demo, or pruning) with --key value overrides"

DESCRIPTION = """\
Run the recipe's `task`:

  quads  DistillQuantTrainer on FSC or SLURP (trainers/quads-fsc.yaml,
         quads-slurp.yaml): the keys are the fields of QuadsModelArguments,
         QuadsDataArguments and DistillQuantConfig (every TrainingArguments field);
  demo   the speech-commands demo (trainers/demo-speech-commands.yaml, as `hf-quads demo`);
  prune  layer pruning + QLoRA + KD (trainers/iwslt25-*.yaml, as `hf-quads prune`).

Options after the recipe override its keys: `--bits 2 --learning_rate 1e-3`
(quads, demo) or `--prune.num_layers_to_remove 4` (prune: dotted section keys).
An unknown key, a value of the wrong type or a missing local path is an error
that names the key and the file. `--fields` lists the keys of the recipe's task.
"""

POSITIONAL = ("recipe",)
OVERRIDES = True


@dataclass
class Arguments:
    """Options of ``hf-quads train`` (the recipe's own keys follow as overrides)."""

    recipe: str = field(metadata={"help": "recipe YAML file (see trainers/)"})
    fields: bool = field(
        default=False, metadata={"help": "print the keys this recipe's task accepts and exit"}
    )


def run(args: Arguments, overrides: list[str]) -> int:
    """Parse the recipe with its overrides and run its task."""
    from ..recipes.loading import RecipeError, parse_recipe, recipe_task

    task = recipe_task(args.recipe)
    if task == "prune":
        from .prune import run_recipe

        return run_recipe(args.recipe, overrides)
    if task == "quads":
        from .. import DistillQuantConfig
        from ..recipes.quads import QuadsDataArguments, QuadsModelArguments, run_quads

        types: tuple[type, ...] = (QuadsModelArguments, QuadsDataArguments, DistillQuantConfig)
        runner = run_quads
    elif task == "demo":
        from ..recipes.demo import DemoArguments, run_demo

        types, runner = (DemoArguments,), run_demo
    else:
        raise RecipeError(f"{args.recipe}: task: unknown task {task!r} (quads, demo or prune)")
    if args.fields:
        from transformers import HfArgumentParser

        print(HfArgumentParser(list(types), prog=f"{task} recipe keys").format_help())
        return 0
    runner(*parse_recipe(args.recipe, types, overrides))
    return 0
