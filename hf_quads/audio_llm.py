"""Prompted speech translation with audio LLMs (Qwen2-Audio): inputs, generation, training rows.

An audio LLM translates when asked to: a chat turn holding the audio and an
instruction ("Translate the English speech into German."), then the assistant's
answer. :class:`AudioLLMTranslator` builds that prompt with the processor's chat
template, turns dataset rows into model inputs (``inputs``, left-padded for batched
generation), decodes only the generated continuation (``generate``), and builds
training rows whose loss covers the translation only (``training_features``).
Its ``inputs`` and ``generate`` plug into :class:`~hf_quads.prune.LayerPruner` and
:func:`~hf_quads.recover.build_sequence_kd_dataset` (``inputs_fn`` / ``generate_fn``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .data.collate import IGNORE_INDEX

LANGUAGES: dict[str, str] = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French",
    "it": "Italian", "ja": "Japanese", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "tr": "Turkish", "zh": "Chinese",
}  # fmt: skip
#: The model inputs a Qwen2-Audio forward takes (the processor adds others on some versions).
MODEL_INPUTS: tuple[str, ...] = (
    "input_ids",
    "attention_mask",
    "input_features",
    "feature_attention_mask",
)


def translation_instruction(source_lang: str, target_lang: str) -> str:
    """The default instruction, e.g. ``"Translate the English speech into German."``."""
    source = LANGUAGES.get(source_lang, source_lang)
    target = LANGUAGES.get(target_lang, target_lang)
    return f"Translate the {source} speech into {target}."


def is_audio_llm(config: Any) -> bool:
    """Whether a model config is an audio LLM that needs a prompt (Qwen2-Audio)."""
    return getattr(config, "model_type", None) == "qwen2_audio"


class AudioLLMTranslator:
    """Prompt, inputs, generation and training rows for one translation direction."""

    def __init__(
        self,
        processor: Any,
        instruction: str,
        *,
        audio_column: str = "audio",
        max_seconds: float | None = None,
        generation_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.instruction = instruction
        self.audio_column = audio_column
        self.max_seconds = max_seconds
        self.generation_kwargs = {"do_sample": False, "num_beams": 1, **(generation_kwargs or {})}
        self.prompt = self._prompt()

    def _prompt(self) -> str:
        conversation = [
            {
                "role": "user",
                "content": [
                    {"type": "audio", "audio_url": "speech.wav"},
                    {"type": "text", "text": self.instruction},
                ],
            }
        ]
        if getattr(self.processor, "chat_template", None):
            return self.processor.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=False
            )
        return f"<|audio_bos|><|AUDIO|><|audio_eos|>{self.instruction}"

    def _waves(self, audio: Sequence[Any]) -> list[np.ndarray]:
        from .data.audio import _as_waveform

        rate = int(self.processor.feature_extractor.sampling_rate)
        waves = [_as_waveform(item, rate) for item in audio]
        if self.max_seconds is not None:
            waves = [w[: round(self.max_seconds * rate)] for w in waves]
        return waves

    def _encode(self, texts: list[str], waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        rate = int(self.processor.feature_extractor.sampling_rate)
        out = self.processor(
            text=texts, audio=waves, sampling_rate=rate, return_tensors="pt", padding=True
        )
        return {k: out[k] for k in MODEL_INPUTS if k in out}

    def inputs(self, rows: Mapping[str, list]) -> dict[str, torch.Tensor]:
        """Model inputs for a batch of dataset rows (left-padded, ready for ``generate``)."""
        waves = self._waves(rows[self.audio_column])
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            return self._encode([self.prompt] * len(waves), waves)
        finally:
            self.tokenizer.padding_side = side

    @torch.no_grad()
    def generate(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> list[str]:
        """Greedy translations of a batch from :meth:`inputs`: the continuation only."""
        ids = model.generate(**batch, **self.generation_kwargs)
        continuation = ids[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(continuation, skip_special_tokens=True)

    def training_features(self, audio: Any, translation: str) -> dict[str, list]:
        """One training row: prompt + translation + end of turn; labels on the translation only."""
        prompt = self._encode([self.prompt], self._waves([audio]))
        target = self.tokenizer(
            translation + (self.tokenizer.eos_token or ""), add_special_tokens=False
        )["input_ids"]
        prompt_ids = prompt["input_ids"][0].tolist()
        return {
            "input_ids": prompt_ids + target,
            "labels": [IGNORE_INDEX] * len(prompt_ids) + target,
            "input_features": prompt["input_features"][0].numpy(),
            "feature_attention_mask": prompt["feature_attention_mask"][0].tolist(),
        }

    def training_map_fn(self, translation_column: str = "translation"):
        """A ``Dataset.map(fn, batched=True)`` function that adds :meth:`training_features`."""

        def fn(batch: dict[str, list]) -> dict[str, list]:
            rows = [
                self.training_features(a, t)
                for a, t in zip(batch[self.audio_column], batch[translation_column], strict=True)
            ]
            return {key: [row[key] for row in rows] for key in rows[0]}

        return fn


@dataclass
class AudioLLMCollator:
    """Right-pads ``input_ids`` (with ``pad_token_id``) and ``labels`` (with -100) per batch."""

    pad_token_id: int

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)

        def pad(seq: list[int], value: int) -> list[int]:
            return list(seq) + [value] * (width - len(seq))

        return {
            "input_ids": torch.tensor([pad(f["input_ids"], self.pad_token_id) for f in features]),
            "attention_mask": torch.tensor([pad([1] * len(f["input_ids"]), 0) for f in features]),
            "labels": torch.tensor([pad(f["labels"], IGNORE_INDEX) for f in features]),
            "input_features": torch.stack(
                [torch.as_tensor(f["input_features"], dtype=torch.float32) for f in features]
            ),
            "feature_attention_mask": torch.tensor([f["feature_attention_mask"] for f in features]),
        }


__all__ = [
    "LANGUAGES",
    "MODEL_INPUTS",
    "AudioLLMCollator",
    "AudioLLMTranslator",
    "is_audio_llm",
    "translation_instruction",
]
