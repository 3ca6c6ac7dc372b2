"""The search-space interface shared by every space, and the registry that names them.

A search space turns architectures (plain, hashable Python values) into PyTorch models and
back into canonical strings. Spaces are registered through their benchmark cards
(:mod:`xigsnr_naslib.card`): ``create_space("nb201")`` gets an instance, ``list_spaces()``
names them (both re-exported by :mod:`xigsnr_naslib.spaces`).
"""
from __future__ import annotations

import hashlib
import random
from typing import Any, Hashable

import torch.nn as nn

__all__ = ["SearchSpace"]


class SearchSpace:
    """Base class of a search space.

    Subclasses implement :meth:`encode`, :meth:`decode` and :meth:`build`; spaces used by
    the evolutionary search also implement :meth:`sample`, :meth:`mutate` and
    :meth:`crossover`. An architecture is any hashable value; its canonical string
    (:meth:`encode`) is what results files and leaderboards record.
    """

    name: str = ""
    #: input resolution the space's networks are built for by default
    default_resolution: int = 32

    def encode(self, arch: Hashable) -> str:
        raise NotImplementedError

    def decode(self, code: str) -> Hashable:
        raise NotImplementedError

    def build(self, arch: Hashable, num_classes: int = 10, **kwargs: Any) -> nn.Module:
        raise NotImplementedError

    def sample(self, rng: random.Random) -> Hashable:
        raise NotImplementedError(f"{type(self).__name__} does not sample architectures")

    def mutate(self, arch: Hashable, rng: random.Random) -> Hashable:
        raise NotImplementedError(f"{type(self).__name__} does not mutate architectures")

    def crossover(self, a: Hashable, b: Hashable, rng: random.Random) -> Hashable:
        raise NotImplementedError(f"{type(self).__name__} does not cross architectures")

    def is_valid(self, arch: Hashable) -> bool:
        """Whether ``arch`` follows the space's rules (its encoding decodes back to it)."""
        try:
            return self.decode(self.encode(arch)) == arch
        except (ValueError, TypeError, KeyError):
            return False

    def arch_hash(self, arch: Hashable) -> str:
        """A stable hex digest of the canonical encoding."""
        return hashlib.sha256(self.encode(arch).encode()).hexdigest()[:32]

    def count_params(self, arch: Hashable, num_classes: int = 10) -> int:
        """Number of parameters of the built network (all of them, as benchmarks count)."""
        model = self.build(arch, num_classes=num_classes)
        return sum(p.numel() for p in model.parameters())
