"""Synthetic speech corpora through espeak-ng (the pip-installed ``espeakng-loader`` build).

Two corpora, both in the layout of a real dataset so the real loaders read them:

- :func:`synthesize_fsc_corpus`: Fluent Speech Commands layout, the 31 FSC intents
  with eight hand-written phrasings each (:data:`FSC_PHRASINGS`);
- :func:`synthesize_st_corpus`: CoVoST 2 layout, English commands with hand-written
  German translations (:data:`ST_SENTENCE_PAIRS`).

Speakers are espeak-ng voice x variant x rate x pitch combinations; the splits are
speaker-disjoint and the validation and test speakers use variants never heard in
training. Training speakers also speak with random voice effects over their variant
(:mod:`.voice_effects`: formants, breath, echo, ...), so what a model learns is
speech rather than the training voices. Everything follows from the seed: the same seed gives byte-identical
files whatever the number of worker processes. ``hf-quads data synth`` is the
command-line front end.
"""

from .corpus import (
    DEFAULT_PHRASINGS_PER_INTENT,
    DEFAULT_SENTENCES_PER_SPEAKER,
    DEFAULT_SPEAKERS,
    DEFAULT_VOICE_EFFECTS,
    MARKER_FILE,
    SPEAKERS_FILE,
    ST_SPLIT_FILES,
    CorpusPlan,
    CorpusStats,
    PlannedUtterance,
    SynthConfigError,
    ensure_fsc_corpus,
    plan_fsc_corpus,
    plan_st_corpus,
    read_speakers,
    synthesize_fsc_corpus,
    synthesize_st_corpus,
)
from .espeak import (
    ENGLISH_VOICES,
    Espeak,
    EspeakError,
    UnknownVoiceError,
    list_variants,
    variant_overlay,
)
from .fsc_phrasings import FSC_PHRASINGS
from .speakers import SPLITS, VARIANT_FAMILIES, Speaker, partition_variants
from .st_phrasings import ST_SENTENCE_PAIRS
from .voice_effects import VoiceEffects, add_voice_effects, apply_voice_effects, draw_voice_effects

__all__ = [
    "DEFAULT_PHRASINGS_PER_INTENT",
    "DEFAULT_SENTENCES_PER_SPEAKER",
    "DEFAULT_SPEAKERS",
    "DEFAULT_VOICE_EFFECTS",
    "ENGLISH_VOICES",
    "FSC_PHRASINGS",
    "MARKER_FILE",
    "SPEAKERS_FILE",
    "SPLITS",
    "ST_SENTENCE_PAIRS",
    "ST_SPLIT_FILES",
    "VARIANT_FAMILIES",
    "CorpusPlan",
    "CorpusStats",
    "Espeak",
    "EspeakError",
    "PlannedUtterance",
    "Speaker",
    "SynthConfigError",
    "UnknownVoiceError",
    "VoiceEffects",
    "add_voice_effects",
    "apply_voice_effects",
    "draw_voice_effects",
    "ensure_fsc_corpus",
    "list_variants",
    "partition_variants",
    "plan_fsc_corpus",
    "plan_st_corpus",
    "read_speakers",
    "synthesize_fsc_corpus",
    "synthesize_st_corpus",
    "variant_overlay",
]
