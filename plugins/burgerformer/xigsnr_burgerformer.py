"""BurgerFormer: a ViT-like space searched at micro, meso and macro level.

The space of Yang et al., *Searching for BurgerFormer with Micro-Meso-Macro Space Design*
(ICML 2022). A network is a convolutional stem (three 3x3 conv-BN-ReLU of 24 channels with
a residual around the last two, stride 2, then a 3x3 stride-2 projection to the first
width), four stages of blocks at 1/4, 1/8, 1/16 and 1/32 of the input resolution joined by
3x3 stride-2 convolutions followed by a one-group GroupNorm, a final one-group GroupNorm,
global average pooling and a linear classifier.

Choices:

* **macro** (per stage): depth, width and the expansion ratio of the meat.
* **meso** (per stage, shared by its blocks): a block is *bread - meat - bread*, three
  sub-blocks whose outputs are nodes 1, 2 and 3 (node 0 is the block input); sub-block i reads
  node i-1 and node i also receives node j through each skip edge j->i that is on (the six
  edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3). The meat is always an expansion MLP
  (one-group GroupNorm, 1x1 conv to ``ratio`` x width, GELU, its micro ops, 1x1 conv back).
* **micro** (per sub-block): ``act-norm-op-norm-act`` as in the released configurations,
  e.g. ``skip-GN-dwise_3x3-skip-gelu``. The first activation is always ``skip``; when the
  op is ``skip`` everything is; otherwise exactly one of the two norms is on. Norms: BN, GN
  (one group), LN (over channels); activations: relu6, gelu, silu; bread ops: dwise_3x3,
  conv_1x1, avgpool (pooling minus input, as PoolFormer), and in stages 3 and 4 also
  self_atten (4 and 8 heads) and spatial_mlp (a linear layer over the positions); meat op:
  dwise_3x3 or skip. A bread sub-block that is all ``skip`` has no layer scale; every other
  sub-block multiplies its output by a per-channel layer scale (initialised to 1e-5).

By default the skip edges follow the released search (``search_edges=False``): 0->1, 1->2
and 2->3 on, the others off, and a bread edge off when its sub-block is all ``skip`` (that
sub-block already passes its input on). ``search_edges=True`` also searches the edges,
under the rule that some identity path leads from node 0 to node 3.

An architecture is a tuple of four :class:`Stage`. Its canonical string joins the stages
with ``|``; a stage is ``d{depth}-w{width}-r{ratio}:{bread}:{meat}:{bread}:{edges}`` with the
edges as six 0/1 digits in the order above. :func:`from_config` and :func:`to_config`
convert from and to the dictionaries of the released code (``arch.py``).

FLOPs are multiply-adds of convolutions, linear layers and the two matrix products of
attention, for one image, in closed form (:meth:`BurgerFormerSpace.count_flops`); norms,
activations, pooling and additions are not counted. Note that the released FLOPs figures
(1.0G for BurgerFormer-tiny...) come from the authors' own counter, which also counts norms,
activations, biases and pooling; the difference is a few percent.
"""
from __future__ import annotations

import random
from typing import Mapping, NamedTuple, Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.core.pooling import ExactAvgPool2d
from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard
from xigsnr_naslib.data.protocol import PAPER_NB201
from xigsnr_naslib.benchmarks.space import SearchSpace

__all__ = [
    "Stage",
    "DEPTHS",
    "WIDTHS",
    "RATIOS",
    "NORMS",
    "ACTS",
    "BREAD_OPS",
    "MEAT_OPS",
    "EDGES",
    "BURGERFORMER_TINY",
    "BURGERFORMER_SMALL",
    "BURGERFORMER_BASE",
    "BURGERFORMER_LARGE",
    "from_config",
    "to_config",
    "BurgerFormerNetwork",
    "BurgerFormerSpace",
]

