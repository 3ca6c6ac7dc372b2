"""NAS-Bench-101: cells (adjacency matrix + operations), their graph hash, and their networks.

A cell is a DAG of at most 7 vertices and 9 edges, given as an upper-triangular 0/1
adjacency matrix and one operation per vertex: ``input`` first, ``output`` last and one of
``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3`` in between.

Rules of the benchmark, implemented here from its description (Ying et al., ICML 2019):

* **Pruning.** Vertices that are not on a path from input to output do not compute
  anything: they are deleted (with their rows, columns and operations) before hashing
  and before building. A cell whose output cannot be reached from its input is invalid.
* **Graph hash.** Every vertex starts with the MD5 of ``str((out_degree, in_degree,
  label))``, labels being -1 for input, -2 for output and the operation's position in
  :data:`OPERATIONS`. For as many rounds as there are vertices, each vertex's digest
  becomes the MD5 of its sorted in-neighbour digests, ``|``, its sorted out-neighbour
  digests, ``|``, and its own digest. The hash is the MD5 of ``str(sorted(digests))``.
  Isomorphic cells share it; it keys the benchmark's records.
* **Identity.** The benchmark counts a cell and every cell of the same graph hash as one
  architecture (one record). :func:`canonical_cell` picks one representative of each
  isomorphism class of pruned cells: the interior vertices numbered in the topological
  order whose sequence of (predecessors' numbers, operation) is least. Its string is the
  space's canonical encoding, and :class:`NB101Space` builds its networks from it, so that
  isomorphic cells get one string, one record and the same network (hence the same score).
  Two cells have the same canonical string exactly when they have the same graph hash
  (checked on the 2,500 cells of the reference sample and on random relabellings of them).
* **Channels.** A module's output has ``C`` channels, the concatenation of the interior
  vertices that feed the output vertex: ``C`` is split evenly among them, the first
  ``C mod k`` getting one extra channel. Any other interior vertex gets the largest
  channel count among its interior successors. Interior inputs wider than the receiving
  vertex are cut to its width (their first channels); the module input reaches a vertex
  through a 1x1 conv-BN-ReLU projection to that vertex's width, and reaches the output
  (when connected to it) through a projection to ``C`` that is added to the concatenation.
  Convolution operations map the vertex's width to itself; max-pooling keeps it.
* **Network.** A 3x3 conv-BN-ReLU stem (128 channels in the benchmark), then
  ``num_stacks`` stacks of ``modules_per_stack`` modules; every stack after the first
  starts with a 2x2 max-pool of stride 2 and doubles the channels. Global average pooling
  and a linear layer (with bias) end it. Convolutions have no bias; BatchNorm has a scale
  and a shift, as TensorFlow's trainable variables count them.

With the benchmark's 128-channel stem and 10 classes the parameter count equals the
benchmark's ``trainable_parameters``. The released xi-GSNR run scored NAS-Bench-101 with a
16-channel stem (the default of :class:`NB101Space`, cheaper and what the published ranking
used); pass ``stem_channels=128`` for the benchmark's own networks.

BatchNorm uses TensorFlow's decay of 0.997 (PyTorch momentum 0.003) and epsilon 1e-5; in
training mode, where zero-cost proxies run, only the batch statistics matter.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.space import SearchSpace, canonical_order

__all__ = [
    "OPERATIONS",
    "INPUT",
    "OUTPUT",
    "MAX_VERTICES",
    "MAX_EDGES",
    "InvalidCellError",
    "Cell",
    "make_cell",
    "prune",
    "canonical_cell",
    "graph_hash",
    "vertex_channels",
    "NB101Module",
    "NB101Network",
    "NB101Space",
]

#: interior operations in the benchmark's canonical order (their index is the hash label)
OPERATIONS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
INPUT, OUTPUT = "input", "output"
MAX_VERTICES = 7
MAX_EDGES = 9
#: steps a mutation may take before giving up (it needs a handful)
_MAX_MUTATION_STEPS = 100_000
#: TensorFlow's BatchNorm decay 0.997 in PyTorch's convention (1 - decay)
BN_MOMENTUM = 1.0 - 0.997
BN_EPS = 1e-5


class InvalidCellError(UsageError):
    """A matrix/operations pair that is not a NAS-Bench-101 cell; the message names it."""


@dataclass(frozen=True)
class Cell:
    """A NAS-Bench-101 cell: a hashable matrix (tuple of 0/1 row tuples) and operations.

    Build one with :func:`make_cell`, which validates; the fields are as given (unpruned).
    """

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @property
    def n_vertices(self) -> int:
        return len(self.ops)

    @property
    def n_edges(self) -> int:
        return int(sum(map(sum, self.matrix)))

    def array(self) -> np.ndarray:
        return np.array(self.matrix, dtype=np.int64).reshape(self.n_vertices, self.n_vertices)

    def to_string(self) -> str:
        """``rows/of/bits;op,op,...`` e.g. ``011/001/000;input,maxpool3x3,output``."""
        return "/".join("".join(str(v) for v in row) for row in self.matrix) + ";" + ",".join(self.ops)


def _describe(matrix: Any, ops: Any, name: str | None) -> str:
    return name if name is not None else f"cell matrix={_short(matrix)} ops={_short(ops)}"


def _short(value: Any) -> str:
    text = value.tolist() if isinstance(value, np.ndarray) else value
    text = repr(text)
    return text if len(text) <= 200 else text[:197] + "..."


def make_cell(matrix: Any, ops: Sequence[str], name: str | None = None) -> Cell:
    """Validate a matrix and operations and return the :class:`Cell`.

    Raises :class:`InvalidCellError` naming the cell (``name``, or the values) when the matrix
    is not square, not 0/1, not strictly upper-triangular, does not match the operations in
    size, has more than 7 vertices or 9 edges, when an operation is unknown, or when the
    output cannot be reached from the input.
    """
    what = _describe(matrix, ops, name)
    try:
        array = np.asarray(matrix)
    except Exception as exc:  # ragged nested lists and the like
        raise InvalidCellError(f"{what}: matrix is not a rectangular array ({exc})") from None
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise InvalidCellError(f"{what}: matrix must be square, got shape {array.shape}")
    if array.size and not np.isin(array, (0, 1)).all():
        raise InvalidCellError(f"{what}: matrix entries must be 0 or 1")
    array = array.astype(np.int64)
    n = array.shape[0]
    if isinstance(ops, str) or not isinstance(ops, Sequence):
        raise InvalidCellError(f"{what}: ops must be a list of operation names, got {type(ops).__name__}")
    ops = tuple(ops)
    if len(ops) != n:
        raise InvalidCellError(f"{what}: {len(ops)} operations for a {n}x{n} matrix")
    if n < 2:
        raise InvalidCellError(f"{what}: a cell needs at least the input and output vertices")
    if n > MAX_VERTICES:
        raise InvalidCellError(f"{what}: {n} vertices, NAS-Bench-101 allows at most {MAX_VERTICES}")
    if np.tril(array).any():
        raise InvalidCellError(f"{what}: matrix must be strictly upper-triangular (an edge i->j needs i < j)")
    if array.sum() > MAX_EDGES:
        raise InvalidCellError(f"{what}: {int(array.sum())} edges, NAS-Bench-101 allows at most {MAX_EDGES}")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise InvalidCellError(f"{what}: the first operation must be {INPUT!r} and the last {OUTPUT!r}")
    unknown = [op for op in ops[1:-1] if op not in OPERATIONS]
    if unknown:
        raise InvalidCellError(f"{what}: unknown operation(s) {unknown}; known: {', '.join(OPERATIONS)}")
    cell = Cell(tuple(tuple(int(v) for v in row) for row in array), ops)
    prune(cell, name=name)  # raises when input and output are disconnected
    return cell


def _reachable(adjacency: np.ndarray, start: int) -> set[int]:
    seen, stack = {start}, [start]
    while stack:
        v = stack.pop()
        for w in np.flatnonzero(adjacency[v]):
            if int(w) not in seen:
                seen.add(int(w))
                stack.append(int(w))
    return seen


def prune(cell: Cell, name: str | None = None) -> Cell:
    """The cell without vertices that are not on an input-to-output path."""
    array = cell.array()
    n = cell.n_vertices
    keep = sorted(_reachable(array, 0) & _reachable(array.T, n - 1))
    if 0 not in keep or n - 1 not in keep:
        raise InvalidCellError(f"{_describe(cell.matrix, cell.ops, name)}: the output is not reachable from the input")
    sub = array[np.ix_(keep, keep)]
    return Cell(tuple(tuple(int(v) for v in row) for row in sub), tuple(cell.ops[i] for i in keep))


def canonical_cell(cell: Cell) -> Cell:
    """The canonical representative of ``cell``'s benchmark architecture: pruned, interior
    vertices renumbered (:func:`~xigsnr_naslib.benchmarks.space.canonical_order`): each interior
    vertex is described by its predecessors' new numbers and its operation's index in
    :data:`OPERATIONS`, the output by its predecessors' new numbers.

    Isomorphic cells (the same graph hash) give equal canonical cells; the cell's own vertex
    order plays no part. Plain Python on the matrix's tuples (under 0.3 ms a cell): the
    ground-truth readers canonicalise every cell of the benchmark.
    """
    matrix, n = cell.matrix, cell.n_vertices
    successors = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    predecessors = [[u for u in range(n) if matrix[u][v]] for v in range(n)]
    keep = _closure(successors, 0) & _closure(predecessors, n - 1)
    if 0 not in keep or n - 1 not in keep:
        raise InvalidCellError(f"{cell.to_string()}: the output is not reachable from the input")
    preds = {v: [u for u in predecessors[v] if u in keep] for v in keep}
    interior = sorted(keep - {0, n - 1})
    label = {v: OPERATIONS.index(cell.ops[v]) for v in interior}

    def describe(v: int, numbers) -> tuple:
        return tuple(sorted(numbers[u] for u in preds[v])), label[v]

    def final(numbers) -> tuple:
        return tuple(sorted(numbers[u] for u in preds[n - 1]))

    numbers = canonical_order(1, interior, preds, describe, final)
    m = len(keep)
    numbers[n - 1] = m - 1
    rows = [[0] * m for _ in range(m)]
    for v in keep:
        for u in preds[v]:
            rows[numbers[u]][numbers[v]] = 1
    ops = [""] * m
    for v in keep:
        ops[numbers[v]] = cell.ops[v]
    return Cell(tuple(map(tuple, rows)), tuple(ops))


def _closure(edges: list[list[int]], start: int) -> set[int]:
    seen, stack = {start}, [start]
    while stack:
        for w in edges[stack.pop()]:
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def graph_hash(cell: Cell) -> str:
    """The benchmark's isomorphism-invariant hash of the pruned cell (32 hex digits)."""
    pruned = prune(cell)
    array = pruned.array()
    n = pruned.n_vertices
    labels = [-1] + [OPERATIONS.index(op) for op in pruned.ops[1:-1]] + [-2]
    outs, ins = array.sum(axis=1), array.sum(axis=0)
    digests = [_md5(str((int(outs[v]), int(ins[v]), labels[v]))) for v in range(n)]
    predecessors = [np.flatnonzero(array[:, v]) for v in range(n)]
    successors = [np.flatnonzero(array[v]) for v in range(n)]
    for _ in range(n):
        digests = [
            _md5("".join(sorted(digests[u] for u in predecessors[v])) + "|"
                 + "".join(sorted(digests[w] for w in successors[v])) + "|" + digests[v])
            for v in range(n)
        ]
    return _md5(str(sorted(digests)))


