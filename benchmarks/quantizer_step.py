"""Benchmark the k-means quantizer on the 2-D weights of a Whisper-base encoder.

Two measurements, each on one weight of every distinct 2-D shape (counts give the
per-model totals), all in one run:

1. **Centroid update + snap** after an optimizer step, at 8, 4 and 2 bits:
   hf-quads' ``update_`` path (float64 ``scatter_add`` centroid means, one
   gather to snap) against the QUADS reference algorithm, written here as the
   baseline: ``for k: centroid[k] = w[labels == k].mean(); w = centroid[labels]``
   with int64 labels, as the reference holds them.
2. **Initial codebook fit**: hf-quads' 1-D k-means (``kmeans_fit``) against
   ``fast_pytorch_kmeans.KMeans(n_clusters=2**b, mode='euclidean')``,
   ``fit_predict(w.view(-1, 1))`` as the QUADS reference calls it: time and total
   within-cluster squared error.

Weights come from a randomly initialised ``WhisperEncoder`` built from
``WhisperConfig`` (d_model 512, 6 layers, ffn 2048; no download). Times are
medians of a few repeats. Writes ``benchmarks/results/quantizer_step.json`` and
prints it. Usage::

    python benchmarks/quantizer_step.py [--bits 8 4 2] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hf_quads.quant.kmeans import kmeans_fit, within_cluster_sse
from hf_quads.quant.modules import make_qat

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "quantizer_step.json"
FPK_INSTALL = "pip install fast-pytorch-kmeans==0.2.2 --no-deps"
GOALS = {"update_speedup": {8: 40.0, 4: 5.0}, "fit_speedup": {8: 10.0, 4: 10.0}}


def whisper_base_weights(seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Every 2-D parameter of a randomly initialised Whisper-base encoder."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(seed)
    config = WhisperConfig(
        d_model=512,
        encoder_layers=6,
        encoder_attention_heads=8,
        encoder_ffn_dim=2048,
        num_mel_bins=80,
    )
    encoder = WhisperEncoder(config).eval()
    return [(n, p.detach().clone()) for n, p in encoder.named_parameters() if p.dim() == 2]


def median_time(
    fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None
) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs (``setup`` runs untimed before each)."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reference_update(weight: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor) -> None:
    """The QUADS reference: a Python loop over clusters, then a snap (in place)."""
    flat = weight.view(-1)
    for k in range(centroids.numel()):
        centroids[k] = flat[labels == k].mean()
    flat.copy_(centroids[labels])


def time_update(weight: torch.Tensor, bits: int, repeats: int, baseline_repeats: int) -> dict:
    """One centroid update + snap: hf-quads vs the reference, from the same state."""
    codebook, labels = kmeans_fit(weight.reshape(1, -1), 2**bits)
    moved = weight + 1e-3 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(1))

    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    make_qat(layer, method="kmeans", bits=bits, group_size=None, options={"snap": True})
    layer.codebook.copy_(codebook)
    layer.labels.copy_(labels.view(weight.shape))

    def reset_ours() -> None:
        with torch.no_grad():
            layer.weight.copy_(moved)
            layer.codebook.copy_(codebook)

    ref_weight = moved.clone()
    ref_labels = labels.view(-1).long()
    ref_centroids = codebook[0].clone()

    def reset_reference() -> None:
        ref_weight.copy_(moved)
        ref_centroids.copy_(codebook[0])

    reset_ours()
    layer.hfq_update()  # warm-up
    reset_reference()
    reference_update(ref_weight, ref_labels, ref_centroids)
    ours_s = median_time(layer.hfq_update, repeats, reset_ours)
    baseline_s = median_time(
        lambda: reference_update(ref_weight, ref_labels, ref_centroids),
        baseline_repeats,
        reset_reference,
    )
    diff = float((layer.weight.detach() - ref_weight).abs().max())
    return {"ours_s": ours_s, "baseline_s": baseline_s, "max_abs_diff": diff}


def time_fit(weight: torch.Tensor, bits: int, repeats: int, fpk_repeats: int, kmeans_cls) -> dict:
    """Initial codebook fit: hf-quads vs fast_pytorch_kmeans (when installed)."""
    x = weight.reshape(1, -1)
    out: dict[str, Any] = {}
    result: dict[str, Any] = {}

    def ours() -> None:
        result["ours"] = kmeans_fit(x, 2**bits)

    ours()
    out["ours_s"] = median_time(ours, repeats)
    codebook, labels = result["ours"]
    out["ours_sse"] = within_cluster_sse(x, labels, codebook)
    if kmeans_cls is None:
        return out

    def reference() -> None:
        torch.manual_seed(0)  # its random initialisation
        km = kmeans_cls(n_clusters=2**bits, mode="euclidean")
        result["fpk"] = (km, km.fit_predict(weight.reshape(-1, 1)))

    out["fast_pytorch_kmeans_s"] = median_time(reference, fpk_repeats)
    km, fpk_labels = result["fpk"]
    out["fast_pytorch_kmeans_sse"] = within_cluster_sse(
        x, fpk_labels.view(1, -1), km.centroids.reshape(1, -1).to(x.dtype)
    )
    return out


def _total(rows: list[dict], key: str) -> float:
    return sum(r[key] * r["count"] for r in rows)


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    try:
        from fast_pytorch_kmeans import KMeans
    except ImportError:
        KMeans = None
        print(
            f"fast_pytorch_kmeans is not installed; the fit comparison is skipped ({FPK_INSTALL})"
        )

    weights = whisper_base_weights()
    shapes: dict[tuple[int, ...], dict[str, Any]] = {}
    for name, w in weights:
        entry = shapes.setdefault(tuple(w.shape), {"count": 0, "example": name, "weight": w})
        entry["count"] += 1
    load_before = os.getloadavg()
    results, fits = [], []
    for bits in args.bits:
        rows = []
        for shape, entry in shapes.items():
            row = {"shape": list(shape), "count": entry["count"], "example": entry["example"]}
            row.update(time_update(entry["weight"], bits, args.repeats, args.baseline_repeats))
            rows.append(row)
            print(f"update {bits}-bit {shape}: {row}", file=sys.stderr)
        ours_s, baseline_s = _total(rows, "ours_s"), _total(rows, "baseline_s")
        results.append(
            {
                "bits": bits,
                "ours_s": ours_s,
                "baseline_s": baseline_s,
                "speedup": baseline_s / ours_s,
                "max_abs_diff": max(r["max_abs_diff"] for r in rows),
                "per_shape": rows,
            }
        )
        if args.no_fit:
            continue
        rows = []
        for shape, entry in shapes.items():
            row = {"shape": list(shape), "count": entry["count"]}
            row.update(time_fit(entry["weight"], bits, args.repeats, args.fpk_repeats, KMeans))
            rows.append(row)
            print(f"fit {bits}-bit {shape}: {row}", file=sys.stderr)
        fit = {"bits": bits, "ours_s": _total(rows, "ours_s"), "ours_sse": _total(rows, "ours_sse")}
        if KMeans is not None:
            fpk_s = _total(rows, "fast_pytorch_kmeans_s")
            fit.update(
                {
                    "fast_pytorch_kmeans_s": fpk_s,
                    "fast_pytorch_kmeans_sse": _total(rows, "fast_pytorch_kmeans_sse"),
                    "speedup": fpk_s / fit["ours_s"],
                }
            )
        fit["per_shape"] = rows
        fits.append(fit)

    goals = {}
    for r in results:
        need = GOALS["update_speedup"].get(r["bits"])
        if need is not None:
            goals[f"update_speedup_{r['bits']}bit>={need:g}"] = r["speedup"] >= need
    for f in fits:
        need = GOALS["fit_speedup"].get(f["bits"])
        if need is not None and "speedup" in f:
            ok = f["speedup"] >= need and f["ours_sse"] < f["fast_pytorch_kmeans_sse"]
            goals[f"fit_speedup_{f['bits']}bit>={need:g}_and_lower_sse"] = ok
    return {
        "benchmark": "quantizer_step",
        "model": "Whisper-base encoder (WhisperConfig d_model=512, 6 layers, 8 heads, ffn 2048), "
        "random init; every 2-D parameter",
        "method": "one tensor of each distinct shape is timed; *_s totals weight each shape by "
        "its count; times are medians",
        "num_2d_tensors": len(weights),
        "num_2d_params": sum(w.numel() for _, w in weights),
        "shapes": [{"shape": list(s), "count": e["count"]} for s, e in shapes.items()],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "repeats": {
            "ours": args.repeats,
            "baseline": args.baseline_repeats,
            "fpk": args.fpk_repeats,
        },
        "results": results,
        "fit": {
            "available": KMeans is not None,
            "install": FPK_INSTALL,
            "reference_call": "KMeans(n_clusters=2**b, mode='euclidean').fit_predict(w.view(-1, 1))",
            "entries": fits,
        },
        "goals_met": goals,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 4, 2])
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the hf-quads timings")
    parser.add_argument("--baseline-repeats", type=int, default=3)
    parser.add_argument("--fpk-repeats", type=int, default=3, help="repeats of fast_pytorch_kmeans")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-fit", action="store_true", help="skip the codebook-fit comparison")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
