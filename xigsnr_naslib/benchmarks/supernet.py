"""Supernets of the pruning search: every edge holds the operations still alive on it.

The training-free pruning search of TE-NAS (Chen et al., ICLR 2021; the released
``prune_tenas.py`` of VITA-Group/TENAS) starts from a supernet whose every edge holds all
candidate operations and removes them one round at a time
(:mod:`xigsnr_naslib.search.pruning`). A supernet *state* is the tuple, per edge, of the
operations still on it (in the space's operation order; an empty tuple is an edge removed
altogether). A :class:`SupernetSpace` is a :class:`~xigsnr_naslib.benchmarks.space.SearchSpace`
whose architectures are states, so a supernet is scored by the project's one scoring path
(:class:`~xigsnr_naslib.scoring.study.Study`: results store, workers, resume) like any network.

Choices, as in TE-NAS's code unless said otherwise:

* **Edge output**: the mean of its operations' outputs (TE-NAS weights each operation by the
  softmax of equal architecture parameters, i.e. ``1/k`` for ``k`` operations alive; a pruned
  one gets weight 0 and is not evaluated). An empty edge adds nothing to its node.
* **No ``none`` candidate**: TE-NAS masks ``none`` before the first round, so the search
  chooses among the other operations.
* **Common random numbers**: every candidate operation of every edge is *constructed*, in a
  fixed order, after the scoring path's ``torch.manual_seed(init_seed)``, and the pruned
  ones are then dropped. Every state of one run therefore gives each surviving operation
  the same weights, as TE-NAS copies one supernet's weights into each pruned copy.
* **Initialisation**: PyTorch's defaults (as every network the project scores), not
  TE-NAS's Kaiming-normal; BatchNorm affine, in train mode (batch statistics), as the
  protocol's ``bn_mode``.
* **Size**: NAS-Bench-201: the benchmark's macro skeleton with TE-NAS's supernet widths,
  3 channels and one cell per stage (options ``channels``, ``cells_per_stage``). DARTS: the
  NDS CIFAR builder's stem, cells and operations (:mod:`~xigsnr_naslib.benchmarks.nds.space`) with
  ``width`` 4 and ``depth`` 5 cells (normal, reduce, normal, reduce, normal: TE-NAS's one
  cell per stage; its supernet has 1 channel, here 4 so that separable convolutions keep a
  channel mixing).
"""
from __future__ import annotations

from typing import Any, Hashable, Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.space import SearchSpace

__all__ = ["SupernetSpace", "NB201Supernet", "DartsSupernet", "State"]

#: per edge, the operations still on it
State = tuple[tuple[str, ...], ...]


class SupernetSpace(SearchSpace):
    """A supernet whose architectures are :data:`State` values.

    Subclasses set :attr:`operations` (the candidates of every edge, in order),
    :attr:`edge_names` and :attr:`node_groups`, and implement :meth:`build` and
    :meth:`final`.

    ``node_groups``: per intermediate node, the indices of its incoming edges, for spaces
    whose nodes keep ``keep_inputs`` of them (DARTS: 2); empty where every edge stays.
    """

    operations: tuple[str, ...] = ()
    edge_names: tuple[str, ...] = ()
    node_groups: tuple[tuple[int, ...], ...] = ()
    keep_inputs: int = 0
    base_space: str = ""

    def full(self) -> State:
        """The first state: every candidate on every edge."""
        return tuple(self.operations for _ in self.edge_names)

    def encode(self, state: Any) -> str:
        state = self.decode(state) if isinstance(state, str) else self._check(state)
        return ";".join(",".join(ops) or "-" for ops in state)

    def decode(self, code: Any) -> State:
        if not isinstance(code, str):
            return self._check(code)
        edges = code.split(";")
        return self._check(tuple(() if e == "-" else tuple(e.split(",")) for e in edges))

    def _check(self, state: Sequence[Sequence[str]]) -> State:
        state = tuple(tuple(ops) for ops in state)
        if len(state) != len(self.edge_names):
            raise UsageError(f"a {self.name} state has {len(self.edge_names)} edges, got {len(state)}")
        for name, ops in zip(self.edge_names, state):
            bad = [op for op in ops if op not in self.operations]
            if bad:
                raise UsageError(f"operation {bad[0]!r} on edge {name} of {self.name} is not one of: "
                                 f"{', '.join(self.operations)}")
            if list(ops) != sorted(set(ops), key=self.operations.index):
                raise UsageError(f"edge {name} of {self.name}: operations must be distinct and in the order "
                                 f"{', '.join(self.operations)}; got {', '.join(ops)}")
        return state

    def without(self, state: State, edge: int, op: str | None = None) -> State:
        """``state`` with ``op`` removed from ``edge`` (``op`` None: the whole edge removed)."""
        return tuple((tuple(o for o in ops if o != op) if op is not None else ()) if i == edge else ops
                     for i, ops in enumerate(state))

    def is_single_path(self, state: State) -> bool:
        """Whether no edge holds more than one operation."""
        return all(len(ops) <= 1 for ops in state)

    def final(self, state: State) -> Hashable:
        """The architecture of the base space a single-path state is (``ValueError`` otherwise)."""
        raise NotImplementedError


