"""Graph features of a cell, computed from the architecture alone (no network, no data).

The features are of the kind GRAF (Kadlecova et al., ICML 2024) shows to predict accuracy:

* ``count:<op>``: how many times each operation occurs in the cell (NAS-Bench-201 and DARTS:
  on edges, ``none`` included; NAS-Bench-101: on vertices, after pruning);
* for every set ``S`` of operations (:func:`operation_sets`), over the input-to-output paths
  whose every operation is in ``S``: ``paths:<S>`` their number, ``min_len:<S>`` and
  ``max_len:<S>`` their shortest and longest length in edges (0 when there is no such path);
* ``depth`` (the longest input-to-output path, in edges), ``width`` (the edges entering the
  output), ``input_degree`` (the edges leaving the inputs), ``edges`` and ``vertices`` (of
  the cell's computing part: what lies on some input-to-output path).

A cell is turned into a :class:`CellGraph`: vertices, the input vertices, one output vertex
and labelled edges ``(source, target, op)``:

* NAS-Bench-201: four nodes, node 0 the input and node 3 the output; each of the six edges
  carries its operation, ``none`` edges are left out of the graph (they add zero);
* NAS-Bench-101: the pruned cell; an edge into an interior vertex carries that vertex's
  operation, an edge into the output carries none (``None``: concatenation or the input's
  projection, not a choice of the search);
* DARTS: per cell (normal, reduction) the two inputs 0 and 1, nodes 2 to 5, and an output
  node 6 fed by the concatenated nodes with unlabelled edges; features are prefixed ``normal.``
  and ``reduce.``.

A path's operations are the labels of its edges (unlabelled edges belong to every set).
Operation sets: every non-empty subset when a space has at most 4 operations, otherwise
every subset of one or two operations and the full set (DARTS: 7 + 21 + 1).

Usage::

    from xigsnr_naslib.analysis.graph_features import graph_features, graph_feature_table
    graph_features("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    graph_feature_table("nb101", cells)   # a DataFrame, one row per cell, columns feature_names("nb101")

Errors: an unknown space is a ``ValueError`` naming the spaces that have graph features; an
architecture the space cannot decode raises the space's own error naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from typing import Any, Callable, Hashable, Iterable, Sequence

import numpy as np
import pandas as pd

from xigsnr_naslib.errors import UsageError

__all__ = ["CellGraph", "path_statistics", "operation_sets", "cell_features", "graph_features", "feature_names",
           "graph_feature_table", "graph_spaces", "nb201_graph", "nb101_graph", "darts_graphs"]


@dataclass(frozen=True)
class CellGraph:
    """A cell as a DAG: ``n_vertices`` vertices numbered in topological order, ``inputs``,
    one ``output``, and ``edges`` ``(source, target, op)`` with ``op`` a name or ``None``
    (no operation of the search: a concatenation or projection)."""

    n_vertices: int
    inputs: tuple[int, ...]
    output: int
    edges: tuple[tuple[int, int, str | None], ...]

    def __post_init__(self) -> None:
        for s, t, _ in self.edges:
            if not 0 <= s < t < self.n_vertices:
                raise UsageError(f"edge ({s}, {t}) is not a forward edge of a DAG of {self.n_vertices} vertices "
                                 "numbered in topological order")


def path_statistics(graph: CellGraph, allowed: Callable[[str | None], bool] = lambda op: True) -> tuple[int, int, int]:
    """``(number, shortest, longest)`` of the input-to-output paths whose every edge's
    operation is ``allowed`` (``None`` labels always are); ``(0, 0, 0)`` when there is none.

    Dynamic programming in topological order: paths into a vertex are the sums over its
    allowed in-edges of the paths into their sources (inputs start with one path of length 0).
    """
    count = np.zeros(graph.n_vertices, dtype=np.int64)
    low = np.full(graph.n_vertices, np.inf)
    high = np.full(graph.n_vertices, -np.inf)
    for v in graph.inputs:
        count[v], low[v], high[v] = 1, 0, 0
    for s, t, op in sorted(graph.edges, key=lambda e: e[1]):  # every edge into t after those into s < t
        if (op is None or allowed(op)) and count[s]:
            count[t] += count[s]
            low[t] = min(low[t], low[s] + 1)
            high[t] = max(high[t], high[s] + 1)
    n = int(count[graph.output])
    return (n, int(low[graph.output]), int(high[graph.output])) if n else (0, 0, 0)


def operation_sets(operations: Sequence[str]) -> list[tuple[str, ...]]:
    """The operation sets the path features are computed for (module documentation)."""
    ops = tuple(operations)
    sizes = range(1, len(ops) + 1) if len(ops) <= 4 else (1, 2)
    sets = [c for k in sizes for c in combinations(ops, k)]
    return sets if len(ops) <= 4 else sets + [ops]


def _active_edges(graph: CellGraph) -> list[tuple[int, int, str | None]]:
    """Edges on some input-to-output path."""
    forward = set(graph.inputs)
    for s, t, _ in sorted(graph.edges, key=lambda e: e[0]):
        if s in forward:
            forward.add(t)
    backward = {graph.output}
    for s, t, _ in sorted(graph.edges, key=lambda e: -e[1]):
        if t in backward:
            backward.add(s)
    return [e for e in graph.edges if e[0] in forward and e[1] in backward]


def cell_features(graph: CellGraph, operations: Sequence[str], counts: dict[str, int]) -> dict[str, float]:
    """The features of one cell graph (module documentation); ``counts`` the operation counts."""
    out: dict[str, float] = {f"count:{op}": float(n) for op, n in counts.items()}
    for ops in operation_sets(operations):
        name = "+".join(ops)
        n, low, high = path_statistics(graph, frozenset(ops).__contains__)
        out[f"paths:{name}"], out[f"min_len:{name}"], out[f"max_len:{name}"] = float(n), float(low), float(high)
    active = _active_edges(graph)
    out["depth"] = float(path_statistics(graph)[2])
    out["width"] = float(sum(1 for _, t, _ in active if t == graph.output))
    out["input_degree"] = float(sum(1 for s, _, _ in active if s in graph.inputs))
    out["edges"] = float(len(active))
    out["vertices"] = float(len({v for s, t, _ in active for v in (s, t)}))
    return out


# --- the spaces -------------------------------------------------------------------------------------

def nb201_graph(arch: Sequence[str]) -> CellGraph:
    """A NAS-Bench-201 cell (six operations in string order) as a graph; ``none`` edges left out."""
    from xigsnr_naslib.benchmarks.nb201.space import EDGES

    return CellGraph(4, (0,), 3, tuple((s, t, op) for (t, s), op in zip(EDGES, arch) if op != "none"))


def _nb201(arch) -> dict[str, float]:
    from xigsnr_naslib.benchmarks.nb201.space import OPERATIONS

    counts = {op: sum(1 for o in arch if o == op) for op in OPERATIONS}
    return cell_features(nb201_graph(arch), [op for op in OPERATIONS if op != "none"], counts)


def nb101_graph(cell) -> CellGraph:
    """A NAS-Bench-101 cell, pruned, as a graph (edges into interior vertices carry their operation)."""
    from xigsnr_naslib.benchmarks.nb101.space import prune

    cell = prune(cell)
    matrix = cell.array()
    n = cell.n_vertices
    edges = tuple((s, t, None if t == n - 1 else cell.ops[t]) for s in range(n) for t in range(s + 1, n)
                  if matrix[s, t])
    return CellGraph(n, (0,), n - 1, edges)


def _nb101(cell) -> dict[str, float]:
    from xigsnr_naslib.benchmarks.nb101.space import OPERATIONS, prune

    ops = prune(cell).ops
    return cell_features(nb101_graph(cell), OPERATIONS, {op: sum(1 for o in ops if o == op) for op in OPERATIONS})


def darts_graphs(genotype) -> dict[str, CellGraph]:
    """The normal and reduction cells of a DARTS genotype: inputs 0 and 1, nodes 2..5, output 6."""
    out = {}
    for kind in ("normal", "reduce"):
        pairs, concat = getattr(genotype, kind), getattr(genotype, f"{kind}_concat")
        n_nodes = 2 + len(pairs) // 2
        edges = [(int(source), 2 + step // 2, op) for step, (op, source) in enumerate(pairs)]
        edges += [(int(v), n_nodes, None) for v in concat]
        out[kind] = CellGraph(n_nodes + 1, (0, 1), n_nodes, tuple(edges))
    return out


def _darts(genotype) -> dict[str, float]:
    from xigsnr_naslib.benchmarks.darts import DARTS_OPERATIONS

    genotype = getattr(genotype, "genotype", genotype)  # an NDS net: its genotype
    out = {}
    for kind, graph in darts_graphs(genotype).items():
        ops = [op for op, _ in getattr(genotype, kind)]
        counts = {op: ops.count(op) for op in DARTS_OPERATIONS}
        out.update({f"{kind}.{k}": v for k, v in cell_features(graph, DARTS_OPERATIONS, counts).items()})
    return out


#: space name -> features of one decoded architecture
_SPACES: dict[str, Callable[[Any], dict[str, float]]] = {"nb201": _nb201, "nb101": _nb101, "darts": _darts,
                                                         "nds_darts": _darts, "nds_darts_in": _darts}


def graph_spaces() -> list[str]:
    """The search spaces that have graph features."""
    return sorted(_SPACES)


def _space(space: str):
    if space not in _SPACES:
        raise UsageError(f"no graph features for space {space!r}; spaces with them: {', '.join(graph_spaces())}")
    from xigsnr_naslib.benchmarks.card import get_card

    return get_card(space).create_space()


@lru_cache(maxsize=None)
def _features_of_code(space: str, code: str) -> tuple[tuple[str, float], ...]:
    return tuple(_SPACES[space](_space(space).decode(code)).items())


def graph_features(space: str, arch: Hashable) -> dict[str, float]:
    """The graph features of one architecture of ``space`` (an architecture or its string)."""
    decoded = _space(space).decode(arch) if isinstance(arch, str) else arch
    return dict(_features_of_code(space, _space(space).encode(decoded)))


@lru_cache(maxsize=None)
def _names(space: str) -> tuple[str, ...]:
    example = {"nb201": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                        "nor_conv_3x3~2|",
               "nb101": "011/001/000;input,conv3x3-bn-relu,output"}
    if space in example:
        return tuple(graph_features(space, example[space]))
    import random

    return tuple(graph_features("darts", _space("darts").sample(random.Random(0))))  # every DARTS-cell space


def feature_names(space: str) -> list[str]:
    """The names of ``space``'s graph features, in the order of :func:`graph_feature_table`'s columns."""
    _space(space)
    return list(_names(space))


def graph_feature_table(space: str, archs: Iterable[Hashable], index: Sequence | None = None) -> pd.DataFrame:
    """One row of graph features per architecture (columns :func:`feature_names`), indexed by
    ``index`` (default: positions)."""
    rows = [graph_features(space, a) for a in archs]
    return pd.DataFrame(rows, index=index, columns=feature_names(space), dtype=float)
