"""The DARTS cell space (Liu et al., ICLR 2019): genotypes built through the NDS builder.

A DARTS genotype has a normal and a reduction cell; each cell has four intermediate nodes
(2..5), each the sum of two operations on two distinct earlier states (0 and 1 are the
cell's inputs), and outputs the concatenation of the four nodes. Operations are the eight
DARTS primitives less ``none`` (:data:`DARTS_OPERATIONS`; ``none`` is a candidate of the
search, never an operation of a final genotype).

Networks are built by the NDS builder (:class:`~xigsnr_naslib.benchmarks.nds.space.NDSNetwork`, CIFAR
stem), so a genotype found here is an NDS ``DARTS`` record's ``net`` with the chosen width
and depth. Scoring uses a small network of this family (``width``, ``depth``; default 16
channels, 8 cells); :func:`evaluation_net` is the network the DARTS paper trains on CIFAR-10
(36 channels, 20 cells, about 3.3 M parameters without the auxiliary head), whose size a
search reports.

A genotype's identity is the NDS one (:mod:`~xigsnr_naslib.benchmarks.nds.space`, *Identity*): the
two inputs of a node in either order, and any renumbering of the four nodes that keeps each
after its inputs, are one architecture. :meth:`DartsSpace.encode` gives the canonical
genotype's JSON and the space builds that genotype's network. DARTS's own genotypes list a
node's inputs by the strength of their edges (DARTS-V2's node 4 reads ``[sep_conv_3x3, 1],
[skip_connect, 0]``): their canonical strings list them by input.
"""
from __future__ import annotations

import json
import random
from typing import Any

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.space import SearchSpace
from xigsnr_naslib.benchmarks.nds.space import Genotype, NDSNet, NDSNetwork, canonical_genotype, count_nds_params, parse_net

__all__ = ["DARTS_PRIMITIVES", "DARTS_OPERATIONS", "DARTS_STEPS", "DartsSpace", "evaluation_net", "genotype_to_dict"]

#: the DARTS search primitives, in the DARTS code's order
DARTS_PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                    "dil_conv_3x3", "dil_conv_5x5")
#: the operations a DARTS genotype may hold (every primitive but ``none``)
DARTS_OPERATIONS = DARTS_PRIMITIVES[1:]
#: intermediate nodes of a cell
DARTS_STEPS = 4
_CONCAT = tuple(range(2, 2 + DARTS_STEPS))


def genotype_to_dict(genotype: Genotype) -> dict:
    """The genotype as plain data (``normal``/``reduce``: ``[op, input]`` pairs, and their concats)."""
    return {"normal": [list(p) for p in genotype.normal], "normal_concat": list(genotype.normal_concat),
            "reduce": [list(p) for p in genotype.reduce], "reduce_concat": list(genotype.reduce_concat)}


def evaluation_net(genotype: Genotype, width: int = 36, depth: int = 20) -> NDSNet:
    """The DARTS paper's CIFAR-10 evaluation network of ``genotype`` (36 channels, 20 cells)."""
    return NDSNet(genotype, width, depth)


