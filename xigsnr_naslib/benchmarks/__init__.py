"""Benchmarks: the card of each search space and its registry (:mod:`.card`), the search-space
interface (:mod:`.space`), and one folder per benchmark holding its space, card and ground
truth (:mod:`.nb201`, :mod:`.nb101`, :mod:`.nds`; DARTS cells in :mod:`.darts`).

``create_space(name, **options)``, ``list_spaces()`` and ``get_card(name)`` go through the cards'
registry, the one door to every space of the project and of other packages. The card
functions of the project's own spaces (``nb201_card``, ``nb101_card``, ``nds_cards``) are what
``setup.cfg`` registers in the entry-point group ``xigsnr_naslib.spaces``.
"""
from xigsnr_naslib.benchmarks.card import (BenchmarkCard, DatasetCard, NASLibCodec, ScoreTableSpec, create_space,
                                           get_card, list_cards, list_spaces, register_card)
from xigsnr_naslib.benchmarks.space import SearchSpace

_CARD_FUNCTIONS = {"nb201_card": "nb201", "nb101_card": "nb101", "nds_cards": "nds", "darts_card": "nds"}


def __getattr__(name: str):
    if name in _CARD_FUNCTIONS:  # the entry points, imported when the registry first loads them
        import importlib

        return getattr(importlib.import_module(f"xigsnr_naslib.benchmarks.{_CARD_FUNCTIONS[name]}.card"), name)
    raise AttributeError(f"module 'xigsnr_naslib.benchmarks' has no attribute {name!r}")


__all__ = ["BenchmarkCard", "DatasetCard", "NASLibCodec", "ScoreTableSpec", "SearchSpace", "create_space", "get_card",
           "list_cards", "list_spaces", "register_card", "nb201_card", "nb101_card", "nds_cards"]
