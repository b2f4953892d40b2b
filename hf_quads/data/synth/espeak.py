"""A small ctypes binding to the espeak-ng library bundled by ``espeakng_loader``.

Only the pieces the synthetic corpora need: load the library, pick a voice
(``"en-us+m3"`` = language voice ``en-us`` with variant ``m3`` from
``espeak-ng-data/voices/!v``), set rate and pitch, and synthesise text to a
22,050 Hz int16 waveform in synchronous mode. No system espeak and no subprocess.

espeak-ng keeps state in C globals that carry over from one utterance to the next
(the glottal phase, the pitch-flutter index, the noise generator), so the same
text spoken twice in one process comes out slightly different. To make every
waveform depend only on its own settings, :meth:`Espeak.synthesize` unloads and
reloads the library before each utterance (``dlclose`` + ``dlopen`` of a private
temporary copy, about a millisecond) and seeds espeak's noise generators (its own
and libc's ``rand``). That is what makes corpora byte-identical whatever the
number of worker processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...errors import HfQuadsError

#: espeak_AUDIO_OUTPUT: synthesise into the callback, return when done.
AUDIO_OUTPUT_SYNCHRONOUS = 2
#: espeak_PARAMETER ids.
ESPEAK_RATE = 1
ESPEAK_VOLUME = 2
ESPEAK_PITCH = 3
ESPEAK_RANGE = 4
ESPEAK_WORDGAP = 7
#: espeak_POSITION_TYPE and text flags.
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
#: espeak_ERROR codes.
EE_OK = 0
EE_NOT_FOUND = 2

#: The English language voices of espeak-ng 1.52 (names ``espeak_SetVoiceByName`` accepts;
#: ``"en"`` is British English, ``"en-gb"`` is refused; ``en-shaw`` is left out: it is
#: for the Shavian alphabet).
ENGLISH_VOICES: tuple[str, ...] = (
    "en-us",
    "en",
    "en-029",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)

#: Sample rate espeak-ng synthesises at.
ESPEAK_SAMPLE_RATE = 22_050
#: How many voice files (``lang/`` and ``voices/``, variants included) espeak-ng lists
#: in full. Its list stops at N_VOICES_LIST (350) less a few: measured with the
#: bundled 245 files, 102 more are all listed and one more prints "maximum number 349
#: of (N_VOICES_LIST = 350 - 1) reached" and drops voices, "en" among them at times.
ESPEAK_MAX_VOICES = 347

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(HfQuadsError, RuntimeError):
    """espeak-ng could not be loaded or failed to synthesise."""


class UnknownVoiceError(HfQuadsError, ValueError):
    """A voice or variant name that espeak-ng does not have."""


def espeak_paths() -> tuple[str, str]:
    """``(library, data_dir)``: the bundled libespeak-ng and its ``espeak-ng-data`` folder."""
    try:
        import espeakng_loader
    except ImportError as err:  # pragma: no cover - it is a dependency
        raise EspeakError(
            "the espeakng-loader package is needed for synthetic corpora: "
            "pip install espeakng-loader"
        ) from err
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def list_variants(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the voice variants in ``espeak-ng-data/voices/!v`` (``m1``, ``f3``, ``klatt``...)."""
    data_dir = Path(data_dir or espeak_paths()[1])
    vdir = data_dir / "voices" / "!v"
    return sorted(p.name for p in vdir.iterdir() if p.is_file())


def overlay_capacity(data_dir: str | os.PathLike | None = None) -> int:
    """How many new variants one :func:`variant_overlay` of ``data_dir`` can hold.

    espeak-ng keeps a list of at most :data:`ESPEAK_MAX_VOICES` voice files; an
    overlay's new variants share it with the folder's own voices.
    """
    source = Path(data_dir or espeak_paths()[1])
    own = sum(1 for sub in ("lang", "voices") for p in (source / sub).rglob("*") if p.is_file())
    return max(0, ESPEAK_MAX_VOICES - own)


