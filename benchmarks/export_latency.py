"""Inference latency, size and agreement: PyTorch fp32 eager vs ONNX fp32 / int8 / int4, side by side.

One run, one model (by default the demo-sized student: a 4-bit k-means Whisper
classifier, d_model 64, 2 layers, 3 s window, saved packed; or --model_dir), the
same spoken inputs (espeak-ng sentences) for every runtime, at batch 1 and 8:

* ``pytorch_fp32`` - the dequantized model in eager PyTorch (``torch.no_grad``);
* ``onnx_fp32`` / ``onnx_int8`` / ``onnx_int4`` - ``hf_quads.export.export_onnx``
  outputs run by an ONNX Runtime ``InferenceSession`` with the same thread count.

Reported: median latency over repeats (after warm-up), size on disk, and argmax
agreement with PyTorch fp32 over all clips. Goal: int8 >= 2x faster than PyTorch
fp32 eager at batch 1 with agreement >= 99%.
Run: ``python benchmarks/export_latency.py`` (writes benchmarks/results/export_latency.json);
on the demo's trained 4-bit student and its test voices:
``python benchmarks/export_latency.py --model_dir outputs/demo/student-4bit
--fsc_root data/synth_fsc --clips 256``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import machine_info, write_result

from hf_quads.data import FSC_INTENTS, prepare_features
from hf_quads.export import export_onnx, load_dequantized, parity_audio
from hf_quads.models import whisper_classifier
from hf_quads.quant import QuantSpec, quantize_, save_quantized

RESULTS = Path(__file__).resolve().parent / "results" / "export_latency.json"


def demo_student(work: Path, seed: int, epochs: int) -> tuple[Path, list[str], list[int]]:
    """The demo-sized student trained briefly on synthetic commands, 4-bit, saved packed.

    Returns its directory, the test clips (speakers unseen in training) and labels. Trained,
    so its predictions have real margins: agreement on an untrained model's near-tied
    logits says little about an export.
    """
    from transformers import WhisperFeatureExtractor

    from hf_quads.data import load_fsc
    from hf_quads.data.synth import synthesize_fsc_corpus

    synthesize_fsc_corpus(
        work / "fsc", seed=seed, train_speakers=12, valid_speakers=1, test_speakers=3,
        phrasings_per_intent=2, progress=False,
    )  # fmt: skip
    data = load_fsc(work / "fsc")
    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=3)
    train = prepare_features(data["train"]["audio"], extractor, return_tensors="pt")
    features, labels = train["input_features"], torch.as_tensor(data["train"]["label"])
    torch.manual_seed(seed)
    model = whisper_classifier(FSC_INTENTS, d_model=64, encoder_layers=2, heads=4, seconds=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), 32):
            rows = order[start : start + 32]
            model(input_features=features[rows], labels=labels[rows]).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    quantize_(model, QuantSpec(bits=4), step="convert")
    out = work / "student"
    save_quantized(model, out)
    extractor.save_pretrained(out)
    return out, list(data["test"]["audio"]), list(data["test"]["label"])


def dir_bytes(path: Path, suffixes: tuple[str, ...]) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.suffix in suffixes)


def median_latency(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", type=Path, default=None, help="default: the demo student")
    parser.add_argument("--clips", type=int, default=64, help="--model_dir: spoken clips")
    parser.add_argument(
        "--fsc_root", type=Path, default=None,
        help="--model_dir: take --clips test clips (and their labels) from this FSC-layout root",
    )  # fmt: skip
    parser.add_argument("--epochs", type=int, default=30, help="training of the demo student")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import onnxruntime as ort
    from transformers import AutoFeatureExtractor

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    work = Path(tempfile.mkdtemp(prefix="hf-quads-bench-"))
    if args.model_dir is None:
        model_dir, clips, labels = demo_student(work, args.seed, args.epochs)
    elif args.fsc_root is not None:
        from hf_quads.data import load_fsc

        test = load_fsc(args.fsc_root, splits=("test",))["test"]
        test = test.shuffle(seed=args.seed).select(range(min(args.clips, len(test))))
        model_dir, clips, labels = args.model_dir, list(test["audio"]), list(test["label"])
    else:
        model_dir, clips, labels = args.model_dir, parity_audio(args.clips), None
    truth = torch.as_tensor(labels) if labels is not None else None

    def accuracy(predicted: torch.Tensor) -> float | None:
        return None if truth is None else float((predicted == truth).float().mean())

    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    features = prepare_features(clips, extractor, return_tensors="pt")["input_features"]
    model = load_dequantized(model_dir)
    with torch.no_grad():
        reference = model(input_features=features).logits.argmax(-1)

    runtimes: dict[str, dict] = {
        "pytorch_fp32": {
            "size_bytes": dir_bytes(model_dir, (".safetensors", ".bin")),
            "size_fp32_bytes": sum(p.numel() * 4 for p in model.parameters()),
        }
    }
    sessions = {}
    for quantization in (None, "int8", "int4"):
        name = f"onnx_{quantization or 'fp32'}"
        exported = export_onnx(model_dir, work / name, quantization, audio=clips[:8])
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(work / name / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        sessions[name] = session
        logits = session.run(None, {"input_features": features.numpy()})[0]
        runtimes[name] = {
            "size_bytes": exported.size_bytes,
            "agreement": float((torch.from_numpy(logits).argmax(-1) == reference).float().mean()),
            "accuracy": accuracy(torch.from_numpy(logits).argmax(-1)),
        }
    runtimes["pytorch_fp32"]["agreement"] = 1.0
    runtimes["pytorch_fp32"]["accuracy"] = accuracy(reference)

    for batch in (1, 8):
        x = features[:batch]
        x_np = x.numpy()

        def torch_forward(x=x) -> None:
            with torch.no_grad():
                model(input_features=x)

        runtimes["pytorch_fp32"][f"latency_ms_batch{batch}"] = round(
            1000 * median_latency(torch_forward, args.repeats, args.warmup), 3
        )
        for name, session in sessions.items():
            ms = 1000 * median_latency(
                lambda s=session, a=x_np: s.run(None, {"input_features": a}),
                args.repeats,
                args.warmup,
            )
            runtimes[name][f"latency_ms_batch{batch}"] = round(ms, 3)

    base = runtimes["pytorch_fp32"]
    speedups = {
        f"{name}_vs_pytorch_fp32_batch{b}": round(
            base[f"latency_ms_batch{b}"] / runtimes[name][f"latency_ms_batch{b}"], 2
        )
        for name in sessions
        for b in (1, 8)
    }
    result = {
        "benchmark": "export_latency",
        "setup": {
            "model": str(args.model_dir)
            if args.model_dir
            else (
                "demo-sized student: Whisper classifier d_model 64, 2 layers, 3 s window, "
                "4-bit k-means, trained briefly on 12 synthetic speakers"
            ),
            "clips": len(clips),
            "clips_from": str(args.fsc_root) if args.fsc_root else "spoken sentences (espeak-ng)",
            "repeats": args.repeats,
            "threads": args.threads,
        },
        "note": "agreement: argmax equal to PyTorch fp32 on the same clips; accuracy: "
        "against the intent labels of the test speakers (demo student only)",
        "runtimes": runtimes,
        "speedups": speedups,
        "goals": {
            "int8 >= 2x faster than PyTorch fp32 eager at batch 1, agreement >= 99%": (
                speedups["onnx_int8_vs_pytorch_fp32_batch1"] >= 2.0
                and runtimes["onnx_int8"]["agreement"] >= 0.99
            )
        },
        "machine": machine_info(onnxruntime=ort.__version__),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
