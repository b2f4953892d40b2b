"""Which attribute of an unseen voice does a model fail on? Remove each in turn and score.

One speaker of a synthetic corpus (by default the demo's ``Alicia`` test voice) is
resynthesised from the corpus plan, same texts and seeds, with its espeak variant
file changed one way at a time: each attribute line dropped in turn (``-echo``,
``-breath``, ...), and the plain voice without any. A saved classifier is scored on
every version. ``original`` reproduces the corpus's own audio byte for byte (checked),
so its score is the model's score on that voice in the corpus.

    python benchmarks/voice_ablation.py outputs/demo/teacher --variant Alicia

This is how the voice effects of ``hf_quads.data.synth.voice_effects`` were aimed:
what the score comes back with when an attribute is removed is what the training
speakers lacked. It looks at one voice of the evaluation split, so use it to find
mechanisms and judge any change they suggest on the dev split.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from common import machine_info, write_result

RESULTS = Path(__file__).parent / "results" / "voice_ablation.json"
#: Lines of a variant file that name it rather than shape its sound.
_NAMING = ("language", "name")


def ablations(variant_text: str) -> dict[str, str]:
    """``{"original": text, "-<attribute>": text without those lines, ..., "plain": ...}``."""
    lines = [ln for ln in variant_text.splitlines() if ln.strip()]
    keys = list(dict.fromkeys(ln.split()[0] for ln in lines if ln.split()[0] not in _NAMING))
    out = {"original": variant_text}
    for key in keys:
        out[f"-{key}"] = "\n".join(ln for ln in lines if ln.split()[0] != key) + "\n"
    out["plain"] = "language variant\n"
    return out


def _repoint(row: dict[str, Any], audio: dict[str, str]) -> dict[str, str]:
    return {"audio": audio[Path(row["audio"]).name]}


def model_extractor(model_dir: str | Path, seconds: int) -> Any:
    """The feature extractor saved with the model (its window and silence trimming), or,
    for a folder without one, 80 log-mels over ``seconds``."""
    from transformers import AutoFeatureExtractor, WhisperFeatureExtractor

    if (Path(model_dir) / "preprocessor_config.json").is_file():
        return AutoFeatureExtractor.from_pretrained(model_dir)
    return WhisperFeatureExtractor(feature_size=80, chunk_length=seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", help="a saved audio classifier (e.g. outputs/demo/teacher)")
    parser.add_argument("--data_dir", default="data/synth_fsc", help="the synthetic FSC corpus")
    parser.add_argument("--variant", default="Alicia", help="espeak variant of the speaker")
    parser.add_argument("--split", default="test", choices=["validation", "test", "train"])
    parser.add_argument(
        "--seconds", type=int, default=3,
        help="the model's audio window, for a model saved without its feature extractor",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import numpy as np

    from hf_quads.data import TRIM_ATTRIBUTE, featurize, load_fsc
    from hf_quads.data.synth import plan_fsc_corpus
    from hf_quads.data.synth.corpus import MARKER_FILE
    from hf_quads.data.synth.espeak import espeak_paths, variant_overlay
    from hf_quads.data.synth.render import RenderJob, render_job
    from hf_quads.recipes.demo import predict_classifier

    root = Path(args.data_dir)
    try:
        marker = json.loads((root / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SystemExit(
            f"voice_ablation: {root} is not a synthetic corpus of hf-quads ({MARKER_FILE}: {err})"
        ) from err
    if marker.get("task") != "fsc" or not marker.get("complete"):
        raise SystemExit(f"voice_ablation: {root} is not a complete synthetic FSC corpus")
    config = marker["config"]
    if config.get("snr_db") is not None:
        raise SystemExit("voice_ablation: corpora with added noise are not supported")
    config = {k: v for k, v in config.items() if k != "snr_db"}
    plan = plan_fsc_corpus(**config)
    speaker = next(
        (s for s in plan.speakers[args.split] if s.variant == args.variant and not s.effects),
        None,
    )
    if speaker is None:
        raise SystemExit(f"voice_ablation: no {args.split} speaker speaks {args.variant!r}")
    planned = [u for u in plan.utterances if u.speaker.speaker_id == speaker.speaker_id]
    base = (Path(espeak_paths()[1]) / "voices" / "!v" / speaker.variant).read_text(
        encoding="utf-8", errors="replace"
    )
    versions = ablations(base)
    names = {version: f"hfq-ablation-{i}" for i, version in enumerate(versions)}
    split = load_fsc(root)[args.split]
    index = {Path(p).name: i for i, p in enumerate(split["audio"])}
    rows = split.select([index[Path(u.path).name] for u in planned])
    extractor = model_extractor(args.model_dir, args.seconds)
    scores: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hf-quads-ablation-") as tmp:
        data = variant_overlay(Path(tmp) / "data", {names[v]: t for v, t in versions.items()})
        for version in versions:
            folder = Path(tmp) / names[version]
            folder.mkdir()
            paths = [str(folder / Path(u.path).name) for u in planned]
            job = RenderJob(
                voice=f"{speaker.voice}+{names[version]}",
                rate=speaker.rate,
                pitch=speaker.pitch,
                pitch_range=speaker.pitch_range,
                items=tuple((p, u.text, u.seed) for p, u in zip(paths, planned, strict=True)),
                espeak_data=str(data),
            )
            render_job(job)
            if version == "original":
                for p, u in zip(paths, planned, strict=True):
                    if Path(p).read_bytes() != (root / u.path).read_bytes():
                        raise SystemExit(f"voice_ablation: {u.path} does not resynthesise the same")
            audio = dict(zip((Path(u.path).name for u in planned), paths, strict=True))
            version_rows = rows.map(_repoint, fn_kwargs={"audio": audio})
            features = featurize(version_rows, extractor, desc=version)
            predictions, labels = predict_classifier(args.model_dir, features)
            scores[version] = round(float(np.mean(np.array(predictions) == np.array(labels))), 4)
            print(f"{version:<16} {100 * scores[version]:5.1f} %", flush=True)
    result: dict[str, Any] = {
        "benchmark": "voice_ablation",
        "model_dir": args.model_dir,
        "data_dir": args.data_dir,
        "split": args.split,
        "speaker": {
            "speaker_id": speaker.speaker_id,
            "voice": speaker.voice,
            "variant": speaker.variant,
            "rate": speaker.rate,
            "pitch": speaker.pitch,
            "pitch_range": speaker.pitch_range,
            "utterances": len(planned),
        },
        "variant_file": base,
        "features": {
            "seconds": extractor.chunk_length,
            "trim_leading_silence": getattr(extractor, TRIM_ATTRIBUTE, None),
        },
        "accuracy": scores,
        "machine": machine_info(),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
