"""Search spaces: architecture <-> model (see :mod:`.base`); each space has a benchmark card.

``create_space(name, **options)`` and ``list_spaces()`` go through the cards' registry
(:mod:`xigsnr_naslib.card`), the one door to every space of the project and of other packages.
"""
from ..card import create_space, list_spaces
from .base import SearchSpace

__all__ = ["SearchSpace", "create_space", "list_spaces"]
