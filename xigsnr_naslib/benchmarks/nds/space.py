"""NDS: the cell-based design spaces of Radosavovic et al. (ICCV 2019), built from their records.

"On Network Design Spaces for Visual Recognition" (NDS) trained thousands of networks from
five cell-based design spaces, DARTS, ENAS, PNAS, NASNet and AmoebaNet, each on CIFAR-10
and some on ImageNet. Every record's ``net`` field says how to build its network:
``genotype`` (normal and reduction cells), ``width`` (the initial channel count C),
``depth`` (number of cells), ``aux`` (auxiliary head) and ``drop_prob`` (drop-path).

The networks are DARTS-style cell networks, written here from the NDS paper and the
DARTS paper:

* **Cell.** Two inputs, the outputs of the two previous cells, are first brought to C
  channels: ReLU-1x1 conv-BN, or (when the cell before the previous one had twice the
  resolution) a factorized reduction (two stride-2 1x1 convolutions, the second on the
  input shifted by one pixel, concatenated, then BN). A genotype lists, for each
  intermediate node, two ``(operation, input)`` pairs; input 0 and 1 are the cell inputs,
  input k >= 2 is node k. A node is the sum of its two operations. The cell outputs the
  channel concatenation of the nodes listed in ``*_concat``.
* **Reduction cells** sit at positions ``depth // 3`` and ``2 * depth // 3``; they double C,
  and their operations on the cell inputs have stride 2 (``skip_connect`` with stride 2 is a
  factorized reduction, ``none`` subsamples).
* **CIFAR stem**: 3x3 conv to 3C channels, BN. **ImageNet stem**: 3x3 conv stride 2 to C/2,
  BN, ReLU, 3x3 conv stride 2 to C, BN; then ReLU, 3x3 conv stride 2, BN (a second stem
  whose output feeds the first cell, the first stem's feeding it as the "previous
  previous" input); the first cell sees a reduction before it.
* **Head**: global average pooling and a linear classifier. The auxiliary head (after the
  cell at ``2 * depth // 3``) is built only on request: it exists for training, not scoring.

Every convolution has no bias; every BatchNorm is affine. With these rules the parameter
count of each network equals the record's ``params`` (tested on every ImageNet record
available). Drop-path is a training regulariser and is not applied.

**Identity.** NDS has no hash of its own: a record is a sampled ``net``. Two genotypes are
taken as one architecture when they build the same network up to the order of its
parameters: a node is the *sum* of its two operations, so the order of its two
``(operation, input)`` pairs does not matter; the intermediate nodes may be renumbered in any
order that keeps every node after its inputs (the two cell inputs, 0 and 1, are not
interchangeable: they are different cells' outputs); the concatenated nodes are a set, whose
order only permutes the channels that the next 1x1 convolution (or the classifier) reads.
:func:`canonical_genotype` picks one representative of each class (nodes in the topological
order whose sequence of sorted ``(input, operation)`` pairs is least, each node's pairs
sorted, the concatenation sorted); :class:`NDSSpace` and the DARTS space encode and build
that representative, so a score is a function of the architecture. Width, depth and the
auxiliary head are part of the architecture; ``drop_prob`` (training only) is not. Among the
records of the five ImageNet files no two share a canonical ``net``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.core.pooling import ExactAvgPool2d
from xigsnr_naslib.benchmarks.space import SearchSpace, canonical_order

__all__ = [
    "NDS_OPERATIONS",
    "NDS_SPACES",
    "InvalidGenotypeError",
    "Genotype",
    "NDSNet",
    "parse_net",
    "canonical_genotype",
    "canonical_net",
    "NDSNetwork",
    "NDSSpace",
    "count_nds_params",
]


class InvalidGenotypeError(UsageError):
    """A record whose ``net`` cannot be built; the message names the record."""


def _op_param_count(op: str, c: int) -> int:
    """Parameters of operation ``op`` on C channels (stride does not change the count)."""
    if op in ("none", "avg_pool_2x2", "avg_pool_3x3", "avg_pool_5x5", "max_pool_2x2", "max_pool_3x3",
              "max_pool_5x5", "max_pool_7x7"):
        return 0
    if op == "skip_connect":  # identity, or a factorized reduction when strided (counted by the caller)
        return 0
    k = {"conv_1x1": 1, "conv_3x3": 3}.get(op)
    if k:
        return k * k * c * c + 2 * c
    k = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "sep_conv_7x7": 7, "dil_sep_conv_3x3": 3}.get(op)
    if k:
        return 2 * (k * k * c + c * c + 2 * c)
    k = {"dil_conv_3x3": 3, "dil_conv_5x5": 5}.get(op)
    if k:
        return k * k * c + c * c + 2 * c
    k = {"conv_3x1_1x3": 3, "conv_7x1_1x7": 7}.get(op)
    if k:
        return 2 * k * c * c + 2 * c
    raise KeyError(op)


#: every operation of the five NDS spaces
NDS_OPERATIONS = (
    "none", "skip_connect",
    "avg_pool_2x2", "avg_pool_3x3", "avg_pool_5x5",
    "max_pool_2x2", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7",
    "conv_1x1", "conv_3x3", "conv_3x1_1x3", "conv_7x1_1x7",
    "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
    "dil_conv_3x3", "dil_conv_5x5", "dil_sep_conv_3x3",
)

#: space name -> (NDS file stem, stem kind). ``nds_<space>`` uses the CIFAR-10 records,
#: ``nds_<space>_in`` the ImageNet ones.
NDS_SPACES: dict[str, tuple[str, str]] = {}
for _stem_name in ("Amoeba", "DARTS", "ENAS", "NASNet", "PNAS"):
    NDS_SPACES[f"nds_{_stem_name.lower()}"] = (_stem_name, "cifar")
    NDS_SPACES[f"nds_{_stem_name.lower()}_in"] = (f"{_stem_name}_in", "imagenet")


@dataclass(frozen=True)
class Genotype:
    """Normal and reduction cells: ``((op, input), ...)`` pairs and the concatenated nodes."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


