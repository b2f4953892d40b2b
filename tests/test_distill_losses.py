"""Distillation losses, the QUADS objective, and feature pooling / width matching."""

from __future__ import annotations

import math

import pytest
import torch

from hf_quads.distill import (
    DistillError,
    FeatureProjector,
    combine_losses,
    feature_loss,
    frame_attention_mask,
    hidden_size_of,
    logit_kd_loss,
    match_dims,
    pool_hidden_states,
    quads_maxpool_dilation,
)
from hf_quads.errors import HfQuadsError

KINDS = ("l1", "mse", "cosine")


def _kl_by_hand(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """sum_c p_t(c) (log p_t(c) - log p_s(c)) · T², averaged over rows, written out."""
    p_t = torch.softmax(teacher / temperature, dim=-1)
    p_s = torch.softmax(student / temperature, dim=-1)
    per_row = (p_t * (p_t.log() - p_s.log())).sum(-1)
    return per_row.mean() * temperature**2


# -- feature_loss ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(4, 8), (2, 5, 8)])
def test_feature_loss_is_zero_for_identical_inputs(kind, shape):
    x = torch.randn(shape)
    assert feature_loss(x, x.clone(), kind=kind).item() == pytest.approx(0.0, abs=1e-6)


def test_feature_loss_known_values():
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    # |diff| = 0, 2, 3, 0 ; diff² = 0, 4, 9, 0
    assert feature_loss(student, teacher, "l1").item() == pytest.approx(5 / 4)
    assert feature_loss(student, teacher, "mse").item() == pytest.approx(13 / 4)
    # cos row 0 = 1/sqrt(5); row 1 = 16 / (5 · 4) = 0.8
    expected_cos = ((1 - 1 / math.sqrt(5)) + (1 - 0.8)) / 2
    assert feature_loss(student, teacher, "cosine").item() == pytest.approx(expected_cos)


@pytest.mark.parametrize("kind", KINDS)
def test_feature_loss_mask_equals_loss_on_valid_frames(kind):
    student, teacher = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]])
    masked = feature_loss(student, teacher, kind, mask=mask)
    valid = mask.bool()
    flat = feature_loss(student[valid], teacher[valid], kind)
    torch.testing.assert_close(masked, flat)
    # Padded frames may hold anything.
    student2 = student.masked_fill(~valid.unsqueeze(-1), 1e6)
    torch.testing.assert_close(feature_loss(student2, teacher, kind, mask=mask), masked)
    assert feature_loss(student, teacher, kind, mask=torch.zeros(2, 6)).item() == 0.0


def test_feature_loss_rejects_bad_inputs():
    with pytest.raises(DistillError, match="FeatureProjector"):
        feature_loss(torch.randn(2, 4), torch.randn(2, 5))
    with pytest.raises(DistillError, match="'l1', 'mse', 'cosine'"):
        feature_loss(torch.randn(2, 4), torch.randn(2, 4), kind="l2")
    with pytest.raises(DistillError, match="frame-level mask"):
        feature_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4), mask=torch.ones(2, 7))
    with pytest.raises(DistillError, match="per-frame"):
        feature_loss(torch.randn(2, 4), torch.randn(2, 4), mask=torch.ones(2, 4))


# -- logit_kd_loss -----------------------------------------------------------------------


def test_kd_is_zero_for_identical_logits():
    logits = torch.randn(4, 7)
    assert logit_kd_loss(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-6)
    tokens = torch.randn(2, 5, 11)
    assert logit_kd_loss(tokens, tokens.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_kd_known_value():
    # Student uniform over 2 classes; teacher logits (ln 3, 0): p_t = (3/4, 1/4) at T = 1.
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    at_t1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert logit_kd_loss(student, teacher, temperature=1.0).item() == pytest.approx(at_t1)
    # At T = 2: p_t = (√3, 1) / (1 + √3), and the loss is multiplied by T² = 4.
    p = math.sqrt(3) / (1 + math.sqrt(3))
    at_t2 = 4 * (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))
    assert logit_kd_loss(student, teacher, temperature=2.0).item() == pytest.approx(at_t2)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_kd_matches_hand_formula_and_t_squared_factor(temperature):
    student, teacher = torch.randn(6, 9), torch.randn(6, 9)
    loss = logit_kd_loss(student, teacher, temperature=temperature)
    torch.testing.assert_close(loss, _kl_by_hand(student, teacher, temperature))
    # Dividing the logits by T by hand and using T = 1 drops only the T² factor.
    plain = logit_kd_loss(student / temperature, teacher / temperature, temperature=1.0)
    torch.testing.assert_close(loss, plain * temperature**2)


