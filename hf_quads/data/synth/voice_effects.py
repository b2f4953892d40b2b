"""Random voice effects for training speakers: domain randomisation over espeak-ng's voice.

The validation and test speakers speak with espeak variants never heard in
training, and some of those variants differ from every training voice by more
than pitch and rate: they whisper, echo, or have their formants moved far up.
A teacher that only ever heard the training variants learns them, not speech.
So each training speaker may get a random draw of espeak's voice attributes
(formant frequencies, breathiness and voicing, echo, consonant level, roughness,
flutter, spectral tone) on top of its own variant, written as a new variant file
that only this speaker uses. Validation and test speakers are never changed.

The ranges are moderate on purpose, and were chosen on the validation split:
wider ones (formants 0.75-1.6x on all nine, voicing down to 0, echoes up to
300 ms at full amplitude, roughness to 7) made the teacher worse on validation
than no effects at all, as much of the training audio stopped sounding like
speech (``benchmarks/demo_teacher.py`` measures the teacher with and without).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .speakers import Speaker, seeded_random

#: Probability that a drawn speaker gets each effect (independently).
EFFECT_PROBABILITY: dict[str, float] = {
    "formants": 0.5,
    "breath": 0.3,
    "echo": 0.3,
    "consonants": 0.2,
    "roughness": 0.2,
    "flutter": 0.2,
    "tone": 0.2,
}
#: Formants 1-5 move: one scale for all (vocal-tract length), then a jitter each.
SCALED_FORMANTS = (1, 2, 3, 4, 5)
FORMANT_SCALE_RANGE = (0.85, 1.45)
FORMANT_JITTER = 0.05
#: Breath noise (espeak's 0-100 level on the lowest formants) and the voicing kept (%).
BREATH_RANGE = (10, 80)
VOICING_RANGE = (10, 70)
#: Echo delay (ms) and amplitude (%).
ECHO_DELAY_RANGE = (20, 240)
#: espeak-ng's echo buffer holds 5,500 samples, 249 ms at 22,050 Hz, and it does not
#: check: a longer delay overruns the buffer and corrupts the engine's other state.
MAX_ECHO_DELAY_MS = 249
ECHO_AMPLITUDE_RANGE = (10, 90)
#: Unvoiced consonant amplitude (%), roughness (espeak's 0-7), pitch flutter.
CONSONANTS_RANGE = (20, 100)
ROUGHNESS_RANGE = (1, 5)
FLUTTER_RANGE = (5, 30)
#: Tone: amplitude at each of these frequencies (Hz), on espeak's 0-255 scale.
TONE_FREQUENCIES = (600, 1200, 2000, 3000)
TONE_AMPLITUDE_RANGE = (20, 255)

#: Breath levels of formants 1-6, relative to the drawn level (more noise low down).
_BREATH_PROFILE = (1.0, 1.0, 0.7, 0.5, 0.2, 0.1)
_BREATH_WIDTHS = "150 150 200 200 400 400"
_FORMANT_LINE = re.compile(r"\s*formant\s+(\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)")


@dataclass(frozen=True)
class VoiceEffects:
    """espeak voice attributes laid over a variant; ``None`` leaves the variant's own."""

    formants: tuple[int, ...] | None = None  # % of the variant's frequency, SCALED_FORMANTS
    breath: int | None = None  # breath-noise level (0-100)
    voicing: int | None = None  # % of voiced amplitude kept (set with breath)
    echo: tuple[int, int] | None = None  # (delay ms, amplitude %)
    consonants: int | None = None  # % amplitude of unvoiced consonants
    roughness: int | None = None  # 0-7
    flutter: int | None = None  # pitch flutter
    tone: tuple[int, ...] | None = None  # amplitude at each of TONE_FREQUENCIES

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in self.__dataclass_fields__)

    def describe(self) -> str:
        """A compact ``key=value`` form for ``speakers.csv`` (``""`` when there is none)."""
        parts = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is not None:
                text = "/".join(map(str, value)) if isinstance(value, tuple) else str(value)
                parts.append(f"{name}={text}")
        return " ".join(parts)


