"""DistillQuantTrainer end to end on tiny models: phases, losses, eval, save, reload, pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
import transformers
from tiny_models import (
    random_whisper_dataset,
    wav2vec2_classifier,
    wav2vec2_feature_extractor,
    whisper_classifier,
    whisper_config,
    whisper_feature_extractor,
    whisper_seq2seq,
)

import hf_quads
from hf_quads.config import DistillQuantConfig
from hf_quads.trainer import (
    PROJECTOR_ATTR,
    DistillQuantTrainer,
    TeacherStudentMismatchError,
)


def config(tmp_path, **kwargs) -> DistillQuantConfig:
    defaults = {
        "output_dir": str(tmp_path / "run"),
        "report_to": "none",
        "max_steps": 8,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 8,
        "learning_rate": 3e-3,
        "logging_steps": 2,
        "save_strategy": "no",
        "disable_tqdm": True,
        "use_cpu": True,
        "schedule": "distill:1,quant:1",
        "seed": 0,
    }
    defaults.update(kwargs)
    return DistillQuantConfig(**defaults)


def logged(trainer, key):
    return [h[key] for h in trainer.state.log_history if key in h]


def test_whisper_classifier_both_phases_save_reload_pipeline(tmp_path):
    data = random_whisper_dataset(48)
    teacher, student = whisper_classifier(d_model=48, seed=1), whisper_classifier(seed=2)
    fe = whisper_feature_extractor()
    trainer = DistillQuantTrainer(
        model=student,
        teacher_model=teacher,
        args=config(tmp_path),
        train_dataset=data,
        eval_dataset=data.select(range(16)),
        processing_class=fe,
    )
    # Widths differ (32 vs 48): a learned projection trains with the student.
    assert getattr(student, PROJECTOR_ATTR) is not None
    trainer.train()
    assert trainer._phase_switches == [(0, None, "distill"), (4, "distill", "quant")]
    assert logged(trainer, "quads_phase")[:1] == [0] and 1 in logged(trainer, "quads_phase")
    for term in ("loss_gt", "loss_kd", "loss_feature", "loss_dis", "loss_quant", "loss_centroid"):
        assert logged(trainer, term), f"{term} was not logged"
        assert all(np.isfinite(logged(trainer, term)))
    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_loss"])

    out = tmp_path / "saved"
    trainer.save_model(str(out))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization_config"]["quant_method"] == "hf_quads"
    assert cfg["quantization_config"]["bits"] == 4
    saved_keys = set()
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as f:
        saved_keys = set(f.keys())
    assert not any(PROJECTOR_ATTR in k for k in saved_keys)
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.base_model_relation == "quantized"
    assert {"hf-quads", "quantized", "4-bit", "kmeans", "distillation"} <= set(card.data.tags)
    assert card.data.model_name == "saved"
    assert "| teacher |" in card.text and "| **student (4-bit)** (this model) |" in card.text
    assert "80 log-mel bins over a 3 s window" in card.text  # from the processing_class

    x = torch.tensor(np.asarray(data[:4]["input_features"], dtype=np.float32))
    trainer.model.eval()
    with torch.no_grad():
        before = trainer.model(input_features=x).logits
    loaded = transformers.AutoModelForAudioClassification.from_pretrained(out).eval()
    with torch.no_grad():
        after = loaded(input_features=x).logits
    assert torch.equal(before, after)

    wav = tmp_path / "clip.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(16_000) / 10)).astype(np.float32), 16_000)
    classify = transformers.pipeline("audio-classification", model=str(out))
    # Decoded with soundfile: the pipeline's own file reading needs an ffmpeg binary.
    top = classify({"raw": hf_quads.load_audio(wav), "sampling_rate": 16_000}, top_k=3)
    assert len(top) == 3 and top[0]["label"] in student.config.label2id


def test_wav2vec2_classifier_with_attention_mask_uniform(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    n = 24
    labels = rng.integers(0, 31, n)
    values = rng.normal(0, 0.1, (n, 8_000)).astype(np.float32)
    mask = np.ones((n, 8_000), dtype=np.int64)
    mask[::2, 6_000:] = 0
    values[mask == 0] = 0
    data = datasets.Dataset.from_dict(
        {"input_values": values, "attention_mask": mask, "labels": labels.tolist()}
    )
    trainer = DistillQuantTrainer(
        model=wav2vec2_classifier(seed=2),
        teacher_model=wav2vec2_classifier(hidden=48, seed=1),
        args=config(tmp_path, quant_method="uniform", bits=4, schedule="distill:1,joint:1"),
        train_dataset=data,
        processing_class=wav2vec2_feature_extractor(),
    )
    trainer.train()
    assert all(np.isfinite(logged(trainer, "loss")))
    assert logged(trainer, "loss_feature") and logged(trainer, "loss_quant")
    assert np.isfinite(trainer.evaluate(data.select(range(8)))["eval_loss"])
    out = tmp_path / "w2v"
    trainer.save_model(str(out))
    classify = transformers.pipeline("audio-classification", model=str(out))
    top = classify({"raw": values[0], "sampling_rate": 16_000}, top_k=2)
    assert len(top) == 2 and top[0]["label"] in trainer.model.config.label2id
    loaded = transformers.AutoModelForAudioClassification.from_pretrained(out).eval()
    trainer.model.eval()
    x = {"input_values": torch.tensor(values[:3]), "attention_mask": torch.tensor(mask[:3])}
    with torch.no_grad():
        assert torch.equal(trainer.model(**x).logits, loaded(**x).logits)


def test_token_level_kd_on_whisper_seq2seq(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    n, length = 16, 6
    feats = rng.normal(0, 1, (n, 80, 300)).astype(np.float32)
    labels = rng.integers(3, 96, (n, length))
    labels[:, -2:][::2] = -100  # padding positions of shorter targets
    data = datasets.Dataset.from_dict({"input_features": feats, "labels": labels.tolist()})
    teacher = whisper_seq2seq(d_model=48, seed=1)
    trainer = DistillQuantTrainer(
        model=whisper_seq2seq(seed=2),
        teacher_model=teacher,
        args=config(tmp_path, schedule="distill:1,quant:1", alpha=0.0, max_steps=4),
        train_dataset=data,
    )
    trainer.train()
    kd = logged(trainer, "loss_kd")
    assert kd and all(np.isfinite(kd)) and all(v > 0 for v in kd)
    assert "loss_feature" not in {k for h in trainer.state.log_history for k in h}


def tiny_lm(seed: int, hidden: int) -> transformers.Qwen2ForCausalLM:
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(
        vocab_size=64, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
    )  # fmt: skip
    return transformers.Qwen2ForCausalLM(config)


def lm_dataset(n: int):
    import datasets

    ids = np.random.default_rng(0).integers(3, 64, (n, 10))
    labels = ids.copy()
    labels[:, :4] = -100  # the prompt part is not trained on
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist()})


def test_token_level_kd_on_a_causal_lm_shifts_labels(tmp_path):
    data = lm_dataset(8)
    student = tiny_lm(2, 32)
    trainer = DistillQuantTrainer(
        model=student,
        teacher_model=tiny_lm(1, 48),
        args=config(tmp_path, alpha=0.0, max_steps=4, quant_method="uniform"),
        train_dataset=data,
    )
    # The KD term must equal the loss on shifted logits over the labelled positions only.
    batch = {k: torch.tensor(data[:4][k]) for k in ("input_ids", "labels")}
    from hf_quads.distill import logit_kd_loss

    with torch.no_grad():
        s_logits = student(input_ids=batch["input_ids"]).logits
        t_logits = trainer.teacher(input_ids=batch["input_ids"]).logits
    expected = logit_kd_loss(s_logits[:, :-1], t_logits[:, :-1], 2.0, labels=batch["labels"][:, 1:])
    got = trainer._kd_term(s_logits, t_logits, batch["labels"])
    torch.testing.assert_close(got, expected)
    trainer.train()
    assert all(np.isfinite(logged(trainer, "loss_kd")))


def test_teacher_equal_to_student_gives_zero_kd(tmp_path):
    data = random_whisper_dataset(16)
    student = whisper_classifier(seed=3)
    teacher = whisper_classifier(seed=3)
    trainer = DistillQuantTrainer(
        model=student,
        teacher_model=teacher,
        args=config(
            tmp_path, schedule="distill", quant_method="none", max_steps=1, logging_steps=1
        ),
        train_dataset=data,
    )
    trainer.train()
    assert logged(trainer, "loss_kd")[0] == pytest.approx(0.0, abs=1e-6)
    assert logged(trainer, "loss_feature")[0] == pytest.approx(0.0, abs=1e-6)


def test_mismatched_labels_and_vocab_are_clear_errors(tmp_path):
    data = random_whisper_dataset(8)
    with pytest.raises(TeacherStudentMismatchError, match="teacher has 10 labels, student 31"):
        DistillQuantTrainer(
            model=whisper_classifier(),
            teacher_model=whisper_classifier(num_labels=10, id2label=None, label2id=None),
            args=config(tmp_path),
            train_dataset=data,
        )
    renamed = whisper_classifier()
    renamed.config.id2label = {i: f"intent_{i}" for i in range(31)}
    with pytest.raises(TeacherStudentMismatchError, match="name their labels differently"):
        DistillQuantTrainer(
            model=whisper_classifier(), teacher_model=renamed, args=config(tmp_path),
            train_dataset=data,
        )  # fmt: skip
    with pytest.raises(TeacherStudentMismatchError, match="vocabulary has 120 entries"):
        DistillQuantTrainer(
            model=whisper_seq2seq(),
            teacher_model=whisper_seq2seq(vocab_size=120),
            args=config(tmp_path),
            train_dataset=data,
        )
    with pytest.raises(TeacherStudentMismatchError, match="128 mel bins"):
        DistillQuantTrainer(
            model=whisper_classifier(),
            teacher_model=whisper_classifier(num_mel_bins=128),
            args=config(tmp_path),
            train_dataset=data,
        )
    with pytest.raises(ValueError, match="no teacher"):
        DistillQuantTrainer(model=whisper_classifier(), args=config(tmp_path), train_dataset=data)
    with pytest.raises(TypeError, match="must be a DistillQuantConfig"):
        DistillQuantTrainer(
            model=whisper_classifier(),
            teacher_model=whisper_classifier(),
            args=transformers.TrainingArguments(output_dir=str(tmp_path)),
        )


def test_teacher_from_path_is_frozen_in_eval_mode(tmp_path):
    whisper_classifier(d_model=48, seed=1).save_pretrained(tmp_path / "teacher")
    trainer = DistillQuantTrainer(
        model=whisper_classifier(),
        args=config(tmp_path, teacher_model_name_or_path=str(tmp_path / "teacher")),
        train_dataset=random_whisper_dataset(8),
    )
    assert not trainer.teacher.training
    assert not any(p.requires_grad for p in trainer.teacher.parameters())
    assert trainer.teacher.config.d_model == 48


def test_teacher_cache_never_runs_the_teacher_and_matches(tmp_path):
    data = random_whisper_dataset(32)

    def run(cache: bool, out: str):
        teacher = whisper_classifier(d_model=48, seed=1)
        calls = {"n": 0}
        forward = teacher.forward

        def counting(*args, **kwargs):
            calls["n"] += 1
            return forward(*args, **kwargs)

        teacher.forward = counting
        trainer = DistillQuantTrainer(
            model=whisper_classifier(seed=2),
            teacher_model=teacher,
            args=config(
                tmp_path, output_dir=str(tmp_path / out), teacher_cache=cache,
                teacher_cache_dir=str(tmp_path / "cache"), schedule="distill", quant_method="none",
            ),
            train_dataset=data,
        )  # fmt: skip
        trainer.train()
        return trainer, calls["n"]

    plain, plain_calls = run(False, "plain")
    _, build_calls = run(True, "cached1")
    second, second_calls = run(True, "cached2")
    assert plain_calls == 8 and build_calls == 4  # 4 eval-size batches build the cache
    assert second_calls == 0  # reused from disk: the teacher never runs
    for a, b in zip(plain.model.parameters(), second.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_teacher_cache_refuses_seq2seq(tmp_path):
    with pytest.raises(ValueError, match="classification students only"):
        DistillQuantTrainer(
            model=whisper_seq2seq(),
            teacher_model=whisper_seq2seq(),
            args=config(tmp_path, teacher_cache=True),
            train_dataset=random_whisper_dataset(8),
        )


def test_resume_gives_the_same_weights(tmp_path):
    data = random_whisper_dataset(48)

    def trainer_for(out: str, **kwargs):
        return DistillQuantTrainer(
            model=whisper_classifier(seed=2),
            teacher_model=whisper_classifier(d_model=48, seed=1),
            args=config(
                tmp_path, output_dir=str(tmp_path / out), max_steps=12, save_strategy="steps",
                save_steps=4, **kwargs,
            ),
            train_dataset=data,
        )  # fmt: skip

    full = trainer_for("full")
    full.train()

    class StopAt(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 8:
                control.should_training_stop = True

    interrupted = trainer_for("resumed")
    interrupted.add_callback(StopAt())
    interrupted.train()
    assert interrupted.state.global_step == 8
    # Resume from step 4 (before the distill->quant boundary at 6) and from step 8 (inside it).
    for checkpoint in ("checkpoint-4", "checkpoint-8"):
        resumed = trainer_for("resumed")
        resumed.train(resume_from_checkpoint=str(tmp_path / "resumed" / checkpoint))
        for (name, a), b in zip(
            full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), f"{name} differs after resuming from {checkpoint}"


def test_whisper_config_helper_is_consistent():
    cfg = whisper_config()
    assert cfg.max_source_positions * 2 == 300


def test_run_without_quant_phase_saves_a_plain_checkpoint(tmp_path):
    trainer = DistillQuantTrainer(
        model=whisper_classifier(seed=2),
        teacher_model=whisper_classifier(seed=1),
        args=config(tmp_path, schedule="distill", max_steps=2),
        train_dataset=random_whisper_dataset(16),
    )
    trainer.train()
    out = tmp_path / "plain"
    trainer.save_model(str(out))
    cfg = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in cfg
    _, info = transformers.WhisperForAudioClassification.from_pretrained(
        out, output_loading_info=True
    )
    assert not info["unexpected_keys"] and not info["missing_keys"]


def test_final_save_is_atomic(tmp_path):
    class Broken(transformers.WhisperFeatureExtractor):
        def save_pretrained(self, *args, **kwargs):
            raise OSError("disk full")

    trainer = DistillQuantTrainer(
        model=whisper_classifier(seed=2),
        teacher_model=whisper_classifier(seed=1),
        args=config(tmp_path, max_steps=2),
        train_dataset=random_whisper_dataset(16),
        processing_class=whisper_feature_extractor(),
    )
    trainer.train()
    out = tmp_path / "final"
    trainer.save_model(str(out))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    trainer.processing_class = Broken(feature_size=80, chunk_length=3)
    trainer.model.classifier.bias.data += 1.0  # a save that completed would change the weights
    with pytest.raises(OSError, match="disk full"):
        trainer.save_model(str(out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_gradient_accumulation_matches_a_larger_batch(tmp_path):
    # A causal LM: transformers lets such models scale their own loss for accumulation,
    # which our batch-mean objective must not rely on.
    data = lm_dataset(32)

    def run(batch: int, accumulation: int):
        trainer = DistillQuantTrainer(
            model=tiny_lm(2, 32),
            teacher_model=tiny_lm(1, 48),
            args=config(
                tmp_path, output_dir=str(tmp_path / f"ga{accumulation}"), max_steps=4,
                per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
            ),
            train_dataset=data,
        )  # fmt: skip
        trainer.train()
        return trainer.model

    one, two = run(8, 1), run(4, 2)
    # Equal up to float summation order (~1e-5); a mis-scaled loss differs by ~1e-3.
    for a, b in zip(one.parameters(), two.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
