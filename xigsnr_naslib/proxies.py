"""Zero-cost proxies by name: one registry feeds the CLI, the leaderboard and the NASLib bridge.

A proxy is a function ``(model, batches, loss_fn) -> float`` plus the settings that define
it. ``get_proxy("xi_gsnr")`` returns a :class:`Proxy`; ``list_proxies()`` names them all;
``@register_proxy(name, **settings)`` adds one.

Names registered here:

==========================  ===================================================================
``xi_gsnr``                 xi-GSNR as the authors' released code computes it (``official``
                            mode): the published numbers come from this. Default everywhere.
``xi_gsnr_official``        the same, named by its mode
``xi_gsnr_paper``           the paper's Eq. 10 (independent per-batch gradients)
``xi_gsnr_per_sample``      per-image gradients of one batch (the released NAS-Bench-101 run)
``gsnr``                    Table 9 (4): mean^2/var without xi (official mode)
``gsnr_sq_mean``            Table 9 (1): mean^2
``gsnr_inv_var``            Table 9 (2): 1/var
``gsnr_inv_var_xi``         Table 9 (3): 1/(var + xi)
``params``                  number of parameters of the network
``flops``                   multiply-adds of Conv2d/Linear layers for one input image
``zico``                    ZiCo (Li et al. 2023), from :mod:`xigsnr_naslib.zico`
==========================  ===================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch.nn as nn
import torch.nn.functional as F

from .complexity import count_flops, count_params
from .gradients import Batch, LossFn
from .gsnr import XiGSNR

__all__ = ["Proxy", "register_proxy", "get_proxy", "list_proxies"]

ProxyFn = Callable[[nn.Module, list, LossFn], float]


@dataclass(frozen=True)
class Proxy:
    """A named zero-cost proxy: ``proxy(model, batches, loss_fn)`` returns its score."""

    name: str
    fn: ProxyFn
    settings: dict = field(default_factory=dict)
    description: str = ""
    #: False for proxies that never look at the images (params, flops)
    needs_data: bool = True

    def __call__(self, model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = F.cross_entropy) -> float:
        return self.fn(model, list(batches), loss_fn)


_REGISTRY: dict[str, Proxy] = {}


def register_proxy(name: str, *, settings: dict | None = None, description: str = "", needs_data: bool = True
                   ) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator registering ``fn(model, batches, loss_fn) -> float`` as proxy ``name``."""

    def decorator(fn: ProxyFn) -> ProxyFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"proxy {name!r} is already registered")
        _REGISTRY[name] = Proxy(name, fn, dict(settings or {}), description, needs_data)
        return fn

    return decorator


def _load_builtin_proxies() -> None:
    import importlib

    for module in _EXTRA_PROXY_MODULES:
        importlib.import_module(module)


#: modules that register more proxies when imported (kept lazy so that the core stays light)
_EXTRA_PROXY_MODULES: list[str] = ["xigsnr_naslib.zico"]


def get_proxy(name: str) -> Proxy:
    _load_builtin_proxies()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown proxy {name!r}; known: {', '.join(list_proxies())}") from None


def list_proxies() -> list[str]:
    _load_builtin_proxies()
    return sorted(_REGISTRY)


def _register_gsnr(name: str, description: str, **settings) -> None:
    estimator = XiGSNR(**settings)

    def fn(model: nn.Module, batches: list, loss_fn: LossFn) -> float:
        return estimator.score(model, batches, loss_fn)

    fn.estimator = estimator  # lets the pipeline score several xi-GSNR proxies from one set of passes

    register_proxy(name, settings=estimator.settings(), description=description)(fn)


_register_gsnr("xi_gsnr", "xi-GSNR as released (official mode; the published numbers)", mode="official")
_register_gsnr("xi_gsnr_official", "xi-GSNR, official mode (same as xi_gsnr)", mode="official")
_register_gsnr("xi_gsnr_paper", "xi-GSNR, the paper's Eq. 10 (independent batch gradients)", mode="paper")
_register_gsnr("xi_gsnr_per_sample", "xi-GSNR from per-image gradients of one batch", mode="per_sample")
_register_gsnr("gsnr", "Table 9 (4): GSNR without xi", mode="official", variant="gsnr")
_register_gsnr("gsnr_sq_mean", "Table 9 (1): squared gradient mean", mode="official", variant="sq_mean")
_register_gsnr("gsnr_inv_var", "Table 9 (2): inverse gradient variance", mode="official", variant="inv_var")
_register_gsnr("gsnr_inv_var_xi", "Table 9 (3): inverse of variance + xi", mode="official", variant="inv_var_xi")


@register_proxy("params", description="number of parameters", needs_data=False)
def _params(model: nn.Module, batches: list, loss_fn: LossFn) -> float:
    return float(count_params(model))


@register_proxy("flops", description="multiply-adds of Conv2d/Linear layers for one image", needs_data=False)
def _flops(model: nn.Module, batches: list, loss_fn: LossFn) -> float:
    shape = tuple(batches[0][0].shape[1:]) if batches else (3, 32, 32)
    return float(count_flops(model, shape))