def variant_overlay(
    dest: str | os.PathLike, variants: Mapping[str, str], data_dir: str | os.PathLike | None = None
) -> Path:
    """An ``espeak-ng-data`` folder inside ``dest``: ``data_dir``'s plus extra ``variants``.

    ``variants`` maps new variant names to the text of their files. Everything else
    is linked (symlinks; copies where the file system has none), so the overlay
    costs next to nothing; pass the returned folder to :class:`Espeak`. At most
    :func:`overlay_capacity` new variants fit in one overlay; make several for more.
    """
    for name in variants:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise UnknownVoiceError(f"not a usable variant file name: {name!r}")
    source = Path(data_dir or espeak_paths()[1])
    capacity = overlay_capacity(source)
    if len(variants) > capacity:
        raise EspeakError(
            f"{len(variants)} new variants do not fit in one espeak-ng data folder: espeak-ng "
            f"lists at most {ESPEAK_MAX_VOICES} voices and {source} leaves room for {capacity}"
        )
    root = Path(dest) / "espeak-ng-data"
    vdir = root / "voices" / "!v"
    vdir.mkdir(parents=True, exist_ok=True)

    def link(src: Path, dst: Path) -> None:
        try:
            dst.symlink_to(src, target_is_directory=src.is_dir())
        except OSError:
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)

    for entry in source.iterdir():
        if entry.name != "voices":
            link(entry, root / entry.name)
    for entry in (source / "voices").iterdir():
        if entry.name != "!v":
            link(entry, root / "voices" / entry.name)
    for entry in (source / "voices" / "!v").iterdir():
        if entry.name not in variants:
            link(entry, vdir / entry.name)
    for name, text in variants.items():
        (vdir / name).write_text(text, encoding="utf-8")
    return root


def split_voice(voice: str) -> tuple[str, str | None]:
    """``"en-us+m3"`` -> ``("en-us", "m3")``; ``"en"`` -> ``("en", None)``."""
    language, _, variant = voice.partition("+")
    return language, (variant or None)