#: macro choices of the released search space, per stage
DEPTHS = ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4, 5, 6, 7, 8), (1, 2, 3, 4))
WIDTHS = ((32, 64, 96), (64, 96, 128), (128, 192, 256, 320), (128, 256, 384, 512))
RATIOS = ((1, 2, 4, 6),) * 4
#: micro choices ("skip" = nothing)
NORMS = ("skip", "BN", "GN", "LN")
ACTS = ("skip", "relu6", "gelu", "silu")
BREAD_OPS = ("skip", "dwise_3x3", "conv_1x1", "avgpool", "self_atten", "spatial_mlp")
MEAT_OPS = ("skip", "dwise_3x3")
#: bread ops allowed only where the feature map is small (stages 3 and 4)
GLOBAL_OPS = ("self_atten", "spatial_mlp")
HAS_GLOBAL_OPS = (False, False, True, True)
HEADS = (1, 1, 4, 8)
#: the six skip edges (source node, target node), in encoding order
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
STEM_CHANNELS = 24
LAYER_SCALE_INIT = 1e-5
ALL_SKIP = "skip-skip-skip-skip-skip"


class Stage(NamedTuple):
    """One stage: macro choices, the three sub-blocks' micro strings and the six skip edges."""

    depth: int
    width: int
    ratio: int
    blocks: tuple[str, str, str]
    edges: tuple[int, int, int, int, int, int]


Arch = tuple[Stage, Stage, Stage, Stage]


# -- strings and the released dictionaries ----------------------------------------------------
def _stage_str(stage: Stage) -> str:
    return (f"d{stage.depth}-w{stage.width}-r{stage.ratio}:" + ":".join(stage.blocks) + ":"
            + "".join(str(int(e)) for e in stage.edges))


def _parse_stage(text: str) -> Stage:
    parts = text.strip().split(":")
    if len(parts) != 5:
        raise ValueError(f"a BurgerFormer stage is 'dD-wW-rR:bread:meat:bread:edges', got {text!r}")
    macro = parts[0].split("-")
    if len(macro) != 3 or [m[:1] for m in macro] != ["d", "w", "r"] or not all(m[1:].isdigit() for m in macro):
        raise ValueError(f"bad macro part {parts[0]!r} in {text!r} (expected e.g. d2-w64-r4)")
    edges = parts[4]
    if len(edges) != 6 or set(edges) - {"0", "1"}:
        raise ValueError(f"edges of {text!r} must be six 0/1 digits, got {edges!r}")
    return Stage(int(macro[0][1:]), int(macro[1][1:]), int(macro[2][1:]), tuple(parts[1:4]),  # type: ignore[arg-type]
                 tuple(int(e) for e in edges))  # type: ignore[arg-type]


def from_config(config: Mapping) -> Arch:
    """An architecture from a released configuration dictionary (``{'stage-1': {...}, ...}``)."""
    stages = []
    for i in range(4):
        try:
            stage = config[f"stage-{i + 1}"]
            macro, meso = stage["macro"], stage["meso"]
            edges = tuple(int(meso[f"{a}->{b}"] == "skip") for a, b in EDGES)
            s = Stage(int(macro["depth"]), int(macro["width"]), int(macro.get("ratio", 4)),
                      (meso["1"], meso["2"], meso["3"]), edges)  # type: ignore[arg-type]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"BurgerFormer configuration lacks {exc} in stage-{i + 1}") from None
        if "use_layer_scale" in meso and list(meso["use_layer_scale"]) != list(_layer_scales(s)):
            raise ValueError(f"stage-{i + 1}: use_layer_scale {meso['use_layer_scale']} differs from the rule "
                             f"of the released search (off exactly for an all-skip bread sub-block)")
        stages.append(s)
    return tuple(stages)  # type: ignore[return-value]