def _candidates(given, allowed: Sequence[str], space: str) -> tuple[str, ...]:
    """The candidate operations: ``given`` (a subset of ``allowed``, put in its order) or all."""
    if given is None:
        return tuple(allowed)
    if isinstance(given, str) or not given:
        raise UsageError(f"operations of the {space} supernet: a non-empty list of: {', '.join(allowed)}; got {given!r}")
    bad = [op for op in given if op not in allowed]
    if bad:
        raise UsageError(f"unknown operation {bad[0]!r} for the {space} supernet; choose among: {', '.join(allowed)}")
    return tuple(op for op in allowed if op in given)


def _mean_of(ops: nn.ModuleDict, x: torch.Tensor) -> torch.Tensor:
    out = None
    for op in ops.values():
        y = op(x)
        out = y if out is None else out + y
    return out if len(ops) == 1 else out / len(ops)


def _surviving(candidates: Sequence[str], alive: Sequence[str], make) -> nn.ModuleDict:
    """Every candidate constructed in order (the same random draws for every state), the dead dropped."""
    built = [(op, make(op)) for op in candidates]
    return nn.ModuleDict([(op, module) for op, module in built if op in alive])


# --- NAS-Bench-201 ---------------------------------------------------------------------------------

class _NB201SupernetCell(nn.Module):
    """A NAS-Bench-201 cell whose edge ``(target, source)`` is the mean of its live operations."""

    def __init__(self, state: State, channels: int, candidates: Sequence[str]):
        super().__init__()
        from xigsnr_naslib.benchmarks.nb201.space import make_operation

        self.edges = nn.ModuleList(_surviving(candidates, ops, lambda op: make_operation(op, channels))
                                   for ops in state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from xigsnr_naslib.benchmarks.nb201.space import EDGES

        nodes = [x]
        for target in range(1, 4):
            total = None
            for i, (t, source) in enumerate(EDGES):
                if t == target and len(self.edges[i]):
                    y = _mean_of(self.edges[i], nodes[source])
                    total = y if total is None else total + y
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[3]


class _CellFactory:
    def __init__(self, candidates: Sequence[str]):
        self.candidates = tuple(candidates)

    def __call__(self, state: State, channels: int) -> nn.Module:
        return _NB201SupernetCell(state, channels, self.candidates)


class NB201Supernet(SupernetSpace):
    """The NAS-Bench-201 supernet: six edges, candidates skip, 1x1 conv, 3x3 conv, 3x3 average
    pooling, on the benchmark's macro skeleton of ``channels`` and ``cells_per_stage``
    (TE-NAS: 3 and 1). ``operations``: a subset of the candidates (default: all four)."""

    name = "nb201_supernet"
    base_space = "nb201"
    default_resolution = 32

    def __init__(self, channels: int = 3, cells_per_stage: int = 1, operations: Sequence[str] | None = None):
        from xigsnr_naslib.benchmarks.nb201.space import EDGES, OPERATIONS

        if channels < 1 or cells_per_stage < 1:
            raise UsageError(f"the supernet needs channels >= 1 and cells_per_stage >= 1, got {channels}, "
                             f"{cells_per_stage}")
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.operations = _candidates(operations, [op for op in OPERATIONS if op != "none"], "nb201")
        self.edge_names = tuple(f"{t}<-{s}" for t, s in EDGES)

    def build(self, state: Any, num_classes: int = 10, **kwargs: Any) -> nn.Module:
        from xigsnr_naslib.benchmarks.nb201.space import NB201Network

        return NB201Network(self.decode(state), num_classes, self.channels, self.cells_per_stage,
                            cell=_CellFactory(self.operations))

    def final(self, state: State) -> tuple[str, ...]:
        state = self.decode(state)
        if any(len(ops) != 1 for ops in state):
            raise UsageError(f"not a single-path NAS-Bench-201 state: {self.encode(state)}")
        return tuple(ops[0] for ops in state)


# --- DARTS -------------------------------------------------------------------------------------------

class _DartsSupernetCell(nn.Module):
    """A DARTS cell with every edge ``node <- input`` (14 for four nodes) the mean of its live
    operations; the output concatenates the four nodes."""

    def __init__(self, state: State, candidates: Sequence[str], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        from xigsnr_naslib.benchmarks.darts import DARTS_STEPS
        from xigsnr_naslib.benchmarks.nds.space import FactorizedReduce, _relu_conv_bn, make_operation

        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else _relu_conv_bn(c_prev_prev, c, 1)
        self.preprocess1 = _relu_conv_bn(c_prev, c, 1)
        self.sources = [source for step in range(DARTS_STEPS) for source in range(2 + step)]
        self.edges = nn.ModuleList(
            _surviving(candidates, ops, lambda op, s=source: make_operation(op, c, 2 if reduction and s < 2 else 1))
            for ops, source in zip(state, self.sources))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        from xigsnr_naslib.benchmarks.darts import DARTS_STEPS

        states = [self.preprocess0(s0), self.preprocess1(s1)]
        edge = 0
        for step in range(DARTS_STEPS):
            total = None
            for source in range(2 + step):
                if len(self.edges[edge]):
                    y = _mean_of(self.edges[edge], states[source])
                    total = y if total is None else total + y
                edge += 1
            if total is None:
                raise UsageError(f"node {step + 2} of a DARTS supernet cell has no input left")
            states.append(total)
        return torch.cat(states[2:], dim=1)


class _DartsSupernetNetwork(nn.Module):
    def __init__(self, state: State, candidates: Sequence[str], width: int, depth: int, num_classes: int):
        super().__init__()
        from xigsnr_naslib.benchmarks.darts import DARTS_STEPS
        from xigsnr_naslib.benchmarks.nds.space import _reduction_positions

        n_edges = len(state) // 2
        self.stem = nn.Sequential(nn.Conv2d(3, 3 * width, 3, padding=1, bias=False), nn.BatchNorm2d(3 * width))
        c, c_prev_prev, c_prev, reduction_prev = width, 3 * width, 3 * width, False
        cells = []
        for i in range(depth):
            reduction = i in _reduction_positions(depth)
            if reduction:
                c *= 2
            half = state[n_edges:] if reduction else state[:n_edges]
            cells.append(_DartsSupernetCell(half, candidates, c_prev_prev, c_prev, c, reduction, reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, DARTS_STEPS * c
        self.cells = nn.ModuleList(cells)
        self.pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pooling(s1).flatten(1))


class DartsSupernet(SupernetSpace):
    """The DARTS supernet: normal and reduction cells of four nodes, each node fed by every
    earlier state through an edge of the seven DARTS operations (``none`` aside): 2 x 14
    edges, normal first. After the operations, each node keeps two of its inputs
    (:attr:`node_groups`, :attr:`keep_inputs`). ``operations``: a subset of the seven
    candidates (default: all)."""

    name = "darts_supernet"
    base_space = "darts"
    default_resolution = 32
    keep_inputs = 2

    def __init__(self, width: int = 4, depth: int = 5, operations: Sequence[str] | None = None):
        from xigsnr_naslib.benchmarks.darts import DARTS_OPERATIONS, DARTS_STEPS

        if width < 2 or width % 2 or depth < 1:
            raise UsageError(f"the DARTS supernet needs an even width >= 2 and depth >= 1, got {width}, {depth}")
        self.width = width
        self.depth = depth
        self.operations = _candidates(operations, DARTS_OPERATIONS, "darts")
        names, groups = [], []
        for kind in ("normal", "reduce"):
            for step in range(DARTS_STEPS):
                groups.append(tuple(range(len(names), len(names) + 2 + step)))
                names.extend(f"{kind}:{step + 2}<-{source}" for source in range(2 + step))
        self.edge_names = tuple(names)
        self.node_groups = tuple(groups)

    def build(self, state: Any, num_classes: int = 10, **kwargs: Any) -> nn.Module:
        return _DartsSupernetNetwork(self.decode(state), self.operations, self.width, self.depth, num_classes)

    def final(self, state: State):
        """The :class:`~xigsnr_naslib.benchmarks.nds.space.Genotype` of a state with one operation on
        exactly two edges into each node."""
        from xigsnr_naslib.benchmarks.darts import DARTS_STEPS
        from xigsnr_naslib.benchmarks.nds.space import Genotype

        state = self.decode(state)
        cells = []
        for half in (state[:len(state) // 2], state[len(state) // 2:]):
            pairs, edge = [], 0
            for step in range(DARTS_STEPS):
                kept = [(ops[0], source) for source, ops in enumerate(half[edge:edge + 2 + step]) if ops]
                if len(kept) != 2 or any(len(ops) > 1 for ops in half[edge:edge + 2 + step]):
                    raise UsageError(f"not a final DARTS state (node {step + 2} must keep two edges of one "
                                     f"operation each): {self.encode(state)}")
                pairs.extend(kept)
                edge += 2 + step
            cells.append(tuple(pairs))
        concat = tuple(range(2, 2 + DARTS_STEPS))
        return Genotype(cells[0], concat, cells[1], concat)
