"""NAS-Bench-201: cell strings, and the networks the benchmark trained (C=16, N=5).

An architecture is the tuple of six operation names on the cell's edges, in the order of the
benchmark's string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node 1 <- 0; node 2 <- 0, 1;
node 3 <- 0, 1, 2. The network is the benchmark's macro skeleton: a 3x3 stem, three stages
of N cells with C, 2C and 4C channels separated by residual reduction blocks, then
BatchNorm-ReLU, global average pooling and a linear classifier. Every BatchNorm is affine
and tracks running statistics, as in the benchmark's own code, so that parameter counts and
gradients match it. Two rewrites make it faster without changing a value or a gradient
(see :class:`Cell` and :mod:`xigsnr_naslib.core.pooling`): exact average pooling, and ``none``
edges (``x * 0``) left out of sums they do not change; :func:`as_benchmark_code` undoes both.
"""
from __future__ import annotations

import random
from typing import Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.core.pooling import ExactAvgPool2d, use_native_pooling
from xigsnr_naslib.benchmarks.space import SearchSpace

__all__ = [
    "OPERATIONS",
    "NAS_BENCH_201_CLASSES",
    "parse_arch",
    "arch_to_str",
    "NB201Network",
    "NB201Space",
    "as_benchmark_code",
]

OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: number of classes of each NAS-Bench-201 dataset
NAS_BENCH_201_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: (target node, source node) of each of the six edges, in string order
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

Arch = tuple[str, str, str, str, str, str]


def parse_arch(arch_str: str) -> Arch:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into a tuple of six operation names.

    Raises ``ValueError`` naming the string when it is not a NAS-Bench-201 cell.
    """
    if not isinstance(arch_str, str):
        raise UsageError(f"NAS-Bench-201 architecture must be a string, got {arch_str!r}")
    nodes = arch_str.strip().split("+")
    if len(nodes) != 3:
        raise UsageError(f"not a NAS-Bench-201 cell (expected 3 nodes): {arch_str!r}")
    ops: list[str] = []
    for target, node in enumerate(nodes, start=1):
        parts = [p for p in node.strip().strip("|").split("|")]
        if len(parts) != target:
            raise UsageError(f"node {target} of {arch_str!r} must have {target} inputs")
        for source, part in enumerate(parts):
            op, _, src = part.partition("~")
            if op not in OPERATIONS:
                raise UsageError(f"unknown operation {op!r} in {arch_str!r}; known: {OPERATIONS}")
            if src != str(source):
                raise UsageError(f"edge {part!r} of {arch_str!r} should come from node {source}")
            ops.append(op)
    return tuple(ops)  # type: ignore[return-value]


def arch_to_str(arch: Sequence[str]) -> str:
    """The benchmark's string for a six-operation tuple."""
    if len(arch) != 6 or any(op not in OPERATIONS for op in arch):
        raise UsageError(f"not a NAS-Bench-201 operation tuple: {arch!r}")
    a = list(arch)
    return f"|{a[0]}~0|+|{a[1]}~0|{a[2]}~1|+|{a[3]}~0|{a[4]}~1|{a[5]}~2|"


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
        )


