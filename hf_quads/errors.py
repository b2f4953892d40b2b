"""Exceptions raised by hf-quads. Each message names the file, row or setting to fix."""

from __future__ import annotations


class HfQuadsError(Exception):
    """Base class of every error hf-quads raises on purpose."""


class AudioDecodeError(HfQuadsError, ValueError):
    """An audio file is missing, unreadable, empty or holds non-finite samples."""


class DatasetFormatError(HfQuadsError, ValueError):
    """A dataset manifest does not follow the layout its loader reads."""