def to_config(arch: Sequence[Stage]) -> dict:
    """The released code's configuration dictionary of ``arch``."""
    config = {}
    for i, s in enumerate(arch):
        meso: dict = {"use_layer_scale": list(_layer_scales(s)), "is_drop": list(_layer_scales(s))}
        meso.update({str(j + 1): s.blocks[j] for j in range(3)})
        meso.update({f"{a}->{b}": "skip" if e else "none" for (a, b), e in zip(EDGES, s.edges)})
        config[f"stage-{i + 1}"] = {"macro": {"depth": s.depth, "width": s.width, "ratio": s.ratio}, "meso": meso}
    return config


def _layer_scales(stage: Stage) -> tuple[bool, bool, bool]:
    return tuple(not (j != 1 and b == ALL_SKIP) for j, b in enumerate(stage.blocks))  # type: ignore[return-value]


def _fixed_edges(blocks: Sequence[str]) -> tuple[int, ...]:
    """The released search's edges: 0->1, 1->2, 2->3 on unless the bread sub-block is all skip."""
    return (int(blocks[0] != ALL_SKIP), 0, 1, 0, 0, int(blocks[2] != ALL_SKIP))


def _has_identity_path(stage: Stage) -> bool:
    """Some path 0 -> 3 made of skip edges and all-skip bread sub-blocks."""
    e = dict(zip(EDGES, stage.edges))
    link = {(0, 1): e[(0, 1)] or stage.blocks[0] == ALL_SKIP, (1, 2): e[(1, 2)], (0, 2): e[(0, 2)],
            (0, 3): e[(0, 3)], (1, 3): e[(1, 3)], (2, 3): e[(2, 3)] or stage.blocks[2] == ALL_SKIP}
    reach = {0}
    for b in (1, 2, 3):
        if any(link[(a, b)] for a in reach if (a, b) in link):
            reach.add(b)
    return 3 in reach


#: the released models (``arch.py`` of the authors' repository), in our encoding
BURGERFORMER_TINY = (
    "d2-w32-r4:skip-skip-skip-skip-skip:skip-GN-dwise_3x3-skip-gelu:skip-skip-avgpool-LN-silu:001001|"
    "d4-w96-r1:skip-skip-dwise_3x3-LN-silu:skip-LN-dwise_3x3-skip-relu6:skip-skip-dwise_3x3-BN-relu6:101001|"
    "d4-w192-r4:skip-LN-avgpool-skip-silu:skip-skip-skip-skip-skip:skip-GN-spatial_mlp-skip-skip:101001|"
    "d4-w384-r6:skip-skip-skip-skip-skip:skip-skip-dwise_3x3-LN-skip:skip-skip-skip-skip-skip:001000")
BURGERFORMER_SMALL = (
    "d3-w96-r1:skip-GN-avgpool-skip-silu:skip-skip-dwise_3x3-LN-silu:skip-skip-dwise_3x3-BN-relu6:101001|"
    "d3-w128-r6:skip-skip-conv_1x1-BN-relu6:skip-skip-dwise_3x3-GN-skip:skip-skip-avgpool-LN-silu:101001|"
    "d5-w256-r4:skip-skip-dwise_3x3-BN-gelu:skip-skip-skip-skip-skip:skip-skip-skip-skip-skip:101000|"
    "d4-w512-r4:skip-skip-avgpool-LN-relu6:skip-skip-dwise_3x3-GN-skip:skip-BN-spatial_mlp-skip-silu:101001")
BURGERFORMER_BASE = (
    "d2-w96-r2:skip-skip-avgpool-GN-silu:skip-skip-skip-skip-skip:skip-LN-avgpool-skip-skip:101001|"
    "d2-w128-r6:skip-BN-dwise_3x3-skip-skip:skip-skip-skip-skip-skip:skip-GN-dwise_3x3-skip-relu6:101001|"
    "d6-w320-r6:skip-skip-self_atten-GN-silu:skip-skip-dwise_3x3-LN-silu:skip-skip-conv_1x1-LN-gelu:101001|"
    "d3-w512-r6:skip-LN-self_atten-skip-gelu:skip-skip-skip-skip-skip:skip-skip-avgpool-GN-silu:101001")
