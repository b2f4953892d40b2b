"""Swap `Trainer` for `DistillQuantTrainer` in an existing fine-tuning script.

The script fine-tunes a small Whisper-style intent classifier the usual way (the
teacher), then trains a smaller student with QUADS: the only changes from the plain
script are the four lines marked ``# hf-quads``.

    hf-quads data synth --out data/synth_fsc          # or point --data at a real FSC root
    python examples/drop_in_trainer.py --data data/synth_fsc --out outputs/drop_in

On 2 CPU cores with the defaults below it takes a few minutes; raise --epochs and
--max_train_samples for accuracy that means something.
"""

from __future__ import annotations

import argparse

import torch
from transformers import (
    Trainer,
    TrainingArguments,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForAudioClassification,
)

from hf_quads import DistillQuantConfig, DistillQuantTrainer  # hf-quads
from hf_quads.data import FSC_INTENTS, feature_map_fn, load_fsc
from hf_quads.metrics import make_compute_metrics


def whisper_classifier(d_model: int, layers: int) -> WhisperForAudioClassification:
    config = WhisperConfig(
        d_model=d_model, encoder_layers=layers, encoder_attention_heads=4,
        encoder_ffn_dim=4 * d_model, decoder_layers=1, decoder_attention_heads=4,
        decoder_ffn_dim=4 * d_model, num_mel_bins=80, max_source_positions=150,
        classifier_proj_size=64, dropout=0.0, num_labels=len(FSC_INTENTS),
        id2label=dict(enumerate(FSC_INTENTS)),
        label2id={name: i for i, name in enumerate(FSC_INTENTS)},
    )  # fmt: skip
    return WhisperForAudioClassification(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FSC-layout root")
    parser.add_argument("--out", default="outputs/drop_in")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--max_train_samples", type=int, default=1500)
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # denormal floats slow AdamW tenfold on CPUs

    fe = WhisperFeatureExtractor(feature_size=80, chunk_length=3)  # a 3 s window
    data = load_fsc(args.data)
    data["train"] = (
        data["train"]
        .shuffle(seed=0)
        .select(range(min(args.max_train_samples, data["train"].num_rows)))
    )
    data = data.map(
        feature_map_fn(fe, max_seconds=3.0),
        batched=True,
        remove_columns=data["train"].column_names,
    )
    common = {
        "per_device_train_batch_size": 32, "per_device_eval_batch_size": 64,
        "learning_rate": 3e-3, "num_train_epochs": args.epochs, "lr_scheduler_type": "cosine",
        "eval_strategy": "epoch", "save_strategy": "no", "logging_steps": 20, "report_to": "none",
    }  # fmt: skip

    # 1. The existing script: fine-tune a model with the plain Trainer.
    teacher = whisper_classifier(d_model=96, layers=3)
    trainer = Trainer(
        model=teacher,
        args=TrainingArguments(output_dir=f"{args.out}/teacher", **common),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        compute_metrics=make_compute_metrics("intent"),
    )
    trainer.train()
    print("teacher:", trainer.evaluate(data["test"], metric_key_prefix="test"))

    # 2. The same script, compressed: a smaller student, distilled and quantized to 4 bits.
    student = whisper_classifier(d_model=64, layers=2)
    trainer = DistillQuantTrainer(  # hf-quads
        model=student,
        teacher_model=teacher,  # hf-quads
        args=DistillQuantConfig(output_dir=f"{args.out}/student", bits=4, **common),  # hf-quads
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        compute_metrics=make_compute_metrics("intent"),
        processing_class=fe,
    )
    trainer.train()
    print("4-bit student:", trainer.evaluate(data["test"], metric_key_prefix="test"))
    trainer.save_model()  # a packed 4-bit checkpoint; from_pretrained loads it after `import hf_quads`


if __name__ == "__main__":
    main()
