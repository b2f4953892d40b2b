"""QUADS on Fluent Speech Commands: distil a Whisper teacher into a 4-bit Whisper-base student.

The QUADS paper's run (Biswas, Khan, Islam, Interspeech 2025), step by step: load the
real FSC corpus, log-mel features from the teacher's feature extractor, a new
31-intent head on the student's encoder, ``DistillQuantTrainer``, test metrics, and
the packed low-bit checkpoint with its model card (``hf-quads train
trainers/quads-fsc.yaml`` runs the same from a recipe file).

The paper's settings, used here: the ``quads`` schedule (distil on epochs 1-3 and
7-12, quantize with k-means codebooks on 4-6 and 13-20 of 20 epochs), 4 or 8 bits,
``L_dis = 0.5 * L1(mean-pooled encoder embeddings) + 0.5 * L_GT`` with no logit KD,
the teacher's wider embedding pooled to the student's width, learning rate 1e-4,
batch 16, a validation after every epoch. Teacher and student read the same
features: Whisper-large-v2 and Whisper-base read 80 mel bins (large-v3 reads 128).

    python examples/quads_fsc.py --fsc_root /data/fluent_speech_commands_dataset \\
        --teacher ./whisper-large-v2-fsc --output_dir outputs/quads-fsc-4bit

A smoke run: ``hf-quads demo --quick`` synthesises data/synth_fsc_quick and trains a
tiny teacher into outputs/demo/teacher; then a tiny student built from a config:

    python examples/quads_fsc.py --fsc_root data/synth_fsc_quick \\
        --teacher outputs/demo/teacher --student_config '{"d_model": 16, "encoder_layers": 2}' \\
        --max_train_samples 256 --max_steps 40 --output_dir outputs/quads-fsc-smoke
"""

from __future__ import annotations

import argparse
import json
import os

import torch
from transformers import AutoFeatureExtractor

from hf_quads import DistillQuantConfig, DistillQuantTrainer
from hf_quads.data import featurize, load_fsc, subset
from hf_quads.metrics import make_compute_metrics
from hf_quads.recipes.quads import QuadsModelArguments, build_student


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # fmt: off
    parser.add_argument("--fsc_root", required=True,
                        help="the fluent_speech_commands_dataset folder (data/*.csv + wavs/)")
    parser.add_argument("--teacher", required=True,
                        help="path or Hub id of a Whisper classifier fine-tuned on FSC")
    parser.add_argument("--student", default="openai/whisper-base",
                        help="checkpoint whose encoder gets a new 31-intent head")
    parser.add_argument("--student_config", type=json.loads, default=None,
                        help="JSON of hf_quads.models.whisper_config kwargs: build a small "
                        "student instead of loading --student")
    parser.add_argument("--bits", type=int, default=4, help="the paper reports 8 and 4")
    parser.add_argument("--epochs", type=float, default=20)
    parser.add_argument("--output_dir", default="outputs/quads-fsc-4bit")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--max_eval_samples", type=int, default=None)
    parser.add_argument("--max_steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", default=None,
                        help="push the compressed model and its card to this Hub repository")
    # fmt: on
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_flush_denormal(True)  # denormal floats slow AdamW tenfold on CPUs
    torch.manual_seed(0)  # the new head (or the config-built student) starts the same each run

    # 1. The corpus: label ids are positions in hf_quads.data.FSC_INTENTS (31 intents).
    data = load_fsc(args.fsc_root)
    labels = data["train"].features["label"].names

    # 2. Log-mel features, with the teacher's feature extractor (the student reads the same).
    #    Whisper's 30 s window is computed as batches are read, not cached (21 GB for FSC).
    extractor = AutoFeatureExtractor.from_pretrained(args.teacher)
    train = featurize(subset(data["train"], args.max_train_samples), extractor)
    dev = featurize(subset(data["validation"], args.max_eval_samples), extractor)
    test = featurize(subset(data["test"], args.max_eval_samples), extractor)

    # 3. The student: AutoModelForAudioClassification.from_pretrained(--student, 31 labels,
    #    ignore_mismatched_sizes=True), or a small Whisper classifier from --student_config.
    student = build_student(
        QuadsModelArguments(
            student_model_name_or_path=None if args.student_config else args.student,
            student_config=args.student_config,
        ),
        labels,
    )

    # 4. The paper's settings.
    config = DistillQuantConfig(
        output_dir=args.output_dir,
        schedule="quads", quant_method="kmeans", bits=args.bits,
        alpha=0.5, kd_weight=0.0, feature_loss="l1", feature_pooling="mean",
        feature_projection="pool", centroid_weight=1.0,
        learning_rate=1e-4, warmup_steps=500, weight_decay=0.0,
        per_device_train_batch_size=16, per_device_eval_batch_size=64,
        num_train_epochs=args.epochs, max_steps=args.max_steps or -1,
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=2, logging_steps=50,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        dataloader_pin_memory=torch.cuda.is_available(),
        hub_model_id=args.push_to_hub, report_to="none", seed=0,
    )  # fmt: skip

    # 5. Train: the teacher (loaded with the student's class) is frozen; its embeddings guide
    #    the distillation phases, k-means codebooks quantize the student in the quant phases.
    trainer = DistillQuantTrainer(
        model=student,
        teacher_model=args.teacher,
        args=config,
        train_dataset=train,
        eval_dataset=dev,
        processing_class=extractor,
        compute_metrics=make_compute_metrics("intent"),
    )
    trainer.train()

    # 6. Test, then save the packed low-bit checkpoint, its processor and its model card.
    metrics = trainer.evaluate(eval_dataset=test, metric_key_prefix="test")
    trainer.save_metrics("test", metrics)  # test_results.json: the card's results table
    trainer.save_model()
    if args.push_to_hub:
        trainer.push_to_hub()

    print(f"test accuracy {metrics['test_accuracy']:.4f}, macro-F1 {metrics['test_macro_f1']:.4f}")
    print(f"{args.bits}-bit student saved in {os.path.abspath(args.output_dir)}")
    print("load it with: import hf_quads; AutoModelForAudioClassification.from_pretrained(dir)")


if __name__ == "__main__":
    main()
