"""Zen-score (Lin et al., *Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition*,
ICCV 2021), data-free.

On a copy of the network (the network itself is left exactly as found, whatever mode it is in),
in train mode and without gradients: every Conv2d and Linear weight drawn from N(0, 1), biases
0, every BatchNorm2d / GroupNorm weight 1 and bias 0, every BatchNorm's running statistics
those of a freshly built network (mean 0, variance 1, no batch tracked: the statistics a
caller's network has gathered do not enter the score); two Gaussian inputs ``x, e ~ N(0, 1)`` of ``batch_size``
images of ``input_shape``; ``f`` the feature map that enters the global average pooling
(the input of the network's first ``nn.AdaptiveAvgPool2d``, as NASLib's
``forward_before_global_avg_pool`` finds it)::

    zen = log( mean_n sum_chw |f(x) - f(x + gamma e)| ) + sum_BN log sqrt(mean_c running_var)

with ``gamma = 0.01``. The BatchNorm term reads each BatchNorm2d's running variance after
those two forward passes (train mode updates it with the layer's momentum), as both the
authors' ``compute_zen_score.py`` (idstcv/ZenNAS) and NASLib's ``measures/zen.py`` do.
The authors average 32 repeats of batches of 16 by default; NASLib (and NAS-Bench-Suite-Zero)
one repeat with a batch of the loader's size; here ``repeat`` (1) and ``batch_size`` (64,
the NB201 protocol's batch) are settings.

Random draws come from a generator seeded with ``torch.initial_seed()`` (in a study: the
protocol's init seed, set right before the network is built), so a score is reproducible.

Not computable (:class:`~xigsnr_naslib.passes.NotComputable`): a network without an
``nn.AdaptiveAvgPool2d`` (no feature map before global pooling), a BatchNorm2d that does not
track running statistics (no running variance to read), or a zero feature difference
(log 0: the features do not depend on the input).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from xigsnr_naslib.core.gradients import scoring_state
from xigsnr_naslib.passes import NotComputable
from xigsnr_naslib.proxies import PassResults, Proxy, register_proxy

__all__ = ["zen_score", "MIXUP_GAMMA"]

MIXUP_GAMMA = 1e-2


def _gaussian_init(model: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator, dtype=m.weight.dtype))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.reset_running_stats()


def _features(model: nn.Module, pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    captured = []
    handle = pool.register_forward_pre_hook(lambda m, inputs: captured.append(inputs[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return captured[0]


def zen_score(model: nn.Module, input_shape: tuple[int, ...], *, batch_size: int = 64, repeat: int = 1,
              mixup_gamma: float = MIXUP_GAMMA, seed: int | None = None) -> float:
    """The Zen-score of ``model`` (scored on copies in train mode; left exactly as found) for
    inputs of ``input_shape`` (C x H x W); the mean over ``repeat`` draws. ``seed``: default
    ``torch.initial_seed()``."""
    with scoring_state(model, "train"):
        return _zen_score(model, input_shape, batch_size, repeat, mixup_gamma, seed)


def _zen_score(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, repeat: int,
               mixup_gamma: float, seed: int | None) -> float:
    pool = next((m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)), None)
    if pool is None:
        raise NotComputable("no nn.AdaptiveAvgPool2d: the feature map before global pooling is undefined")
    untracked = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and m.running_var is None]
    if untracked:
        raise NotComputable(f"BatchNorm2d {untracked[0]!r} tracks no running variance")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(torch.initial_seed() if seed is None else seed)
    scores = []
    for _ in range(repeat):
        net = copy.deepcopy(model).train()
        index = {id(m): i for i, m in enumerate(model.modules())}[id(pool)]
        net_pool = list(net.modules())[index]
        _gaussian_init(net, generator)
        shape = (batch_size, *input_shape)
        x = torch.randn(shape, generator=generator).to(device)
        e = torch.randn(shape, generator=generator).to(device)
        with torch.no_grad():
            difference = (_features(net, net_pool, x) - _features(net, net_pool, x + mixup_gamma * e)).abs()
            expansion = float(difference.sum(dim=tuple(range(1, difference.dim()))).mean())
            if not expansion > 0:
                raise NotComputable(f"the feature difference is {expansion}: log undefined "
                                    "(the features do not depend on the input)")
            bn = sum(0.5 * math.log(float(m.running_var.mean())) for m in net.modules()
                     if isinstance(m, nn.BatchNorm2d))
        scores.append(math.log(expansion) + bn)
    return float(sum(scores) / len(scores))


class Zen:
    """``compute`` of the Zen-score with its settings (picklable)."""

    def __init__(self, batch_size: int = 64, repeat: int = 1, mixup_gamma: float = MIXUP_GAMMA):
        self.batch_size, self.repeat, self.mixup_gamma = batch_size, repeat, mixup_gamma

    def settings(self) -> dict:
        return {"batch_size": self.batch_size, "repeat": self.repeat, "mixup_gamma": self.mixup_gamma,
                "input": "Gaussian", "seed": "init seed"}

    def __call__(self, results: PassResults) -> float:
        return zen_score(results.model, results.input_shape, batch_size=self.batch_size, repeat=self.repeat,
                         mixup_gamma=self.mixup_gamma)

    def __eq__(self, other) -> bool:
        return isinstance(other, Zen) and other.settings() == self.settings()

    def __hash__(self) -> int:
        return hash(tuple(self.settings().items()))


_ZEN = Zen()
# reads no image, but depends on the init seed (its draws' seed): recorded with the protocol,
# whose init seed is part of a record's key
register_proxy(Proxy("zen", _ZEN, (), _ZEN.settings(), "Zen-score (Lin et al. 2021), Gaussian input, data-free"))
