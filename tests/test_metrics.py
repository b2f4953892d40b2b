"""Classification and translation metrics, the bundled evaluate modules, compute_metrics factories."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import sacrebleu

from hf_quads.metrics import (
    MODULES_DIR,
    MetricInputError,
    accuracy,
    accuracy_by_group,
    available_metrics,
    bleu,
    chrf,
    chrf_plus_plus,
    classification_scores,
    load_metric,
    macro_f1,
    make_compute_metrics,
    metric_path,
    per_class_f1,
    slurp_scores,
    translation_scores,
)

# --------------------------------------------------------------------------- classification

# Confusion example, by hand:
#   index  0  1  2  3  4  5  6
#   ref    a  a  a  b  b  c  c
#   pred   a  a  b  b  c  c  d
# correct at 0, 1, 3, 5 -> accuracy 4/7
# a: TP 2, FP 0, FN 1 -> F1 = 2*2/(4+0+1) = 0.8
# b: TP 1, FP 1 (i=2), FN 1 (i=4) -> 2/(2+1+1) = 0.5
# c: TP 1, FP 1 (i=4), FN 1 (i=6) -> 0.5
# d: TP 0, FP 1 -> 0
# macro over present classes {a, b, c, d}: (0.8 + 0.5 + 0.5 + 0) / 4 = 0.45
REFS = ["a", "a", "a", "b", "b", "c", "c"]
PREDS = ["a", "a", "b", "b", "c", "c", "d"]


def test_accuracy_and_macro_f1_by_hand() -> None:
    assert accuracy(PREDS, REFS) == pytest.approx(4 / 7)
    assert per_class_f1(PREDS, REFS) == pytest.approx({"a": 0.8, "b": 0.5, "c": 0.5, "d": 0.0})
    assert macro_f1(PREDS, REFS) == pytest.approx(0.45)
    # a fixed label list: only those classes are averaged (d still costs c a FN) ...
    assert macro_f1(PREDS, REFS, labels=["a", "b", "c"]) == pytest.approx(0.6)
    # ... and a listed class absent from both sides counts as 0 (sklearn's zero_division)
    assert macro_f1(PREDS, REFS, labels=["a", "b", "c", "e"]) == pytest.approx(0.45)
    assert classification_scores(PREDS, REFS) == pytest.approx(
        {"accuracy": 4 / 7, "macro_f1": 0.45}
    )


def test_classification_on_numpy_ids() -> None:
    ids = {"a": 0, "b": 1, "c": 2, "d": 3}
    preds = np.array([ids[p] for p in PREDS])
    refs = np.array([ids[r] for r in REFS])
    assert accuracy(preds, refs) == pytest.approx(4 / 7)
    assert macro_f1(preds, refs) == pytest.approx(0.45)
    assert macro_f1(refs, refs) == 1.0


def test_accuracy_by_group_splits_the_average() -> None:
    groups = ["s1", "s1", "s2", "s2", "s2", "s3", "s3"]
    by_group = accuracy_by_group(PREDS, REFS, groups)
    assert list(by_group) == ["s1", "s2", "s3"]  # first-appearance order
    hits = [p == r for p, r in zip(PREDS, REFS, strict=True)]
    for g, value in by_group.items():
        mine = [h for h, gg in zip(hits, groups, strict=True) if gg == g]
        assert value == pytest.approx(sum(mine) / len(mine))
    # Weighted by group size, the groups give back the overall accuracy.
    sizes = {g: groups.count(g) for g in by_group}
    weighted = sum(by_group[g] * sizes[g] for g in by_group) / len(groups)
    assert weighted == pytest.approx(accuracy(PREDS, REFS))
    with pytest.raises(MetricInputError, match="6 groups for 7 predictions"):
        accuracy_by_group(PREDS, REFS, groups[:6])


def test_classification_bad_inputs() -> None:
    with pytest.raises(MetricInputError, match=r"got 6 predictions and 7 references"):
        accuracy(PREDS[:6], REFS)
    with pytest.raises(MetricInputError, match="nothing to score"):
        macro_f1([], [])
    with pytest.raises(MetricInputError, match="1-D"):
        accuracy(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(MetricInputError, match="labels is empty"):
        macro_f1(PREDS, REFS, labels=[])


# --------------------------------------------------------------------------- translation

HYPS = ["the cat sat on the mat", "das ist ein kleiner test", "hello world again"]
REFS_MT = ["the cat sat on the mat", "das ist ein kurzer test", "hello again world"]


def test_translation_scores_equal_sacrebleu_corpus_scores() -> None:
    assert chrf(HYPS, REFS_MT) == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS_MT]).score)
    assert chrf_plus_plus(HYPS, REFS_MT) == pytest.approx(
        sacrebleu.corpus_chrf(HYPS, [REFS_MT], word_order=2).score
    )
    assert bleu(HYPS, REFS_MT) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS_MT]).score)
    scores = translation_scores(HYPS, REFS_MT)
    assert set(scores) == {"chrf", "chrf_plus_plus", "bleu"}
    assert all(isinstance(v, float) and 0 < v < 100 for v in scores.values())
    assert translation_scores(REFS_MT, REFS_MT) == pytest.approx(
        {"chrf": 100.0, "chrf_plus_plus": 100.0, "bleu": 100.0}
    )


def test_chrf_plus_plus_sees_word_order() -> None:
    hyp, ref = ["the mat sat on the cat"], ["the cat sat on the mat"]
    assert chrf_plus_plus(hyp, ref) != pytest.approx(chrf(hyp, ref))
    assert chrf_plus_plus(hyp, ref) == pytest.approx(
        sacrebleu.corpus_chrf(hyp, [ref], word_order=2).score
    )


def test_multiple_and_variable_references() -> None:
    multi = [["the cat sat on the mat", "a cat sat on a mat"], ["das ist ein kurzer test"], ["x"]]
    streams = [
        ["the cat sat on the mat", "das ist ein kurzer test", "x"],
        ["a cat sat on a mat", None, None],
    ]
    assert bleu(HYPS, multi) == pytest.approx(sacrebleu.corpus_bleu(HYPS, streams).score)
    assert chrf(HYPS, multi) == pytest.approx(sacrebleu.corpus_chrf(HYPS, streams).score)
    zh_h, zh_r = ["我们今天去公园"], ["我们明天去公园"]
    assert bleu(zh_h, zh_r, tokenize="zh") == pytest.approx(
        sacrebleu.corpus_bleu(zh_h, [zh_r], tokenize="zh").score
    )


def test_translation_bad_inputs() -> None:
    with pytest.raises(MetricInputError, match=r"got 3 predictions and 2 references"):
        chrf(HYPS, REFS_MT[:2])
    with pytest.raises(MetricInputError, match="reference 1"):
        bleu(HYPS, ["a", [], "c"])
    with pytest.raises(MetricInputError, match="prediction 0"):
        chrf([None, "a", "b"], REFS_MT)  # type: ignore[list-item]


# --------------------------------------------------------------------------- evaluate modules


def test_bundled_modules_are_listed_and_unknown_names_fail() -> None:
    assert available_metrics() == ["intent_classification", "slurp", "speech_translation"]
    for name in available_metrics():
        assert (metric_path(name) / f"{name}.py").is_file()
        assert metric_path(name).parent == MODULES_DIR
    with pytest.raises(
        ValueError, match=r"unknown metric 'accuracy'.*intent_classification, slurp"
    ):
        load_metric("accuracy")


def test_intent_module_loads_offline_and_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(metric_path("intent_classification")))
    # evaluate runs a copy from its modules cache; the absolute hf_quads import resolves there
    assert Path(inspect.getfile(type(metric))).parent != metric_path("intent_classification")
    assert metric.compute(predictions=PREDS, references=REFS) == pytest.approx(
        classification_scores(PREDS, REFS)
    )
    ids = {"a": 0, "b": 1, "c": 2, "d": 3}
    out = load_metric("intent_classification").compute(
        predictions=[ids[p] for p in PREDS], references=[ids[r] for r in REFS], labels=[0, 1, 2]
    )
    assert out == pytest.approx({"accuracy": 4 / 7, "macro_f1": 0.6})
    with pytest.raises(ValueError, match=r"\(7\).*\(6\)"):
        metric.compute(predictions=PREDS, references=REFS[:6])


def test_slurp_module_matches_pure_function() -> None:
    gold = [
        {
            "scenario": "alarm",
            "action": "set",
            "entities": [{"type": "time", "filler": "seven am"}],
        },
        {"scenario": "qa", "action": "factoid", "entities": []},
        {
            "scenario": "play",
            "action": "music",
            "entities": [{"type": "artist_name", "filler": "queen"}],
        },
    ]
    pred = [
        {
            "scenario": "alarm",
            "action": "set",
            "entities": [{"type": "time", "filler": "seven a m"}],
        },
        {"scenario": "qa", "action": "definition", "entities": [{"type": "date", "filler": "x"}]},
        {"scenario": "play", "action": "music", "entities": []},
    ]
    metric = load_metric("slurp")
    assert metric.compute(predictions=pred, references=gold) == pytest.approx(
        slurp_scores(gold, pred)
    )
    assert metric.compute(predictions=pred, references=gold, average="macro") == pytest.approx(
        slurp_scores(gold, pred, average="macro")
    )


def test_translation_module_matches_pure_function() -> None:
    metric = load_metric("speech_translation")
    assert metric.compute(predictions=HYPS, references=REFS_MT) == pytest.approx(
        translation_scores(HYPS, REFS_MT)
    )
    multi = [[r, r.upper()] for r in REFS_MT]
    assert metric.compute(predictions=HYPS, references=multi) == pytest.approx(
        translation_scores(HYPS, multi)
    )


# --------------------------------------------------------------------------- compute_metrics


def _eval_prediction(predictions, label_ids):
    from transformers import EvalPrediction

    return EvalPrediction(predictions=predictions, label_ids=label_ids)


def test_intent_compute_metrics_takes_argmax_of_first_output() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    pred_ids = np.array([0, 0, 1, 1, 2, 2, 3])
    logits = np.eye(4)[pred_ids] * 5.0 - 1.0
    hidden = np.zeros((7, 2, 8))
    compute = make_compute_metrics("intent")
    out = compute(_eval_prediction((logits, hidden), labels))
    assert out == pytest.approx({"accuracy": 4 / 7, "macro_f1": 0.45})
    assert all(type(v) is float for v in out.values())
    # with label_names, macro-F1 averages over all classes (here class 4 counts as 0)
    names = ["a", "b", "c", "d", "e"]
    out = make_compute_metrics("intent", label_names=names)(_eval_prediction(logits, labels))
    assert out["macro_f1"] == pytest.approx(1.8 / 5)
    with pytest.raises(MetricInputError, match="class id 3, outside the 3 label_names"):
        make_compute_metrics("intent", label_names=names[:3])(_eval_prediction(logits, labels))


def test_slurp_compute_metrics_splits_scenario_and_action() -> None:
    names = ["alarm_set", "alarm_query", "audio_volume_mute", "play_music"]
    labels = np.array([0, 1, 2, 3])
    pred_ids = np.array([0, 0, 2, 2])  # alarm_query -> alarm_set, play_music -> audio_volume_mute
    logits = np.eye(4)[pred_ids]
    out = make_compute_metrics("slurp", label_names=names)(_eval_prediction(logits, labels))
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["scenario_accuracy"] == pytest.approx(0.75)
    assert out["action_accuracy"] == pytest.approx(0.5)  # set != query, volume_mute != music
    assert set(out) == {"accuracy", "macro_f1", "scenario_accuracy", "action_accuracy"}


def _word_tokenizer():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "</s>", "<unk>", "das", "ist", "gut", "hallo", "welt", "schön"]
    backend = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def test_translation_compute_metrics_decodes_and_replaces_minus_100() -> None:
    tokenizer = _word_tokenizer()
    # generated ids, padded by Trainer with -100; labels padded with -100
    predictions = np.array([[3, 4, 5, 1, -100], [6, 7, 1, -100, -100]])
    labels = np.array([[3, 4, 5, 1, -100], [6, 8, 7, 1, -100]])
    compute = make_compute_metrics("translation", tokenizer=tokenizer)
    out = compute(_eval_prediction(predictions, labels))
    expected = translation_scores(
        ["das ist gut", "hallo welt"], ["das ist gut", "hallo schön welt"]
    )
    assert out == pytest.approx(expected)
    # logits instead of ids are argmaxed
    logits = np.eye(9)[np.where(predictions == -100, 0, predictions)]
    assert compute(_eval_prediction((logits,), labels)) == pytest.approx(expected)


def test_make_compute_metrics_argument_errors() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        make_compute_metrics("asr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the tokenizer"):
        make_compute_metrics("translation")
    with pytest.raises(ValueError, match="needs label_names"):
        make_compute_metrics("slurp")
    with pytest.raises(MetricInputError, match=r"got 3 predictions and 2 references"):
        make_compute_metrics("intent")(_eval_prediction(np.zeros((3, 4)), np.zeros(2)))
