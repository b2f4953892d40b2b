"""LayerPruner: selection, modes, stopping rules, reports; importance proxies."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_models import random_whisper_dataset, wav2vec2_classifier, whisper_classifier

from hf_quads.models import train_bpe_tokenizer, whisper_seq2seq
from hf_quads.prune import LayerPruner, get_layer_stack
from hf_quads.prune.importance import (
    ClassificationScorer,
    GenerationScorer,
    PruningError,
    angular_distance,
    block_influence,
)

SENTENCES = [
    "Schalte das Licht ein.",
    "Mach die Musik lauter.",
    "Bring mir die Schuhe.",
    "Stell die Heizung auf zwanzig Grad.",
]


def make_identity(layer: torch.nn.Module) -> None:
    """Zero the residual branches' output projections: the layer returns its input."""
    for name in ("out_proj", "o_proj", "fc2", "output_dense"):
        for module in layer.modules():
            if hasattr(module, name):
                proj = getattr(module, name)
                torch.nn.init.zeros_(proj.weight)
                if proj.bias is not None:
                    torch.nn.init.zeros_(proj.bias)


class Fidelity:
    """Negative mean |logit change| against the unpruned model: a continuous score."""

    name = "fidelity"
    higher_is_better = True

    def __init__(self, model, data):
        self._batches = [
            {"input_features": torch.tensor(np.asarray(data["input_features"], np.float32))}
        ]
        with torch.no_grad():
            self.reference = model.eval()(**self._batches[0]).logits

    def batches(self):
        return self._batches

    def __call__(self, model, on_batch=None):
        with torch.no_grad():
            if on_batch is not None:
                on_batch(0)
            logits = model.eval()(**self._batches[0]).logits
        return -float((logits - self.reference).abs().mean())


def test_identity_layer_is_removed_first():
    model = whisper_classifier(layers=4, seed=3)
    make_identity(model.encoder.layers[2])
    data = random_whisper_dataset(8)
    scorer = Fidelity(model, data)
    result = LayerPruner(model, scorer=scorer, stack="encoder", num_layers_to_remove=1).prune()
    assert result.removal_order == [2]
    assert result.scores == [pytest.approx(0.0, abs=1e-6)]
    assert set(result.candidate_scores[0]) == {1, 2}  # first and last are protected
    assert get_layer_stack(model, "encoder").num_layers == 3 == model.config.encoder_layers


def test_identity_decoder_layer_is_removed_first_by_chrf():
    tok = train_bpe_tokenizer(SENTENCES, vocab_size=300)
    model = whisper_seq2seq(tok, d_model=32, encoder_layers=2, decoder_layers=4).eval()
    make_identity(model.model.decoder.layers[1])
    import datasets

    data = datasets.Dataset.from_dict(
        {"input_features": np.random.default_rng(0).normal(0, 1, (4, 80, 300)).astype(np.float32)}
    )
    gen = {"max_new_tokens": 8}
    # References = the unpruned model's own output: removing the identity keeps chrF++ at 100.
    own = GenerationScorer(
        data.add_column("translation", [""] * 4), tok, "chrf++", generation_kwargs=gen
    ).hypotheses(model)
    data = data.add_column("translation", own)
    pruner = LayerPruner(
        model, tok, data, metric="chrf++", stack="decoder", num_layers_to_remove=1,
        generation_kwargs=gen,
    )  # fmt: skip
    result = pruner.prune()
    assert result.baseline_score == pytest.approx(100.0)
    assert result.removal_order == [1] and result.scores[0] == pytest.approx(100.0)


def test_prefix_reuse_chooses_exactly_what_the_naive_loop_chooses():
    data = random_whisper_dataset(8)

    def run(mode):
        model = whisper_classifier(layers=5, seed=4)
        scorer = Fidelity(model, data)
        return LayerPruner(model, scorer=scorer, stack="encoder", num_layers_to_remove=2,
                           mode=mode).prune()  # fmt: skip

    naive, prefix = run("exact"), run("prefix")
    assert naive.removal_order == prefix.removal_order
    assert naive.candidate_scores == prefix.candidate_scores  # every score bit-identical


