"""Layer removal per architecture: configs, KV-cache generation, save/load, restore, errors."""

from __future__ import annotations

import pytest
import torch
from tiny_models import (
    hubert_classifier,
    qwen2_audio,
    wav2vec2_classifier,
    whisper_classifier,
    whisper_seq2seq,
)
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from hf_quads.prune import (
    PruningError,
    find_layer_stacks,
    get_layer_stack,
    layers_removed,
    remove_layers,
    restore_layers,
)

GREEDY = {"do_sample": False, "max_new_tokens": 8, "min_new_tokens": 8}


def whisper_generate(model, **kwargs):
    torch.manual_seed(0)
    features = torch.randn(2, 80, 300)
    return model.generate(input_features=features, **GREEDY, **kwargs)


def qwen_inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    ids = torch.tensor([[1] + [150] * 75 + [5, 6, 7]])
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "input_features": torch.randn(1, 80, 300),
        "feature_attention_mask": torch.ones(1, 300, dtype=torch.long),
    }


def qwen_generate(model, **kwargs):
    return model.generate(**qwen_inputs(), **GREEDY, **kwargs)


def layer_indices(stack) -> list[int | None]:
    return [getattr(layer.self_attn, "layer_idx", None) for layer in stack.modules]


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_stacks_are_found_per_architecture():
    names = lambda m: {n: (s.path, s.num_layers) for n, s in find_layer_stacks(m).items()}  # noqa: E731
    assert names(whisper_seq2seq(layers=3)) == {
        "encoder": ("model.encoder.layers", 3),
        "decoder": ("model.decoder.layers", 1),
    }
    assert names(whisper_classifier(layers=3)) == {"encoder": ("encoder.layers", 3)}
    assert names(wav2vec2_classifier(layers=3)) == {"encoder": ("wav2vec2.encoder.layers", 3)}
    assert names(hubert_classifier(layers=3)) == {"encoder": ("hubert.encoder.layers", 3)}
    qwen = find_layer_stacks(qwen2_audio())
    assert set(qwen) == {"decoder", "audio_encoder"}
    assert qwen["decoder"].path.endswith("language_model.model.layers") or qwen[
        "decoder"
    ].path.endswith("model.language_model.layers")
    assert (qwen["decoder"].num_layers, qwen["audio_encoder"].num_layers) == (4, 2)
    # Defaults: the decoder where there is one, else the encoder.
    assert get_layer_stack(whisper_seq2seq()).name == "decoder"
    assert get_layer_stack(wav2vec2_classifier()).name == "encoder"
    assert get_layer_stack(qwen2_audio()).name == "decoder"


def test_whisper_decoder_removal_keeps_kv_cache_generation_exact(tmp_path):
    model = whisper_seq2seq(layers=2, decoder_layers=4, seed=1).eval()
    before = whisper_generate(model)
    record = remove_layers(model, [0, 2], "decoder")
    stack = get_layer_stack(model, "decoder")
    assert stack.num_layers == 2 == model.config.decoder_layers
    assert model.config.encoder_layers == 2  # the other stack is untouched
    assert layer_indices(stack) == [0, 1]
    assert [layer.encoder_attn.layer_idx for layer in stack.modules] == [0, 1]

    cached = whisper_generate(model)
    assert torch.equal(cached, whisper_generate(model, use_cache=False))
    assert not torch.equal(cached, before)

    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).decoder_layers == 2
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert torch.equal(whisper_generate(loaded), cached)

    restore_layers(model, record)
    assert model.config.decoder_layers == 4
    assert layer_indices(get_layer_stack(model, "decoder")) == [0, 1, 2, 3]
    assert torch.equal(whisper_generate(model), before)


def test_whisper_encoder_removal_and_weighted_layer_sum(tmp_path):
    model = whisper_classifier(layers=4, use_weighted_layer_sum=True, seed=2).eval()
    with torch.no_grad():
        model.layer_weights.copy_(torch.arange(5, dtype=torch.float))
    features = torch.randn(2, 80, 300)
    original = state(model)
    with layers_removed(model, [1, -1], "encoder"):
        assert model.config.encoder_layers == 2
        assert model.layer_weights.tolist() == [0.0, 1.0, 3.0]  # embeddings, layer 0, layer 2
        with torch.no_grad():
            logits = model(input_features=features).logits
        model.save_pretrained(tmp_path)
    assert model.config.encoder_layers == 4 and model.layer_weights.numel() == 5
    assert_same_state(state(model), original)
    loaded = type(model).from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(input_features=features).logits, logits)


