"""The NASLib bridge: the project's proxies as NASLib zero-cost measures.

This is the only module that imports NASLib, and only when asked. NASLib (automl/NASLib) is
not on PyPI; it is used from a checkout. Its zero-cost measures live in a registry filled
by a decorator, in one of two layouts:

=================  ==============================================
NASLib branch      measures registry module
=================  ==============================================
``Develop``        ``naslib.predictors.utils.pruners.measures``
``zerocost``       ``naslib.predictors.pruners.measures`` (NAS-Bench-Suite-Zero)
=================  ==============================================

:func:`register_naslib_measures` registers ``xi_gsnr`` and its honest variants (see
:data:`DEFAULT_MEASURES`) and ``zico`` into whichever layout is installed. It is idempotent,
and raises :class:`NASLibNotFound` (an ``ImportError``) naming what to do when NASLib is
absent. ``import xigsnr_naslib.naslib_plugin`` does the same in one line.

How NASLib calls a measure, and what the bridge does about it:

* ``ZeroCost(method_type=name).query(graph, dataloader)`` -> ``find_measures`` draws ONE
  batch of the loader's ``batch_size`` and calls
  ``fn(net, inputs, targets, loss_fn=..., split_data=...)``. The bridge splits that batch
  into N batches of |B| (:class:`BatchSplit`, default 8 x 64, so ``batch_size: 512`` in
  the config) and raises ``ValueError`` saying what to set when it does not split.
  ``split_data`` (NASLib's out-of-memory retry) is ignored: every batch is already |B|
  images, and cutting one further would change the BatchNorm statistics and the score.
* ``bn``/``copy_net`` are NASLib's decorator flags: with ``copy_net=True`` (default) NASLib
  deep-copies the network (dropping BatchNorm when ``bn=False``) and moves the copy to the
  device; with ``copy_net=False`` the measure gets NASLib's own network (on the CPU, where
  ``find_measures`` put it), scores it in place and leaves its gradients cleared and its
  train/eval mode as found. ``bn=False`` needs ``copy_net=True`` (NASLib only drops
  BatchNorm in its copy) and is refused otherwise.
* Every measure outside NASLib's short hard-coded list must return a list of tensors, which
  ``find_measures`` sums: the bridge returns ``[tensor(score, float64)]``. ``ZeroCost``
  turns a NaN or infinite score into -1e8 without a word; the raw value of the last call of
  each measure is kept (:func:`last_raw_score`) so that a runner can record it as such.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "MEASURE_MODULES",
    "DEFAULT_MEASURES",
    "NASLibNotFound",
    "BatchSplit",
    "find_measures_module",
    "naslib_measure",
    "register_naslib_measures",
    "registered_measures",
    "last_raw_score",
    "naslib_score",
]

#: NASLib branch -> module holding the measures registry (``measure`` decorator, ``_measure_impls``)
MEASURE_MODULES = {
    "Develop": "naslib.predictors.utils.pruners.measures",
    "zerocost": "naslib.predictors.pruners.measures",
}
#: the measures registered by default: xi-GSNR as released, its modes, the Table 9 variants, ZiCo
DEFAULT_MEASURES = ("xi_gsnr", "xi_gsnr_official", "xi_gsnr_paper", "gsnr", "gsnr_sq_mean", "gsnr_inv_var",
                    "gsnr_inv_var_xi", "zico")

#: attribute set on a NASLib registry module: {name: flags} of the measures this bridge put there
_MARK = "_xigsnr_registered"
_HOW_TO_INSTALL = ("NASLib is not on PyPI: clone https://github.com/automl/NASLib (branch Develop, or zerocost "
                   "for NAS-Bench-Suite-Zero) and put the checkout on PYTHONPATH (or 'pip install -e' it on "
                   "Python <= 3.9); see the README section 'NASLib'")


class NASLibNotFound(ImportError):
    """NASLib (or the measures registry of one of its layouts) cannot be imported."""


@dataclass(frozen=True)
class BatchSplit:
    """How the one batch NASLib hands a measure becomes the proxy's N batches of |B|."""

    n_batches: int = 8
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.n_batches < 1 or self.batch_size < 1:
            raise ValueError(f"need at least one batch of one image, got {self.n_batches} x {self.batch_size}")

    @property
    def total(self) -> int:
        return self.n_batches * self.batch_size

    def split(self, inputs: torch.Tensor, targets: torch.Tensor, measure: str = "the measure"
              ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``inputs``/``targets`` of ``total`` images -> ``n_batches`` consecutive batches."""
        n = int(inputs.shape[0])
        if int(targets.shape[0]) != n:
            raise ValueError(f"{measure}: {n} inputs but {int(targets.shape[0])} targets")
        if n != self.total:
            raise ValueError(
                f"{measure}: NASLib handed one batch of {n} images, but the measure scores {self.n_batches} "
                f"batches of {self.batch_size} = {self.total} images. Set 'batch_size: {self.total}' in the "
                f"NASLib config, or register with n_batches x batch_size = {n} "
                f"(register_naslib_measures(n_batches=..., batch_size=...))")
        return [(inputs[i * self.batch_size:(i + 1) * self.batch_size],
                 targets[i * self.batch_size:(i + 1) * self.batch_size]) for i in range(self.n_batches)]


class _Bridge:
    """The split in force and the last raw score of each measure (what the bridge registered
    is recorded on the NASLib registry module itself, as ``_xigsnr_registered``)."""

    def __init__(self) -> None:
        self.split = BatchSplit()
        self.last_raw: dict[str, float] = {}
        self.modules: list[ModuleType] = []


_BRIDGE = _Bridge()


def _missing_module_is_layout(exc: ModuleNotFoundError, module: str) -> bool:
    """True when ``exc`` says the layout's own module is absent (not one of its dependencies)."""
    missing = exc.name or ""
    return missing == module or module.startswith(missing + ".")


def find_measures_module() -> tuple[ModuleType, str]:
    """The installed NASLib measures registry and its layout (``"Develop"`` or ``"zerocost"``).

    Raises :class:`NASLibNotFound` when NASLib is not importable, or when it is but its
    measures registry cannot be imported (the message names the missing dependency).
    """
    try:
        importlib.import_module("naslib")
    except ImportError as exc:
        raise NASLibNotFound(f"NASLib is not importable ({exc}). {_HOW_TO_INSTALL}") from exc
    failures = []
    for layout, module in MEASURE_MODULES.items():
        try:
            return importlib.import_module(module), layout
        except ModuleNotFoundError as exc:
            if _missing_module_is_layout(exc, module):
                failures.append(f"{module}: absent")
                continue
            raise NASLibNotFound(
                f"NASLib is importable but {module} is not: {exc}. Importing naslib.predictors imports every "
                f"predictor's dependencies; install the missing package (the README section 'NASLib' lists "
                f"what the zero-cost path needs)") from exc
    raise NASLibNotFound(f"no NASLib measures registry found ({'; '.join(failures)}). {_HOW_TO_INSTALL}")


def last_raw_score(name: str) -> float | None:
    """The raw score of the last call of bridge measure ``name`` (NaN and inf kept), or None."""
    return _BRIDGE.last_raw.get(name)


def naslib_score(value: float) -> float:
    """What NASLib's ``ZeroCost.query`` turns a raw score into (NaN and +-inf become -1e8)."""
    return -1e8 if (math.isnan(value) or math.isinf(value)) else float(value)


def naslib_measure(name: str) -> Callable:
    """The NASLib measure function of project proxy ``name``.

    Its signature is what NASLib's ``find_measures`` calls:
    ``fn(net, inputs, targets, loss_fn=..., split_data=..., **decorator_args)``; it returns
    ``[tensor(score)]``. The split in force when it is called applies (:class:`BatchSplit`).
    """
    from .proxies import get_proxy

    proxy = get_proxy(name)
    if not proxy.needs_data:
        raise ValueError(f"proxy {name!r} does not look at data; NASLib has its own {name!r} measure")

    def measure(net, inputs, targets, loss_fn=None, split_data=1, **_decorator_args):
        batches = _BRIDGE.split.split(inputs, targets, name)
        was_training = net.training
        net.to(inputs.device).train()
        try:
            score = proxy(net, batches, loss_fn if loss_fn is not None else F.cross_entropy)
        finally:
            net.zero_grad(set_to_none=True)
            net.train(was_training)
        _BRIDGE.last_raw[name] = score
        return [torch.tensor(score, dtype=torch.float64)]

    measure.__name__ = f"xigsnr_{name}"
    measure.__qualname__ = measure.__name__
    measure.__doc__ = f"NASLib measure {name!r}: {proxy.description} (from xigsnr_naslib)"
    return measure


def register_naslib_measures(names: Sequence[str] = DEFAULT_MEASURES, *, n_batches: int = 8, batch_size: int = 64,
                             bn: bool = True, copy_net: bool = True, measures_module: ModuleType | None = None
                             ) -> list[str]:
    """Register project proxies as NASLib zero-cost measures; returns the names registered.

    Idempotent: a name this bridge already registered is left as it is (its split follows
    the latest ``n_batches``/``batch_size``); a name NASLib already has from elsewhere is an
    error. ``measures_module`` defaults to the installed NASLib layout
    (:func:`find_measures_module`); ``ZeroCost(method_type=name)`` then finds the measures.
    """
    if not bn and not copy_net:
        raise ValueError("bn=False needs copy_net=True: NASLib drops BatchNorm only in the copy it makes")
    split = BatchSplit(n_batches, batch_size)
    if measures_module is None:
        measures_module, _ = find_measures_module()
    impls = getattr(measures_module, "_measure_impls", None)
    if impls is None or not hasattr(measures_module, "measure"):
        raise NASLibNotFound(f"{measures_module.__name__} is not a NASLib measures registry (no 'measure' decorator "
                             f"or '_measure_impls')")
    if not hasattr(measures_module, _MARK):
        setattr(measures_module, _MARK, {})
    ours: dict[str, dict] = getattr(measures_module, _MARK)
    flags = {"bn": bn, "copy_net": copy_net}
    for name in names:
        if name in ours:
            if ours[name] != flags:
                raise ValueError(f"NASLib measure {name!r} is already registered with {ours[name]}; NASLib cannot "
                                 f"register a name twice: start a new interpreter to change bn/copy_net")
            continue
        if name in impls:
            raise ValueError(f"NASLib already has a measure named {name!r} that this package did not register")
        measures_module.measure(name, bn=bn, copy_net=copy_net)(naslib_measure(name))
        ours[name] = flags
    _BRIDGE.split = split
    if measures_module not in _BRIDGE.modules:
        _BRIDGE.modules.append(measures_module)
    return list(names)


def registered_measures() -> dict[str, dict]:
    """Every measure this bridge registered: name -> its NASLib flags and the split in force."""
    out = {}
    for module in _BRIDGE.modules:
        for name, flags in getattr(module, _MARK, {}).items():
            out[name] = {**flags, "n_batches": _BRIDGE.split.n_batches, "batch_size": _BRIDGE.split.batch_size,
                         "registry": module.__name__}
    return out
