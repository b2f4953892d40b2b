"""Recovery after pruning: QLoRA fine-tuning, adapter merging, sequence-level KD data.

Token-level KD for seq2seq students goes through
:class:`~hf_quads.DistillQuantTrainer` with ``schedule="distill"`` and ``kd_weight``.
"""

from .qlora import HEAD_NAMES, RecoveryError, disable_cpu_repack, merge_qlora, prepare_qlora
from .seqkd import ORIGINS, build_sequence_kd_dataset, merge_teacher_outputs, normalise_text

__all__ = [
    "HEAD_NAMES",
    "ORIGINS",
    "RecoveryError",
    "build_sequence_kd_dataset",
    "disable_cpu_repack",
    "merge_qlora",
    "merge_teacher_outputs",
    "normalise_text",
    "prepare_qlora",
]
