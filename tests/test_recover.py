"""Recovery: QLoRA on CPU then merge, sequence-level KD data, token-level KD of a pruned student."""

from __future__ import annotations

import copy

import datasets
import numpy as np
import pytest
import torch
from tiny_models import whisper_classifier

from hf_quads.models import train_bpe_tokenizer
from hf_quads.models import whisper_seq2seq as _whisper_seq2seq
from hf_quads.prune import remove_layers
from hf_quads.recover import (
    RecoveryError,
    build_sequence_kd_dataset,
    merge_qlora,
    merge_teacher_outputs,
    normalise_text,
    prepare_qlora,
)

bnb = pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes")

GEN = {"max_new_tokens": 6, "min_new_tokens": 3, "bad_words_ids": [[0], [1], [3]]}
SENTENCES = ["turn on the lights", "turn off the music", "bring me the newspaper"]


def features(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 80, 300)).astype("float32"))


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(SENTENCES * 4, vocab_size=300)


def whisper_seq2seq(tokenizer, seed: int = 0, **config):
    torch.manual_seed(seed)
    return _whisper_seq2seq(tokenizer, **{"encoder_layers": 2, **config})


def lora_weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def train_steps(model, batch: dict, steps: int = 3) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_qlora_step_on_cpu_then_merge_into_a_plain_checkpoint(tokenizer, tmp_path):
    base = whisper_seq2seq(tokenizer, d_model=64, decoder_layers=2)
    reference = copy.deepcopy(base)
    model = prepare_qlora(base, r=8, alpha=16)
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) > 0
    assert all(
        not m.support_avx512bf16_for_cpu
        for m in model.modules()
        if isinstance(m, bnb.nn.Linear4bit)
    )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)

    labels = torch.as_tensor([tokenizer(s)["input_ids"] for s in SENTENCES[:2]])
    batch = {"input_features": features(2), "labels": labels}
    model.eval()
    with torch.no_grad():
        model(**batch)  # the first no-grad forward is what used to break training on CPU
    before = lora_weights(model)
    losses = train_steps(model, batch)
    assert all(np.isfinite(losses))
    after = lora_weights(model)
    assert any(not torch.equal(before[n], after[n]) for n in before)

    merged = merge_qlora(model, tmp_path / "merged", processor=tokenizer)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in merged.modules())
    loaded = type(reference).from_pretrained(tmp_path / "merged").eval()
    assert (tmp_path / "merged" / "tokenizer.json").is_file()
    with torch.no_grad():
        merged_logits = merged(**batch).logits
        assert torch.allclose(loaded(**batch).logits, merged_logits, atol=1e-5)
        # The adapters changed the full-precision weights: the merge is not a no-op.
        assert not torch.allclose(reference.eval()(**batch).logits, merged_logits, atol=1e-4)


def test_merge_equals_the_unmerged_adapter_on_the_full_precision_base(tokenizer, tmp_path):
    from peft import PeftModel

    base_dir = tmp_path / "base"
    whisper_seq2seq(tokenizer, d_model=64).save_pretrained(base_dir)
    model = prepare_qlora(base_dir, r=4, alpha=8)
    labels = torch.as_tensor([tokenizer(SENTENCES[0])["input_ids"]])
    batch = {"input_features": features(1, seed=1), "labels": labels}
    train_steps(model, batch, steps=2)
    model.save_pretrained(tmp_path / "adapter")
    unmerged = PeftModel.from_pretrained(
        type(model.get_base_model()).from_pretrained(base_dir), tmp_path / "adapter"
    ).eval()
    merged = merge_qlora(model)
    with torch.no_grad():
        assert torch.allclose(merged(**batch).logits, unmerged(**batch).logits, atol=1e-5)


def test_merge_keeps_the_saved_dtype_of_the_base(tokenizer, tmp_path):
    base_dir = tmp_path / "base-bf16"
    whisper_seq2seq(tokenizer, d_model=64).to(torch.bfloat16).save_pretrained(base_dir)
    model = prepare_qlora(base_dir, r=4, alpha=8, compute_dtype=torch.float32)
    # A bf16 checkpoint merges in bf16 (half the memory of fp32 for a 7B model) ...
    assert next(merge_qlora(model).parameters()).dtype == torch.bfloat16
    # ... unless a dtype is asked for.
    merged = merge_qlora(model, dtype=torch.float32)
    assert next(merged.parameters()).dtype == torch.float32


