"""Builders for models and tokenizers trained from scratch: the demos and tiny recipes.

No weights can be downloaded where hf-quads is tested, so its runnable recipes
train small Whisper-style models from configs on the synthetic corpora. Real
recipes load pretrained checkpoints with ``from_pretrained`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from transformers import (
    PreTrainedTokenizerFast,
    WhisperConfig,
    WhisperForAudioClassification,
    WhisperForConditionalGeneration,
)

SPECIAL_TOKENS: dict[str, str] = {
    "pad_token": "<pad>",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
}


def train_bpe_tokenizer(
    texts: Iterable[str], *, vocab_size: int = 1000, min_frequency: int = 1
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts`` (decodes back to the exact text).

    Special tokens: ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2, ``<unk>`` = 3; encoding
    appends ``</s>`` so labels end with the end-of-sequence token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = list(SPECIAL_TOKENS.values())
    tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    eos = SPECIAL_TOKENS["eos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", special_tokens=[(eos, tokenizer.token_to_id(eos))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def whisper_config(
    *,
    d_model: int,
    encoder_layers: int,
    decoder_layers: int = 1,
    heads: int = 4,
    seconds: float = 3.0,
    num_mel_bins: int = 80,
    **overrides,
) -> WhisperConfig:
    """A small Whisper config: ``seconds`` of audio (100 log-mel frames per second),
    feed-forward 4 x ``d_model``, no dropout (it hurts on small synthetic corpora)."""
    kwargs = {
        "d_model": d_model,
        "encoder_layers": encoder_layers,
        "decoder_layers": decoder_layers,
        "encoder_attention_heads": heads,
        "decoder_attention_heads": heads,
        "encoder_ffn_dim": 4 * d_model,
        "decoder_ffn_dim": 4 * d_model,
        "num_mel_bins": num_mel_bins,
        "max_source_positions": round(seconds * 50),
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
    }
    kwargs.update(overrides)
    return WhisperConfig(**kwargs)


def whisper_classifier(labels: Sequence[str], **config_kwargs) -> WhisperForAudioClassification:
    """A Whisper encoder + classification head over ``labels`` (ids = positions)."""
    config = whisper_config(
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        **config_kwargs,
    )
    return WhisperForAudioClassification(config)


def whisper_seq2seq(
    tokenizer: PreTrainedTokenizerFast, *, max_target_positions: int = 64, **config_kwargs
) -> WhisperForConditionalGeneration:
    """A Whisper encoder-decoder over ``tokenizer``'s vocabulary, with a plain generation config.

    Generation starts from ``<s>`` and stops at ``</s>``; Whisper's multilingual
    prompt tokens and timestamp handling do not apply to a vocabulary trained from
    scratch, so they are switched off.
    """
    config = whisper_config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
        max_target_positions=max_target_positions,
        **config_kwargs,
    )
    model = WhisperForConditionalGeneration(config)
    gen = model.generation_config
    gen.decoder_start_token_id = tokenizer.bos_token_id
    gen.eos_token_id = tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    gen.suppress_tokens = None
    gen.begin_suppress_tokens = None
    gen.forced_decoder_ids = None
    gen.max_length = max_target_positions
    return model


class SpeechTextProcessor:
    """A feature extractor and a tokenizer that save, load and travel together.

    Stands in for ``WhisperProcessor`` when the tokenizer is not Whisper's (a
    vocabulary trained from scratch): both halves are saved into one directory and
    ``from_pretrained`` loads them back with the Auto classes.
    """

    def __init__(self, feature_extractor: Any, tokenizer: PreTrainedTokenizerFast) -> None:
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        self.feature_extractor.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> SpeechTextProcessor:
        from transformers import AutoFeatureExtractor, AutoTokenizer

        return cls(
            AutoFeatureExtractor.from_pretrained(directory),
            AutoTokenizer.from_pretrained(directory),
        )

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)
