"""What choosing layers to prune costs: the naive loop vs prefix reuse vs one-pass proxies.

One run, one tiny but deep Whisper encoder classifier (24 layers by default), one
dev set, four ways to choose the layers to remove:

* ``exact``  - the paper's loop: every candidate scored on the whole model;
* ``prefix`` - the same loop reusing the recorded outputs of the layers below each
  candidate (must choose exactly the same layers);
* ``block_influence`` / ``angular_distance`` - one pass over the dev set, no metric.

Counted per mode: wall time and layer forwards (hooks on every layer). For the
proxies the ranking pass is reported apart from the metric evaluations that the
pruner runs afterwards for its report. Goals: prefix <= 0.6x the naive layer
forwards with an identical selection; proxy ranking >= 10x cheaper than naive.
Run: ``python benchmarks/pruning_cost.py`` (writes benchmarks/results/pruning_cost.json).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import machine_info, write_result

from hf_quads.data import FSC_INTENTS
from hf_quads.models import whisper_classifier
from hf_quads.prune import (
    LayerPruner,
    angular_distance,
    block_influence,
    capture_layer_io,
    get_layer_stack,
)
from hf_quads.prune.importance import ClassificationScorer

RESULTS = Path(__file__).resolve().parent / "results" / "pruning_cost.json"


def build_model(layers: int, d_model: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return whisper_classifier(FSC_INTENTS, d_model=d_model, encoder_layers=layers, seconds=3.0)


def dev_set(n: int, seed: int):
    import datasets

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(FSC_INTENTS), n)
    feats = rng.normal(0, 1, (n, 80, 300)).astype(np.float32)
    feats[np.arange(n), labels % 80, :] += 3.0
    return datasets.Dataset.from_dict({"input_features": feats, "labels": labels.tolist()})


class LayerCounter:
    """Counts forward calls of every layer of a stack (the layers, not stand-ins)."""

    def __init__(self, layers: torch.nn.ModuleList) -> None:
        self.count = 0
        self._handles = [layer.register_forward_hook(self._hook) for layer in layers]

    def _hook(self, *_: object) -> None:
        self.count += 1

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def run_pruner(args: argparse.Namespace, data, mode: str) -> dict:
    model = build_model(args.layers, args.d_model, args.seed).eval()
    counter = LayerCounter(get_layer_stack(model, "encoder").modules)
    pruner = LayerPruner(model, None, data, metric=args.metric, stack="encoder", mode=mode,
                         num_layers_to_remove=args.remove, batch_size=args.batch,
                         progress=False)  # fmt: skip
    start = time.perf_counter()
    result = pruner.prune()
    wall = time.perf_counter() - start
    counter.close()
    return {
        "selected": result.removal_order,
        "wall_s": round(wall, 3),
        "layer_forwards": counter.count,
        "score_before": result.baseline_score,
        "score_after": result.scores[-1] if result.scores else None,
    }


def proxy_ranking(args: argparse.Namespace, data, mode: str) -> dict:
    """The ranking pass alone: capture hidden states once, compute the proxy."""
    model = build_model(args.layers, args.d_model, args.seed).eval()
    layers = get_layer_stack(model, "encoder").modules
    batches = ClassificationScorer(data, metric=args.metric, batch_size=args.batch).batches()
    counter = LayerCounter(layers)
    start = time.perf_counter()
    inputs, outputs = capture_layer_io(model, layers, batches)
    if mode == "block_influence":
        block_influence(inputs, outputs)
    else:
        angular_distance(inputs, outputs, args.remove)
    wall = time.perf_counter() - start
    counter.close()
    return {"wall_s": round(wall, 4), "layer_forwards": counter.count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--d_model", type=int, default=32)
    parser.add_argument("--remove", type=int, default=4)
    parser.add_argument("--dev", type=int, default=32, help="dev-set size")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--metric", default="cross_entropy", choices=["cross_entropy", "accuracy"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = dev_set(args.dev, args.seed)

    modes = {mode: run_pruner(args, data, mode) for mode in ("exact", "prefix")}
    for mode in ("block_influence", "angular_distance"):
        modes[mode] = run_pruner(args, data, mode)
        modes[mode]["ranking"] = proxy_ranking(args, data, mode)
    exact, prefix = modes["exact"], modes["prefix"]
    ratios = {
        "prefix_vs_exact_layer_forwards": round(
            prefix["layer_forwards"] / exact["layer_forwards"], 3
        ),
        "prefix_vs_exact_wall": round(prefix["wall_s"] / exact["wall_s"], 3),
    }
    for mode in ("block_influence", "angular_distance"):
        ranking = modes[mode]["ranking"]
        ratios[f"exact_vs_{mode}_ranking_layer_forwards"] = round(
            exact["layer_forwards"] / ranking["layer_forwards"], 1
        )
        ratios[f"exact_vs_{mode}_ranking_wall"] = round(exact["wall_s"] / ranking["wall_s"], 1)
    result = {
        "benchmark": "pruning_cost",
        "setup": {
            "model": f"Whisper encoder classifier, {args.layers} layers, d_model {args.d_model}",
            "dev_examples": args.dev,
            "layers_to_remove": args.remove,
            "protect": [0, -1],
            "metric": args.metric,
            "threads": args.threads,
        },
        "modes": modes,
        "prefix_selects_same_layers_as_exact": prefix["selected"] == exact["selected"],
        "ratios": ratios,
        "goals": {
            "prefix <= 0.6x exact layer forwards, same selection": (
                ratios["prefix_vs_exact_layer_forwards"] <= 0.6
                and prefix["selected"] == exact["selected"]
            ),
            "proxy ranking >= 10x cheaper than exact (layer forwards and wall time)": all(
                ratios[f"exact_vs_{m}_ranking_{k}"] >= 10
                for m in ("block_influence", "angular_distance")
                for k in ("layer_forwards", "wall")
            ),
        },
        "machine": machine_info(),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
