"""Synthetic speakers: an espeak-ng voice x variant x rate x pitch, split by variant.

A speaker is one combination of an English language voice (accent: ``en-us``,
``en`` = British, ``en-029``, ...), a variant from ``espeak-ng-data/voices/!v``
(``m3``, ``f2``, ``klatt4``, ``robosoft``...), a speaking rate and a pitch. The
variants are partitioned into three disjoint sets, one per split, so the
validation and the test speakers both speak with variants never heard in
training: accuracy on them measures generalisation to new voices. The accents
are shared by all splits. The partition is stratified over variant families
(male, female, Klatt, robotic/echo, breathy) so every family reaches every
split, and it depends on the seed. Training speakers may also carry random
voice effects over their variant (:mod:`.voice_effects`).
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .espeak import ENGLISH_VOICES, UnknownVoiceError, list_variants

if TYPE_CHECKING:
    from .voice_effects import VoiceEffects

#: Split names, in the order corpora list them (``validation`` is FSC's ``valid`` / CoVoST's ``dev``).
SPLITS: tuple[str, ...] = ("train", "validation", "test")

#: The espeak-ng variants used by default, grouped in families for a stratified split.
VARIANT_FAMILIES: dict[str, tuple[str, ...]] = {
    "male": (
        "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "AnxiousAndy",
        "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco",
        "Mario", "Michael", "Mike", "Mr serious", "Nguyen", "Storm", "Tweaky", "antonio",
        "boris", "croak", "ed", "grandpa", "gustave", "ian", "iven", "iven2", "iven3",
        "iven4", "john", "kaukovalta", "marcelo", "max", "michel", "miguel", "norbert",
        "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "travis", "victor",
    ),
    "female": (
        "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty",
        "belinda", "grandma", "linda", "shelby", "steph", "steph2", "steph3", "zac",
    ),
    "klatt": (
        "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "adam", "benjamin",
        "david", "edward", "edward2", "mike2", "Reed", "announcer",
    ),
    "robotic": (
        "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6",
        "robosoft7", "robosoft8", "UniRobot", "anikaRobot", "RicishayMax", "RicishayMax2",
        "RicishayMax3", "Demonic",
    ),
    "breathy": ("whisper", "whisperf", "caleb"),
}  # fmt: skip

#: Variants left out of the default pool, with the reason.
EXCLUDED_VARIANTS: dict[str, str] = {
    "fast": "sounds exactly like the plain voice (it only changes rates above 450 wpm)",
}

#: Share of each variant family that goes to the validation and to the test split.
VALID_FRACTION = 0.15
TEST_FRACTION = 0.2

#: Ranges the per-speaker settings are drawn from (inclusive).
RATE_RANGE = (130, 200)  # words per minute
PITCH_RANGE = (30, 70)  # espeak's 0-100 base pitch
INTONATION_RANGE = (30, 80)  # espeak's 0-100 pitch range

_ID_ALPHABET = string.ascii_letters + string.digits


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit integer from ``seed`` and labels, stable across runs, processes and platforms."""
    digest = hashlib.blake2b(repr((int(seed), *parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def seeded_random(seed: int, *parts: object) -> random.Random:
    """A ``random.Random`` for one purpose (``parts`` label it) under ``seed``."""
    return random.Random(derive_seed(seed, *parts))


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker."""

    speaker_id: str  # FSC-like: 16 random letters and digits
    split: str
    voice: str  # language voice (accent), e.g. "en-us"
    variant: str  # file in espeak-ng-data/voices/!v, e.g. "m3"
    rate: int  # words per minute
    pitch: int  # 0-100
    pitch_range: int  # 0-100
    effects: VoiceEffects | None = None  # random voice effects over the variant (training only)

    @property
    def espeak_variant(self) -> str:
        """The variant file spoken with: ``variant``, or one made for this speaker's effects."""
        return f"hfq-{self.speaker_id}" if self.effects else self.variant

    @property
    def espeak_voice(self) -> str:
        """The name for ``espeak_SetVoiceByName``: ``"<voice>+<espeak_variant>"``."""
        return f"{self.voice}+{self.espeak_variant}"

    @property
    def settings(self) -> tuple[str, str, int, int, int]:
        """What makes the speaker sound as it does (distinct for every speaker of a corpus)."""
        return (self.voice, self.variant, self.rate, self.pitch, self.pitch_range)


def variant_family(variant: str) -> str:
    """The family of a variant (``"other"`` for ones outside :data:`VARIANT_FAMILIES`)."""
    for family, members in VARIANT_FAMILIES.items():
        if variant in members:
            return family
    return "other"


def resolve_voices(voices: Iterable[str] | None = None) -> tuple[str, ...]:
    """Check and normalise language voice names (default: all of :data:`ENGLISH_VOICES`)."""
    if voices is None:
        return ENGLISH_VOICES
    out: list[str] = []
    for name in voices:
        key = name.strip().lower()
        if not key:
            continue
        if key not in ENGLISH_VOICES:
            hint = " (espeak-ng calls British English 'en')" if key == "en-gb" else ""
            raise UnknownVoiceError(
                f"unknown voice {name!r}{hint}; choose from {', '.join(ENGLISH_VOICES)}"
            )
        if key not in out:
            out.append(key)
    if not out:
        raise UnknownVoiceError(f"no voice given; choose from {', '.join(ENGLISH_VOICES)}")
    return tuple(out)


def resolve_variants(variants: Iterable[str] | None = None) -> tuple[str, ...]:
    """Check variant names against the installed ``voices/!v`` (default: the curated pool).

    At least three are needed: one per split.
    """
    available = set(list_variants())
    if variants is None:
        out = [v for members in VARIANT_FAMILIES.values() for v in members if v in available]
    else:
        out = []
        for name in variants:
            name = name.strip()
            if not name:
                continue
            if name not in available:
                raise UnknownVoiceError(
                    f"unknown espeak-ng variant {name!r}; choose from {', '.join(sorted(available))}"
                )
            if name not in out:
                out.append(name)
    if len(out) < len(SPLITS):
        raise UnknownVoiceError(
            f"need at least {len(SPLITS)} variants (train, validation and test use disjoint "
            f"ones), got {len(out)}: {out}"
        )
    return tuple(out)


def partition_variants(variants: Sequence[str], seed: int) -> dict[str, tuple[str, ...]]:
    """Split ``variants`` into disjoint train / validation / test sets, stratified by family.

    Each family gives about :data:`TEST_FRACTION` of its members to test and
    :data:`VALID_FRACTION` to validation (at least one to each where the family has
    three or more), the rest to train. Every split receives at least one variant.
    """
    families: dict[str, list[str]] = {}
    for v in variants:
        families.setdefault(variant_family(v), []).append(v)
    parts: dict[str, list[str]] = {s: [] for s in SPLITS}
    for family in sorted(families):
        members = sorted(families[family])
        seeded_random(seed, "variants", family).shuffle(members)
        n = len(members)
        n_test = max(1, round(n * TEST_FRACTION)) if n >= 3 else 0
        n_valid = max(1, round(n * VALID_FRACTION)) if n >= 3 else 0
        parts["test"] += members[:n_test]
        parts["validation"] += members[n_test : n_test + n_valid]
        parts["train"] += members[n_test + n_valid :]
    # Tiny pools (families of one or two): make sure no split is left without a variant.
    for split in ("test", "validation"):
        if not parts[split]:
            donor = max(parts, key=lambda s: len(parts[s]))
            parts[split].append(parts[donor].pop())
    return {s: tuple(parts[s]) for s in SPLITS}


def _stratified_order(variants: Sequence[str], seed: int, split: str) -> list[str]:
    """Variants interleaved so that any prefix mixes the families in proportion."""
    rng = seeded_random(seed, "variant-order", split)
    families: dict[str, list[str]] = {}
    for v in sorted(variants):
        families.setdefault(variant_family(v), []).append(v)
    keyed = []
    for family in sorted(families):
        members = families[family]
        rng.shuffle(members)
        for i, v in enumerate(members):
            keyed.append(((i + rng.random()) / len(members), v))
    return [v for _, v in sorted(keyed)]


def make_speakers(
    split: str,
    count: int,
    *,
    variants: Sequence[str],
    voices: Sequence[str],
    seed: int,
    taken_ids: set[str] | None = None,
    taken_settings: set[tuple] | None = None,
) -> list[Speaker]:
    """``count`` distinct speakers for ``split``, using only ``variants``.

    Variants are dealt out so that speakers get different ones before any repeats;
    accents cycle through ``voices``; rate, pitch and pitch range are drawn per
    speaker. ``taken_ids`` / ``taken_settings`` (updated in place) keep ids and
    settings unique across the splits of one corpus.
    """
    if count < 1:
        raise ValueError(f"{split}: need at least one speaker, got {count}")
    taken_ids = set() if taken_ids is None else taken_ids
    taken_settings = set() if taken_settings is None else taken_settings
    order = _stratified_order(variants, seed, split)
    accents = list(voices)
    seeded_random(seed, "accents", split).shuffle(accents)
    speakers = []
    for j in range(count):
        rng = seeded_random(seed, "speaker", split, j)
        variant = order[j % len(order)]
        voice = accents[(j + j // len(accents)) % len(accents)]
        while True:
            settings = (
                voice,
                variant,
                rng.randint(*RATE_RANGE),
                rng.randint(*PITCH_RANGE),
                rng.randint(*INTONATION_RANGE),
            )
            if settings not in taken_settings:
                break
        while True:
            speaker_id = "".join(rng.choice(_ID_ALPHABET) for _ in range(16))
            if speaker_id not in taken_ids:
                break
        taken_settings.add(settings)
        taken_ids.add(speaker_id)
        speakers.append(Speaker(speaker_id, split, *settings))
    return speakers