BURGERFORMER_LARGE = (
    "d4-w96-r6:skip-skip-avgpool-LN-skip:skip-skip-dwise_3x3-LN-silu:skip-GN-dwise_3x3-skip-skip:101001|"
    "d4-w128-r6:skip-BN-dwise_3x3-skip-silu:skip-GN-dwise_3x3-skip-relu6:skip-BN-conv_1x1-skip-skip:101001|"
    "d8-w320-r6:skip-skip-self_atten-GN-relu6:skip-skip-dwise_3x3-GN-gelu:skip-GN-conv_1x1-skip-relu6:101001|"
    "d4-w512-r6:skip-BN-conv_1x1-skip-silu:skip-skip-dwise_3x3-GN-skip:skip-GN-self_atten-skip-gelu:101001")


# -- layers -------------------------------------------------------------------------------------
class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of an N x C x H x W tensor."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class PoolMixer(nn.Module):
    """3x3 average pooling minus the input (PoolFormer's token mixer)."""

    def __init__(self):
        super().__init__()
        self.pool = ExactAvgPool2d(3, 1, 1, count_include_pad=False)  # nn.AvgPool2d, faster on CPU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) - x


class Attention(nn.Module):
    """Multi-head self-attention over the positions of an N x C x H x W tensor."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tokens).reshape(n, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(n, h * w, c)
        return self.proj(out).transpose(1, 2).reshape(n, c, h, w)


class SpatialMLP(nn.Module):
    """One linear layer mixing the H*W positions of each channel."""

    def __init__(self, positions: int):
        super().__init__()
        self.fc = nn.Linear(positions, positions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.fc(x.flatten(2)).reshape(n, c, h, w)


def _norm(name: str, dim: int) -> nn.Module:
    if name == "BN":
        return nn.BatchNorm2d(dim)
    if name == "GN":
        return nn.GroupNorm(1, dim)
    if name == "LN":
        return ChannelLayerNorm(dim)
    raise ValueError(f"unknown BurgerFormer norm {name!r}")


_ACTIVATIONS = {"relu6": nn.ReLU6, "gelu": nn.GELU, "silu": nn.SiLU}


def _op(name: str, dim: int, heads: int, positions: int) -> nn.Module:
    if name == "dwise_3x3":
        return nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
    if name == "conv_1x1":
        return nn.Conv2d(dim, dim, 1)
    if name == "avgpool":
        return PoolMixer()
    if name == "self_atten":
        return Attention(dim, heads)
    if name == "spatial_mlp":
        return SpatialMLP(positions)
    raise ValueError(f"unknown BurgerFormer op {name!r}")


class SubBlock(nn.Module):
    """``act-norm-op-norm-act`` (inside an expansion MLP for the meat), times a layer scale."""

    def __init__(self, micro: str, dim: int, heads: int, positions: int, meat: bool, ratio: int, layer_scale: bool):
        super().__init__()
        inner = dim * ratio if meat else dim
        layers: list[nn.Module] = []
        for token in micro.split("-"):
            if token == "skip":
                continue
            if token in NORMS:
                layers.append(_norm(token, inner))
            elif token in _ACTIVATIONS:
                layers.append(_ACTIVATIONS[token]())
            else:
                layers.append(_op(token, inner, heads, positions))
        body = nn.Sequential(*layers)
        if meat:
            body = nn.Sequential(nn.GroupNorm(1, dim), nn.Conv2d(dim, inner, 1), nn.GELU(), body,
                                 nn.Conv2d(inner, dim, 1))
        self.body = body
        self.layer_scale = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT)) if layer_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y * self.layer_scale[:, None, None] if self.layer_scale is not None else y


class BurgerBlock(nn.Module):
    """bread - meat - bread with the stage's skip edges."""

    def __init__(self, stage: Stage, heads: int, positions: int):
        super().__init__()
        scales = _layer_scales(stage)
        self.subs = nn.ModuleList(
            SubBlock(stage.blocks[j], stage.width, heads, positions, j == 1, stage.ratio, scales[j]) for j in range(3))
        self.inputs = [[a for (a, b), on in zip(EDGES, stage.edges) if on and b == j + 1] for j in range(3)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j, sub in enumerate(self.subs):
            out = sub(nodes[j])
            for a in self.inputs[j]:
                out = out + nodes[a]
            nodes.append(out)
        return nodes[3]


class Downsample(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_out, 3, 2, 1), nn.GroupNorm(1, c_out))


