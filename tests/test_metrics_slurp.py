"""The SLURP scorer (hf_quads.metrics.slurp) against hand-worked numbers and real SLURP records.

Definitions follow the official scorer (pswietojanski/slurp, scripts/evaluation); see
the module docstring of hf_quads.metrics.slurp.
"""

from __future__ import annotations

import copy
import json
from fractions import Fraction

import pytest
from conftest import SLURP_DEVEL

from hf_quads.metrics import (
    MetricInputError,
    SlurpScorer,
    char_distance,
    gold_by_recording,
    gold_entities,
    slurp_example,
    slurp_scores,
    word_distance,
)


def ex(scenario: str, action: str, *entities: tuple[str, str]) -> dict:
    return {
        "scenario": scenario,
        "action": action,
        "entities": [{"type": t, "filler": f} for t, f in entities],
    }


# --------------------------------------------------------------------------- hand-worked example

GOLD = [
    ex("alarm", "set", ("time", "seven am"), ("event_name", "dance class")),
    ex("weather", "query", ("place_name", "new york")),
    ex("play", "music", ("artist_name", "queen"), ("artist_name", "abba")),
    ex("general", "quirky"),
    ex("calendar", "remove", ("date", "friday")),
]
PRED = [
    ex("alarm", "set", ("time", "seven a m"), ("event_name", "dance class")),
    ex("weather", "query", ("place_name", "york"), ("date", "today")),
    ex("play", "radio", ("artist_name", "abba"), ("artist_name", "Queen")),
    ex("general", "quirky"),
    ex("alarm", "remove", ("date", "on friday at noon")),
]

# Labels: scenario wrong in ex 5 (calendar -> alarm): 4/5. Action wrong in ex 3 (music ->
# radio): 4/5. Intent (scenario_action) wrong in ex 3 and ex 5: 3/5.
#
# Exact span F1, per type (TP, FP, FN):
#   time        ex1 "seven a m" != "seven am"           -> (0, 1, 1)
#   event_name  ex1 exact                                -> (1, 0, 0)
#   place_name  ex2 "york" != "new york"                 -> (0, 1, 1)
#   date        ex2 "today" (no gold date) FP; ex5 "on friday at noon" != "friday" FP+FN
#                                                        -> (0, 2, 1)
#   artist_name ex3 "abba" exact; "Queen" != "queen" (case counts) -> (1, 1, 1)
#   total TP=2 FP=5 FN=4: P=2/7, R=2/6, F1=2*2/(2*2+5+4)=4/13.
#   macro: F1 per type = 0, 1, 0, 0, 1/2 -> mean 1.5/5 = 0.3.
#
# Distance F1: a predicted entity whose type has an unmatched gold entity gets TP += 1
# and FP += d, FN += d with d the lowest distance to a gold entity of that type.
# Word distance = word edit distance / number of gold words:
#   ex1 time: [seven, am] -> [seven, a, m]: 1 sub + 1 ins = 2 / 2 = 1.0; event_name 0
#   ex2 place_name: [new, york] -> [york]: 1 del / 2 = 0.5; date: no gold date -> FP += 1
#   ex3 "abba": d(queen)=1, d(abba)=0 -> pairs with "abba", 0; "Queen" vs "queen": 1/1 = 1.0
#   ex5 date: [friday] -> [on, friday, at, noon]: 3 ins / 1 = 3.0 (WER is not capped)
#   TP = 2 + 1 + 2 + 1 = 6; FP = 1 + (0.5 + 1) + 1 + 3 = 6.5; FN = 1 + 0.5 + 1 + 3 = 5.5
#   word F1 = 2*6/(2*6 + 6.5 + 5.5) = 12/24 = 0.5
# Char distance = char Levenshtein / length of the longer string:
#   ex1 "seven am"(8) -> "seven a m"(9): 1 ins -> 1/9
#   ex2 "new york"(8) -> "york"(4): 4 del -> 4/8 = 1/2; date FP += 1
#   ex3 "abba" -> 0; "Queen" vs "queen": 1 sub / 5 = 1/5
#   ex5 "friday"(6) -> "on friday at noon"(17): 11 ins -> 11/17
#   TP = 6; FN = 1/9 + 1/2 + 1/5 + 11/17; FP = FN + 1
# SLU-F1 sums the word and char counts per type, then micro-averages:
#   TP = 12, FP = 6.5 + FP_char, FN = 5.5 + FN_char, F1 = 2TP / (2TP + FP + FN)
F = Fraction
CHAR_FN = F(1, 9) + F(1, 2) + F(1, 5) + F(11, 17)
CHAR_FP = CHAR_FN + 1
EXPECTED = {
    "scenario_accuracy": F(4, 5),
    "action_accuracy": F(4, 5),
    "intent_accuracy": F(3, 5),
    "entity_precision": F(2, 7),
    "entity_recall": F(1, 3),
    "entity_f1": F(4, 13),
    "word_precision": F(6) / F(25, 2),  # 6 / 12.5
    "word_recall": F(6) / F(23, 2),  # 6 / 11.5
    "word_f1": F(1, 2),
    "char_precision": 6 / (6 + CHAR_FP),
    "char_recall": 6 / (6 + CHAR_FN),
    "char_f1": 12 / (12 + CHAR_FP + CHAR_FN),
    "slu_precision": 12 / (12 + F(13, 2) + CHAR_FP),
    "slu_recall": 12 / (12 + F(11, 2) + CHAR_FN),
    "slu_f1": 24 / (24 + F(13, 2) + CHAR_FP + F(11, 2) + CHAR_FN),
}


