"""Random voice effects for training speakers: the draw, the variant file, the overlay, the corpus."""

from __future__ import annotations

import hashlib
import random
import warnings
from pathlib import Path

import numpy as np
import pytest

from hf_quads.data.synth import (
    SPLITS,
    Espeak,
    SynthConfigError,
    ensure_fsc_corpus,
    plan_fsc_corpus,
    plan_st_corpus,
    read_speakers,
    synthesize_fsc_corpus,
)
from hf_quads.data.synth import corpus as corpus_module
from hf_quads.data.synth.espeak import (
    ESPEAK_MAX_VOICES,
    EspeakError,
    list_variants,
    overlay_capacity,
    variant_overlay,
)
from hf_quads.data.synth.voice_effects import (
    BREATH_RANGE,
    ECHO_AMPLITUDE_RANGE,
    ECHO_DELAY_RANGE,
    EFFECT_PROBABILITY,
    FORMANT_JITTER,
    FORMANT_SCALE_RANGE,
    MAX_ECHO_DELAY_MS,
    SCALED_FORMANTS,
    TONE_FREQUENCIES,
    VoiceEffects,
    add_voice_effects,
    apply_voice_effects,
    draw_voice_effects,
)

SMALL = {"train_speakers": 3, "valid_speakers": 1, "test_speakers": 1, "phrasings_per_intent": 1}


# -- the draw ------------------------------------------------------------------------------


def test_draws_are_seeded_in_range_and_as_frequent_as_their_probability():
    draws = [draw_voice_effects(random.Random(i)) for i in range(3000)]
    assert draws[:50] == [draw_voice_effects(random.Random(i)) for i in range(50)]
    lo = 100 * FORMANT_SCALE_RANGE[0] * (1 - FORMANT_JITTER)
    hi = 100 * FORMANT_SCALE_RANGE[1] * (1 + FORMANT_JITTER)
    for e in draws:
        if e.formants is not None:
            assert len(e.formants) == len(SCALED_FORMANTS) and all(
                lo - 1 <= f <= hi + 1 for f in e.formants
            )
        if e.breath is not None:
            assert BREATH_RANGE[0] <= e.breath <= BREATH_RANGE[1] and e.voicing is not None
        if e.echo is not None:
            assert ECHO_DELAY_RANGE[0] <= e.echo[0] <= ECHO_DELAY_RANGE[1]
            assert ECHO_AMPLITUDE_RANGE[0] <= e.echo[1] <= ECHO_AMPLITUDE_RANGE[1]
        if e.tone is not None:
            assert len(e.tone) == len(TONE_FREQUENCIES)
    for name, p in EFFECT_PROBABILITY.items():
        share = np.mean([getattr(e, name) is not None for e in draws])
        assert abs(share - p) < 0.04, (name, share, p)


def test_empty_effects_are_false_and_describe_to_nothing():
    assert not VoiceEffects() and VoiceEffects().describe() == ""
    e = VoiceEffects(echo=(120, 40), breath=30, voicing=20)
    assert e and e.describe() == "breath=30 voicing=20 echo=120/40"


# -- the variant file ----------------------------------------------------------------------


def test_apply_scales_the_variants_formants_and_appends_the_rest():
    base = "language variant\nname Robo\ngender male\nformant 1 90 120 75\necho 40 10\n"
    effects = VoiceEffects(
        formants=(150,) * 5, breath=40, voicing=25, echo=(200, 60), consonants=30, tone=(1, 2, 3, 4)
    )
    text = apply_voice_effects(base, effects)
    lines = text.splitlines()
    assert "name Robo" not in text and "gender male" in lines  # a new voice, same base
    assert "formant 1 135 120 75" in lines  # 90 % x 1.5, its strength and width kept
    assert "formant 2 150 100 100" in lines  # espeak's defaults where the variant has none
    assert not any(ln.startswith(("formant 0", "formant 6")) for ln in lines)
    assert "breath 40 40 28 20 8 4" in lines and "voicing 25" in lines
    assert lines.index("echo 200 60") > lines.index("echo 40 10")  # later lines win in espeak
    assert "consonants 30" in lines
    assert "tone 600 1 1200 2 2000 3 3000 4" in lines
    assert apply_voice_effects(base, VoiceEffects()).splitlines() == [
        ln for ln in base.splitlines() if not ln.startswith("name")
    ]