@pytest.mark.parametrize("build", [wav2vec2_classifier, hubert_classifier])
def test_wav2vec2_and_hubert_encoder_removal(build, tmp_path):
    model = build(layers=4, seed=3).eval()
    values = torch.randn(2, 16_000)
    remove_layers(model, [2], "encoder")
    assert model.config.num_hidden_layers == 3
    assert get_layer_stack(model).num_layers == 3
    with torch.no_grad():
        logits = model(input_values=values).logits
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert loaded.config.num_hidden_layers == 3
    with torch.no_grad():
        assert torch.equal(loaded(input_values=values).logits, logits)


def test_qwen2_audio_decoder_removal_fixes_layer_types_and_cache(tmp_path):
    model = qwen2_audio(text_layers=4, seed=4).eval()
    text = model.config.text_config
    assert text.layer_types == ["full_attention"] * 2 + ["sliding_attention"] * 2
    with torch.no_grad():
        before = model(**qwen_inputs()).logits
    remove_layers(model, [0], "decoder")
    assert text.num_hidden_layers == 3
    assert text.layer_types == ["full_attention", "sliding_attention", "sliding_attention"]
    assert text.max_window_layers == 1
    stack = get_layer_stack(model, "decoder")
    assert layer_indices(stack) == [0, 1, 2]
    sliding = [layer.self_attn.sliding_window is not None for layer in stack.modules]
    assert sliding == [t == "sliding_attention" for t in text.layer_types]

    with torch.no_grad():
        assert not torch.allclose(model(**qwen_inputs()).logits, before)
    cached = qwen_generate(model)
    assert torch.equal(cached, qwen_generate(model, use_cache=False))
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert loaded.config.text_config.layer_types == text.layer_types
    assert torch.equal(qwen_generate(loaded), cached)


def test_qwen2_audio_audio_encoder_removal(tmp_path):
    model = qwen2_audio(audio_layers=3, seed=5).eval()
    remove_layers(model, [1], "audio_encoder")
    assert model.config.audio_config.encoder_layers == 2
    assert model.config.text_config.num_hidden_layers == 4
    generated = qwen_generate(model)
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert loaded.config.audio_config.encoder_layers == 2
    assert torch.equal(qwen_generate(loaded), generated)


def test_dotted_path_on_a_decoder_only_lm(tmp_path):
    from transformers import Qwen2Config

    torch.manual_seed(6)
    config = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
    model = AutoModelForCausalLM.from_config(config).eval()
    assert get_layer_stack(model).path == "model.layers"
    remove_layers(model, [1], "model.layers")
    assert model.config.num_hidden_layers == 2 and len(model.config.layer_types) == 2
    ids = torch.tensor([[3, 4, 5]])
    out = model.generate(input_ids=ids, **GREEDY)
    assert torch.equal(out, model.generate(input_ids=ids, use_cache=False, **GREEDY))
    model.save_pretrained(tmp_path)
    assert torch.equal(
        AutoModelForCausalLM.from_pretrained(tmp_path).generate(input_ids=ids, **GREEDY), out
    )
    # The base model (no LM head) is reached by the same rule.
    assert get_layer_stack(AutoModel.from_config(config)).path == "layers"


def test_a_module_list_without_config():
    class Blocks(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(3))

    model = Blocks()
    first = model.blocks[0]
    remove_layers(model, [1, 2], "blocks")
    assert list(model.blocks) == [first]


def test_removal_errors():
    model = whisper_seq2seq(layers=3)
    with pytest.raises(PruningError, match="no 'audio_encoder' stack"):
        get_layer_stack(model, "audio_encoder")
    with pytest.raises(PruningError, match="no attribute path"):
        get_layer_stack(model, "model.nothing.layers")
    with pytest.raises(PruningError, match=r"not an nn\.ModuleList"):
        get_layer_stack(model, "model.encoder.conv1")
    with pytest.raises(PruningError, match="outside the stack's 3 layers"):
        remove_layers(model, [3], "encoder")
    with pytest.raises(PruningError, match="repeat"):
        remove_layers(model, [1, -2], "encoder")
    with pytest.raises(PruningError, match="cannot remove all 3"):
        remove_layers(model, [0, 1, 2], "encoder")
    assert model.config.encoder_layers == 3  # nothing changed on errors
