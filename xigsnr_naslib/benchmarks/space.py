"""The search-space interface shared by every space, and the registry that names them.

A search space turns architectures (plain, hashable Python values) into PyTorch models and
back into canonical strings. Spaces are registered through their benchmark cards
(:mod:`xigsnr_naslib.benchmarks.card`): ``create_space("nb201")`` gets an instance, ``list_spaces()``
names them (both re-exported by :mod:`xigsnr_naslib.benchmarks`).
"""
from __future__ import annotations

import hashlib
import random
from typing import Any, Callable, Hashable, Mapping, Sequence

import torch.nn as nn

from xigsnr_naslib.errors import UsageError

__all__ = ["SearchSpace", "canonical_order", "canonical_record"]


def canonical_record(space: "SearchSpace", record: dict, cache: dict | None = None) -> dict:
    """``record`` keyed by the canonical string of its architecture, for stores written
    before the encoding became canonical (one string per benchmark architecture).

    A record whose ``arch`` is already canonical is returned as it is. Otherwise a copy is
    returned with ``arch`` the canonical string and ``encoded_as`` the string it was stored
    under: its value was computed on the network of that spelling (the same architecture;
    for NAS-Bench-101 and NDS possibly another vertex order, so another initialisation
    draw than the canonical network's). An ``arch`` the space cannot read is left as it is.
    ``cache`` (a dict) remembers strings already mapped. The record itself is not changed.
    """
    arch = record.get("arch")
    if not isinstance(arch, str):
        return record
    cache = {} if cache is None else cache
    if arch not in cache:
        try:
            cache[arch] = space.encode(space.decode(arch))
        except (ValueError, TypeError, KeyError):
            cache[arch] = arch
    code = cache[arch]
    return record if code == arch else {**record, "arch": code, "encoded_as": arch}


def canonical_order(fixed: int, nodes: Sequence[int], predecessors: Mapping[int, Sequence[int]],
                    describe: Callable[[int, Mapping[int, int]], tuple],
                    final: Callable[[Mapping[int, int]], tuple] = lambda numbers: ()) -> dict[int, int]:
    """The canonical numbering of the ``nodes`` of a small labelled DAG (a cell).

    Nodes ``0 .. fixed-1`` (the cell's inputs) keep their numbers; ``nodes`` get the numbers
    ``fixed, fixed+1, ...`` in a topological order (every node after its ``predecessors``).
    ``describe(v, numbers)`` describes node ``v`` once its predecessors are numbered (its
    label and its predecessors' new numbers); ``final(numbers)`` describes what follows the
    numbered nodes (the output). Among all topological orders the one whose sequence of
    descriptions, then ``final``, is least wins. When the descriptions name every edge, the
    cell renumbered this way is the same for two cells exactly when they are isomorphic (a
    renumbering of ``nodes`` that keeps labels and edges maps one onto the other): the least
    sequence is a property of the isomorphism class, and it determines the cell.

    At each position only the candidates of least description are followed (a larger one
    cannot start the least sequence), so a cell of at most 5 nodes costs tens of steps.
    Returns ``{old number: new number}`` for every node, the fixed ones included.
    """
    best: list = [None, None]
    numbers = {v: v for v in range(fixed)}

    def walk(remaining: list[int], sequence: tuple) -> None:
        if not remaining:
            key = sequence + (final(numbers),)
            if best[0] is None or key < best[0]:
                best[0], best[1] = key, dict(numbers)
            return
        ready = [v for v in remaining if all(u in numbers for u in predecessors[v])]
        if not ready:
            raise UsageError(f"not a DAG over {list(nodes)}: a cycle among {remaining}")
        described = [(describe(v, numbers), v) for v in ready]
        least = min(d for d, _ in described)
        for d, v in described:
            if d == least:
                numbers[v] = fixed + len(nodes) - len(remaining)
                walk([u for u in remaining if u != v], sequence + (d,))
                del numbers[v]

    walk(list(nodes), ())
    return best[1]


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
    #: the input resolution this instance's networks are built for (a ``resolution`` option of
    #: the ImageNet spaces); None (default): any, scored at the dataset's and bounded at
    #: :attr:`default_resolution`
    resolution: int | None = None

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

    def canonical(self, code: Any) -> str:
        """The canonical string of an architecture or of any accepted spelling of one
        (``encode(decode(code))``): how records keyed by earlier encodings are read."""
        return self.encode(self.decode(code) if isinstance(code, str) else code)

    def is_valid(self, arch: Hashable) -> bool:
        """Whether ``arch`` follows the space's rules (its canonical string decodes to an
        architecture with the same canonical string)."""
        try:
            code = self.encode(arch)
            return self.encode(self.decode(code)) == code
        except (ValueError, TypeError, KeyError):
            return False

    def arch_hash(self, arch: Hashable) -> str:
        """A stable hex digest of the canonical encoding."""
        return hashlib.sha256(self.encode(arch).encode()).hexdigest()[:32]

    def count_params(self, arch: Hashable, num_classes: int = 10) -> int:
        """Number of parameters of the built network (all of them, as benchmarks count)."""
        model = self.build(arch, num_classes=num_classes)
        return sum(p.numel() for p in model.parameters())
