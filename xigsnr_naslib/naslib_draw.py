"""The test architectures of a NASLib zero-cost run, drawn as NASLib's zc runner draws them.

NASLib's zero-cost runner (``naslib/runners/zc/runner.py`` on Develop, ``naslib/runners/
runner.py`` on the zerocost branch) seeds every generator with ``utils.set_seed(config.seed)``
(``random.seed``, ``numpy.random.seed``, ``torch.manual_seed``), makes the architectures of
its ``zc_<space>.json`` file the search space's labelled architectures, in the file's key
order (``labeled_archs = [eval(k) for k in zc_api.keys()]``), and the evaluator's
``load_dataset`` then calls ``sample_random_architecture(load_labeled=True)`` ``test_size``
times: for NAS-Bench-201 that is one ``random.choice(labeled_archs)`` per architecture,
with replacement (``sample_without_replacement`` is off, and Develop's evaluator samples
from a clone anyway), and nothing between the seeding and the draw uses Python's ``random``.

:func:`draw_test_set` makes the same calls on ``random.Random(seed)`` (the same sequence as
the seeded global generator) and keeps the first ``size`` distinct architectures: NASLib's
own test set whenever its draw has no repeat, and otherwise NASLib's sequence with the
repeats skipped (a repeat counts one architecture twice in every metric). Both engines of
``xigsnr-naslib naslib-run`` use it, so one config and seed score the same architectures.

The pool (:func:`pool_for`): the architectures of the run's ``zc_<space>.json`` for the
dataset, in file order, when the file has any (what NASLib's zc runner samples from);
otherwise every NAS-Bench-201 cell in the order of NASLib's ``get_arch_iterator``
(``itertools.product(range(5), repeat=6)``: op indices, first edge slowest). NASLib keys
architectures by ``str`` of the op-index tuple, e.g. ``"(4, 0, 3, 1, 4, 3)"``.
"""
from __future__ import annotations

import itertools
import random
from typing import Sequence

__all__ = ["NB201_NUM_OPS", "NB201_NUM_EDGES", "nb201_pool", "draw_test_set", "pool_for"]

NB201_NUM_OPS = 5
NB201_NUM_EDGES = 6


def nb201_pool() -> list[str]:
    """Every NAS-Bench-201 cell as NASLib's key, in NASLib's ``get_arch_iterator`` order (15,625)."""
    return [str(ops) for ops in itertools.product(range(NB201_NUM_OPS), repeat=NB201_NUM_EDGES)]


def draw_test_set(pool: Sequence, size: int, seed: int) -> list:
    """The first ``size`` distinct architectures of NASLib's seeded ``random.choice`` draw from ``pool``.

    Raises ``ValueError`` when ``size`` is not a whole number in 1..len(set(pool)).
    """
    distinct = len(set(pool))
    if isinstance(size, bool) or int(size) != size or not 1 <= size <= distinct:
        raise ValueError(f"test_size must be a whole number from 1 to {distinct} (the architectures to draw "
                         f"from), got {size!r}")
    rng = random.Random(seed)
    chosen, seen = [], set()
    while len(chosen) < size:
        arch = rng.choice(pool)
        if arch not in seen:
            seen.add(arch)
            chosen.append(arch)
    return chosen


def pool_for(search_space: str, zc_keys: Sequence[str] | None = None) -> list[str] | None:
    """The pool a run draws from: ``zc_keys`` (a zc file's keys, in order) when given and not
    empty, else NAS-Bench-201's full pool for ``nasbench201``, else None (the space's own
    iterator through NASLib decides)."""
    if zc_keys:
        return list(zc_keys)
    if search_space == "nasbench201":
        return nb201_pool()
    return None
