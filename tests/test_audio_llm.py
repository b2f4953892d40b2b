"""Audio LLMs (Qwen2-Audio): prompted inputs, generation, training rows, and the recipe run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_models import qwen2_audio_with_processor

from hf_quads.audio_llm import (
    AudioLLMCollator,
    AudioLLMTranslator,
    is_audio_llm,
    translation_instruction,
)
from hf_quads.data import IGNORE_INDEX

TEXTS = ["turn on the lights", "Mach das Licht an.", "Musik lauter, bitte."]


@pytest.fixture(scope="module")
def tiny():
    return qwen2_audio_with_processor(TEXTS * 4)


def waves(seconds: list[float]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(0, 0.1, int(s * 16_000)).astype(np.float32) for s in seconds]


def test_prompt_inputs_and_generation(tiny):
    model, processor = tiny
    assert is_audio_llm(model.config)
    assert translation_instruction("en", "zh") == "Translate the English speech into Chinese."
    translator = AudioLLMTranslator(
        processor, translation_instruction("en", "de"),
        generation_kwargs={"max_new_tokens": 5, "min_new_tokens": 5},
    )  # fmt: skip
    assert translator.prompt.endswith("<|im_start|>assistant\n")
    assert "<|AUDIO|>" in translator.prompt and "into German." in translator.prompt
    batch = translator.inputs({"audio": waves([1.0, 2.5])})
    assert set(batch) == {"input_ids", "attention_mask", "input_features", "feature_attention_mask"}
    audio_id = model.config.audio_token_id
    counts = (batch["input_ids"] == audio_id).sum(1).tolist()
    assert counts[0] < counts[1]  # one audio token per 40 ms of speech
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][0, -1] == 1  # left pad
    texts = translator.generate(model.eval(), batch)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    ids = model.generate(**batch, do_sample=False, max_new_tokens=5, min_new_tokens=5)
    expected = processor.tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1] :],
                                                skip_special_tokens=True)  # fmt: skip
    assert texts == expected


def test_training_rows_learn_only_the_translation(tiny):
    model, processor = tiny
    translator = AudioLLMTranslator(processor, "Translate the English speech into German.")
    rows = [
        translator.training_features(w, t)
        for w, t in zip(waves([1.0, 2.0]), TEXTS[1:], strict=True)
    ]
    tokenizer = processor.tokenizer
    for row, text in zip(rows, TEXTS[1:], strict=True):
        target = [t for t in row["labels"] if t != IGNORE_INDEX]
        assert tokenizer.decode(target, skip_special_tokens=True) == text
        assert target[-1] == tokenizer.eos_token_id
        assert row["input_ids"][-len(target) :] == target
    batch = AudioLLMCollator(tokenizer.pad_token_id)(rows)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    short = int(batch["attention_mask"][0].sum())
    assert (batch["labels"][0, short:] == IGNORE_INDEX).all()
    loss = model.train()(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_prune_recover_recipe_on_a_qwen2_audio_checkpoint(tiny, tmp_path):
    pytest.importorskip("bitsandbytes", reason="the recovery step trains with QLoRA")
    from transformers import Qwen2AudioForConditionalGeneration

    from hf_quads.recipes import PruneRecoverRecipe, run_prune_recover

    model, processor = tiny
    model.save_pretrained(tmp_path / "teacher")
    processor.save_pretrained(tmp_path / "teacher")
    recipe = PruneRecoverRecipe.from_dict({
        "model_name_or_path": str(tmp_path / "teacher"),
        "data": {
            "root": str(tmp_path / "st"), "dev_samples": 4, "eval_samples": 4, "max_seconds": 3,
            "synthesize": {"train_speakers": 1, "valid_speakers": 1, "test_speakers": 1,
                           "sentences_per_speaker": 8, "num_workers": 0, "progress": False},
        },
        "prune": {"stack": "decoder", "num_layers_to_remove": 1, "batch_size": 4,
                  "generation": {"max_new_tokens": 4}},
        "recover": {"qlora": {"r": 4, "alpha": 8},
                    "training": {"max_steps": 2, "per_device_train_batch_size": 4,
                                 "learning_rate": 1e-3, "disable_tqdm": True}},
        "output_dir": str(tmp_path / "out"),
    })  # fmt: skip
    report = run_prune_recover(recipe)
    assert report["removed_layers"] == [1]
    assert (report["teacher"]["layers"], report["recovered"]["layers"]) == (3, 2)
    assert json.loads((tmp_path / "out" / "pruning_report.json").read_text())["stack"] == "decoder"
    recovered = Qwen2AudioForConditionalGeneration.from_pretrained(tmp_path / "out" / "recovered")
    assert recovered.config.text_config.num_hidden_layers == 2
    assert recovered.config.audio_config.encoder_layers == 2  # the audio encoder stays whole
    assert report["sequence_kd"]["reference"] == 8
