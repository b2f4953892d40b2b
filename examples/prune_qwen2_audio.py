"""Prune a fine-tuned Qwen2-Audio's LLM decoder and recover it: the IWSLT 2025 recipe, step by step.

Moslem (IWSLT 2025): remove, one at a time, the LLM layer whose removal costs least
chrF++ on 100 dev segments (never the first or the last layer; 32 -> 24 layers),
then add the unpruned model's own translations of the training audio to the
references (sequence-level KD), fine-tune the pruned model with QLoRA (NF4 + double
quantization, LoRA r=64, alpha=128, rsLoRA, no dropout, every linear layer; lr 1e-5
cosine, batch 4, 3 epochs) and merge the adapters into a plain checkpoint.
``hf-quads prune trainers/iwslt25-qwen2audio-ende.yaml`` runs the same from a recipe file.

The data is a CoVoST-2 layout (``covost_v2.en_de.{train,dev,test}.tsv`` + ``clips/``,
see ``hf_quads.data.load_covost``). The 7B model needs a GPU (about 2 x 16 GB in bf16
while pruning: the teacher stays whole for the sequence-KD step) and bitsandbytes.

    python examples/prune_qwen2_audio.py --model ./qwen2audio-7b-instruct-acl6060-ende \\
        --data_root ./data/acl6060-ende --output_dir outputs/qwen2audio-ende-24l
    # English -> Chinese: --target_lang zh --metric chrf

Writes ``pruning_report.json`` + ``pruning_plot.png``, ``pruned/`` and ``recovered/``
into ``--output_dir`` and prints chrF++ on the test split before and after pruning
and after recovery.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from hf_quads.audio_llm import AudioLLMTranslator, translation_instruction
from hf_quads.data import load_covost, subset
from hf_quads.prune import GenerationScorer, LayerPruner, get_layer_stack
from hf_quads.recipes.prune_recover import load_teacher, training_set
from hf_quads.recover import build_sequence_kd_dataset, merge_qlora, prepare_qlora


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # fmt: off
    parser.add_argument("--model", required=True,
                        help="a fine-tuned Qwen2-Audio-7B-Instruct (the teacher): path or Hub id")
    parser.add_argument("--data_root", required=True, help="a CoVoST-2-layout corpus")
    parser.add_argument("--source_lang", default="en")
    parser.add_argument("--target_lang", default="de")
    parser.add_argument("--num_layers_to_remove", type=int, default=8)
    parser.add_argument("--dev_samples", type=int, default=100, help="dev rows scored per candidate")
    parser.add_argument("--metric", default="chrf++", choices=["chrf++", "chrf", "bleu"],
                        help="chrf++ (the paper for German); chrf for Chinese")
    parser.add_argument("--output_dir", default="outputs/qwen2audio-pruned")
    parser.add_argument("--lora_r", type=int, default=64, help="LoRA rank; alpha is 2 x r")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--learning_rate", type=float, default=1e-5)
    parser.add_argument("--batch_size", type=int, default=4, help="training and generation batch")
    parser.add_argument("--max_new_tokens", type=int, default=256)
    parser.add_argument("--train_samples", type=int, default=None, help="default: all of train")
    parser.add_argument("--eval_samples", type=int, default=None, help="default: all of test")
    parser.add_argument("--max_seconds", type=float, default=None, help="cut clips to this length")
    # fmt: on
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    out = Path(args.output_dir)
    torch.manual_seed(0)

    # 1. Data, the fine-tuned model (on the GPU in its saved dtype) and its processor.
    data = load_covost(args.data_root, source_lang=args.source_lang, target_lang=args.target_lang)
    train = subset(data["train"], args.train_samples)
    dev = subset(data["validation"], args.dev_samples)
    test = subset(data["test"], args.eval_samples)
    teacher, processor = load_teacher(args.model)  # Qwen2AudioForConditionalGeneration

    # 2. Prompts: the audio, then "Translate the English speech into German.", greedy decoding.
    translator = AudioLLMTranslator(
        processor,
        translation_instruction(args.source_lang, args.target_lang),
        max_seconds=args.max_seconds,
        generation_kwargs={"max_new_tokens": args.max_new_tokens},
    )
    hooks = {"inputs_fn": translator.inputs, "generate_fn": translator.generate}
    scorer = GenerationScorer(test, processor, args.metric, batch_size=args.batch_size, **hooks)
    scores = {"teacher": scorer(teacher)}

    # 3. Iterative pruning of the LLM decoder on the dev rows; the audio encoder stays whole.
    student = copy.deepcopy(teacher)
    result = LayerPruner(
        student, processor, dev, metric=args.metric, stack="decoder", protect=[0, -1],
        num_layers_to_remove=args.num_layers_to_remove, batch_size=args.batch_size, **hooks,
    ).prune()  # fmt: skip
    result.save_report(out)  # pruning_report.json + pruning_plot.png
    student.save_pretrained(out / "pruned")
    processor.save_pretrained(out / "pruned")
    scores["pruned"] = scorer(student)

    # 4. Sequence-level KD: the unpruned model's translations join the references.
    train = build_sequence_kd_dataset(
        teacher, train, processor, batch_size=args.batch_size, **hooks
    )
    # Prompted training rows (loss on the translation tokens only) and their collator.
    rows, collator = training_set(train, processor, translator, student)
    # The QLoRA model is loaded from out/pruned: free the memory first (result.model is student).
    del student, teacher
    result.model = None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    # 5. QLoRA on the pruned model (NF4, double quantization, bf16 compute), then merge.
    model = prepare_qlora(
        out / "pruned", r=args.lora_r, alpha=2 * args.lora_r, use_rslora=True, dropout=0.0
    )
    training_args = TrainingArguments(
        output_dir=str(out / "recover-run"), learning_rate=args.learning_rate,
        lr_scheduler_type="cosine", per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs, logging_steps=25, save_strategy="no", report_to=[],
        remove_unused_columns=False, label_names=["labels"], seed=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )  # fmt: skip
    Trainer(model=model, args=training_args, train_dataset=rows, data_collator=collator).train()
    # merge_qlora reloads the full-precision pruned weights (on the CPU) and folds LoRA in.
    on_gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if on_gpu else None
    recovered = merge_qlora(model, out / "recovered", processor=processor, dtype=dtype)
    del model
    scores["recovered"] = scorer(recovered.to("cuda") if on_gpu else recovered)

    layers = result.num_layers_before, get_layer_stack(recovered, "decoder").num_layers
    kd_rows = {origin: train["origin"].count(origin) for origin in ("reference", "teacher")}
    print(json.dumps({"removed_layers": result.removal_order, "llm_layers": layers,
                      "sequence_kd_rows": kd_rows, args.metric: scores,
                      "recovered_model": str(out / "recovered")}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
