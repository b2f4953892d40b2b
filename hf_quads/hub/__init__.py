"""Sharing compressed models: model cards and pushes to the Hub."""

from .card import *  # noqa: F403
from .card import __all__ as _card_all
from .push import *  # noqa: F403
from .push import __all__ as _push_all

__all__ = [*_card_all, *_push_all]