def test_hand_worked_example_micro() -> None:
    scores = slurp_scores(GOLD, PRED)
    for key, value in EXPECTED.items():
        assert scores[key] == pytest.approx(float(value), rel=1e-12, abs=0), key
    # micro label F1 equals accuracy
    for name in ("scenario", "action", "intent"):
        assert scores[f"{name}_f1"] == pytest.approx(scores[f"{name}_accuracy"], rel=1e-12)
    # decimals, for the reader: char F1 ~ 0.7539, SLU-F1 ~ 0.6013
    assert scores["char_f1"] == pytest.approx(0.753942, abs=1e-6)
    assert scores["slu_f1"] == pytest.approx(0.601258, abs=1e-6)


def test_hand_worked_example_macro() -> None:
    scores = slurp_scores(GOLD, PRED, average="macro")
    # span F1 per type: time 0, event_name 1, place_name 0, date 0, artist_name 1/2
    assert scores["entity_f1"] == pytest.approx(0.3, rel=1e-12)
    # scenario F1 per label (over gold ∪ predicted labels):
    #   alarm TP1 FP1 FN0 -> P 1/2, R 1 -> 2/3; weather, play, general 1; calendar 0
    assert scores["scenario_f1"] == pytest.approx((F(2, 3) + 3) / 5, rel=1e-12)
    # accuracies do not depend on the averaging
    assert scores["intent_accuracy"] == pytest.approx(0.6, rel=1e-12)


def test_per_label_table_counts() -> None:
    scorer = SlurpScorer()
    scorer.add_batch(GOLD, PRED)
    entity = scorer.label_scores("entity")
    assert (entity["date"]["tp"], entity["date"]["fp"], entity["date"]["fn"]) == (0, 2, 1)
    assert (entity["artist_name"]["tp"], entity["artist_name"]["fp"]) == (1, 1)
    word = scorer.label_scores("word")
    assert word["date"]["tp"] == 1
    assert word["date"]["fp"] == pytest.approx(1 + 3.0)
    assert word["date"]["fn"] == pytest.approx(3.0)
    slu = scorer.label_scores("slu")
    assert slu["date"]["tp"] == 2  # word + char
    assert slu["date"]["fp"] == pytest.approx(4.0 + 1 + 11 / 17)
    with pytest.raises(ValueError, match="unknown SLURP metric"):
        scorer.label_scores("bleu")


def test_perfect_predictions_score_one() -> None:
    scores = slurp_scores(GOLD, copy.deepcopy(GOLD))
    assert all(v == 1.0 for v in scores.values()), scores
    assert all(v == 1.0 for v in slurp_scores(GOLD, GOLD, average="macro").values())


# --------------------------------------------------------------------------- distances


