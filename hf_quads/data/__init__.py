"""Speech data: audio decoding, dataset loaders for the real layouts, synthetic corpora."""

from .audio import (
    ON_THE_FLY_BYTES,
    TRIM_ATTRIBUTE,
    feature_map_fn,
    featurize,
    fixed_feature_bytes,
    load_audio,
    prepare_features,
    set_silence_trim,
    trim_leading_silence,
)
from .collate import IGNORE_INDEX, SpeechSeq2SeqCollator
from .fsc import FSC_INTENT_TRIPLES, FSC_INTENTS, fsc_intent_name, load_fsc
from .slurp import load_slurp, slurp_intent
from .subset import subset
from .translation import load_covost, load_mustc

__all__ = [
    "FSC_INTENTS",
    "FSC_INTENT_TRIPLES",
    "IGNORE_INDEX",
    "ON_THE_FLY_BYTES",
    "TRIM_ATTRIBUTE",
    "SpeechSeq2SeqCollator",
    "feature_map_fn",
    "featurize",
    "fixed_feature_bytes",
    "fsc_intent_name",
    "load_audio",
    "load_covost",
    "load_fsc",
    "load_mustc",
    "load_slurp",
    "prepare_features",
    "set_silence_trim",
    "slurp_intent",
    "subset",
    "trim_leading_silence",
]