def draw_voice_effects(rng: random.Random) -> VoiceEffects:
    """Draw each effect with its :data:`EFFECT_PROBABILITY`, its value uniformly in its range."""
    fields: dict[str, object] = {}
    if rng.random() < EFFECT_PROBABILITY["formants"]:
        scale = rng.uniform(*FORMANT_SCALE_RANGE)
        fields["formants"] = tuple(
            round(100 * scale * rng.uniform(1 - FORMANT_JITTER, 1 + FORMANT_JITTER))
            for _ in SCALED_FORMANTS
        )
    if rng.random() < EFFECT_PROBABILITY["breath"]:
        fields["breath"] = rng.randint(*BREATH_RANGE)
        fields["voicing"] = rng.randint(*VOICING_RANGE)
    if rng.random() < EFFECT_PROBABILITY["echo"]:
        fields["echo"] = (rng.randint(*ECHO_DELAY_RANGE), rng.randint(*ECHO_AMPLITUDE_RANGE))
    if rng.random() < EFFECT_PROBABILITY["consonants"]:
        fields["consonants"] = rng.randint(*CONSONANTS_RANGE)
    if rng.random() < EFFECT_PROBABILITY["roughness"]:
        fields["roughness"] = rng.randint(*ROUGHNESS_RANGE)
    if rng.random() < EFFECT_PROBABILITY["flutter"]:
        fields["flutter"] = rng.randint(*FLUTTER_RANGE)
    if rng.random() < EFFECT_PROBABILITY["tone"]:
        fields["tone"] = tuple(rng.randint(*TONE_AMPLITUDE_RANGE) for _ in TONE_FREQUENCIES)
    return VoiceEffects(**fields)  # type: ignore[arg-type]


def apply_voice_effects(variant_text: str, effects: VoiceEffects) -> str:
    """The text of an espeak variant file: ``variant_text`` with ``effects`` laid over it.

    espeak reads a variant file top to bottom and a later line overrides an earlier
    one, so the effects are appended. Formant frequencies scale the variant's own
    (which keeps its formant strengths and widths); the variant's ``name`` line is
    dropped, as the new file is a different voice.
    """
    lines = [
        line
        for line in variant_text.splitlines()
        if line.strip() and not line.strip().startswith("name")
    ]
    extra = []
    if effects.formants is not None:
        own: dict[int, tuple[int, int, int]] = {}
        for line in lines:
            m = _FORMANT_LINE.match(line)
            if m:
                own[int(m.group(1))] = (int(m.group(2)), int(m.group(3)), int(m.group(4)))
        for n, percent in zip(SCALED_FORMANTS, effects.formants, strict=True):
            freq, height, width = own.get(n, (100, 100, 100))
            extra.append(f"formant {n} {round(freq * percent / 100)} {height} {width}")
    if effects.breath is not None:
        levels = " ".join(str(round(effects.breath * k)) for k in _BREATH_PROFILE)
        extra += [f"breath {levels}", f"breathw {_BREATH_WIDTHS}"]
    if effects.voicing is not None:
        extra.append(f"voicing {effects.voicing}")
    if effects.echo is not None:
        if not 0 <= effects.echo[0] <= MAX_ECHO_DELAY_MS:
            raise ValueError(
                f"echo delay {effects.echo[0]} ms: espeak-ng takes 0 to {MAX_ECHO_DELAY_MS} ms"
            )
        extra.append(f"echo {effects.echo[0]} {effects.echo[1]}")
    if effects.consonants is not None:
        extra.append(f"consonants {effects.consonants}")
    if effects.roughness is not None:
        extra.append(f"roughness {effects.roughness}")
    if effects.flutter is not None:
        extra.append(f"flutter {effects.flutter}")
    if effects.tone is not None:
        pairs = zip(TONE_FREQUENCIES, effects.tone, strict=True)
        extra.append("tone " + " ".join(f"{freq} {amp}" for freq, amp in pairs))
    return "\n".join(lines + extra) + "\n"


def add_voice_effects(speakers: Sequence[Speaker], share: float, seed: int) -> list[Speaker]:
    """``speakers`` with a seeded share of them given random :class:`VoiceEffects`.

    Each speaker's draw depends only on ``seed`` and its id, so it stays the same
    whatever ``share`` picks for the others.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"voice_effects must be a share between 0 and 1, got {share!r}")
    out = []
    for sp in speakers:
        rng = seeded_random(seed, "voice-effects", sp.speaker_id)
        chosen = rng.random() < share
        effects = draw_voice_effects(rng)
        out.append(replace(sp, effects=effects) if chosen and effects else sp)
    return out