def test_word_distance_follows_jiwer() -> None:
    assert word_distance("seven am", "seven a m") == 1.0
    assert word_distance("new york", "york") == 0.5
    assert word_distance("friday", "on friday at noon") == 3.0
    # runs of whitespace collapse, ends are stripped
    assert word_distance("new york", "  new   york ") == 0.0
    # case-sensitive
    assert word_distance("queen", "Queen") == 1.0
    assert word_distance("a b", "") == 1.0
    # empty gold (cannot happen with real spans): 0 against empty, else 1
    assert word_distance("", "") == 0.0
    assert word_distance("", "x") == 1.0


def test_char_distance_is_normalised_levenshtein() -> None:
    assert char_distance("seven am", "seven a m") == pytest.approx(1 / 9)
    assert char_distance("kitten", "sitting") == pytest.approx(3 / 7)
    assert char_distance("queen", "Queen") == pytest.approx(1 / 5)
    assert char_distance("abc", "") == 1.0
    assert char_distance("", "") == 0.0


# --------------------------------------------------------------------------- formats

RECORD = {
    "slurp_id": 1,
    "scenario": "alarm",
    "action": "set",
    "intent": "set",  # the raw field is not used
    "tokens": [{"surface": s} for s in ["wake", "me", "at", "Seven", "AM", "for", "yoga"]],
    "entities": [{"span": [3, 4], "type": "time"}, {"span": [6], "type": "event_name"}],
    "recordings": [{"file": "audio-1.flac"}, {"file": "audio-1-headset.flac"}],
}


def test_gold_entities_lowercase_and_join_token_surfaces() -> None:
    assert gold_entities(RECORD) == [
        {"type": "time", "filler": "seven am"},
        {"type": "event_name", "filler": "yoga"},
    ]
    example = slurp_example(RECORD)
    assert example["scenario"] == "alarm" and example["action"] == "set"
    # a SLURP record scores directly against a simplified prediction
    pred = ex("alarm", "set", ("time", "seven am"), ("event_name", "yoga"))
    assert slurp_scores([RECORD], [pred])["slu_f1"] == 1.0
    # predicted fillers are not lower-cased
    upper = ex("alarm", "set", ("time", "Seven AM"), ("event_name", "yoga"))
    assert slurp_scores([RECORD], [upper])["entity_f1"] == 0.5


def test_gold_by_recording_copies_gold_per_file() -> None:
    by_file = gold_by_recording([RECORD])
    assert sorted(by_file) == ["audio-1-headset.flac", "audio-1.flac"]
    assert by_file["audio-1.flac"]["entities"][0]["filler"] == "seven am"


def test_bad_span_names_the_record() -> None:
    bad = copy.deepcopy(RECORD)
    bad["entities"][0]["span"] = [3, 99]
    with pytest.raises(MetricInputError, match="slurp_id=1"):
        gold_entities(bad)


# --------------------------------------------------------------------------- empty entities


def test_no_entities_anywhere_scores_zero_like_the_official_code() -> None:
    gold = [ex("general", "quirky"), ex("qa", "factoid")]
    scores = slurp_scores(gold, copy.deepcopy(gold))
    assert scores["intent_accuracy"] == 1.0
    for name in ("entity", "word", "char", "slu"):
        assert scores[f"{name}_f1"] == 0.0
    assert slurp_scores(gold, gold, average="macro")["slu_f1"] == 0.0


def test_missed_and_spurious_entities() -> None:
    gold = [ex("qa", "factoid", ("person", "ada")), ex("qa", "factoid")]
    pred = [ex("qa", "factoid"), ex("qa", "factoid", ("person", "bob"))]
    scores = slurp_scores(gold, pred)
    # TP 0, FP 1 (bob), FN 1 (ada) for every entity metric
    for name in ("entity", "word", "char", "slu"):
        assert scores[f"{name}_precision"] == 0.0
        assert scores[f"{name}_recall"] == 0.0
        assert scores[f"{name}_f1"] == 0.0
    assert scores["intent_accuracy"] == 1.0


# --------------------------------------------------------------------------- errors


def test_length_mismatch_names_both_lengths() -> None:
    with pytest.raises(MetricInputError, match=r"got 4 predictions and 5 references"):
        slurp_scores(GOLD, PRED[:4])