def test_prefix_reuse_on_wav2vec2_with_accuracy():
    import datasets

    rng = np.random.default_rng(0)
    data = datasets.Dataset.from_dict(
        {"input_values": rng.normal(0, 0.1, (12, 4000)).astype(np.float32),
         "label": rng.integers(0, 31, 12).tolist()}
    )  # fmt: skip
    results = []
    for mode in ("exact", "prefix"):
        model = wav2vec2_classifier(layers=4, seed=5)
        results.append(
            LayerPruner(
                model, None, data, metric="accuracy", num_layers_to_remove=2, mode=mode
            ).prune()
        )
    assert results[0].removal_order == results[1].removal_order
    assert results[0].candidate_scores == results[1].candidate_scores


def test_stopping_rules_and_protection():
    data = random_whisper_dataset(8)
    model = whisper_classifier(layers=6, seed=6)
    scorer = Fidelity(model, data)
    result = LayerPruner(model, scorer=scorer, stack="encoder", target_num_layers=3).prune()
    assert result.num_layers_after == 3 and len(result.removal_order) == 3
    assert 0 not in result.removal_order and 5 not in result.removal_order
    # Each iteration tries every remaining unprotected layer.
    assert [len(c) for c in result.candidate_scores] == [4, 3, 2]
    assert result.params_after < result.params_before and result.bytes_after < result.bytes_before

    model = whisper_classifier(layers=6, seed=6)
    scorer = Fidelity(model, data)
    result = LayerPruner(model, scorer=scorer, stack="encoder", max_metric_drop=0.0).prune()
    assert result.removal_order == [] and "max_metric_drop" in result.stopped_because

    model = whisper_classifier(layers=4, seed=6)
    make_identity(model.encoder.layers[0])
    scorer = Fidelity(model, data)
    result = LayerPruner(model, scorer=scorer, stack="encoder", protect=[], max_metric_drop=1e-6,
                         num_layers_to_remove=3).prune()  # fmt: skip
    assert result.removal_order == [0]  # free, then every further removal costs more


def test_bad_settings_are_clear_errors():
    data = random_whisper_dataset(4)
    model = whisper_classifier(layers=4)
    with pytest.raises(PruningError, match="say when to stop"):
        LayerPruner(model, None, data, metric="accuracy", stack="encoder")
    with pytest.raises(PruningError, match="protect index 7"):
        LayerPruner(model, None, data, metric="accuracy", stack="encoder", protect=[7],
                    num_layers_to_remove=1)  # fmt: skip
    with pytest.raises(PruningError, match="target_num_layers must be between"):
        LayerPruner(model, None, data, metric="accuracy", stack="encoder", target_num_layers=9)
    with pytest.raises(PruningError, match="mode must be one of"):
        LayerPruner(model, None, data, metric="accuracy", stack="encoder", mode="fast",
                    num_layers_to_remove=1)  # fmt: skip
    with pytest.raises(PruningError, match="no 'translation' column"):
        LayerPruner(model, None, data, metric="chrf++", stack="encoder", num_layers_to_remove=1)