# -- which speakers --------------------------------------------------------------------------


def test_only_the_chosen_share_of_training_speakers_gets_effects_and_draws_do_not_move():
    plan = plan_fsc_corpus(voice_effects=0.0)
    train = plan.speakers["train"]
    none = add_voice_effects(train, 0.0, seed=0)
    half = add_voice_effects(train, 0.5, seed=0)
    every = add_voice_effects(train, 1.0, seed=0)
    assert none == train
    assert 0.3 < np.mean([bool(s.effects) for s in half]) < 0.7
    assert np.mean([bool(s.effects) for s in every]) > 0.8  # a few draws have no effect at all
    for h, e in zip(half, every, strict=True):
        assert h.effects in (None, e.effects)  # a speaker's draw does not depend on the share
        assert (h.speaker_id, h.variant, h.rate) == (e.speaker_id, e.variant, e.rate)
    with pytest.raises(ValueError, match="share between 0 and 1"):
        add_voice_effects(train, 1.5, seed=0)


def test_plans_change_training_speakers_only():
    for plan_fn in (plan_fsc_corpus, plan_st_corpus):
        plain, varied = plan_fn(voice_effects=0.0), plan_fn()
        assert plain.speakers["validation"] == varied.speakers["validation"]
        assert plain.speakers["test"] == varied.speakers["test"]
        assert plain.variants == varied.variants
        with_fx = [s for s in varied.speakers["train"] if s.effects]
        assert len(with_fx) > 0.8 * len(varied.speakers["train"])
        assert all(s.espeak_voice == f"{s.voice}+hfq-{s.speaker_id}" for s in with_fx)
    with pytest.raises(SynthConfigError, match="voice_effects"):
        plan_fsc_corpus(voice_effects=-0.1)


# -- the espeak-ng data overlay -------------------------------------------------------------


def test_the_longest_echo_keeps_the_engine_sound_across_utterances(tmp_path):
    longest = VoiceEffects(echo=(MAX_ECHO_DELAY_MS, 90))
    data = variant_overlay(tmp_path, {"hfq-e": apply_voice_effects("language variant\n", longest)})
    with Espeak(data) as engine:
        engine.reset()
        sizes = [
            engine.synthesize("turn on the lights", voice="en-us+hfq-e", seed=1, fresh=False).size
            for _ in range(3)
        ]
    # A 250 ms delay overran espeak's echo buffer: the next utterances lost their dictionary.
    assert min(sizes) > 0.9 * max(sizes) > 0
    with pytest.raises(ValueError, match="echo delay 250 ms"):
        apply_voice_effects("", VoiceEffects(echo=(MAX_ECHO_DELAY_MS + 1, 50)))


def test_overlay_adds_variants_that_espeak_speaks(tmp_path):
    echo = apply_voice_effects("language variant\n", VoiceEffects(echo=(240, 90)))
    data = variant_overlay(tmp_path, {"hfq-echo": echo})
    assert set(list_variants(data)) == set(list_variants()) | {"hfq-echo"}
    with Espeak(data) as engine:
        plain = engine.synthesize("turn on the lights", voice="en-us", seed=1)
        echoed = engine.synthesize("turn on the lights", voice="en-us+hfq-echo", seed=1)
    # A 240 ms echo at 90 % leaves energy long after the plain voice has gone quiet.
    assert echoed.size > plain.size
    with pytest.raises(ValueError, match="variant file name"):
        variant_overlay(tmp_path / "bad", {"../x": echo})