class Stem(nn.Module):
    """conv-BN-ReLU (stride 2), two more with a residual around them, 3x3 stride-2 projection."""

    def __init__(self, c_out: int, mid: int = STEM_CHANNELS):
        super().__init__()

        def cbr(c_in: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU())

        self.conv1, self.conv2, self.conv3 = cbr(3, 2), cbr(mid, 1), cbr(mid, 1)
        self.proj = nn.Conv2d(mid, c_out, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.proj(x + self.conv3(self.conv2(x)))


def _down(size: int) -> int:
    """Output size of a 3x3, stride-2, padding-1 convolution."""
    return (size - 1) // 2 + 1


def stage_sizes(resolution: int) -> list[int]:
    """Feature-map side of each stage for a square input of ``resolution``."""
    size = _down(_down(resolution))
    sizes = [size]
    for _ in range(3):
        size = _down(size)
        sizes.append(size)
    return sizes


class BurgerFormerNetwork(nn.Module):
    """A BurgerFormer network for one input resolution (spatial MLPs fix the positions)."""

    def __init__(self, arch: Sequence[Stage], num_classes: int = 1000, resolution: int = 224):
        super().__init__()
        sizes = stage_sizes(resolution)
        self.stem = Stem(arch[0].width)
        layers: list[nn.Module] = []
        for i, stage in enumerate(arch):
            if i > 0:
                layers.append(Downsample(arch[i - 1].width, stage.width))
            layers.extend(BurgerBlock(stage, HEADS[i], sizes[i] ** 2) for _ in range(stage.depth))
        self.stages = nn.Sequential(*layers)
        self.norm = nn.GroupNorm(1, arch[-1].width)
        self.head = nn.Linear(arch[-1].width, num_classes)
        self.resolution = resolution
        for m in self.modules():
            if isinstance(m, nn.Linear):  # as the released code initialises them
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.stages(self.stem(x)))
        return self.head(x.mean((-2, -1)))