def test_report_json_and_plot(tmp_path):
    data = random_whisper_dataset(8)
    model = whisper_classifier(layers=4, seed=7)
    result = LayerPruner(model, scorer=Fidelity(model, data), stack="encoder",
                         num_layers_to_remove=2).prune()  # fmt: skip
    report, plot = result.save_report(tmp_path)
    data = json.loads(report.read_text())
    assert data["removal_order"] == result.removal_order
    assert data["num_layers_before"] == 4 and data["num_layers_after"] == 2
    assert set(data["candidate_scores"][0]) == {"1", "2"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_block_influence_and_angular_distance_on_constructed_states():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    same, orthogonal, opposite = x.clone(), torch.tensor([[0.0, 1.0], [-3.0, 0.0]]), -x
    assert block_influence([x, x, x], [same, orthogonal, opposite]) == pytest.approx(
        [0.0, 1.0, 2.0]
    )
    # Angular distance between the input of layer l and the output of layer l+n-1.
    assert angular_distance([x, x, x], [same, orthogonal, opposite], 1) == pytest.approx(
        [0.0, 0.5, 1.0]
    )
    assert angular_distance([x, x, x], [orthogonal, same, opposite], 2) == pytest.approx([0.0, 1.0])
    with pytest.raises(PruningError, match="n must be between 1"):
        angular_distance([x], [x], 2)


def test_proxies_rank_an_identity_layer_least_important():
    data = random_whisper_dataset(8)
    for mode in ("block_influence", "angular_distance"):
        model = whisper_classifier(layers=5, seed=8)
        make_identity(model.encoder.layers[3])
        result = LayerPruner(model, None, data, metric="accuracy", stack="encoder", mode=mode,
                             num_layers_to_remove=1).prune()  # fmt: skip
        assert result.removal_order == [3], mode
        assert result.candidate_scores[0][3] == pytest.approx(0.0, abs=1e-6)
        assert result.baseline_score is not None and len(result.scores) == 1


def test_trainer_scorer_uses_compute_metrics(tmp_path):
    from transformers import Trainer, TrainingArguments

    from hf_quads.metrics import make_compute_metrics

    data = random_whisper_dataset(16)
    model = whisper_classifier(layers=3, seed=9)
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path),
            report_to="none",
            use_cpu=True,
            per_device_eval_batch_size=8,
            disable_tqdm=True,
        ),
        eval_dataset=data,
        compute_metrics=make_compute_metrics("intent"),
    )
    result = LayerPruner(model, trainer=trainer, metric="macro_f1", stack="encoder",
                         num_layers_to_remove=1).prune()  # fmt: skip
    assert result.metric == "macro_f1" and result.removal_order == [1]
    assert 0.0 <= result.scores[0] <= 1.0


def test_accuracy_scorer_from_audio_paths(tmp_path):
    import datasets
    import soundfile as sf
    from tiny_models import whisper_feature_extractor

    paths = []
    for i in range(4):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], np.sin(np.arange(8000) * (i + 1) / 20).astype(np.float32) * 0.1, 16_000)
    data = datasets.Dataset.from_dict({"audio": paths, "label": [0, 1, 2, 3]})
    scorer = ClassificationScorer(data, whisper_feature_extractor(), batch_size=3)
    assert [b["input_features"].shape for b in scorer.batches()] == [(3, 80, 300), (1, 80, 300)]
    assert 0.0 <= scorer(whisper_classifier()) <= 100.0


def test_cross_entropy_scorer_is_lower_is_better_and_prefix_matches_exact():
    data = random_whisper_dataset(10, seed=3)
    model = whisper_classifier(layers=5, seed=4)
    scorer = ClassificationScorer(data, metric="cross_entropy", batch_size=4)
    assert not scorer.higher_is_better
    with torch.no_grad():
        logits = model.eval()(input_features=torch.as_tensor(data["input_features"])).logits
    expected = torch.nn.functional.cross_entropy(logits, torch.as_tensor(data["labels"]))
    assert scorer(model) == pytest.approx(expected.item(), rel=1e-5)

    def run(mode):
        fresh = whisper_classifier(layers=5, seed=4)
        return LayerPruner(fresh, None, data, metric="cross_entropy", stack="encoder",
                           mode=mode, num_layers_to_remove=2, progress=False).prune()  # fmt: skip

    exact, prefix = run("exact"), run("prefix")
    assert exact.removal_order == prefix.removal_order
    assert exact.candidate_scores == prefix.candidate_scores
    first = exact.candidate_scores[0]
    assert exact.removal_order[0] == min(first, key=lambda i: (first[i], i))
    with pytest.raises(PruningError, match="metric must be one of"):
        ClassificationScorer(data, metric="f1")