@dataclass(frozen=True)
class NDSNet:
    """What an NDS record's ``net`` field says: genotype, width C, depth, auxiliary head."""

    genotype: Genotype
    width: int
    depth: int
    aux: bool = False

    def to_dict(self) -> dict:
        g = self.genotype
        return {"genotype": {"normal": [list(p) for p in g.normal], "normal_concat": list(g.normal_concat),
                             "reduce": [list(p) for p in g.reduce], "reduce_concat": list(g.reduce_concat)},
                "width": self.width, "depth": self.depth, "aux": self.aux}

    def to_string(self) -> str:
        """Compact JSON with sorted keys: the canonical string."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _cell(pairs: Any, concat: Any, kind: str, what: str) -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
    if not isinstance(pairs, Sequence) or isinstance(pairs, str) or not pairs or len(pairs) % 2:
        raise InvalidGenotypeError(f"{what}: genotype '{kind}' must be a non-empty list of an even number of "
                                   f"[operation, input] pairs, got {pairs!r}")
    out = []
    for step, pair in enumerate(pairs):
        node = 2 + step // 2
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise InvalidGenotypeError(f"{what}: genotype '{kind}' entry {step} is not an [operation, input] pair: {pair!r}")
        op, source = pair
        if op not in NDS_OPERATIONS:
            raise InvalidGenotypeError(f"{what}: unknown operation {op!r} in genotype '{kind}'; "
                                       f"known: {', '.join(NDS_OPERATIONS)}")
        if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < node:
            raise InvalidGenotypeError(f"{what}: genotype '{kind}' entry {step} ({op}) reads input {source!r}; "
                                       f"node {node} can read inputs 0..{node - 1}")
        out.append((str(op), int(source)))
    n_nodes = len(pairs) // 2
    if not isinstance(concat, Sequence) or isinstance(concat, str) or not concat:
        raise InvalidGenotypeError(f"{what}: '{kind}_concat' must be a non-empty list of node indices, got {concat!r}")
    bad = [c for c in concat if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < 2 + n_nodes]
    if bad:
        raise InvalidGenotypeError(f"{what}: '{kind}_concat' has node(s) {bad} outside 0..{1 + n_nodes}")
    return tuple(out), tuple(int(c) for c in concat)


def _canonical_cell(pairs: Sequence[tuple[str, int]], concat: Sequence[int]
                    ) -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
    """One cell's canonical pairs and concatenation (module documentation, *Identity*)."""
    nodes = list(range(2, 2 + len(pairs) // 2))
    inputs = {v: pairs[2 * (v - 2):2 * (v - 1)] for v in nodes}
    predecessors = {v: [source for _, source in inputs[v] if source >= 2] for v in nodes}

    def describe(v: int, numbers) -> tuple:
        return tuple(sorted((numbers[source], op) for op, source in inputs[v]))

    def final(numbers) -> tuple:
        return tuple(sorted(numbers[c] for c in concat))

    numbers = canonical_order(2, nodes, predecessors, describe, final)
    out: list[tuple[str, int]] = []
    for v in sorted(nodes, key=numbers.__getitem__):
        out.extend((op, source) for source, op in describe(v, numbers))
    return tuple(out), final(numbers)


def canonical_genotype(genotype: Genotype) -> Genotype:
    """The canonical representative of ``genotype``'s architecture (module documentation,
    *Identity*): equal for genotypes that differ only in the order of a node's two inputs,
    in the numbering of the intermediate nodes or in the order of the concatenation."""
    normal, normal_concat = _canonical_cell(genotype.normal, genotype.normal_concat)
    reduce, reduce_concat = _canonical_cell(genotype.reduce, genotype.reduce_concat)
    return Genotype(normal, normal_concat, reduce, reduce_concat)


def canonical_net(net: NDSNet) -> NDSNet:
    """``net`` with its :func:`canonical_genotype`."""
    return NDSNet(canonical_genotype(net.genotype), net.width, net.depth, net.aux)


def parse_net(net: Any, name: str | None = None) -> NDSNet:
    """An :class:`NDSNet` from a record's ``net`` (dict or JSON string), validated.

    Raises :class:`InvalidGenotypeError` naming the record (``name``) when a field is
    missing or malformed or an operation is unknown.
    """
    if isinstance(net, NDSNet):
        return net
    what = name or "NDS net"
    if isinstance(net, str):
        try:
            net = json.loads(net)
        except json.JSONDecodeError as exc:
            raise InvalidGenotypeError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(net, Mapping):
        raise InvalidGenotypeError(f"{what}: 'net' must be a mapping, got {type(net).__name__}")
    missing = [k for k in ("genotype", "width", "depth") if k not in net]
    if missing:
        raise InvalidGenotypeError(f"{what}: 'net' lacks field(s) {', '.join(missing)}")
    g = net["genotype"]
    if not isinstance(g, Mapping):
        raise InvalidGenotypeError(f"{what}: 'genotype' must be a mapping, got {type(g).__name__}")
    missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k not in g]
    if missing:
        raise InvalidGenotypeError(f"{what}: genotype lacks field(s) {', '.join(missing)}")
    normal, normal_concat = _cell(g["normal"], g["normal_concat"], "normal", what)
    reduce, reduce_concat = _cell(g["reduce"], g["reduce_concat"], "reduce", what)
    width, depth = net["width"], net["depth"]
    for field, value in (("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidGenotypeError(f"{what}: '{field}' must be a positive integer, got {value!r}")
    if width % 2:
        raise InvalidGenotypeError(f"{what}: width {width} must be even (factorized reductions halve it)")
    return NDSNet(Genotype(normal, normal_concat, reduce, reduce_concat), int(width), int(depth), bool(net.get("aux", False)))


# --- operations -------------------------------------------------------------------------

def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


def _depthwise_separable(c: int, kernel: int, stride: int, dilation: int) -> list[nn.Module]:
    """ReLU, depthwise k x k (dilated), pointwise 1x1, BN."""
    padding = dilation * (kernel - 1) // 2
    return [nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride, padding, dilation=dilation, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)]


def _factorized_conv(c: int, k: int, stride: int) -> nn.Sequential:
    """ReLU, 1 x k then k x 1 convolution, BN (the stride split between the two)."""
    return nn.Sequential(nn.ReLU(inplace=False),
                         nn.Conv2d(c, c, (1, k), (1, stride), (0, k // 2), bias=False),
                         nn.Conv2d(c, c, (k, 1), (stride, 1), (k // 2, 0), bias=False),
                         nn.BatchNorm2d(c))


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output shape (subsampled when strided)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return x.mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convolutions, one shifted by a pixel."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


def make_operation(op: str, c: int, stride: int) -> nn.Module:
    """Operation ``op`` on C channels with ``stride``."""
    if op == "none":
        return Zero(stride)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if op.startswith(("avg_pool_", "max_pool_")):
        k = int(op[-1])
        pad = (k - 1) // 2
        if op.startswith("avg"):
            return ExactAvgPool2d(k, stride=stride, padding=pad, count_include_pad=False)
        return nn.MaxPool2d(k, stride=stride, padding=pad)
    if op in ("conv_1x1", "conv_3x3"):
        k = int(op[-1])
        return _relu_conv_bn(c, c, k, stride, k // 2)
    if op in ("conv_3x1_1x3", "conv_7x1_1x7"):
        return _factorized_conv(c, int(op[5]), stride)
    if op.startswith("sep_conv_") or op == "dil_sep_conv_3x3":
        k = int(op[-1])
        dilation = 2 if op.startswith("dil") else 1
        return nn.Sequential(*_depthwise_separable(c, k, stride, dilation), *_depthwise_separable(c, k, 1, dilation))
    if op.startswith("dil_conv_"):
        return nn.Sequential(*_depthwise_separable(c, int(op[-1]), stride, 2))
    raise InvalidGenotypeError(f"unknown NDS operation {op!r}")


# --- network ----------------------------------------------------------------------------

class NDSCell(nn.Module):
    def __init__(self, pairs: Sequence[tuple[str, int]], concat: Sequence[int], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else _relu_conv_bn(c_prev_prev, c, 1)
        self.preprocess1 = _relu_conv_bn(c_prev, c, 1)
        self.inputs = [source for _, source in pairs]
        self.ops = nn.ModuleList(make_operation(op, c, 2 if reduction and source < 2 else 1) for op, source in pairs)
        self.concat = list(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(0, len(self.ops), 2):
            states.append(self.ops[i](states[self.inputs[i]]) + self.ops[i + 1](states[self.inputs[i + 1]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """The training-time auxiliary classifier (CIFAR: 8x8 input; ImageNet: 14x14)."""

    def __init__(self, c: int, num_classes: int, imagenet: bool):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReLU(inplace=False), nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False)]
        if not imagenet:  # the ImageNet head of the reference networks has no BN here
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=False))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def _reduction_positions(depth: int) -> tuple[int, int]:
    return depth // 3, 2 * depth // 3


@dataclass(frozen=True)
class _CellSlot:
    """One cell of the network: its genotype half, channels and whether it (or its
    predecessor) reduces; ``c_out`` is the channel count it outputs."""

    pairs: tuple[tuple[str, int], ...]
    concat: tuple[int, ...]
    c_prev_prev: int
    c_prev: int
    c: int
    reduction: bool
    reduction_prev: bool

    @property
    def c_out(self) -> int:
        return len(self.concat) * self.c


def _cell_layout(net: NDSNet, stem: str) -> list[_CellSlot]:
    """The cells of a network, in order, from the stem's output width onwards."""
    c = net.width
    c_prev_prev, c_prev, reduction_prev = (c, c, True) if stem == "imagenet" else (3 * c, 3 * c, False)
    g = net.genotype
    reductions = _reduction_positions(net.depth)
    slots = []
    for i in range(net.depth):
        reduction = i in reductions
        if reduction:
            c *= 2
        pairs, concat = (g.reduce, g.reduce_concat) if reduction else (g.normal, g.normal_concat)
        slot = _CellSlot(pairs, concat, c_prev_prev, c_prev, c, reduction, reduction_prev)
        slots.append(slot)
        reduction_prev = reduction
        c_prev_prev, c_prev = c_prev, slot.c_out
    return slots


class NDSNetwork(nn.Module):
    """An NDS network; ``forward`` returns the logits (and the auxiliary logits when
    ``auxiliary`` is set and the network is training)."""

    def __init__(self, net: NDSNet, num_classes: int = 10, stem: str = "cifar", auxiliary: bool = False):
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise UsageError(f"unknown NDS stem {stem!r}; use 'cifar' or 'imagenet'")
        self.net = net
        self.imagenet = stem == "imagenet"
        c = net.width
        if self.imagenet:
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=False),
                nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c))
            self.stem1 = _relu_conv_bn(c, c, 3, 2, 1)
        else:
            self.stem0 = nn.Sequential(nn.Conv2d(3, 3 * c, 3, padding=1, bias=False), nn.BatchNorm2d(3 * c))
            self.stem1 = None
        slots = _cell_layout(net, stem)
        self.aux_position = _reduction_positions(net.depth)[1]
        self.cells = nn.ModuleList(NDSCell(s.pairs, s.concat, s.c_prev_prev, s.c_prev, s.c, s.reduction,
                                           s.reduction_prev) for s in slots)
        self.auxiliary_head = (AuxiliaryHead(slots[self.aux_position].c_out, num_classes, self.imagenet)
                               if auxiliary else None)
        self.pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(slots[-1].c_out, num_classes)

    def forward(self, x: torch.Tensor):
        if self.stem1 is not None:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem0(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.pooling(s1).flatten(1))
        return (logits, aux) if aux is not None else logits

    def feature_stages(self) -> list[tuple[str, nn.Module]]:
        """The modules whose outputs are the network's successive feature maps, in order:
        the stem (both parts of the ImageNet stem), then each cell."""
        stems = [("stem0", self.stem0)] + ([("stem1", self.stem1)] if self.stem1 is not None else [])
        return stems + [(f"cells.{i}", cell) for i, cell in enumerate(self.cells)]


def count_nds_params(net: NDSNet, num_classes: int = 10, stem: str = "cifar", auxiliary: bool = False) -> int:
    """Parameter count of :class:`NDSNetwork` computed from the rules, without building it."""
    c = net.width
    if stem == "imagenet":
        total = 3 * 9 * (c // 2) + c + 9 * (c // 2) * c + 2 * c + 9 * c * c + 2 * c
    else:
        total = 3 * 9 * 3 * c + 6 * c
    slots = _cell_layout(net, stem)
    for s in slots:
        c = s.c
        total += s.c_prev_prev * c + 2 * c  # 1x1 conv-BN or factorized reduction: the same count
        total += s.c_prev * c + 2 * c
        for op, source in s.pairs:
            total += _op_param_count(op, c)
            if op == "skip_connect" and s.reduction and source < 2:
                total += c * c + 2 * c
    c_aux, c_prev = slots[_reduction_positions(net.depth)[1]].c_out, slots[-1].c_out
    if auxiliary:
        total += c_aux * 128 + 256 + 128 * 4 * 768 + (0 if stem == "imagenet" else 2 * 768) + 768 * num_classes + num_classes
    return total + c_prev * num_classes + num_classes


class NDSSpace(SearchSpace):
    """One NDS design space: architectures are records' ``net`` fields (:class:`NDSNet`).

    ``stem`` is ``"cifar"`` (32x32 images, CIFAR-10) or ``"imagenet"`` (224x224, ImageNet).
    ``auxiliary`` adds the training-time auxiliary head (off for scoring).
    """

    def __init__(self, name: str, file_stem: str, stem: str, auxiliary: bool = False):
        self.name = name
        self.file_stem = file_stem
        self.stem = stem
        self.auxiliary = auxiliary
        self.default_resolution = 224 if stem == "imagenet" else 32

    def encode(self, arch: Any) -> str:
        """The :func:`canonical_net`'s string: one per architecture (module documentation)."""
        return canonical_net(parse_net(arch)).to_string()

    def decode(self, code: Any) -> NDSNet:
        return parse_net(code)

    def build(self, arch: Any, num_classes: int = 10, **kwargs: Any) -> NDSNetwork:
        """The network of the :func:`canonical_net` (the same for every spelling of it)."""
        return NDSNetwork(canonical_net(parse_net(arch)), num_classes, self.stem,
                          kwargs.get("auxiliary", self.auxiliary))

    def count_params(self, arch: Any, num_classes: int = 10) -> int:
        return count_nds_params(parse_net(arch), num_classes, self.stem, self.auxiliary)