# -- the space ------------------------------------------------------------------------------------
class BurgerFormerSpace(SearchSpace):
    """The BurgerFormer space (see the module docstring).

    Parameters
    ----------
    search_edges : bool
        Also search the six skip edges (default False: the released search's fixed pattern).
    resolution : int
        Input resolution the networks are built for and FLOPs are counted at (224).
    """

    name = "burgerformer"
    default_resolution = 224

    def __init__(self, search_edges: bool = False, resolution: int = 224):
        self.search_edges = search_edges
        self.resolution = resolution

    # -- rules ---------------------------------------------------------------------------------
    def validate(self, arch: Sequence[Stage]) -> Arch:
        """``arch`` as a tuple of :class:`Stage`, or ``ValueError`` naming the first broken rule."""
        try:
            arch = tuple(Stage(int(s[0]), int(s[1]), int(s[2]), tuple(s[3]), tuple(int(e) for e in s[4]))
                         for s in arch)
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"burgerformer: not an architecture (four stages of depth, width, ratio, blocks, "
                             f"edges): {arch!r}") from None
        if len(arch) != 4:
            raise ValueError(f"burgerformer: an architecture has 4 stages, got {len(arch)}")
        for i, s in enumerate(arch):
            where = f"burgerformer stage {i + 1}"
            if s.depth not in DEPTHS[i] or s.width not in WIDTHS[i] or s.ratio not in RATIOS[i]:
                raise ValueError(f"{where}: depth {s.depth}, width {s.width}, ratio {s.ratio} not in "
                                 f"{DEPTHS[i]}, {WIDTHS[i]}, {RATIOS[i]}")
            if len(s.blocks) != 3 or len(s.edges) != 6 or set(s.edges) - {0, 1}:
                raise ValueError(f"{where}: needs 3 sub-blocks and 6 edges of 0/1")
            for j, micro in enumerate(s.blocks):
                _check_micro(micro, meat=j == 1, global_ops=HAS_GLOBAL_OPS[i], where=f"{where} sub-block {j + 1}")
            if self.search_edges:
                if not _has_identity_path(s):
                    raise ValueError(f"{where}: no identity path from the block input to its output")
            elif s.edges != _fixed_edges(s.blocks):
                raise ValueError(f"{where}: edges {''.join(map(str, s.edges))} differ from the fixed pattern "
                                 f"{''.join(map(str, _fixed_edges(s.blocks)))} (use search_edges=True)")
        return arch  # type: ignore[return-value]

    def encode(self, arch: Sequence[Stage]) -> str:
        return "|".join(_stage_str(s) for s in self.validate(arch))

    def decode(self, code: str) -> Arch:
        if not isinstance(code, str):
            raise ValueError(f"burgerformer: an encoding is a string, got {code!r}")
        return self.validate([_parse_stage(part) for part in code.strip().split("|")])

    # -- networks and their size ------------------------------------------------------------------
    def build(self, arch: Sequence[Stage] | str, num_classes: int = 1000, resolution: int | None = None,
              **kwargs) -> BurgerFormerNetwork:
        arch = self.decode(arch) if isinstance(arch, str) else self.validate(arch)
        return BurgerFormerNetwork(arch, num_classes, resolution or self.resolution)

    def _size(self, arch: Sequence[Stage], resolution: int, num_classes: int, released: bool = False
              ) -> tuple[int, int]:
        """(FLOPs, parameters) in closed form; FLOPs are multiply-adds unless ``released``."""
        arch = self.validate(arch)
        sizes = stage_sizes(resolution)
        half, mid, c0 = _down(resolution), STEM_CHANNELS, arch[0].width
        n0 = sizes[0] ** 2
        flops = half * half * (3 * mid * 9 + 2 * mid * mid * 9) + n0 * mid * c0 * 9
        params = 3 * mid * 9 + 2 * mid * mid * 9 + 3 * 2 * mid + mid * c0 * 9 + c0
        if released:  # three BN + ReLU of the stem, the projection's bias
            flops += 3 * half * half * mid * 3 + n0 * c0
        for i, s in enumerate(arch):
            n, c = sizes[i] ** 2, s.width
            if i > 0:
                c_prev = arch[i - 1].width
                flops += n * c_prev * c * 9 + (n * c * 3 if released else 0)  # conv (+ bias, GroupNorm)
                params += c_prev * c * 9 + c + 2 * c
            f, p = _block_size(s, n, c, released)
            flops += s.depth * f
            params += s.depth * p
        c = arch[-1].width
        flops += c * num_classes + ((2 * sizes[3] ** 2 * c + num_classes) if released else 0)
        params += 2 * c + c * num_classes + num_classes
        return int(flops), int(params)

    def count_flops(self, arch: Sequence[Stage], resolution: int | None = None, num_classes: int = 1000,
                    convention: str = "macs") -> int:
        """FLOPs of one image, in closed form.

        ``convention="macs"`` (default): multiply-adds of convolutions, linear layers and the
        two attention products. ``convention="released"``: the way the released FLOPs figures
        count, which adds one operation per bias, activation and pooling output and two per
        normalised element (residual additions are not counted).
        """
        if convention not in ("macs", "released"):
            raise ValueError(f"unknown FLOPs convention {convention!r}; known: macs, released")
        return self._size(arch, resolution or self.resolution, num_classes, convention == "released")[0]

    def count_params(self, arch: Sequence[Stage], num_classes: int = 1000, resolution: int | None = None) -> int:
        """Parameters of the network built for ``resolution`` (default: the space's), in closed form.

        Spatial MLPs have (H*W)^2 + H*W parameters, so the count depends on the resolution.
        """
        return self._size(arch, resolution or self.resolution, num_classes)[1]

    # -- search operators ---------------------------------------------------------------------------
    def _sample_stage(self, i: int, rng: random.Random) -> Stage:
        blocks = tuple(_sample_micro(rng, meat=j == 1, global_ops=HAS_GLOBAL_OPS[i]) for j in range(3))
        stage = Stage(rng.choice(DEPTHS[i]), rng.choice(WIDTHS[i]), rng.choice(RATIOS[i]), blocks,  # type: ignore[arg-type]
                      _fixed_edges(blocks))  # type: ignore[arg-type]
        return self._edges_for(stage, rng)

    def _edges_for(self, stage: Stage, rng: random.Random, keep: bool = False) -> Stage:
        """Fixed-pattern edges, or (``search_edges``) random ones with an identity path."""
        if not self.search_edges:
            return stage._replace(edges=_fixed_edges(stage.blocks))
        if keep and _has_identity_path(stage):
            return stage
        while True:
            candidate = stage._replace(edges=tuple(rng.randrange(2) for _ in EDGES))
            if _has_identity_path(candidate):
                return candidate

    def sample(self, rng: random.Random) -> Arch:
        return tuple(self._sample_stage(i, rng) for i in range(4))  # type: ignore[return-value]

    def _genes(self, i: int) -> int:
        return 6 + (6 if self.search_edges else 0)

    def mutate(self, arch: Sequence[Stage], rng: random.Random, rate: float | None = None) -> Arch:
        """Redraw each gene (depth, width, ratio, each sub-block, each edge) with probability ``rate``.

        ``rate`` defaults to 1/genes; the result differs from ``arch`` and follows the rules.
        """
        arch = self.validate(arch)
        genes = sum(self._genes(i) for i in range(4))
        rate = 1.0 / genes if rate is None else rate
        while True:
            out = []
            for i, s in enumerate(arch):
                fields = s._asdict()
                for key, options in (("depth", DEPTHS[i]), ("width", WIDTHS[i]), ("ratio", RATIOS[i])):
                    if rng.random() < rate:
                        fields[key] = rng.choice([o for o in options if o != fields[key]])
                blocks = list(s.blocks)
                for j in range(3):
                    if rng.random() < rate:
                        blocks[j] = _sample_micro(rng, meat=j == 1, global_ops=HAS_GLOBAL_OPS[i], avoid=blocks[j])
                fields["blocks"] = tuple(blocks)
                edges = list(s.edges)
                if self.search_edges:
                    for k in range(6):
                        if rng.random() < rate:
                            edges[k] = 1 - edges[k]
                fields["edges"] = tuple(edges)
                out.append(self._edges_for(Stage(**fields), rng, keep=True))
            child = tuple(out)
            if child != arch:
                return child  # type: ignore[return-value]

    def crossover(self, a: Sequence[Stage], b: Sequence[Stage], rng: random.Random) -> Arch:
        """Each stage's macro choices, and its meso/micro choices, from either parent."""
        a, b = self.validate(a), self.validate(b)
        out = []
        for sa, sb in zip(a, b):
            macro = sa if rng.random() < 0.5 else sb
            meso = sa if rng.random() < 0.5 else sb
            out.append(Stage(macro.depth, macro.width, macro.ratio, meso.blocks, meso.edges))
        return tuple(out)  # type: ignore[return-value]

    def naslib_graph(self, arch: Sequence[Stage] | str | None = None, num_classes: int = 1000):
        """A NASLib-style graph of ``arch`` for ``ZeroCost.query`` (see :mod:`.naslib_graph`)."""
        from xigsnr_naslib.integrations.naslib.graph import NASLibGraph

        return NASLibGraph(self, arch, num_classes=num_classes)


