"""Sharing compressed models: model cards (and, next, pushing to the Hub)."""

from .card import *  # noqa: F403
from .card import __all__  # noqa: F401