def test_bad_inputs() -> None:
    with pytest.raises(MetricInputError, match="no 'action'"):
        slurp_scores([{"scenario": "a", "entities": []}], [ex("a", "b")])
    with pytest.raises(MetricInputError, match="'filler'"):
        slurp_scores(
            [ex("a", "b")], [{"scenario": "a", "action": "b", "entities": [{"type": "x"}]}]
        )
    with pytest.raises(MetricInputError, match="no 'entities'"):
        slurp_scores([ex("a", "b")], [{"scenario": "a", "action": "b"}])
    with pytest.raises(MetricInputError, match="nothing to score"):
        slurp_scores([], [])
    with pytest.raises(ValueError, match="average"):
        slurp_scores(GOLD, PRED, average="weighted")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real SLURP devel


@pytest.fixture(scope="module")
def devel_records() -> list[dict]:
    if not SLURP_DEVEL.is_file():
        pytest.skip(f"real SLURP devel annotations not found at {SLURP_DEVEL} (../shared absent)")
    with SLURP_DEVEL.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_devel_against_itself_is_perfect(devel_records: list[dict]) -> None:
    assert len(devel_records) == 2033
    assert len(gold_by_recording(devel_records)) == 8690
    scores = slurp_scores(devel_records, devel_records)
    assert all(v == 1.0 for v in scores.values()), scores


def test_devel_deterministic_corruption(devel_records: list[dict]) -> None:
    """Drop / perturb entities and swap scenarios; every expected count is tallied here."""
    scenarios = sorted({r["scenario"] for r in devel_records})
    gold = [slurp_example(r) for r in devel_records]
    preds = copy.deepcopy(gold)
    n = len(gold)
    total = sum(len(g["entities"]) for g in gold)
    swapped = dropped = 0
    perturbed: list[str] = []  # gold fillers of entities predicted as "<filler> x"
    for i, pred in enumerate(preds):
        ents = pred["entities"]
        types = [e["type"] for e in ents]
        # every 7th record: append a word to the first entity, when its type is unique in
        # the record (so the pairing is unambiguous) and the entity is not dropped below
        if (
            i % 7 == 0
            and ents
            and types.count(types[0]) == 1
            and not (i % 3 == 2 and len(ents) == 1)
        ):
            perturbed.append(ents[0]["filler"])
            ents[0]["filler"] += " x"
        # every 3rd record: drop the last entity
        if i % 3 == 2 and ents:
            ents.pop()
            dropped += 1
        # every 5th record: another scenario
        if i % 5 == 4:
            pred["scenario"] = scenarios[(scenarios.index(pred["scenario"]) + 1) % len(scenarios)]
            swapped += 1
    assert dropped > 300 and swapped > 400 and len(perturbed) > 100

    scores = slurp_scores(gold, preds)
    assert scores["scenario_accuracy"] == pytest.approx((n - swapped) / n, rel=1e-12)
    assert scores["action_accuracy"] == 1.0
    assert scores["intent_accuracy"] == pytest.approx((n - swapped) / n, rel=1e-12)

    # exact span F1: the perturbed ones are FP + FN, the dropped ones FN
    k = len(perturbed)
    tp, fp, fn = total - dropped - k, k, dropped + k
    assert scores["entity_precision"] == pytest.approx(tp / (tp + fp), rel=1e-12)
    assert scores["entity_recall"] == pytest.approx(tp / (tp + fn), rel=1e-12)
    assert scores["entity_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), rel=1e-12)

    # distances of a filler w (m words, c chars) predicted as "w x": one inserted word ->
    # 1/m; two inserted chars -> 2/(c+2). All other predicted entities match exactly.
    d_word = sum(1 / len(w.split()) for w in perturbed)
    d_char = sum(2 / (len(w) + 2) for w in perturbed)
    tp = total - dropped
    word_f1 = 2 * tp / (2 * tp + d_word + d_word + dropped)
    char_f1 = 2 * tp / (2 * tp + d_char + d_char + dropped)
    slu_f1 = 4 * tp / (4 * tp + 2 * (d_word + d_char) + 2 * dropped)
    assert scores["word_f1"] == pytest.approx(word_f1, rel=1e-12)
    assert scores["char_f1"] == pytest.approx(char_f1, rel=1e-12)
    assert scores["slu_f1"] == pytest.approx(slu_f1, rel=1e-12)
    assert scores["word_precision"] == pytest.approx(tp / (tp + d_word), rel=1e-12)
    assert scores["slu_recall"] == pytest.approx(
        2 * tp / (2 * tp + d_word + d_char + 2 * dropped), rel=1e-12
    )