def _check_micro(micro: str, meat: bool, global_ops: bool, where: str) -> None:
    tokens = micro.split("-") if isinstance(micro, str) else []
    if len(tokens) != 5:
        raise ValueError(f"{where}: {micro!r} is not 'act-norm-op-norm-act'")
    act0, norm1, op, norm2, act2 = tokens
    ops = MEAT_OPS if meat else (BREAD_OPS if global_ops else tuple(o for o in BREAD_OPS if o not in GLOBAL_OPS))
    if act0 != "skip" or norm1 not in NORMS or norm2 not in NORMS or act2 not in ACTS or op not in ops:
        raise ValueError(f"{where}: {micro!r} breaks the choices (first act 'skip'; norms {NORMS}; "
                         f"ops {ops}; acts {ACTS})")
    if op == "skip" and micro != ALL_SKIP:
        raise ValueError(f"{where}: {micro!r}: with op 'skip' every position is 'skip'")
    if op != "skip" and (norm1 == "skip") == (norm2 == "skip"):
        raise ValueError(f"{where}: {micro!r}: exactly one norm, before or after the op")


def _sample_micro(rng: random.Random, meat: bool, global_ops: bool, avoid: str | None = None) -> str:
    ops = MEAT_OPS if meat else (BREAD_OPS if global_ops else tuple(o for o in BREAD_OPS if o not in GLOBAL_OPS))
    while True:
        op = rng.choice(ops)
        if op == "skip":
            micro = ALL_SKIP
        else:
            norm = rng.choice(NORMS[1:])
            before = rng.random() < 0.5
            micro = "-".join(("skip", norm if before else "skip", op, "skip" if before else norm, rng.choice(ACTS)))
        if micro != avoid:
            return micro


