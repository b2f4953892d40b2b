"""Tiny models built from configs (no downloads) and small speech datasets for end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import (
    HubertConfig,
    HubertForSequenceClassification,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForAudioClassification,
    WhisperForConditionalGeneration,
)

from hf_quads.data import FSC_INTENTS

#: Whisper window of the tiny models: 3 s = 300 log-mel frames.
WHISPER_SECONDS = 3
ID2LABEL = dict(enumerate(FSC_INTENTS))


def whisper_config(d_model: int = 32, layers: int = 2, **overrides) -> WhisperConfig:
    kwargs = {
        "d_model": d_model,
        "encoder_layers": layers,
        "decoder_layers": 1,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 4 * d_model,
        "decoder_ffn_dim": 4 * d_model,
        "num_mel_bins": 80,
        "max_source_positions": WHISPER_SECONDS * 50,
        "max_target_positions": 64,
        "classifier_proj_size": 32,
        "num_labels": len(FSC_INTENTS),
        "id2label": ID2LABEL,
        "label2id": {v: k for k, v in ID2LABEL.items()},
        "dropout": 0.0,
        "vocab_size": 96,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "decoder_start_token_id": 1,
    }
    kwargs.update(overrides)
    return WhisperConfig(**kwargs)


def whisper_classifier(d_model: int = 32, layers: int = 2, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return WhisperForAudioClassification(whisper_config(d_model, layers, **overrides))


def whisper_seq2seq(d_model: int = 32, layers: int = 2, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return WhisperForConditionalGeneration(whisper_config(d_model, layers, **overrides))


def whisper_feature_extractor() -> WhisperFeatureExtractor:
    return WhisperFeatureExtractor(feature_size=80, chunk_length=WHISPER_SECONDS)


def _wav2vec2_kwargs(hidden: int, layers: int) -> dict:
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "intermediate_size": 2 * hidden,
        "conv_dim": (16, 16),
        "conv_kernel": (10, 3),
        "conv_stride": (5, 2),
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
        "classifier_proj_size": 16,
        "num_labels": len(FSC_INTENTS),
        "id2label": ID2LABEL,
        "label2id": {v: k for k, v in ID2LABEL.items()},
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "feat_proj_dropout": 0.0,
        "final_dropout": 0.0,
        "layerdrop": 0.0,
        "mask_time_prob": 0.0,
    }


def wav2vec2_classifier(hidden: int = 32, layers: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    return Wav2Vec2ForSequenceClassification(Wav2Vec2Config(**_wav2vec2_kwargs(hidden, layers)))


def hubert_classifier(hidden: int = 32, layers: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    return HubertForSequenceClassification(HubertConfig(**_wav2vec2_kwargs(hidden, layers)))


def wav2vec2_feature_extractor() -> Wav2Vec2FeatureExtractor:
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, return_attention_mask=True, do_normalize=True
    )


def random_whisper_dataset(n: int = 24, num_labels: int = len(FSC_INTENTS), seed: int = 0):
    """Random log-mel inputs whose label is readable from them (so training can learn)."""
    import datasets

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_labels, size=n)
    feats = rng.normal(0, 1, size=(n, 80, WHISPER_SECONDS * 100)).astype(np.float32)
    feats[np.arange(n), labels % 80, :] += 3.0
    return datasets.Dataset.from_dict({"input_features": feats, "labels": labels.tolist()})


def synth_corpus(root: Path) -> Path:
    """A small synthetic FSC-layout corpus (93 train clips), built with the real synthesiser."""
    from hf_quads.data.synth import synthesize_fsc_corpus

    synthesize_fsc_corpus(
        root, seed=0, train_speakers=3, valid_speakers=1, test_speakers=1,
        phrasings_per_intent=1, num_workers=0, progress=False,
    )  # fmt: skip
    return root


def qwen2_audio(text_layers: int = 4, audio_layers: int = 2, seed: int = 0, **text_overrides):
    """A tiny Qwen2-Audio: Whisper-style audio tower, Qwen2 LM with sliding-window layers."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    text = {
        "model_type": "qwen2",
        "vocab_size": 160,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": text_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "use_sliding_window": True,
        "sliding_window": 4,
        "max_window_layers": text_layers // 2,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    text.update(text_overrides)
    audio = {
        "d_model": 32,
        "encoder_layers": audio_layers,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 64,
        "num_mel_bins": 80,
        "max_source_positions": WHISPER_SECONDS * 50,
    }
    config = Qwen2AudioConfig(audio_config=audio, text_config=text, audio_token_index=150)
    torch.manual_seed(seed)
    return Qwen2AudioForConditionalGeneration(config)


QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}"
    "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'audio' %}"
    "<|audio_bos|><|AUDIO|><|audio_eos|>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)


def qwen2_audio_with_processor(texts: list[str], text_layers: int = 3, seed: int = 0):
    """A tiny Qwen2-Audio and a real Qwen2AudioProcessor (BPE trained on ``texts``)."""
    from transformers import Qwen2AudioProcessor

    from hf_quads.models import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(texts, vocab_size=300)
    specials = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|im_start|>", "<|im_end|>"]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    processor = Qwen2AudioProcessor(
        feature_extractor=whisper_feature_extractor(),
        tokenizer=tokenizer,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    model = qwen2_audio(text_layers=text_layers, seed=seed, vocab_size=len(tokenizer))
    model.config.audio_token_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    for config in (model.config, model.generation_config):
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = tokenizer.eos_token_id
        config.bos_token_id = tokenizer.bos_token_id
    return model, processor