def vertex_channels(in_channels: int, out_channels: int, cell: Cell) -> list[int]:
    """Channels of every vertex of a pruned cell inside a module of ``out_channels``."""
    array = cell.array()
    n = cell.n_vertices
    channels = [0] * n
    channels[0], channels[-1] = in_channels, out_channels
    if n == 2:
        return channels
    feeding_output = [v for v in range(1, n - 1) if array[v, n - 1]]
    share, extra = divmod(out_channels, len(feeding_output)) if feeding_output else (0, 0)
    for rank, v in enumerate(feeding_output):
        channels[v] = share + (1 if rank < extra else 0)
    for v in range(n - 2, 0, -1):
        if not array[v, n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if array[v, w])
    if any(c <= 0 for c in channels):
        raise InvalidCellError(f"{cell.to_string()}: {out_channels} channels cannot be split over its vertices")
    return channels


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=False),
        )


def _operation(op: str, channels: int) -> nn.Module:
    if op == "conv3x3-bn-relu":
        return ConvBNReLU(channels, channels, 3)
    if op == "conv1x1-bn-relu":
        return ConvBNReLU(channels, channels, 1)
    if op == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise InvalidCellError(f"unknown NAS-Bench-101 operation {op!r}")


class NB101Module(nn.Module):
    """One module (cell instance) mapping ``in_channels`` to ``out_channels`` channels."""

    def __init__(self, cell: Cell, in_channels: int, out_channels: int):
        super().__init__()
        cell = prune(cell)
        self.n = cell.n_vertices
        self.adjacency = cell.array().astype(bool).tolist()
        self.channels = vertex_channels(in_channels, out_channels, cell)
        last = self.n - 1
        self.ops = nn.ModuleDict({str(v): _operation(cell.ops[v], self.channels[v]) for v in range(1, last)})
        # projections of the module input, for every vertex the input feeds (output included)
        self.projections = nn.ModuleDict({
            str(v): ConvBNReLU(in_channels, self.channels[v], 1) for v in range(1, self.n) if self.adjacency[0][v]
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = self.n - 1
        values: list[torch.Tensor | None] = [x] + [None] * last
        for v in range(1, last):
            width = self.channels[v]
            terms = [values[u][:, :width] for u in range(1, v) if self.adjacency[u][v]]  # type: ignore[index]
            if self.adjacency[0][v]:
                terms.append(self.projections[str(v)](x))
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            values[v] = self.ops[str(v)](total)
        feeding = [values[v] for v in range(1, last) if self.adjacency[v][last]]
        out = None
        if feeding:
            out = feeding[0] if len(feeding) == 1 else torch.cat(feeding, dim=1)  # type: ignore[arg-type]
        if self.adjacency[0][last]:
            projected = self.projections[str(last)](x)
            out = projected if out is None else out + projected
        return out  # type: ignore[return-value]


class NB101Network(nn.Module):
    """A NAS-Bench-101 network; ``forward`` returns the logits."""

    def __init__(self, cell: Cell, num_classes: int = 10, stem_channels: int = 128, num_stacks: int = 3,
                 modules_per_stack: int = 3):
        super().__init__()
        if stem_channels < 1 or num_stacks < 1 or modules_per_stack < 1:
            raise UsageError(f"need a positive stem width, stack and module count, got "
                             f"{stem_channels}, {num_stacks}, {modules_per_stack}")
        self.cell = cell
        self.stem = ConvBNReLU(3, stem_channels, 3)
        layers: list[nn.Module] = []
        c_in = c_out = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                c_out *= 2
            for _ in range(modules_per_stack):
                layers.append(NB101Module(cell, c_in, c_out))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.classifier(x.mean(dim=(2, 3)))

    def feature_stages(self) -> list[tuple[str, nn.Module]]:
        """The modules whose outputs are the network's successive feature maps, in order:
        the stem, then each module (cell instance) and each max-pooling between stacks."""
        return [("stem", self.stem)] + [(f"layers.{i}", layer) for i, layer in enumerate(self.layers)]


def parse_cell(code: Any, name: str | None = None) -> Cell:
    """A cell from its string (:meth:`Cell.to_string`), a JSON object ``{"matrix", "ops"}``,
    a ``(matrix, ops)`` pair or a :class:`Cell`; validated."""
    if isinstance(code, Cell):
        return make_cell(code.matrix, code.ops, name)
    if isinstance(code, dict):
        if "matrix" not in code or "ops" not in code:
            raise InvalidCellError(f"{name or code!r}: a cell record needs 'matrix' and 'ops'")
        return make_cell(code["matrix"], code["ops"], name)
    if isinstance(code, (tuple, list)) and len(code) == 2 and not isinstance(code[1], (int, np.integer)):
        return make_cell(code[0], code[1], name)
    if not isinstance(code, str):
        raise InvalidCellError(f"{name or _short(code)}: not a NAS-Bench-101 cell")
    text = code.strip()
    if text.startswith("{"):
        try:
            return parse_cell(json.loads(text), name or text)
        except json.JSONDecodeError as exc:
            raise InvalidCellError(f"{name or text}: not valid JSON ({exc})") from None
    rows, sep, ops = text.partition(";")
    if not sep:
        raise InvalidCellError(f"{name or text!r}: expected 'rows/of/bits;op,op,...'")
    bits = rows.split("/")
    if any(set(r) - {"0", "1"} for r in bits):
        raise InvalidCellError(f"{name or text!r}: matrix rows must be strings of 0 and 1")
    matrix = [[int(b) for b in r] for r in bits]
    if len({len(r) for r in matrix}) != 1:
        raise InvalidCellError(f"{name or text!r}: matrix rows differ in length")
    return make_cell(matrix, [o.strip() for o in ops.split(",")], name or text)


class NB101Space(SearchSpace):
    """The NAS-Bench-101 cells; networks of ``stem_channels`` (16: the released xi-GSNR run).

    :meth:`encode` gives the string of the :func:`canonical_cell` (one per graph hash, so
    isomorphic cells share it); :meth:`decode` gives the cell as written; :meth:`build`
    builds the canonical cell's network, the same for every isomorphic cell.
    """

    name = "nb101"
    default_resolution = 32

    def __init__(self, stem_channels: int = 16, num_stacks: int = 3, modules_per_stack: int = 3):
        self.stem_channels = stem_channels
        self.num_stacks = num_stacks
        self.modules_per_stack = modules_per_stack

    def encode(self, arch: Cell) -> str:
        return canonical_cell(parse_cell(arch)).to_string()

    def decode(self, code: Any) -> Cell:
        return parse_cell(code)

    def build(self, arch: Any, num_classes: int = 10, **kwargs: Any) -> NB101Network:
        cell = canonical_cell(parse_cell(arch))
        return NB101Network(cell, num_classes, kwargs.get("stem_channels", self.stem_channels),
                            kwargs.get("num_stacks", self.num_stacks),
                            kwargs.get("modules_per_stack", self.modules_per_stack))

    def arch_hash(self, arch: Any) -> str:
        """The benchmark's graph hash (equal for isomorphic cells)."""
        return graph_hash(parse_cell(arch))

    # --- sampling and variation, always within the benchmark's domain -----------------
    def sample(self, rng: random.Random) -> Cell:
        while True:
            matrix = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
            iu = np.triu_indices(MAX_VERTICES, k=1)
            matrix[iu] = [rng.randint(0, 1) for _ in range(len(iu[0]))]
            ops = (INPUT, *(rng.choice(OPERATIONS) for _ in range(MAX_VERTICES - 2)), OUTPUT)
            cell = self._valid(matrix, ops)
            if cell is not None:
                return cell

    def mutate(self, arch: Cell, rng: random.Random) -> Cell:
        """One edge flipped or one operation changed, until the child is another architecture
        (another canonical string): a step that gives a valid cell of the same architecture
        (a change to a vertex the pruning removes) is kept and the walk goes on from it. A cell
        of fewer than 7 vertices (a canonical, pruned one) first gets isolated vertices up to
        7 (:meth:`padded`), so that a mutation can grow it again."""
        current = self.padded(parse_cell(arch), rng)
        code = self.encode(current)
        for _ in range(_MAX_MUTATION_STEPS):
            matrix = current.array().copy()
            ops = list(current.ops)
            if rng.random() < 0.5:
                i = rng.randrange(current.n_vertices - 1)
                j = rng.randrange(i + 1, current.n_vertices)
                matrix[i, j] = 1 - matrix[i, j]
            else:
                v = rng.randrange(1, current.n_vertices - 1)
                ops[v] = rng.choice([o for o in OPERATIONS if o != ops[v]])
            cell = self._valid(matrix, ops)
            if cell is None:
                continue
            if self.encode(cell) != code:
                return cell
            current = cell
        raise UsageError(f"no mutation of NAS-Bench-101 cell {code} found in {_MAX_MUTATION_STEPS} steps")

    def crossover(self, a: Cell, b: Cell, rng: random.Random) -> Cell:
        """Each matrix entry and operation from one parent or the other (both :meth:`padded`
        to 7 vertices first)."""
        a, b = self.padded(parse_cell(a), rng), self.padded(parse_cell(b), rng)
        for _ in range(100):
            mask = np.array([[rng.random() < 0.5 for _ in range(a.n_vertices)] for _ in range(a.n_vertices)])
            matrix = np.where(mask, a.array(), b.array())
            ops = [x if rng.random() < 0.5 else y for x, y in zip(a.ops, b.ops)]
            cell = self._valid(matrix, ops)
            if cell is not None:
                return cell
        return a

    @staticmethod
    def padded(cell: Cell, rng: random.Random) -> Cell:
        """``cell`` with isolated interior vertices (operations drawn from ``rng``) inserted
        before the output up to 7 vertices: the same architecture, room to grow."""
        n = cell.n_vertices
        if n >= MAX_VERTICES:
            return cell
        extra = MAX_VERTICES - n
        matrix = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
        array = cell.array()
        keep = list(range(n - 1)) + [MAX_VERTICES - 1]  # old vertices' new numbers
        matrix[np.ix_(keep, keep)] = array
        ops = list(cell.ops[:-1]) + [rng.choice(OPERATIONS) for _ in range(extra)] + [OUTPUT]
        return make_cell(matrix, ops)

    @staticmethod
    def _valid(matrix: np.ndarray, ops: Iterable[str]) -> Cell | None:
        try:
            return make_cell(matrix, list(ops))
        except InvalidCellError:
            return None