def _block_size(stage: Stage, n: int, c: int, released: bool = False) -> tuple[int, int]:
    """(FLOPs, parameters) of one block at width ``c`` over ``n`` positions (see ``count_flops``)."""
    flops = params = 0
    extra = 0  # the released convention's elementwise operations
    scales = _layer_scales(stage)
    for j, micro in enumerate(stage.blocks):
        dim = c * stage.ratio if j == 1 else c
        if j == 1:  # the meat's expansion MLP: GroupNorm, 1x1 up, GELU, 1x1 down
            flops += 2 * n * c * dim
            params += 2 * c + (c * dim + dim) + (dim * c + c)
            extra += 2 * n * c + n * dim + n * dim + n * c
        for token in micro.split("-"):
            if token in ("BN", "GN", "LN"):
                params += 2 * dim
                extra += 2 * n * dim
            elif token in _ACTIVATIONS or token == "avgpool":
                extra += n * dim
            elif token == "dwise_3x3":
                flops += n * dim * 9
                params += dim * 9 + dim
                extra += n * dim
            elif token == "conv_1x1":
                flops += n * dim * dim
                params += dim * dim + dim
                extra += n * dim
            elif token == "self_atten":
                flops += n * dim * 3 * dim + 2 * n * n * dim + n * dim * dim
                params += 3 * dim * dim + dim * dim + dim
            elif token == "spatial_mlp":
                flops += dim * n * n
                params += n * n + n
                extra += n
        if scales[j]:
            params += c
    return flops + (extra if released else 0), params


def card() -> BenchmarkCard:
    """BurgerFormer's card (ImageNet at 224x224, 8 batches of 64; no benchmark accuracies).
    Registered through the entry-point group ``xigsnr_naslib.spaces`` (this package's
    ``pyproject.toml``)."""
    imagenet = DatasetCard("imagenet", 1000, 224, "imagenet", PAPER_NB201, "xi_gsnr")
    return BenchmarkCard("burgerformer", BurgerFormerSpace, {"imagenet": imagenet},
                         "BurgerFormer (Yang et al. 2022): transformer blocks from micro-operations",
                         space_options={"search_edges": False, "resolution": 224},
                         paper_constraints={"max_params": 30e6, "max_flops": 5.0e9})  # the paper's Sec. 4.2.4