def test_kd_token_level_mask_matches_unmasked_subset():
    student, teacher = torch.randn(3, 5, 13), torch.randn(3, 5, 13)
    labels = torch.randint(0, 13, (3, 5))
    labels[0, 3:] = -100
    labels[2, :2] = -100
    valid = labels != -100
    masked = logit_kd_loss(student, teacher, labels=labels)
    subset = logit_kd_loss(student[valid], teacher[valid])
    torch.testing.assert_close(masked, subset)
    # Whatever sits at ignored positions changes nothing, even -inf.
    noisy = student.masked_fill(~valid.unsqueeze(-1), float("-inf"))
    torch.testing.assert_close(logit_kd_loss(noisy, teacher, labels=labels), masked)
    # Labels without -100 give the plain token mean.
    full = logit_kd_loss(student, teacher, labels=torch.zeros(3, 5, dtype=torch.long))
    torch.testing.assert_close(full, logit_kd_loss(student, teacher))


def test_kd_all_masked_is_zero_without_nan():
    student = torch.randn(2, 4, 6, requires_grad=True)
    loss = logit_kd_loss(student, torch.randn(2, 4, 6), labels=torch.full((2, 4), -100))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(student.grad).all()


def test_kd_teacher_ruling_out_classes_is_finite():
    teacher = torch.tensor([[2.0, float("-inf"), 0.0]])
    student = torch.tensor([[1.0, 3.0, 0.0]])
    # The ruled-out class contributes 0; the others keep the student's full normaliser.
    p_t = torch.softmax(teacher, -1)[0]
    log_p_s = torch.log_softmax(student, -1)[0]
    expected = sum(p_t[i] * (p_t[i].log() - log_p_s[i]) for i in (0, 2))
    torch.testing.assert_close(logit_kd_loss(student, teacher, temperature=1.0), expected)


def test_kd_computes_in_float32_for_bf16_inputs():
    student, teacher = torch.randn(4, 10), torch.randn(4, 10)
    loss = logit_kd_loss(student.bfloat16(), teacher.bfloat16())
    assert loss.dtype == torch.float32
    reference = logit_kd_loss(student.bfloat16().float(), teacher.bfloat16().float())
    torch.testing.assert_close(loss, reference)
    assert feature_loss(student.bfloat16(), teacher.bfloat16()).dtype == torch.float32


def test_kd_rejects_bad_inputs():
    with pytest.raises(DistillError, match="temperature must be"):
        logit_kd_loss(torch.randn(2, 3), torch.randn(2, 3), temperature=0.0)
    with pytest.raises(DistillError, match="share"):
        logit_kd_loss(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(DistillError, match="align"):
        logit_kd_loss(torch.randn(2, 5, 3), torch.randn(2, 5, 3), labels=torch.zeros(2, 4))


def test_gradients_reach_only_the_student():
    student = torch.randn(3, 8, requires_grad=True)
    teacher = torch.randn(3, 8, requires_grad=True)
    student_logits = torch.randn(3, 5, requires_grad=True)
    teacher_logits = torch.randn(3, 5, requires_grad=True)
    total = sum(feature_loss(student, teacher, kind) for kind in KINDS)
    total = total + logit_kd_loss(student_logits, teacher_logits)
    total.backward()
    assert teacher.grad is None and teacher_logits.grad is None
    assert student.grad.abs().sum() > 0 and student_logits.grad.abs().sum() > 0


# -- combine_losses ----------------------------------------------------------------------

TERMS = {"gt": 1.0, "feature": 2.0, "kd": 3.0, "centroid": 4.0}
WEIGHTS = {"alpha": 0.25, "gamma": 0.6, "kd_weight": 0.5, "centroid_weight": 0.1}
# L_dis = 0.25·2 + 0.75·1 + 0.5·3 = 2.75 ; L_quant = 0.1·4 + 1 = 1.4
# joint = 0.6·2.75 + 0.4·1.4 = 2.21


def _terms(**values: float) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value) for name, value in values.items()}


