"""Distillation: pure loss functions, feature pooling and projection, the teacher-output cache."""

from .features import (
    FeatureProjector,
    frame_attention_mask,
    hidden_size_of,
    match_dims,
    pool_hidden_states,
    quads_maxpool_dilation,
)
from .losses import (
    LOSS_TERMS,
    DistillError,
    check_loss_weights,
    combine_losses,
    feature_loss,
    logit_kd_loss,
)
from .teacher_cache import TeacherCache, TeacherCacheError, index_batches, teacher_hash

__all__ = [
    "LOSS_TERMS",
    "DistillError",
    "FeatureProjector",
    "TeacherCache",
    "TeacherCacheError",
    "check_loss_weights",
    "combine_losses",
    "feature_loss",
    "frame_attention_mask",
    "hidden_size_of",
    "index_batches",
    "logit_kd_loss",
    "match_dims",
    "pool_hidden_states",
    "quads_maxpool_dilation",
    "teacher_hash",
]
