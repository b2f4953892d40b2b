"""``hf-quads push MODEL_DIR --repo_id NAME``: upload a compressed checkpoint, its card and ONNX."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

HELP = "push a saved compressed model (weights, card, ONNX export) to the Hugging Face Hub"

DESCRIPTION = """\
Upload a saved model directory to a Hub model repository in one commit, creating
the repository if needed: the (packed low-bit) weights, config and processor
files, the README.md model card, and the ONNX export (MODEL_DIR/onnx, or
--onnx_dir, uploaded as onnx/). A folder without README.md gets a card rendered
from the checkpoint (as `hf-quads card` does). Training leftovers (checkpoint-*,
runs/, hidden files) are skipped.

The token comes from --token, else HF_TOKEN or the cached `hf auth login`; it is
never printed. HF_ENDPOINT selects another Hub (a mirror, an enterprise Hub).
"""

POSITIONAL = ("model_dir",)


@dataclass
class Arguments:
    """Options of ``hf-quads push``."""

    model_dir: str = field(metadata={"help": "saved model directory (config.json + weights)"})
    repo_id: str = field(metadata={"help": "repository: NAME (your namespace) or NAMESPACE/NAME"})
    onnx_dir: str | None = field(
        default=None,
        metadata={
            "help": "an `hf-quads export` output to upload as onnx/ (default: MODEL_DIR/onnx)"
        },
    )
    private: bool | None = field(
        default=None, metadata={"help": "create the repository private (default: Hub default)"}
    )
    revision: str | None = field(default=None, metadata={"help": "branch to commit to"})
    commit_message: str = field(
        default="Upload compressed model with hf-quads", metadata={"help": "commit message"}
    )
    create_pr: bool = field(default=False, metadata={"help": "open a pull request instead"})
    token: str | None = field(
        default=None, metadata={"help": "write token (default: HF_TOKEN or the cached login)"}
    )


def run(args: Arguments) -> int:
    """Push, then print the commit URL and the uploaded files as JSON."""
    from ..hub import push_folder

    result = push_folder(
        args.model_dir,
        args.repo_id,
        token=args.token,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        create_pr=args.create_pr,
        onnx_dir=args.onnx_dir,
    )
    print(json.dumps(result.to_dict(), indent=2))
    return 0