def test_an_overlay_filled_to_capacity_still_finds_the_language_voices(tmp_path, capfd):
    capacity = overlay_capacity()
    assert 0 < capacity < ESPEAK_MAX_VOICES
    text = apply_voice_effects("language variant\n", VoiceEffects(roughness=3))
    full = variant_overlay(tmp_path / "full", {f"hfq-{i}": text for i in range(capacity)})
    with Espeak(full) as engine:
        for voice in ("en", "en-us", f"en+hfq-{capacity - 1}"):
            assert engine.synthesize("turn on the lights", voice=voice, seed=1).size > 0
    assert "maximum number" not in capfd.readouterr().err  # espeak-ng listed every voice
    # One more and espeak-ng's voice list would drop voices ("en" among them): refused.
    with pytest.raises(EspeakError, match=f"room for {capacity}"):
        variant_overlay(tmp_path / "over", {f"hfq-{i}": text for i in range(capacity + 1)})


# -- the corpus -----------------------------------------------------------------------------


def _digests(root: Path, split: str) -> dict[str, str]:
    speakers = {k for k, v in read_speakers(root).items() if v["split"] == split}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "wavs" / "speakers").rglob("*.wav"))
        if p.parent.name in speakers
    }


def test_corpus_records_effects_and_changes_only_their_speakers_audio(tmp_path):
    plain = tmp_path / "plain"
    varied = tmp_path / "varied"
    synthesize_fsc_corpus(plain, voice_effects=0.0, num_workers=0, progress=False, **SMALL)
    synthesize_fsc_corpus(varied, num_workers=0, progress=False, **SMALL)
    speakers = read_speakers(varied)
    assert {v["effects"] for k, v in speakers.items() if v["split"] != "train"} == {""}
    assert all(v["effects"] == "" for v in read_speakers(plain).values())
    for split in ("validation", "test"):
        assert _digests(plain, split) == _digests(varied, split)
    a, b = _digests(plain, "train"), _digests(varied, "train")
    changed = {Path(k).parent.name for k in a if a[k] != b[k]}
    assert changed == {k for k, v in speakers.items() if v["effects"]}
    assert changed  # the seed-0 draw gives these three speakers effects
    assert set(SPLITS) == {v["split"] for v in speakers.values()}


def test_more_effect_speakers_than_one_overlay_holds_spread_over_several(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    synthesize_fsc_corpus(whole, num_workers=0, progress=False, **SMALL)
    made: list[int] = []
    real_overlay = corpus_module.variant_overlay
    monkeypatch.setattr(corpus_module, "overlay_capacity", lambda *a: 1)
    monkeypatch.setattr(
        corpus_module,
        "variant_overlay",
        lambda dest, variants, *a: made.append(len(variants)) or real_overlay(dest, variants, *a),
    )
    spread = tmp_path / "spread"
    synthesize_fsc_corpus(spread, num_workers=0, progress=False, **SMALL)
    effects = [v for v in read_speakers(spread).values() if v["effects"]]
    assert made == [1] * len(effects) and len(made) >= 2
    for split in SPLITS:
        assert _digests(whole, split) == _digests(spread, split)


def test_ensure_warns_about_a_corpus_made_with_other_settings(tmp_path):
    out = tmp_path / "c"
    synthesize_fsc_corpus(out, voice_effects=0.0, num_workers=0, progress=False, **SMALL)
    with pytest.warns(UserWarning, match=r"voice_effects: 0.0 there, 1.0 asked"):
        assert ensure_fsc_corpus(out, **SMALL) == out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ensure_fsc_corpus(out, voice_effects=0.0, **SMALL)


def test_out_of_range_shares_are_refused_by_the_demo_and_the_cli(tmp_path, capsys):
    from hf_quads.cli import main
    from hf_quads.recipes.demo import DemoArguments

    with pytest.raises(ValueError, match="voice_effects is a share from 0 to 1"):
        DemoArguments(voice_effects=1.5)
    code = main(["data", "synth", "--out", str(tmp_path / "c"), "--voice_effects", "2"])
    assert code == 2
    assert "voice_effects" in capsys.readouterr().err
    assert not (tmp_path / "c" / "data").exists()