@pytest.mark.parametrize(
    ("phase", "expected", "parts"),
    [
        ("distill", 2.75, {"dis": 2.75}),
        ("quant", 1.4, {"quant": 1.4}),
        ("joint", 2.21, {"dis": 2.75, "quant": 1.4}),
    ],
)
def test_combine_losses_per_phase(phase, expected, parts):
    total, log = combine_losses(_terms(**TERMS), phase=phase, **WEIGHTS)
    assert total.item() == pytest.approx(expected)
    assert log == pytest.approx({**TERMS, **parts, "total": expected})


def test_combine_losses_without_optional_terms():
    terms = _terms(gt=1.0, kd=3.0)
    total, log = combine_losses(terms, phase="distill", **WEIGHTS)
    assert total.item() == pytest.approx(1.0 + 0.5 * 3.0)  # L_GT + kd_weight·L_kd, no alpha
    assert set(log) == {"gt", "kd", "dis", "total"}
    total, _ = combine_losses(_terms(gt=1.0), phase="joint", **WEIGHTS)
    assert total.item() == pytest.approx(1.0)
    # None values count as absent.
    total, log = combine_losses(
        {"gt": torch.tensor(1.0), "feature": None}, phase="quant", **WEIGHTS
    )
    assert total.item() == pytest.approx(1.0) and "feature" not in log


def test_combine_losses_gradients():
    gt = torch.tensor(1.0, requires_grad=True)
    feature = torch.tensor(2.0, requires_grad=True)
    centroid = torch.tensor(4.0, requires_grad=True)
    total, _ = combine_losses(
        {"gt": gt, "feature": feature, "centroid": centroid}, phase="joint", **WEIGHTS
    )
    total.backward()
    # d/d gt = 0.6·0.75 + 0.4·1 ; d/d feature = 0.6·0.25 ; d/d centroid = 0.4·0.1
    assert gt.grad.item() == pytest.approx(0.85)
    assert feature.grad.item() == pytest.approx(0.15)
    assert centroid.grad.item() == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"alpha": 1.5}, "alpha must lie in"),
        ({"gamma": -0.1}, "gamma must lie in"),
        ({"gamma": float("nan")}, "gamma must lie in"),
        ({"kd_weight": -1.0}, "kd_weight must be"),
        ({"centroid_weight": float("inf")}, "centroid_weight must be"),
        ({"phase": "train"}, "'distill', 'quant', 'joint'"),
    ],
)
def test_combine_losses_validates_settings(override, match):
    kwargs = {"phase": "joint", **WEIGHTS, **override}
    with pytest.raises(DistillError, match=match) as info:
        combine_losses(_terms(**TERMS), **kwargs)
    assert isinstance(info.value, (HfQuadsError, ValueError))


def test_combine_losses_validates_terms():
    with pytest.raises(DistillError, match="terms\\['gt'\\]"):
        combine_losses(_terms(feature=1.0), phase="distill", **WEIGHTS)
    with pytest.raises(DistillError, match="unknown loss terms \\['ce'\\]"):
        combine_losses(_terms(gt=1.0, ce=1.0), phase="distill", **WEIGHTS)


# -- features ----------------------------------------------------------------------------


def test_pooling_with_and_without_mask():
    hidden = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    torch.testing.assert_close(pool_hidden_states(hidden), hidden.mean(1))
    torch.testing.assert_close(pool_hidden_states(hidden, pooling="max"), hidden[:, 2])
    torch.testing.assert_close(pool_hidden_states(hidden, pooling="first"), hidden[:, 0])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    mean = pool_hidden_states(hidden, mask)
    torch.testing.assert_close(mean[0], hidden[0, :2].mean(0))
    torch.testing.assert_close(mean[1], hidden[1, 0])
    maxed = pool_hidden_states(-hidden, mask, pooling="max")
    torch.testing.assert_close(maxed, -hidden[:, 0])


