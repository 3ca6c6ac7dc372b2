"""ProxylessNAS: a chain of MobileNetV2 blocks whose kernel and expansion are searched.

The space of Cai, Zhu and Han, *ProxylessNAS: Direct Neural Architecture Search on Target
Task and Hardware* (ICLR 2019). A network is a fixed skeleton:

    3x3 conv (stride 2, BN, ReLU6) -> a fixed 3x3 MBConv with expansion 1
    -> searchable MBConv layers in stages of fixed width, depth and first stride
    -> 1x1 conv to ``last`` channels (BN, ReLU6) -> global average pool -> linear

Each searchable layer is one of ``k{3,5,7}e{3,6}``: an inverted residual block (1x1
expansion conv to ``round(e * c_in)`` channels, BN, ReLU6; k x k depthwise conv, BN, ReLU6;
1x1 projection conv, BN; an identity shortcut when the stride is 1 and the width does not
change). In the original space a layer whose shortcut exists may also be ``zero``: the
block is skipped and only the shortcut remains. BatchNorm uses eps 1e-3, as the released
networks do.

An architecture is a tuple of layer choices, one per searchable layer; its string joins the
layers of a stage with ``-`` and the stages with ``|``, e.g. the released ProxylessNAS-Mobile
is ``k5e3-k3e3-zero-zero|k7e3-k3e3-k5e3-k5e3|...``. A ``zero`` layer is an identity between
layers of the same width and stride 1, so where it sits among such layers does not change
the network: ``k7e3-zero-zero-k3e3`` and ``k7e3-k3e3-zero-zero`` are one architecture (the
same modules, created in the same order). The canonical string (:meth:`ProxylessNASSpace.encode`)
moves every ``zero`` to the end of its run of such layers (:meth:`ProxylessNASSpace.canonical_arch`);
the released ProxylessNAS-GPU string is not canonical in this sense.

Spaces registered here:

``proxylessnas``
    the original space: stages of widths 24, 40, 80, 96, 192, 320, depths 4, 4, 4, 4, 4, 1,
    first strides 2, 2, 2, 1, 2, 1 (21 searchable layers, the defaults of the released search
    code), 3x3 stem of 32 channels, first block of 16, last conv of 1280; six MBConv choices
    plus ``zero``. ``skeleton="mobile"`` and ``skeleton="gpu"`` select the skeletons the
    released ProxylessNAS-Mobile (first stage 32 wide) and ProxylessNAS-GPU (the default
    skeleton scaled by 1.35) were trained with; ``width_mult`` scales any skeleton.
``proxylessnas_xigsnr``
    the space the xi-GSNR paper searched (Sec. 4.2.3): 19 searchable layers, kernel {3, 5, 7}
    x expansion {3, 6}, no ``zero``, about 400M FLOPs. The paper gives only that description;
    the layer layout used here is the 19-layer one of the MobileNetV2-style spaces of DNA and
    FairNAS that the paper compares with (depths 2, 4, 4, 4, 4, 1) on the ProxylessNAS widths
    (24, 40, 80, 96, 192, 320); pass ``skeleton=Skeleton(...)`` for another layout.

FLOPs are multiply-adds of the convolutions and the classifier for one image (the
convention of the ProxylessNAS logs, e.g. 465.3M for ProxylessNAS-GPU), computed in closed
form by :meth:`ProxylessNASSpace.count_flops` so that the evolutionary search can check a
constraint without building the network; :meth:`ProxylessNASSpace.count_params` likewise.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard
from xigsnr_naslib.data.protocol import PAPER_NB201
from xigsnr_naslib.benchmarks.space import SearchSpace

__all__ = [
    "CHOICES",
    "ZERO",
    "Skeleton",
    "SKELETONS",
    "PROXYLESSNAS_GPU",
    "PROXYLESSNAS_MOBILE",
    "MBConv",
    "ProxylessNASNetwork",
    "ProxylessNASSpace",
    "ProxylessNASXiGSNRSpace",
]

#: the MBConv choices of a searchable layer: kernel size x expansion ratio
CHOICES = ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6")
#: the layer that is skipped (only its identity shortcut remains)
ZERO = "zero"
BN_EPS = 1e-3

Arch = tuple[str, ...]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% down."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def parse_choice(choice: str) -> tuple[int, int]:
    """``"k5e3"`` -> (kernel 5, expansion 3)."""
    if choice in CHOICES:
        return int(choice[1]), int(choice[3])
    raise ValueError(f"unknown ProxylessNAS layer choice {choice!r}; known: {', '.join(CHOICES + (ZERO,))}")


@dataclass(frozen=True)
class Skeleton:
    """The fixed part of a ProxylessNAS network: channel widths, depths and strides."""

    stem: int = 32
    first: int = 16
    widths: tuple[int, ...] = (24, 40, 80, 96, 192, 320)
    depths: tuple[int, ...] = (4, 4, 4, 4, 4, 1)
    strides: tuple[int, ...] = (2, 2, 2, 1, 2, 1)
    last: int = 1280

    def __post_init__(self) -> None:
        if not (len(self.widths) == len(self.depths) == len(self.strides)):
            raise ValueError(f"skeleton needs one width, depth and stride per stage: {self}")
        if min(self.depths) < 1 or any(s not in (1, 2) for s in self.strides):
            raise ValueError(f"skeleton depths must be >= 1 and strides 1 or 2: {self}")

    def scaled(self, width_mult: float) -> "Skeleton":
        """Every width times ``width_mult``, rounded to multiples of 8 (``last`` only grows)."""
        if width_mult == 1.0:
            return self
        return replace(
            self,
            stem=make_divisible(self.stem * width_mult),
            first=make_divisible(self.first * width_mult),
            widths=tuple(make_divisible(w * width_mult) for w in self.widths),
            last=make_divisible(self.last * width_mult) if width_mult > 1.0 else self.last,
        )

    def layers(self) -> list[tuple[int, int, int]]:
        """``(c_in, c_out, stride)`` of every searchable layer, in order."""
        out, c_in = [], self.first
        for width, depth, stride in zip(self.widths, self.depths, self.strides):
            for i in range(depth):
                out.append((c_in, width, stride if i == 0 else 1))
                c_in = width
        return out


SKELETONS = {
    # the defaults of the released search code (search/imagenet_arch_search.py)
    "search": Skeleton(),
    # ProxylessNAS-Mobile as released (proxyless_mobile.config): a first stage of 32
    "mobile": Skeleton(widths=(32, 40, 80, 96, 192, 320)),
    # ProxylessNAS-GPU as released (proxyless_gpu.config): the search skeleton x 1.35
    "gpu": Skeleton().scaled(1.35),
    # the xi-GSNR paper's 19 searchable layers (see the module docstring)
    "xigsnr": Skeleton(depths=(2, 4, 4, 4, 4, 1)),
}

#: the released ProxylessNAS-GPU (build with ``skeleton="gpu"``): 7.12M parameters, 465.3M FLOPs
PROXYLESSNAS_GPU = ("k5e3-zero-zero-zero|k7e3-zero-zero-k3e3|k7e6-zero-zero-k5e3|"
                    "k5e6-zero-k3e3-k5e3|k7e6-k7e6-k7e6-k5e6|k7e6")
#: the released ProxylessNAS-Mobile (build with ``skeleton="mobile"``): 4.08M parameters, 320.4M FLOPs
PROXYLESSNAS_MOBILE = ("k5e3-k3e3-zero-zero|k7e3-k3e3-k5e3-k5e3|k7e6-k5e3-k5e3-k5e3|"
                       "k5e6-k5e3-k5e3-k5e3|k7e6-k7e6-k7e3-k7e3|k7e6")


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block: expand (1x1), depthwise (k x k), project (1x1); shortcut if shapes allow."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, shortcut: bool):
        super().__init__()
        mid = round(c_in * expand)
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, mid, 1, bias=False), _bn(mid), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False), _bn(mid), nn.ReLU6(inplace=True),
            nn.Conv2d(mid, c_out, 1, bias=False), _bn(c_out),
        ]
        self.body = nn.Sequential(*layers)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.shortcut else y


class ProxylessNASNetwork(nn.Module):
    """A ProxylessNAS network; ``forward`` returns the logits."""

    def __init__(self, arch: Sequence[str], skeleton: Skeleton, num_classes: int = 1000):
        super().__init__()
        layers = skeleton.layers()
        if len(arch) != len(layers):
            raise ValueError(f"architecture has {len(arch)} layers, the skeleton {len(layers)}")
        self.stem = nn.Sequential(nn.Conv2d(3, skeleton.stem, 3, 2, 1, bias=False), _bn(skeleton.stem),
                                  nn.ReLU6(inplace=True))
        blocks: list[nn.Module] = [MBConv(skeleton.stem, skeleton.first, 3, 1, 1, shortcut=False)]
        for choice, (c_in, c_out, stride) in zip(arch, layers):
            shortcut = stride == 1 and c_in == c_out
            if choice == ZERO:
                if not shortcut:
                    raise ValueError(f"a {c_in}->{c_out} stride-{stride} layer cannot be {ZERO!r}")
                blocks.append(nn.Identity())
                continue
            kernel, expand = parse_choice(choice)
            blocks.append(MBConv(c_in, c_out, kernel, stride, expand, shortcut))
        self.blocks = nn.Sequential(*blocks)
        c = layers[-1][1]
        self.feature_mix = nn.Sequential(nn.Conv2d(c, skeleton.last, 1, bias=False), _bn(skeleton.last),
                                         nn.ReLU6(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(skeleton.last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix(self.blocks(self.stem(x)))
        return self.classifier(self.pool(x).flatten(1))


def _down(size: int, stride: int) -> int:
    """Output size of an odd-kernel 'same'-padded convolution: ceil(size / stride)."""
    return -(-size // stride)


class ProxylessNASSpace(SearchSpace):
    """The ProxylessNAS chain space (see the module docstring).

    Parameters
    ----------
    skeleton : str or Skeleton
        ``"search"`` (default), ``"mobile"``, ``"gpu"``, ``"xigsnr"`` or a :class:`Skeleton`.
    width_mult : float
        Scales the skeleton's widths (multiples of 8), as the original code does.
    allow_zero : bool
        Whether a layer with a shortcut may be ``zero`` (the original space: True).
    resolution : int
        Input resolution used by :meth:`count_flops` when none is given (224).
    """

    name = "proxylessnas"
    default_resolution = 224

    def __init__(self, skeleton: str | Skeleton = "search", width_mult: float = 1.0, allow_zero: bool = True,
                 resolution: int = 224):
        if isinstance(skeleton, str):
            try:
                skeleton = SKELETONS[skeleton]
            except KeyError:
                raise ValueError(f"unknown ProxylessNAS skeleton {skeleton!r}; known: {', '.join(SKELETONS)}") from None
        self.skeleton = skeleton.scaled(width_mult)
        self.allow_zero = allow_zero
        self.resolution = resolution
        self._layers = self.skeleton.layers()
        self._options = [CHOICES + (ZERO,) if allow_zero and s == 1 and ci == co else CHOICES
                         for ci, co, s in self._layers]

    # -- architectures and strings ------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def options(self, layer: int) -> tuple[str, ...]:
        """The choices allowed at searchable layer ``layer``."""
        return self._options[layer]

    def validate(self, arch: Sequence[str]) -> tuple[str, ...]:
        """``arch`` as a tuple, or ``ValueError`` naming the first rule it breaks."""
        arch = tuple(arch)
        if len(arch) != self.num_layers:
            raise ValueError(f"{self.name}: an architecture has {self.num_layers} layers, got {len(arch)}: {arch!r}")
        for i, choice in enumerate(arch):
            if choice not in self._options[i]:
                raise ValueError(f"{self.name}: layer {i} cannot be {choice!r}; allowed: {', '.join(self._options[i])}")
        return arch

    def canonical_arch(self, arch: Sequence[str]) -> Arch:
        """``arch`` with every ``zero`` moved to the end of its run of consecutive layers of
        one width and stride 1 (the layers a ``zero`` may replace): the same network."""
        arch = list(self.validate(arch))
        start = 0
        while start < len(arch):
            end = start + 1
            if ZERO in self._options[start]:
                while end < len(arch) and ZERO in self._options[end] and self._layers[end] == self._layers[start]:
                    end += 1
                run = arch[start:end]
                arch[start:end] = [c for c in run if c != ZERO] + [c for c in run if c == ZERO]
            start = end
        return tuple(arch)

    def encode(self, arch: Sequence[str]) -> str:
        """The canonical string (``zero`` layers last in their runs: :meth:`canonical_arch`)."""
        arch = self.canonical_arch(arch)
        parts, start = [], 0
        for depth in self.skeleton.depths:
            parts.append("-".join(arch[start:start + depth]))
            start += depth
        return "|".join(parts)

    def decode(self, code: str) -> Arch:
        if not isinstance(code, str):
            raise ValueError(f"{self.name}: an encoding is a string, got {code!r}")
        stages = code.strip().split("|")
        if len(stages) != len(self.skeleton.depths):
            raise ValueError(f"{self.name}: {code!r} has {len(stages)} stages, expected {len(self.skeleton.depths)}")
        arch: list[str] = []
        for s, (stage, depth) in enumerate(zip(stages, self.skeleton.depths)):
            layers = stage.split("-")
            if len(layers) != depth:
                raise ValueError(f"{self.name}: stage {s} of {code!r} has {len(layers)} layers, expected {depth}")
            arch.extend(layers)
        return self.validate(arch)

    # -- networks and their size ----------------------------------------------------------
    def build(self, arch: Sequence[str] | str, num_classes: int = 1000, **kwargs) -> ProxylessNASNetwork:
        arch = self.canonical_arch(self.decode(arch) if isinstance(arch, str) else arch)
        return ProxylessNASNetwork(arch, self.skeleton, num_classes)

    def _size(self, arch: Sequence[str], resolution: int, num_classes: int) -> tuple[int, int]:
        """(multiply-adds, parameters) in closed form."""
        arch = self.validate(arch)
        sk = self.skeleton
        h = _down(resolution, 2)
        flops = h * h * 3 * sk.stem * 9
        params = 3 * sk.stem * 9 + 2 * sk.stem
        blocks = [(sk.stem, sk.first, 1, 3, 1)] + [
            (ci, co, s, *parse_choice(c)) for c, (ci, co, s) in zip(arch, self._layers) if c != ZERO]
        for c_in, c_out, stride, kernel, expand in blocks:
            mid = round(c_in * expand)
            if expand != 1:
                flops += h * h * c_in * mid
                params += c_in * mid + 2 * mid
            h = _down(h, stride)
            flops += h * h * mid * kernel * kernel + h * h * mid * c_out
            params += mid * kernel * kernel + 2 * mid + mid * c_out + 2 * c_out
        # strides of zero layers are 1, so skipping them above leaves h right
        c = self._layers[-1][1]
        flops += h * h * c * sk.last + sk.last * num_classes
        params += c * sk.last + 2 * sk.last + sk.last * num_classes + num_classes
        return int(flops), int(params)

    def count_flops(self, arch: Sequence[str], resolution: int | None = None, num_classes: int = 1000) -> int:
        """Multiply-adds of all convolutions and the classifier for one image (closed form)."""
        return self._size(arch, resolution or self.resolution, num_classes)[0]

    def count_params(self, arch: Sequence[str], num_classes: int = 1000, resolution: int | None = None) -> int:
        """Parameters of the built network (closed form; BatchNorm running statistics excluded).

        They do not depend on the resolution; the argument exists for a uniform interface.
        """
        return self._size(arch, resolution or self.resolution, num_classes)[1]

    # -- search operators -------------------------------------------------------------------
    def sample(self, rng: random.Random) -> Arch:
        return tuple(rng.choice(opts) for opts in self._options)

    def mutate(self, arch: Sequence[str], rng: random.Random, rate: float | None = None) -> Arch:
        """Redraw each layer with probability ``rate`` (default 1/layers); at least one changes,
        and the child is another architecture (another canonical string)."""
        parent = self.validate(arch)
        code = self.encode(parent)
        rate = 1.0 / self.num_layers if rate is None else rate
        while True:
            arch, changed = list(parent), False
            for i in range(self.num_layers):
                if rng.random() < rate:
                    arch[i] = rng.choice([o for o in self._options[i] if o != arch[i]])
                    changed = True
            if not changed:
                i = rng.randrange(self.num_layers)
                arch[i] = rng.choice([o for o in self._options[i] if o != arch[i]])
            if self.encode(arch) != code:
                return tuple(arch)

    def crossover(self, a: Sequence[str], b: Sequence[str], rng: random.Random) -> Arch:
        """Each layer from either parent with probability 1/2."""
        a, b = self.validate(a), self.validate(b)
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))

    def naslib_graph(self, arch: Sequence[str] | str | None = None, num_classes: int = 1000):
        """A NASLib-style graph of ``arch`` for ``ZeroCost.query`` (see :mod:`.naslib_graph`)."""
        from xigsnr_naslib.integrations.naslib.graph import NASLibGraph

        return NASLibGraph(self, arch, num_classes=num_classes)


class ProxylessNASXiGSNRSpace(ProxylessNASSpace):
    """The xi-GSNR paper's ProxylessNAS space: 19 layers of kernel x expansion, no ``zero``."""

    name = "proxylessnas_xigsnr"

    def __init__(self, skeleton: str | Skeleton = "xigsnr", width_mult: float = 1.0, allow_zero: bool = False,
                 resolution: int = 224):
        super().__init__(skeleton, width_mult, allow_zero, resolution)


def _imagenet() -> dict:
    return {"imagenet": DatasetCard("imagenet", 1000, 224, "imagenet", PAPER_NB201, "xi_gsnr")}


def cards() -> list[BenchmarkCard]:
    """The cards of ProxylessNAS's original space and the xi-GSNR paper's (ImageNet at 224x224,
    8 batches of 64; no benchmark accuracies). Registered through the entry-point group
    ``xigsnr_naslib.spaces`` (this package's ``pyproject.toml``)."""
    return [
        BenchmarkCard("proxylessnas", ProxylessNASSpace, _imagenet(),
                      "ProxylessNAS (Cai et al. 2019): MBConv kernel x expansion, or zero",
                      space_options={"skeleton": "search", "width_mult": 1.0, "allow_zero": True, "resolution": 224}),
        BenchmarkCard("proxylessnas_xigsnr", ProxylessNASXiGSNRSpace, _imagenet(),
                      "the xi-GSNR paper's ProxylessNAS space: 19 layers of kernel x expansion",
                      space_options={"skeleton": "xigsnr", "width_mult": 1.0, "allow_zero": False, "resolution": 224},
                      paper_constraints={"max_flops": 400e6}),
    ]