class DartsSpace(SearchSpace):
    """DARTS genotypes (normal and reduction cells of four nodes), scored as NDS networks of
    ``width`` channels and ``depth`` cells (CIFAR stem, no auxiliary head).

    Errors: ``ValueError`` naming a genotype that is not a DARTS cell pair.
    """

    name = "darts"
    default_resolution = 32

    def __init__(self, width: int = 16, depth: int = 8):
        if width < 2 or width % 2 or depth < 1:
            raise UsageError(f"DARTS networks need an even width >= 2 and depth >= 1, got width {width}, depth {depth}")
        self.width = width
        self.depth = depth

    def _check(self, genotype: Genotype) -> Genotype:
        for kind, pairs, concat in (("normal", genotype.normal, genotype.normal_concat),
                                    ("reduce", genotype.reduce, genotype.reduce_concat)):
            if len(pairs) != 2 * DARTS_STEPS or tuple(concat) != _CONCAT:
                raise UsageError(f"not a DARTS {kind} cell: {2 * DARTS_STEPS} [op, input] pairs and concat "
                                 f"{list(_CONCAT)} expected, got {len(pairs)} pairs and concat {list(concat)}")
            for step in range(DARTS_STEPS):
                (op_a, a), (op_b, b) = pairs[2 * step], pairs[2 * step + 1]
                bad = [op for op in (op_a, op_b) if op not in DARTS_OPERATIONS]
                if bad:
                    raise UsageError(f"operation {bad[0]!r} of the DARTS {kind} cell is not one of: "
                                     f"{', '.join(DARTS_OPERATIONS)}")
                if a == b:
                    raise UsageError(f"node {step + 2} of the DARTS {kind} cell reads input {a} twice")
        return genotype

    def encode(self, arch: Any) -> str:
        """The JSON of the :func:`~xigsnr_naslib.benchmarks.nds.space.canonical_genotype` (one per architecture)."""
        genotype = self.decode(arch) if not isinstance(arch, Genotype) else self._check(arch)
        return json.dumps(genotype_to_dict(canonical_genotype(genotype)), separators=(",", ":"))

    def decode(self, code: Any) -> Genotype:
        if isinstance(code, Genotype):
            return self._check(code)
        try:
            data = json.loads(code) if isinstance(code, str) else code
        except json.JSONDecodeError as exc:
            raise UsageError(f"not a DARTS genotype (JSON with normal, normal_concat, reduce, reduce_concat): "
                             f"{code!r} ({exc})") from None
        net = parse_net({"genotype": data, "width": self.width, "depth": self.depth}, "DARTS genotype")
        return self._check(net.genotype)

    def net(self, arch: Any) -> NDSNet:
        """The NDS ``net`` that :meth:`build` builds (of the canonical genotype)."""
        return NDSNet(canonical_genotype(self.decode(arch)), self.width, self.depth)

    def build(self, arch: Any, num_classes: int = 10, **kwargs: Any) -> NDSNetwork:
        return NDSNetwork(self.net(arch), num_classes, "cifar")

    def evaluation_net(self, arch: Any) -> NDSNet:
        """The DARTS paper's CIFAR-10 network of ``arch`` (:func:`evaluation_net`, canonical genotype)."""
        return evaluation_net(canonical_genotype(self.decode(arch)))

    def count_params(self, arch: Any, num_classes: int = 10) -> int:
        return count_nds_params(self.net(arch), num_classes, "cifar")

    def _cell(self, rng: random.Random) -> tuple[tuple[str, int], ...]:
        pairs = []
        for step in range(DARTS_STEPS):
            for source in sorted(rng.sample(range(2 + step), 2)):
                pairs.append((rng.choice(DARTS_OPERATIONS), source))
        return tuple(pairs)

    def sample(self, rng: random.Random) -> Genotype:
        """A uniform draw: per node, two distinct inputs and an operation for each."""
        return Genotype(self._cell(rng), _CONCAT, self._cell(rng), _CONCAT)

    def mutate(self, arch: Genotype, rng: random.Random) -> Genotype:
        """One node of one cell redrawn (its two inputs and operations)."""
        arch = self.decode(arch)
        kind = rng.choice(("normal", "reduce"))
        pairs = list(getattr(arch, kind))
        step = rng.randrange(DARTS_STEPS)
        sources = sorted(rng.sample(range(2 + step), 2))
        pairs[2 * step:2 * step + 2] = [(rng.choice(DARTS_OPERATIONS), s) for s in sources]
        cells = {"normal": arch.normal, "reduce": arch.reduce, kind: tuple(pairs)}
        return Genotype(cells["normal"], _CONCAT, cells["reduce"], _CONCAT)

    def crossover(self, a: Genotype, b: Genotype, rng: random.Random) -> Genotype:
        """Each node's two inputs from one parent or the other."""
        a, b = self.decode(a), self.decode(b)

        def mix(x, y):
            out = []
            for step in range(DARTS_STEPS):
                out.extend((x if rng.random() < 0.5 else y)[2 * step:2 * step + 2])
            return tuple(out)

        return Genotype(mix(a.normal, b.normal), _CONCAT, mix(a.reduce, b.reduce), _CONCAT)
