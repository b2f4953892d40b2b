"""``hf-quads data synth``: write the synthetic speech corpus the demos train on."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal

HELP = "synthesise a speech corpus with espeak-ng (FSC layout, or CoVoST En->De with --task st)"

DESCRIPTION = """\
Synthesise a speech corpus with espeak-ng (the pip-installed espeakng-loader build;
no system espeak needed).

--task fsc (default) writes the Fluent Speech Commands layout: data/{train,valid,test}_data.csv
and wavs/speakers/<speakerId>/<uuid>.wav, 31 intents x 8 phrasings. --task st writes the
CoVoST 2 layout: covost_v2.en_de.{train,dev,test}.tsv and clips/, English commands with
German translations. Clips are 16 kHz mono 16-bit WAV.

Speakers are espeak voice x variant x rate x pitch combinations; splits are
speaker-disjoint and validation and test speakers use variants never heard in training.
Training speakers also get random voice effects (formants, breath, echo, consonant level,
roughness, flutter, tone) over their variant, so a model learns speech rather than the
training voices; --voice_effects 0 turns that off.
The same --seed gives byte-identical files for any --num-workers. The defaults give
107 speakers (75/16/16): 9,951 clips for fsc, 6,420 for st.
"""


@dataclass
class Arguments:
    """Options of ``hf-quads data synth``."""

    out: str = field(
        metadata={
            "help": "output directory (new, empty, or an earlier synthetic corpus, which is replaced)"
        }
    )
    task: Literal["fsc", "st"] = field(
        default="fsc",
        metadata={"help": "fsc: spoken-intent corpus (FSC layout); st: En->De (CoVoST layout)"},
    )
    seed: int = field(default=0, metadata={"help": "seed for speakers, assignment and audio"})
    snr_db: float | None = field(
        default=None,
        metadata={"help": "add white noise at this signal-to-noise ratio in dB (-10 to 100)"},
    )
    num_workers: int = field(
        default=2, metadata={"help": "worker processes (0: synthesise in this process)"}
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "write into a non-empty directory that holds no earlier corpus (its data/ "
            "and wavs/, or clips/ and the TSVs for st, are replaced; other files are kept)"
        },
    )
    train_speakers: int = field(default=75, metadata={"help": "speakers in the train split"})
    valid_speakers: int = field(default=16, metadata={"help": "speakers in the validation split"})
    test_speakers: int = field(default=16, metadata={"help": "speakers in the test split"})
    phrasings_per_intent: int = field(
        default=3,
        metadata={"help": "fsc: phrasings of each of the 31 intents every speaker says (1-8)"},
    )
    sentences_per_speaker: int = field(
        default=60, metadata={"help": "st: sentence pairs every speaker reads"}
    )
    voices: str | None = field(
        default=None,
        metadata={
            "help": "comma-separated espeak language voices (accents) to use; default all of "
            "en-us,en,en-029,en-gb-scotland,en-gb-x-rp,en-us-nyc,en-gb-x-gbclan,en-gb-x-gbcwmd"
        },
    )
    variants: str | None = field(
        default=None,
        metadata={
            "help": "comma-separated espeak variants (voices/!v) to split between train, "
            "validation and test; default a curated pool of about 100"
        },
    )
    voice_effects: float = field(
        default=1.0,
        metadata={
            "help": "share of training speakers (0-1) given random voice effects over their "
            "variant; validation and test speakers never are"
        },
    )
    quiet: bool = field(default=False, metadata={"help": "no progress bar"})


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def run(args: Arguments) -> int:
    """Synthesise the corpus and print its statistics."""
    from ..data.synth import synthesize_fsc_corpus, synthesize_st_corpus
    from ..errors import HfQuadsError

    common = {
        "seed": args.seed,
        "snr_db": args.snr_db,
        "num_workers": args.num_workers,
        "train_speakers": args.train_speakers,
        "valid_speakers": args.valid_speakers,
        "test_speakers": args.test_speakers,
        "voices": _split_list(args.voices),
        "variants": _split_list(args.variants),
        "voice_effects": args.voice_effects,
        "overwrite": args.overwrite,
        "progress": not args.quiet,
    }
    try:
        if args.task == "fsc":
            stats = synthesize_fsc_corpus(
                args.out, phrasings_per_intent=args.phrasings_per_intent, **common
            )
        else:
            stats = synthesize_st_corpus(
                args.out, sentences_per_speaker=args.sentences_per_speaker, **common
            )
    except HfQuadsError as err:
        print(f"hf-quads data synth: error: {err}", file=sys.stderr)
        return 2
    print(stats.summary())
    return 0
