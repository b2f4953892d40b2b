"""Batch collation for speech seq2seq training (Whisper-style encoder-decoders)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

#: Label value the loss ignores (``torch.nn.CrossEntropyLoss`` default).
IGNORE_INDEX = -100


@dataclass
class SpeechSeq2SeqCollator:
    """Stacks ``input_features`` (or pads ``input_values``) and right-pads ``labels`` with -100.

    ``decoder_start_token_id``: a label sequence that starts with it loses that
    first token, since the model prepends it when it shifts the labels right.
    """

    decoder_start_token_id: int | None = None

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        if "input_features" in features[0]:
            batch["input_features"] = torch.stack(
                [torch.as_tensor(f["input_features"], dtype=torch.float32) for f in features]
            )
        elif "input_values" in features[0]:
            values = [torch.as_tensor(f["input_values"], dtype=torch.float32) for f in features]
            width = max(v.shape[-1] for v in values)
            batch["input_values"] = torch.stack(
                [torch.nn.functional.pad(v, (0, width - v.shape[-1])) for v in values]
            )
            batch["attention_mask"] = torch.stack(
                [(torch.arange(width) < v.shape[-1]).long() for v in values]
            )
        else:
            raise KeyError("each example needs 'input_features' or 'input_values'")
        labels = [list(f["labels"]) for f in features]
        if self.decoder_start_token_id is not None and all(
            seq and seq[0] == self.decoder_start_token_id for seq in labels
        ):
            labels = [seq[1:] for seq in labels]
        width = max(len(seq) for seq in labels)
        batch["labels"] = torch.tensor(
            [seq + [IGNORE_INDEX] * (width - len(seq)) for seq in labels], dtype=torch.long
        )
        return batch


__all__ = ["IGNORE_INDEX", "SpeechSeq2SeqCollator"]
