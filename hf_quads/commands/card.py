"""``hf-quads card MODEL_DIR``: render the model card of a saved checkpoint as README.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HELP = "write the model card (README.md) of a saved model: method, compression table, metadata"

DESCRIPTION = """\
Render hf-quads' model card for a saved model directory and write it as
MODEL_DIR/README.md (or --out). Parameters, size on disk and GMACs are measured
from the checkpoint; bits and codebook/uniform come from its quantization_config;
metrics from the Trainer's test_results.json / eval_results.json / all_results.json beside it.
--teacher_dir adds the teacher's row and the reduction factors. The YAML
metadata (base_model, base_model_relation, tags, model-index) is what the Hub
and huggingface_hub.ModelCard read.
"""

POSITIONAL = ("model_dir",)


@dataclass
class Arguments:
    """Options of ``hf-quads card``."""

    model_dir: str = field(metadata={"help": "saved model directory (config.json + weights)"})
    out: str | None = field(
        default=None, metadata={"help": "card path (default MODEL_DIR/README.md)"}
    )
    repo_id: str | None = field(
        default=None, metadata={"help": "repository the card names in its usage snippet"}
    )
    base_model: str | None = field(
        default=None, metadata={"help": "Hub id of the teacher / base model"}
    )
    teacher_dir: str | None = field(
        default=None, metadata={"help": "saved teacher directory: adds its row to the table"}
    )
    dataset: str | None = field(default=None, metadata={"help": "evaluation dataset name"})
    dataset_split: str | None = field(default=None, metadata={"help": "evaluation split"})
    onnx_quantization: str | None = field(
        default=None, metadata={"help": "the ONNX export shipped with it: fp32, int8 or int4"}
    )


def run(args: Arguments) -> int:
    """Render the card and write it."""
    from ..hub import render_card, spec_from_checkpoint

    spec = spec_from_checkpoint(
        args.model_dir,
        repo_id=args.repo_id,
        base_model=args.base_model,
        teacher_dir=args.teacher_dir,
        dataset=args.dataset,
        dataset_split=args.dataset_split,
        onnx_quantization=args.onnx_quantization,
    )
    out = Path(args.out) if args.out else Path(args.model_dir) / "README.md"
    render_card(spec).save(out)
    print(f"wrote {out}")
    return 0