def test_classifier_heads_stay_full_precision_and_are_trained(tmp_path):
    model = prepare_qlora(whisper_classifier(d_model=64, layers=2, seed=3), r=4, alpha=8)
    head = model.base_model.model.classifier
    assert not isinstance(getattr(head, "original_module", head), bnb.nn.Linear4bit)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("classifier" in n and "lora_" not in n for n in trainable)
    batch = {"input_features": features(4), "labels": torch.tensor([0, 1, 2, 3])}
    losses = train_steps(model, batch, steps=4)
    assert losses[-1] < losses[0]
    merged = merge_qlora(model, tmp_path / "merged")
    loaded = type(merged).from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**batch).logits, merged(**batch).logits, atol=1e-5)


def test_recovery_errors():
    with pytest.raises(RecoveryError, match="positive"):
        prepare_qlora(whisper_classifier(), r=0)
    with pytest.raises(RecoveryError, match="not made by prepare_qlora"):
        merge_qlora(torch.nn.Linear(2, 2))


# -- sequence-level KD ---------------------------------------------------------------------


def test_merge_teacher_outputs_deduplicates():
    refs = ["a b", "c", "d", "e"]
    hyps = [" a  b ", "", "x", "x"]
    # Same text as the reference, empty, new, new for another clip:
    assert merge_teacher_outputs(refs, hyps) == [2, 3]
    # Rows 2 and 3 are the same clip: its second identical translation is dropped.
    assert merge_teacher_outputs(refs, hyps, keys=["p", "q", "r", "r"]) == [2]
    assert normalise_text("  Licht \t an ") == "Licht an"
    with pytest.raises(ValueError, match="3 references but 2"):
        merge_teacher_outputs(["a", "b", "c"], ["a", "b"])


def test_build_sequence_kd_dataset_adds_the_teachers_new_translations(tokenizer):
    teacher = whisper_seq2seq(tokenizer, d_model=32, seed=4).eval()
    feats = features(4, seed=2).numpy()
    with torch.no_grad():
        ids = teacher.generate(input_features=torch.from_numpy(feats), **GEN)
    outputs = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    refs = [outputs[0], "Licht an", "Musik aus", "Zeitung bitte"]  # row 0: the teacher agrees
    data = datasets.Dataset.from_dict({
        "input_features": feats, "translation": refs, "audio": ["a.wav", "b.wav", "c.wav", "c.wav"]
    })  # fmt: skip
    kd = build_sequence_kd_dataset(
        teacher, data, tokenizer, batch_size=3, chunk_size=3,
        generation_kwargs=GEN, progress=False,
    )  # fmt: skip
    assert kd["origin"][:4] == ["reference"] * 4 and kd["translation"][:4] == refs
    teacher_rows = kd.filter(lambda r: r["origin"] == "teacher")
    expected = merge_teacher_outputs(refs, outputs, ["a.wav", "b.wav", "c.wav", "c.wav"])
    assert 0 not in expected and len(expected) >= 2
    assert teacher_rows["translation"] == [outputs[i] for i in expected]
    assert teacher_rows["audio"] == [data["audio"][i] for i in expected]
    np.testing.assert_array_equal(np.asarray(teacher_rows["input_features"]), feats[expected])
    pairs = list(zip(kd["audio"], map(normalise_text, kd["translation"]), strict=True))
    assert len(pairs) == len(set(pairs))


def test_token_level_kd_recovers_a_pruned_seq2seq_student(tokenizer, tmp_path):
    from hf_quads import DistillQuantConfig, DistillQuantTrainer

    teacher = whisper_seq2seq(tokenizer, d_model=32, decoder_layers=3, seed=5).eval()
    student = copy.deepcopy(teacher)
    remove_layers(student, [1], "decoder")
    labels = [tokenizer(s)["input_ids"] for s in SENTENCES]
    width = max(map(len, labels))
    labels = [ids + [-100] * (width - len(ids)) for ids in labels]
    data = datasets.Dataset.from_dict(
        {"input_features": features(3, seed=3).numpy(), "labels": labels}
    )
    args = DistillQuantConfig(
        output_dir=str(tmp_path), schedule="distill", alpha=1.0, kd_weight=1.0, max_steps=6,
        learning_rate=3e-4, per_device_train_batch_size=3, logging_steps=1, report_to=[],
        save_strategy="no", use_cpu=True, seed=0,
    )  # fmt: skip
    trainer = DistillQuantTrainer(
        model=student, teacher_model=teacher, args=args, train_dataset=data
    )
    trainer.train()
    kd = [log["loss_kd"] for log in trainer.state.log_history if "loss_kd" in log]
    assert len(kd) >= 5 and kd[-1] < kd[0]
    assert student.config.decoder_layers == 2
