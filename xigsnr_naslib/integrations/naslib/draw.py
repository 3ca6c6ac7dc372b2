"""The test architectures of a NASLib zero-cost run, drawn as NASLib's zc runner draws them.

NASLib's zero-cost runner (``naslib/runners/zc/runner.py`` on Develop, ``naslib/runners/
runner.py`` on the zerocost branch) seeds every generator with ``utils.set_seed(config.seed)``
(``random.seed``, ``numpy.random.seed``, ``torch.manual_seed``), makes the architectures of
its ``zc_<space>.json`` file the search space's labelled architectures, in the file's key
order (``labeled_archs = [eval(k) for k in zc_api.keys()]``), and the evaluator's
``load_dataset`` then calls ``sample_random_architecture(load_labeled=True)`` ``test_size``
times: for NAS-Bench-201 that is one ``random.choice(labeled_archs)`` per architecture,
with replacement (``sample_without_replacement`` is off, and Develop's evaluator samples
from a clone anyway). Between the seeding and the draw, one thing uses Python's ``random``:
``get_search_space("nasbench201", ...)`` builds 17 NASLib ``Graph`` objects, and each
draws ``random.random()`` for its module id (``naslib/search_spaces/core/graph.py``), on both
branches (:data:`NB201_SEARCH_SPACE_DRAWS`).

:func:`draw_test_set` makes the same calls on ``random.Random(seed)`` (the same sequence as
the seeded global generator), after the same number of ``random()`` calls, and keeps the
first ``size`` distinct architectures: NASLib's
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

from xigsnr_naslib.errors import UsageError

__all__ = ["NB201_NUM_OPS", "NB201_NUM_EDGES", "NB201_SEARCH_SPACE_DRAWS", "nb201_pool", "draw_test_set",
           "pool_for", "draws_before"]

NB201_NUM_OPS = 5
NB201_NUM_EDGES = 6
#: ``random.random()`` calls NASLib makes building its NAS-Bench-201 search space (one per
#: ``Graph``), between ``utils.set_seed`` and the draw; counted on Develop 0b51bc18 and
#: zerocost 8c45f19d, checked against NASLib's evaluator by ``tests/test_naslib_integration.py``
NB201_SEARCH_SPACE_DRAWS = 17


def nb201_pool() -> list[str]:
    """Every NAS-Bench-201 cell as NASLib's key, in NASLib's ``get_arch_iterator`` order (15,625)."""
    return [str(ops) for ops in itertools.product(range(NB201_NUM_OPS), repeat=NB201_NUM_EDGES)]


def draws_before(search_space: str) -> int:
    """``random.random()`` calls NASLib's zc runner makes between seeding and drawing, for the space."""
    return NB201_SEARCH_SPACE_DRAWS if search_space == "nasbench201" else 0


def draw_test_set(pool: Sequence, size: int, seed: int, skip: int = 0) -> list:
    """The first ``size`` distinct architectures of NASLib's seeded ``random.choice`` draw from
    ``pool``, after ``skip`` calls of ``random()`` (:func:`draws_before`).

    Raises ``ValueError`` when ``size`` is not a whole number in 1..len(set(pool)).
    """
    distinct = len(set(pool))
    if isinstance(size, bool) or int(size) != size or not 1 <= size <= distinct:
        raise UsageError(f"test_size must be a whole number from 1 to {distinct} (the architectures to draw "
                         f"from), got {size!r}")
    rng = random.Random(seed)
    for _ in range(skip):
        rng.random()
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