class Espeak:
    """An espeak-ng engine.

    Each instance loads its own private copy of the library, so instances do not
    share espeak-ng's global state; corpus synthesis uses one per worker process.

    >>> engine = Espeak()
    >>> wave = engine.synthesize("Turn on the lights", voice="en-us+m3", rate=160)
    >>> wave.dtype, engine.sample_rate
    (dtype('int16'), 22050)
    """

    def __init__(self, data_dir: str | os.PathLike | None = None) -> None:
        self._lib_path, bundled = espeak_paths()
        # An espeak-ng-data folder (default: the bundled one); see variant_overlay.
        self._data_dir = str(data_dir or bundled)
        # espeak_Initialize wants the folder that holds espeak-ng-data.
        self._init_path = os.fsencode(str(Path(self._data_dir).parent))
        self._variants = frozenset(list_variants(self._data_dir))
        self._chunks: list[bytes] = []
        self._callback = _SynthCallback(self._on_audio)
        self._dl = _dl_handle_api()
        self._private = True  # load temporary copies of the library (see _open_private_copy)
        self._lib_bytes: bytes | None = None
        self._srand = _libc_srand()
        self._lib: ctypes.CDLL | None = None
        self._known_languages: dict[str, bool] = {}
        self.sample_rate = self._load()

    # -- library lifetime -------------------------------------------------------------
    def _open_private_copy(self) -> ctypes.CDLL:
        """dlopen a fresh temporary copy of the library (unlinked at once).

        A copy is a separate instance with its own globals even when this process
        has loaded libespeak-ng elsewhere (another :class:`Espeak`, another package),
        so unloading it really discards all state. Where a copy cannot be loaded
        (a ``noexec`` temp dir), the bundled file itself is used.
        """
        if self._private:
            if self._lib_bytes is None:
                self._lib_bytes = Path(self._lib_path).read_bytes()
            fd, tmp = tempfile.mkstemp(prefix="hf-quads-espeak-", suffix=".so")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(self._lib_bytes)
                return ctypes.CDLL(tmp)
            except OSError:
                self._private = False
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        try:
            return ctypes.CDLL(self._lib_path)
        except OSError as err:
            raise EspeakError(f"cannot load {self._lib_path}: {err}") from err

    def _load(self) -> int:
        lib = self._open_private_copy()
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self._init_path, 0)
        if rate <= 0:
            raise EspeakError(
                f"espeak_Initialize failed ({rate}) with data in {self._data_dir}; "
                "is the espeakng-loader installation complete?"
            )
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        return rate

    def _unload(self) -> None:
        lib, self._lib = self._lib, None
        if lib is None:
            return
        lib.espeak_Terminate()
        if self._dl is not None:
            self._dl(ctypes.c_void_p(lib._handle))

    def reset(self) -> None:
        """Unload and reload the library so no state from earlier utterances remains."""
        self._unload()
        self._load()

    def close(self) -> None:
        """Release the engine (terminate espeak-ng and unload the library)."""
        self._unload()

    def __enter__(self) -> Espeak:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._unload()

    # -- voices -----------------------------------------------------------------------
    @property
    def variants(self) -> frozenset[str]:
        """The variant names this installation has."""
        return self._variants

    def check_voice(self, voice: str) -> None:
        """Raise :class:`UnknownVoiceError` unless ``voice`` (``"lang"`` or ``"lang+variant"``) exists.

        espeak-ng silently ignores an unknown variant, so variants are checked against
        the files in ``voices/!v``; the language part is tried with ``SetVoiceByName``.
        """
        language, variant = split_voice(voice)
        if variant is not None and variant not in self._variants:
            raise UnknownVoiceError(
                f"unknown espeak-ng variant {variant!r} in voice {voice!r}; "
                f"variants: {', '.join(sorted(self._variants))}"
            )
        if language not in self._known_languages:
            lib = self._require()
            self._known_languages[language] = (
                lib.espeak_SetVoiceByName(language.encode("utf-8")) == EE_OK
            )
        if not self._known_languages[language]:
            raise UnknownVoiceError(
                f"espeak-ng has no voice {language!r} (English ones: {', '.join(ENGLISH_VOICES)}; "
                "note 'en' is British English and 'en-gb' is refused)"
            )

    def _require(self) -> ctypes.CDLL:
        if self._lib is None:
            self.sample_rate = self._load()
        assert self._lib is not None
        return self._lib

    # -- synthesis --------------------------------------------------------------------
    def _on_audio(self, wav, num_samples: int, events) -> int:
        if num_samples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, num_samples * 2))
        return 0

    def synthesize(
        self,
        text: str,
        *,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        word_gap: int = 0,
        seed: int = 0,
        fresh: bool = True,
    ) -> np.ndarray:
        """Speak ``text`` and return the int16 waveform at :attr:`sample_rate` (22,050 Hz).

        ``rate`` is in words per minute (80-450), ``pitch`` and ``pitch_range`` are
        espeak's 0-100 scales (50 = the voice's own), ``word_gap`` adds pauses of
        10 ms units between words. ``seed`` seeds espeak's noise generator. With
        ``fresh`` (the default) the library is reloaded first, so the result depends
        only on these arguments and not on what was spoken before.
        """
        self.check_voice(voice)  # before the reset: it may have to try the language once
        if fresh:
            self.reset()
        lib = self._require()
        # espeak's own noise generator, and libc's rand() that the Klatt voices use.
        lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        if self._srand is not None:
            self._srand(int(seed) & 0x7FFFFFFF)
        if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != EE_OK:
            raise UnknownVoiceError(f"espeak-ng refused voice {voice!r}")
        for param, value in (
            (ESPEAK_RATE, rate),
            (ESPEAK_PITCH, pitch),
            (ESPEAK_RANGE, pitch_range),
            (ESPEAK_WORDGAP, word_gap),
        ):
            lib.espeak_SetParameter(param, int(value), 0)
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        err = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
        if err != EE_OK:
            raise EspeakError(f"espeak_Synth failed with code {err} on {text!r} ({voice})")
        lib.espeak_Synchronize()
        audio = np.frombuffer(b"".join(self._chunks), dtype=np.int16).copy()
        self._chunks = []
        return audio


def _dl_handle_api():
    """``dlclose`` where the platform has one (Linux, macOS), else ``None``."""
    if sys.platform.startswith("win"):  # pragma: no cover
        return None
    try:
        libc = ctypes.CDLL(None)
        dlclose = libc.dlclose
    except (OSError, AttributeError):  # pragma: no cover
        name = ctypes.util.find_library("dl")
        if name is None:
            return None
        dlclose = ctypes.CDLL(name).dlclose
    dlclose.argtypes = [ctypes.c_void_p]
    dlclose.restype = ctypes.c_int
    return dlclose


def _libc_srand():
    """libc's ``srand`` (seeding the ``rand()`` that espeak-ng's Klatt voices draw from)."""
    try:
        srand = ctypes.CDLL(None).srand
    except (OSError, AttributeError):  # pragma: no cover
        name = ctypes.util.find_library("c")
        if name is None:
            return None
        srand = ctypes.CDLL(name).srand
    srand.argtypes = [ctypes.c_uint]
    srand.restype = None
    return srand