def test_pooling_rejects_sample_level_mask():
    with pytest.raises(DistillError, match="frame_attention_mask"):
        pool_hidden_states(torch.randn(2, 3, 4), torch.ones(2, 400))
    with pytest.raises(DistillError, match="'mean', 'max', 'first'"):
        pool_hidden_states(torch.randn(2, 3, 4), pooling="sum")


def test_frame_attention_mask_for_wav2vec2_and_whisper():
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )
    model = Wav2Vec2Model(config).eval()
    samples = torch.zeros(2, 400)
    samples_mask = torch.ones(2, 400, dtype=torch.long)
    samples_mask[1, 200:] = 0
    hidden = model(samples, attention_mask=samples_mask).last_hidden_state
    frames = frame_attention_mask(model, hidden.shape[1], samples_mask)
    assert frames.shape == hidden.shape[:2] and frames.dtype == torch.bool
    assert frames[0].all() and 0 < frames[1].sum() < hidden.shape[1]
    pooled = pool_hidden_states(hidden, frames)
    torch.testing.assert_close(pooled[1], hidden[1, frames[1]].mean(0))
    # Whisper-like: a mask over log-mel frames, two per encoder frame.
    mel_mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    assert frame_attention_mask(None, 3, mel_mask).tolist() == [[True, True, False]]
    with pytest.raises(DistillError, match="encoder's frames"):
        frame_attention_mask(None, 4, mel_mask)


def test_match_dims_average_and_quads_maxpool():
    teacher = torch.randn(3, 1280)
    assert quads_maxpool_dilation(1280, 512) == 128  # the QUADS reference's setting
    reference = torch.nn.MaxPool1d(kernel_size=3, stride=2, dilation=128)
    pooled = match_dims(teacher, 512, method="quads_maxpool")
    torch.testing.assert_close(pooled, reference(teacher.unsqueeze(1)).squeeze(1))
    averaged = match_dims(torch.arange(8.0).repeat(2, 1), 4)
    torch.testing.assert_close(averaged, torch.tensor([[0.5, 2.5, 4.5, 6.5]] * 2))
    assert match_dims(torch.randn(2, 5, 12), 6).shape == (2, 5, 6)
    assert match_dims(teacher, 1280) is teacher
    with pytest.raises(DistillError, match="FeatureProjector"):
        match_dims(torch.randn(2, 8), 16)
    with pytest.raises(DistillError, match="method='avg'"):
        match_dims(torch.randn(2, 10), 6, method="quads_maxpool")


def test_feature_projector():
    projector = FeatureProjector(4, 6)
    out = projector(torch.randn(2, 4))
    assert out.shape == (2, 6) and sum(p.numel() for p in projector.parameters()) == 4 * 6 + 6
    identity = FeatureProjector(5, 5)
    x = torch.randn(3, 7, 5)
    assert identity(x) is x and not list(identity.parameters())
    with pytest.raises(DistillError, match="expects 4 channels"):
        projector(torch.randn(2, 5))


def test_hidden_size_of_known_configs():
    from transformers import HubertConfig, Qwen2AudioConfig, Wav2Vec2Config, WhisperConfig

    assert hidden_size_of(WhisperConfig(d_model=24)) == 24
    assert hidden_size_of(Wav2Vec2Config(hidden_size=40)) == 40
    assert hidden_size_of(HubertConfig(hidden_size=48)) == 48
    assert hidden_size_of(Qwen2AudioConfig()) == Qwen2AudioConfig().audio_config.d_model
    model = torch.nn.Linear(2, 2)
    model.config = WhisperConfig(d_model=32)
    assert hidden_size_of(model) == 32
    with pytest.raises(DistillError, match="pass the width explicitly"):
        hidden_size_of(torch.nn.Linear(2, 2))