class Zero(nn.Module):
    """The ``none`` operation: zeros that keep the graph connected (as the benchmark's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_operation(op: str, channels: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if op == "avg_pool_3x3":
        return ExactAvgPool2d(3, stride=1, padding=1, count_include_pad=False)  # nn.AvgPool2d, faster on CPU
    raise UsageError(f"unknown NAS-Bench-201 operation {op!r}")


class Cell(nn.Module):
    """One NAS-Bench-201 cell: node j is the sum of its incoming edges' outputs.

    The benchmark's code evaluates a ``none`` edge as ``x * 0``. Here such a term is left out
    of its node's sum where that changes nothing: ``x * 0`` adds nothing to a finite sum, its
    gradient ``0`` nothing to the source's gradient, and a node whose inputs are all left out
    is zeros. One ``none`` edge is still evaluated for a node all of whose outgoing edges are
    ``none`` (the one into the output node), so that, as in the benchmark's code, the graph
    reaches every parameter and gives the unreachable ones zero gradients, not none. Values
    and gradients are the benchmark's (up to the sign of a zero; ``tests/test_nb201_space.py``);
    only a network whose activations overflow to inf would differ (``inf * 0`` is NaN there).
    """

    def __init__(self, arch: Arch, channels: int):
        super().__init__()
        self.edges = nn.ModuleList(make_operation(op, channels) for op in arch)
        #: evaluate every none edge as x * 0, as the benchmark's code does (slower, same values)
        self.evaluate_every_edge = False
        # the none edges to evaluate: one out of each node whose outgoing edges are all none
        self._evaluated_none = {EDGES.index((3, source)) for source in range(3)
                                if all(arch[i] == "none" for i, (_, s) in enumerate(EDGES) if s == source)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        edge = 0
        for target in range(1, 4):
            total = None
            for source in range(target):
                op = self.edges[edge]
                if self.evaluate_every_edge or not isinstance(op, Zero) or edge in self._evaluated_none:
                    y = op(nodes[source])
                    total = y if total is None else total + y
                edge += 1
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[3]


class ResidualReduction(nn.Module):
    """The benchmark's residual block between stages (stride 2, channels doubled)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            ExactAvgPool2d(kernel_size=2, stride=2, padding=0),  # nn.AvgPool2d, faster on CPU
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """A NAS-Bench-201 network; ``forward`` returns the logits.

    ``cell(arch, channels) -> nn.Module`` builds each cell (default :class:`Cell`); the
    pruning search's supernet (:mod:`xigsnr_naslib.benchmarks.supernet`) passes its own cell
    with the same macro skeleton.
    """

    def __init__(self, arch: Arch | str, num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5,
                 cell=Cell):
        super().__init__()
        if isinstance(arch, str):
            arch = parse_arch(arch)
        self.arch = tuple(arch)
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(cell(self.arch, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(x).flatten(1))

    def feature_stages(self) -> list[tuple[str, nn.Module]]:
        """The modules whose outputs are the network's successive feature maps, in order:
        the stem, then each cell and residual reduction block (18 for 5 cells per stage)."""
        return [("stem", self.stem)] + [(f"cells.{i}", cell) for i, cell in enumerate(self.cells)]


def as_benchmark_code(model: nn.Module) -> nn.Module:
    """``model`` computing as the benchmark's own code does: ``nn.AvgPool2d`` for the pooling,
    every ``none`` edge evaluated as ``x * 0``. The same values and gradients, more slowly: the
    baseline that speed comparisons start from.
    """
    use_native_pooling(model)
    for module in model.modules():
        if isinstance(module, Cell):
            module.evaluate_every_edge = True
    return model


class NB201Space(SearchSpace):
    """The 15,625 cells of NAS-Bench-201 (5 operations on 6 edges)."""

    name = "nb201"
    default_resolution = 32

    def __init__(self, channels: int = 16, cells_per_stage: int = 5):
        self.channels = channels
        self.cells_per_stage = cells_per_stage

    def encode(self, arch: Arch | str) -> str:
        """The benchmark's own string. NAS-Bench-201 counts each of its 15,625 cells as one
        architecture (cells that compute the same function, e.g. through ``none`` edges,
        are distinct records), so the string is canonical as it stands; any accepted spelling
        (the tuple, a list, the string with spaces around it or its nodes) gives it."""
        return arch_to_str(parse_arch(arch) if isinstance(arch, str) else tuple(arch))

    def decode(self, code: str) -> Arch:
        return parse_arch(code)

    def build(self, arch: Arch | str, num_classes: int = 10, **kwargs) -> NB201Network:
        return NB201Network(arch, num_classes, self.channels, self.cells_per_stage)

    def sample(self, rng: random.Random) -> Arch:
        return tuple(rng.choice(OPERATIONS) for _ in EDGES)  # type: ignore[return-value]

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        edge = rng.randrange(len(EDGES))
        op = rng.choice([o for o in OPERATIONS if o != arch[edge]])
        return tuple(op if i == edge else a for i, a in enumerate(arch))  # type: ignore[return-value]

    def crossover(self, a: Arch, b: Arch, rng: random.Random) -> Arch:
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))  # type: ignore[return-value]

    def all_archs(self) -> list[Arch]:
        """All 15,625 cells (not in benchmark index order: use the ground truth for that)."""
        import itertools

        return [tuple(ops) for ops in itertools.product(OPERATIONS, repeat=len(EDGES))]  # type: ignore[misc]


# --- NASLib's op-index codec ---------------------------------------------------------------------

#: NASLib's NAS-Bench-201 op indices, and for NASLib's edge k (edges (1,2),(1,3),(1,4),(2,3),
#: (2,4),(3,4) between nodes numbered from 1) the edge's position in the benchmark string
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGE_POSITIONS = (0, 1, 3, 2, 4, 5)


def to_naslib_key(arch: str | tuple) -> str:
    """NASLib's key of a cell: ``str`` of its op-index tuple, e.g. ``"(4, 0, 3, 1, 4, 3)"``."""
    ops = parse_arch(arch) if isinstance(arch, str) else tuple(arch)
    return str(tuple(NASLIB_OPS.index(ops[p]) for p in NASLIB_EDGE_POSITIONS))


def from_naslib_key(key) -> str:
    """NASLib's key ``"(4, 0, 3, 1, 4, 3)"`` (or the tuple itself) -> the benchmark's arch string.

    Raises ``ValueError`` naming the key when it is not six op indices in 0..4.
    """
    import ast

    try:
        indices = ast.literal_eval(key) if isinstance(key, str) else key
        indices = [int(i) for i in indices]
    except (ValueError, SyntaxError, TypeError):
        raise UsageError(f"not a NASLib NAS-Bench-201 op-index tuple: {key!r}") from None
    if len(indices) != 6 or any(not 0 <= i < len(NASLIB_OPS) for i in indices):
        raise UsageError(f"not a NASLib NAS-Bench-201 op-index tuple (six indices in 0..4): {key!r}")
    ops = [None] * 6
    for k, position in enumerate(NASLIB_EDGE_POSITIONS):
        ops[position] = NASLIB_OPS[indices[k]]
    return arch_to_str(tuple(ops))
