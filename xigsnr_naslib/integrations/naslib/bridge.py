"""The NASLib bridge: the project's proxies as NASLib zero-cost measures.

This module imports NASLib (its measures registry, evaluator and search spaces), and only when asked;
:mod:`xigsnr_naslib.integrations.naslib.data` reads its data folder. NASLib (automl/NASLib) is
not on PyPI; it is used from a checkout. Its zero-cost measures live in a registry filled
by a decorator, in one of two layouts:

=================  ==============================================
NASLib branch      measures registry module
=================  ==============================================
``Develop``        ``naslib.predictors.utils.pruners.measures``
``zerocost``       ``naslib.predictors.pruners.measures`` (NAS-Bench-Suite-Zero)
=================  ==============================================

:func:`register` registers ``xi_gsnr`` and its honest variants (see :data:`DEFAULT_MEASURES`)
and ``zico`` into whichever layout is installed, with the :class:`MeasureSettings` given, and
returns the :class:`Registration` of that registry: the settings of each measure and what the
measures did (:meth:`Registration.measure_report`, the last raw score and the last reason a
score was not computable). NASLib's registry is one per interpreter, so the registration is
kept on NASLib's registry module itself (:func:`registration_of` finds it); two registries
(two layouts, or a stand-in beside the real one) have two registrations that share nothing,
and each measure keeps the settings it was last registered with. Registering is idempotent,
and raises :class:`NASLibNotFound` (an ``ImportError``) naming what to do when NASLib is
absent. :func:`register_naslib_measures` (keyword settings, returns the names) and
``import xigsnr_naslib.naslib_plugin`` do the same.

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
  ``find_measures`` put it), scores it in place and leaves it as found (modes, parameters,
  buffers, ``requires_grad``, ``.grad``). ``bn=False`` needs ``copy_net=True`` (NASLib only drops
  BatchNorm in its copy) and is refused otherwise.
* Every measure outside NASLib's short hard-coded list must return a list of tensors, which
  ``find_measures`` sums: the bridge returns ``[tensor(score, float64)]``. ``ZeroCost`` turns
  a NaN or infinite score into -1e8 without a word; the raw value of the last call of each
  measure is kept by its registration (:meth:`Registration.last_raw_score`,
  :func:`last_raw_score`) so that a runner can record it as such.
* A measure returns a float, whatever the architecture: that is the host's contract
  (NASLib's own measures return ``0.0`` on a cell whose output does not depend on its input,
  and NASLib's ``ZeroCostPredictorEvaluator`` calls ``query`` without catching, so one
  exception ends the whole experiment). Where the score is undefined
  (:class:`~xigsnr_naslib.passes.NotComputable`: e.g. the 341 NB201 cells with no path from
  input to output) the measure returns NaN, which ``ZeroCost`` records as -1e8; the reason is
  logged once per measure and architecture at warning level, kept for the last call
  (:func:`last_not_computable`) and counted (:func:`measure_report`, ``not_computable``).
* Any other exception is a failure of the run or a bad setting (a batch that does not split,
  out of memory): it is logged at error level with the measure, the architecture and the
  error, counted (:func:`measure_report`) and raised. NASLib's runners that catch a measure's
  exception go on (the benchmark runner logs "Failed to compute score" at info level). :func:`guard_registry` does the same for a name that is
  not registered (NASLib's bare ``KeyError``), so a launcher can fail a run in which every
  architecture failed (``python -m xigsnr_naslib.naslib run``).

The module-level :func:`last_raw_score`, :func:`last_not_computable`, :func:`measure_report`,
:func:`reset_measure_report` and :func:`registered_measures` read the registration of the
registry given (``measures_module``), by default of the installed NASLib layout.
"""
from __future__ import annotations

import importlib
import json
import logging
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from types import ModuleType
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.passes import NotComputable

__all__ = [
    "MEASURE_MODULES",
    "DEFAULT_MEASURES",
    "NASLibNotFound",
    "BatchSplit",
    "MeasureSettings",
    "MeasureLog",
    "Registration",
    "find_measures_module",
    "naslib_measure",
    "register",
    "register_naslib_measures",
    "registration_of",
    "registered_measures",
    "last_raw_score",
    "last_not_computable",
    "naslib_score",
    "measure_report",
    "reset_measure_report",
    "guard_registry",
    "architecture_name",
    "QueryRecorder",
    "run_naslib_zero_cost",
]

logger = logging.getLogger(__name__)

#: NASLib branch -> module holding the measures registry (``measure`` decorator, ``_measure_impls``)
MEASURE_MODULES = {
    "Develop": "naslib.predictors.utils.pruners.measures",
    "zerocost": "naslib.predictors.pruners.measures",
}
#: the measures registered by default: xi-GSNR as released, its modes, the Table 9 variants, ZiCo
DEFAULT_MEASURES = ("xi_gsnr", "xi_gsnr_official", "xi_gsnr_paper", "gsnr", "gsnr_sq_mean", "gsnr_inv_var",
                    "gsnr_inv_var_xi", "zico")

#: attribute set on a NASLib registry module: the :class:`Registration` of the measures this bridge put there
_MARK = "_xigsnr_registered"
_HOW_TO_INSTALL = ("NASLib is not on PyPI: clone https://github.com/automl/NASLib (branch Develop, or zerocost "
                   "for NAS-Bench-Suite-Zero) and put the checkout on PYTHONPATH (or 'pip install -e' it on "
                   "Python <= 3.9); the recipe: docs/guides/naslib.md")


class NASLibNotFound(ImportError):
    """NASLib (or the measures registry of one of its layouts) cannot be imported."""


@dataclass(frozen=True)
class BatchSplit:
    """How the one batch NASLib hands a measure becomes the proxy's N batches of |B|."""

    n_batches: int = 8
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.n_batches < 1 or self.batch_size < 1:
            raise UsageError(f"need at least one batch of one image, got {self.n_batches} x {self.batch_size}")

    @property
    def total(self) -> int:
        return self.n_batches * self.batch_size

    def split(self, inputs: torch.Tensor, targets: torch.Tensor, measure: str = "the measure"
              ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``inputs``/``targets`` of ``total`` images -> ``n_batches`` consecutive batches."""
        n = int(inputs.shape[0])
        if int(targets.shape[0]) != n:
            raise UsageError(f"{measure}: {n} inputs but {int(targets.shape[0])} targets")
        if n != self.total:
            raise UsageError(
                f"{measure}: NASLib handed one batch of {n} images, but the measure scores {self.n_batches} "
                f"batches of {self.batch_size} = {self.total} images. Set 'batch_size: {self.total}' in the "
                f"NASLib config, or register with n_batches x batch_size = {n} "
                f"(register_naslib_measures(n_batches=..., batch_size=...))")
        return [(inputs[i * self.batch_size:(i + 1) * self.batch_size],
                 targets[i * self.batch_size:(i + 1) * self.batch_size]) for i in range(self.n_batches)]


@dataclass(frozen=True)
class MeasureSettings:
    """How a registered measure scores inside NASLib.

    Parameters
    ----------
    n_batches, batch_size:
        N and |B|: the one batch NASLib hands the measure (its config's ``batch_size``, which
        must be N x |B|) is split into N consecutive batches of |B| images (:class:`BatchSplit`).
    bn:
        NASLib's decorator flag: False drops BatchNorm in NASLib's copy of the network.
    copy_net:
        NASLib's decorator flag: False scores NASLib's own network in place (and hands it back
        as found). ``bn=False`` needs ``copy_net=True``.

    Raises
    ------
    UsageError
        one line naming the bad value.
    """

    n_batches: int = 8
    batch_size: int = 64
    bn: bool = True
    copy_net: bool = True

    def __post_init__(self) -> None:
        for name in ("n_batches", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise UsageError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("bn", "copy_net"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not self.bn and not self.copy_net:
            raise UsageError("bn=False needs copy_net=True: NASLib drops BatchNorm only in the copy it makes")

    @property
    def split(self) -> BatchSplit:
        return BatchSplit(int(self.n_batches), int(self.batch_size))

    @property
    def flags(self) -> dict[str, bool]:
        """NASLib's decorator flags: ``{"bn": ..., "copy_net": ...}``."""
        return {"bn": self.bn, "copy_net": self.copy_net}


def architecture_name(net) -> str:
    """A NASLib graph's key (``str(graph.get_hash())``, NASLib's zc-file key), else its class name."""
    try:
        return str(tuple(net.get_hash()))
    except Exception:  # not a NASLib graph, or one without an architecture set
        return type(net).__name__


class MeasureLog:
    """What the measures of one :class:`Registration` did, per measure name: the calls, the
    failures (``"ARCH: Type: message"``, in order), the architectures on which a score was not
    computable (with the reason), and the raw score and the not-computable reason of the last call."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.failures: dict[str, list[str]] = {}
        self.undefined: dict[str, dict[str, str]] = {}  # measure -> {architecture: reason}, warned once each
        self.last_raw: dict[str, float] = {}
        self.last_reason: dict[str, str] = {}  # measure -> reason of its last call, when undefined

    def count(self, name: str, failure: str | None = None) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if failure is not None:
            self.failures.setdefault(name, []).append(failure)

    def scored(self, name: str, score: float) -> None:
        """A call of ``name`` returned ``score`` (NaN when not computable)."""
        self.count(name)
        self.last_raw[name] = score

    def failed(self, name: str, net, exc: BaseException) -> None:
        """A call of ``name`` raised ``exc`` on ``net``: logged at error level and counted."""
        arch = architecture_name(net)
        logger.error("NASLib measure %r failed on architecture %s: %s: %s", name, arch, type(exc).__name__, exc)
        self.count(name, f"{arch}: {type(exc).__name__}: {exc}")

    def not_computable(self, name: str, net, exc: BaseException) -> None:
        """``name`` is undefined on ``net``'s architecture; warn once per (measure, architecture)."""
        arch = architecture_name(net)
        reason = str(exc) or type(exc).__name__
        self.last_reason[name] = reason
        self.undefined.setdefault(name, {})
        if arch not in self.undefined[name]:
            logger.warning("NASLib measure %r is not computable on architecture %s: %s; it returns NaN (NASLib's "
                           "ZeroCost records -1e8)", name, arch, reason)
        self.undefined[name][arch] = reason

    def take_last(self, name: str) -> tuple[float | None, str | None]:
        """The raw score and the not-computable reason of the last call of ``name``, forgotten here."""
        return self.last_raw.pop(name, None), self.last_reason.pop(name, None)

    def report(self) -> dict[str, dict]:
        """Per measure name: ``calls``, ``failed``, ``errors`` and ``not_computable``."""
        return {name: {"calls": calls, "failed": len(self.failures.get(name, [])),
                       "errors": list(self.failures.get(name, [])),
                       "not_computable": dict(self.undefined.get(name, {}))}
                for name, calls in self.calls.items()}

    def reset(self) -> None:
        """Forget the counts of :meth:`report` (the last raw scores stay)."""
        self.calls.clear()
        self.failures.clear()
        self.undefined.clear()


def _measure_function(name: str, split_of: Callable[[], BatchSplit], log: MeasureLog) -> Callable:
    """The NASLib measure function of proxy ``name``, splitting with ``split_of()`` and recording into ``log``."""
    from xigsnr_naslib.proxies import get_proxy

    proxy = get_proxy(name)
    if not proxy.needs_data:
        raise UsageError(f"proxy {name!r} does not look at data; NASLib has its own {name!r} measure")

    def measure(net, inputs, targets, loss_fn=None, split_data=1, **_decorator_args):
        log.last_reason.pop(name, None)
        try:
            batches = split_of().split(inputs, targets, name)
            # the proxy scores in the mode its protocol prescribes and hands the network back as found
            # (modes, parameters, buffers, requires_grad, .grad): NASLib's own graph with copy_net=False
            score = proxy(net.to(inputs.device), batches, loss_fn if loss_fn is not None else F.cross_entropy)
        except NotComputable as exc:  # a property of the architecture: the host's contract is a float
            score = math.nan
            log.not_computable(name, net, exc)
        except Exception as exc:  # a failure of the run or a bad setting: logged and counted, then raised
            log.failed(name, net, exc)
            raise
        log.scored(name, score)
        return [torch.tensor(score, dtype=torch.float64)]

    measure.__name__ = f"xigsnr_{name}"
    measure.__qualname__ = measure.__name__
    measure.__doc__ = f"NASLib measure {name!r}: {proxy.description} (from xigsnr_naslib)"
    return measure


def naslib_measure(name: str, split: BatchSplit = BatchSplit(), log: MeasureLog | None = None) -> Callable:
    """The NASLib measure function of project proxy ``name``, with a fixed ``split``.

    Its signature is what NASLib's ``find_measures`` calls:
    ``fn(net, inputs, targets, loss_fn=..., split_data=..., **decorator_args)``; it returns
    ``[tensor(score)]`` and records each call into ``log`` (a new :class:`MeasureLog` when
    None). :func:`register` puts such functions into NASLib, bound to its :class:`Registration`.
    """
    return _measure_function(name, lambda: split, log if log is not None else MeasureLog())


class Registration:
    """The bridge's measures in one NASLib measures registry: each measure's settings and its log.

    Made by :func:`register` and kept on the registry module (:func:`registration_of`). The
    measure functions NASLib holds read the split of their name here when called, so a later
    registration of the same name with another split applies to it (and to it only); the
    NASLib flags of a name cannot change (NASLib registers a name once per interpreter).
    """

    def __init__(self, registry: ModuleType) -> None:
        self.registry = registry
        self.settings: dict[str, MeasureSettings] = {}
        self.log = MeasureLog()

    def __contains__(self, name: object) -> bool:
        return name in self.settings

    def __iter__(self):
        return iter(self.settings)

    def __len__(self) -> int:
        return len(self.settings)

    def __repr__(self) -> str:
        return f"Registration({self.registry.__name__}: {', '.join(self.settings) or 'no measures'})"

    def add(self, names: Sequence[str], settings: MeasureSettings) -> list[str]:
        """Register ``names`` with ``settings`` (all of them or, on an error, none); returns the names."""
        impls = self.registry._measure_impls
        for name in names:
            if name in self.settings and self.settings[name].flags != settings.flags:
                raise UsageError(f"NASLib measure {name!r} is already registered with {self.settings[name].flags}; "
                                 f"NASLib cannot register a name twice: start a new interpreter to change bn/copy_net")
            if name not in self.settings and name in impls:
                raise UsageError(f"NASLib already has a measure named {name!r} that this package did not register")
        functions = {name: _measure_function(name, self._split_of(name), self.log)
                     for name in dict.fromkeys(names) if name not in self.settings}
        for name in names:
            if name in functions:
                self.registry.measure(name, bn=settings.bn, copy_net=settings.copy_net)(functions.pop(name))
            self.settings[name] = settings
        return list(names)

    def _split_of(self, name: str) -> Callable[[], BatchSplit]:
        return lambda: self.settings[name].split

    def split_of(self, name: str) -> BatchSplit:
        """The split measure ``name`` applies now."""
        return self.settings[name].split

    def last_raw_score(self, name: str) -> float | None:
        """The raw score of the last call of ``name`` (NaN and inf kept), or None."""
        return self.log.last_raw.get(name)

    def last_not_computable(self, name: str) -> str | None:
        """Why the last call of ``name`` was not computable (None when it was)."""
        return self.log.last_reason.get(name)

    def measure_report(self) -> dict[str, dict]:
        """:meth:`MeasureLog.report` of this registry's measures and of the names :func:`guard_registry` saw."""
        return self.log.report()

    def reset_measure_report(self) -> None:
        self.log.reset()

    def registered_measures(self) -> dict[str, dict]:
        """Name -> its NASLib flags, the split it applies and the registry."""
        return {name: {**s.flags, "n_batches": s.n_batches, "batch_size": s.batch_size,
                       "registry": self.registry.__name__} for name, s in self.settings.items()}


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
        raise NASLibNotFound(f"NASLib is not importable ({exc}). {_HOW_TO_INSTALL}") from None  # the cause is named
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
                f"predictor's dependencies; install the missing package (docs/guides/naslib.md lists "
                f"what the zero-cost path needs)") from exc
        except ImportError as exc:
            if "from 'collections'" not in str(exc):
                raise
            raise NASLibNotFound(
                f"NASLib is importable but {module} is not: {exc}. This NASLib imports ABCs from 'collections' "
                f"(gone in Python 3.10): call xigsnr_naslib.integrations.naslib.bridge.add_collections_aliases() first, "
                f"or use Python <= 3.9") from exc
    raise NASLibNotFound(f"no NASLib measures registry found ({'; '.join(failures)}). {_HOW_TO_INSTALL}")


def registration_of(measures_module: ModuleType | None = None) -> Registration | None:
    """The :class:`Registration` kept on ``measures_module`` (default: the installed NASLib
    layout's registry, :func:`find_measures_module`), or None when the bridge registered nothing there."""
    if measures_module is None:
        measures_module, _ = find_measures_module()
    found = getattr(measures_module, _MARK, None)
    return found if isinstance(found, Registration) else None


def _registration(measures_module: ModuleType) -> Registration:
    """The registration kept on ``measures_module``, made (empty) when there is none."""
    found = registration_of(measures_module)
    if found is None:
        found = Registration(measures_module)
        setattr(measures_module, _MARK, found)
    return found


def last_raw_score(name: str, measures_module: ModuleType | None = None) -> float | None:
    """The raw score of the last call of bridge measure ``name`` (NaN and inf kept), or None
    (:meth:`Registration.last_raw_score` of ``measures_module``'s registration)."""
    found = registration_of(measures_module)
    return None if found is None else found.last_raw_score(name)


def last_not_computable(name: str, measures_module: ModuleType | None = None) -> str | None:
    """Why the last call of bridge measure ``name`` was not computable (None when it was)."""
    found = registration_of(measures_module)
    return None if found is None else found.last_not_computable(name)


def measure_report(measures_module: ModuleType | None = None) -> dict[str, dict]:
    """Per measure name, since the last :func:`reset_measure_report`: ``calls``, ``failed``,
    the ``errors`` (``"ARCH: Type: message"``, in order) and ``not_computable`` (architecture
    -> reason) of the bridge's measures and of the names :func:`guard_registry` saw, in
    ``measures_module`` (default: the installed NASLib layout)."""
    found = registration_of(measures_module)
    return {} if found is None else found.measure_report()


def reset_measure_report(measures_module: ModuleType | None = None) -> None:
    """Forget the counts of :func:`measure_report`."""
    found = registration_of(measures_module)
    if found is not None:
        found.reset_measure_report()


def guard_registry(measures_module: ModuleType | None = None) -> None:
    """Make NASLib's ``calc_measure`` report a name nobody registered.

    NASLib's ``calc_measure(name, ...)`` looks ``name`` up in ``_measure_impls`` and raises a
    bare ``KeyError: 'xi_gsnr'``, which its benchmark runner logs at info level and skips.
    After this call the same lookup logs an error naming the measure, the architecture and
    the registered names, counts the failure (the registry's :func:`measure_report`) and
    raises a ``KeyError`` with that message. Idempotent; registered measures are called as before.
    """
    if measures_module is None:
        measures_module, _ = find_measures_module()
    original = measures_module.calc_measure
    if getattr(original, "_xigsnr_guard", False):
        return

    def calc_measure(name, net, *args, **kwargs):
        impls = measures_module._measure_impls
        if name not in impls:
            exc = KeyError(f"NASLib measure {name!r} is not registered (registered: {', '.join(sorted(impls))}); "
                           f"run NASLib through 'python -m xigsnr_naslib.naslib run' or import "
                           f"xigsnr_naslib.naslib_plugin first")
            _registration(measures_module).log.failed(name, net, exc)
            raise exc
        return original(name, net, *args, **kwargs)

    calc_measure._xigsnr_guard = True
    calc_measure.__wrapped__ = original
    measures_module.calc_measure = calc_measure


def naslib_score(value: float) -> float:
    """What NASLib's ``ZeroCost.query`` turns a raw score into (NaN and +-inf become -1e8)."""
    return -1e8 if (math.isnan(value) or math.isinf(value)) else float(value)


def register(names: Sequence[str] = DEFAULT_MEASURES, settings: MeasureSettings = MeasureSettings(),
             measures_module: ModuleType | None = None) -> Registration:
    """Register project proxies as NASLib zero-cost measures; returns the registry's :class:`Registration`.

    Idempotent: a name this bridge already registered there keeps its function and takes the
    split of ``settings``; its NASLib flags cannot change (an error); a name NASLib already has
    from elsewhere is an error. On an error nothing is registered. ``measures_module`` defaults
    to the installed NASLib layout (:func:`find_measures_module`); ``ZeroCost(method_type=name)``
    then finds the measures.
    """
    if not isinstance(settings, MeasureSettings):
        raise TypeError(f"settings must be a MeasureSettings, got {type(settings).__name__}")
    if measures_module is None:
        measures_module, _ = find_measures_module()
    impls = getattr(measures_module, "_measure_impls", None)
    if impls is None or not hasattr(measures_module, "measure"):
        raise NASLibNotFound(f"{measures_module.__name__} is not a NASLib measures registry (no 'measure' decorator "
                             f"or '_measure_impls')")
    registration = _registration(measures_module)
    registration.add(list(names), settings)
    return registration


def register_naslib_measures(names: Sequence[str] = DEFAULT_MEASURES, *, n_batches: int = 8, batch_size: int = 64,
                             bn: bool = True, copy_net: bool = True, measures_module: ModuleType | None = None
                             ) -> list[str]:
    """:func:`register` with the :class:`MeasureSettings` as keywords; returns the names registered."""
    register(names, MeasureSettings(n_batches, batch_size, bn, copy_net), measures_module)
    return list(names)


def registered_measures(measures_module: ModuleType | None = None) -> dict[str, dict]:
    """Every measure this bridge registered in ``measures_module`` (default: the installed
    layout): name -> its NASLib flags, the split it applies and the registry."""
    found = registration_of(measures_module)
    return {} if found is None else found.registered_measures()


# ----------------------------------------------------------------------------------------
# Running NASLib's own zero-cost evaluation live (used by ``xigsnr-naslib naslib-run``)
# ----------------------------------------------------------------------------------------

def add_collections_aliases() -> None:
    """Give ``collections`` the ABC aliases Python 3.10 removed (``collections.Iterable``...).

    NASLib's Develop branch still imports ``from collections import Iterable`` (in its GP
    predictor, which ``import naslib.predictors`` loads), so it fails on Python >= 3.10.
    The runner calls this before importing NASLib; it adds names, changes none.
    """
    import collections
    import collections.abc

    for name in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


class FixedBatchLoader:
    """A stand-in for a data loader that yields the same one batch every time it is iterated.

    NASLib's ``find_measures`` draws one batch from a fresh iterator for every architecture;
    with this loader every architecture sees the same images, as the paper's protocol does.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        self.inputs, self.targets = inputs, targets
        self.batch_size = int(inputs.shape[0])

    def __iter__(self):
        return iter([(self.inputs, self.targets)])

    def __len__(self) -> int:
        return 1


def _naslib_config(config: dict, save: str, data: str | None):
    """NASLib's CfgNode for a zero-cost run, filled in as NASLib's own config parser does."""
    import copy as _copy

    from fvcore.common.config import CfgNode

    cfg = CfgNode(_copy.deepcopy(config), new_allowed=True)
    cfg.set_new_allowed(True)
    if "search" not in cfg:
        cfg.search = CfgNode(_copy.deepcopy(config), new_allowed=True)
    cfg.search.setdefault("seed", cfg.seed)
    cfg.search.setdefault("batch_size", cfg.batch_size)
    cfg.search.setdefault("train_portion", cfg.get("train_portion", 0.7))
    if "evaluation" not in cfg:
        cfg.evaluation = CfgNode(new_allowed=True)
    cfg.save = save
    if data is None:
        from naslib.utils.get_dataset_api import get_project_root

        data = str(get_project_root() / "data")
    cfg.data = data
    cfg.setdefault("train_data_file", None)
    cfg.setdefault("test_data_file", None)
    return cfg


def naslib_search_space_pool(search_space, dataset_api) -> list[str]:
    """Every architecture NASLib's ``get_arch_iterator`` yields for the space, as NASLib's keys.

    Raises ``ValueError`` naming the space when it has no iterator here.
    """
    try:
        return [str(tuple(_jsonable(a))) if isinstance(a, (tuple, list)) else str(a)
                for a in search_space.get_arch_iterator(dataset_api)]
    except (NotImplementedError, TypeError, AttributeError, KeyError) as exc:
        raise UsageError(f"NASLib's {type(search_space).__name__} cannot list its architectures here ({exc}); "
                         f"give a zc_<space>.json with --zc-json to draw from") from None


def _jsonable(spec):
    if isinstance(spec, (tuple, list)):
        return [_jsonable(v) for v in spec]
    if hasattr(spec, "item"):
        return spec.item()
    return spec


def _spec(key: str):
    """NASLib's key ``"(4, 0, 3, 1, 4, 3)"`` -> the spec ``set_spec`` takes (a list, nested lists kept)."""
    import ast

    value = ast.literal_eval(key) if isinstance(key, str) else key
    return _jsonable(value)


def query_accuracies(config: dict, keys: Sequence[str], dataset_api) -> list[float]:
    """NASLib's ``Metric.VAL_ACCURACY`` of each architecture key (what its zero-cost evaluator correlates with)."""
    from naslib.search_spaces import get_search_space
    from naslib.search_spaces.core.query_metrics import Metric

    space = get_search_space(name=config["search_space"], dataset=config["dataset"])
    out = []
    for key in keys:
        graph = space.clone()
        graph.set_spec(_spec(key), dataset_api)
        out.append(float(graph.query(Metric.VAL_ACCURACY, config["dataset"], dataset_api=dataset_api)))
    return out


def load_naslib_search_space(config: dict):
    from naslib.search_spaces import get_search_space

    return get_search_space(name=config["search_space"], dataset=config["dataset"])


#: measure names NASLib computes outside its registry (``find_measures`` special-cases them)
NASLIB_BUILTIN_MEASURES = ("flops", "params")


def check_predictor(name: str, measures_module: ModuleType | None = None) -> None:
    """Raise ``ValueError`` naming ``name`` and the registered measures when NASLib cannot compute it."""
    if measures_module is None:
        measures_module, _ = find_measures_module()
    known = set(getattr(measures_module, "_measure_impls", {})) | set(NASLIB_BUILTIN_MEASURES)
    if name not in known:
        raise UsageError(f"NASLib has no measure named {name!r}; registered: {', '.join(sorted(known))}")


class QueryRecorder:
    """Put in place of a NASLib ``ZeroCost`` predictor's ``query``: calls it and records, per
    architecture, the raw score (NaN/inf kept, from the bridge's :class:`Registration`), the
    seconds, and the reason it was not computable or the error it raised. An error does not
    stop the run, as in NASLib's runners, but is logged with the architecture and scores -1e8.
    """

    def __init__(self, predictor, registration: Registration) -> None:
        self.query = predictor.query
        self.name = predictor.method_type
        self.registration = registration
        self.records: list[dict] = []

    def __call__(self, graph, dataloader=None, info=None):
        start = time.perf_counter()
        self.registration.log.take_last(self.name)
        record = {"arch_key": architecture_name(graph)}
        try:
            score = self.query(graph, dataloader=dataloader, info=info)
            raw, why = self.registration.log.take_last(self.name)
            raw = score if raw is None else raw
            if why is not None:
                record["not_computable"] = why
        except Exception as exc:  # the run goes on, as NASLib's runners do, but not silently
            if self.name not in self.registration:  # the bridge's measures have logged it already
                logger.error("NASLib measure %r failed on architecture %s: %s: %s", self.name,
                             record["arch_key"], type(exc).__name__, exc)
            score, raw = -1e8, math.nan
            record["error"] = f"{type(exc).__name__}: {exc}"
        record.update({"raw": float(raw), "score": float(score), "seconds": round(time.perf_counter() - start, 4)})
        self.records.append(record)
        return score


def _predictor_registration(name: str, settings: MeasureSettings) -> tuple[Registration, str]:
    """Register predictor ``name`` when it is a project proxy NASLib can host; check NASLib can
    compute it; the registry's registration and the layout."""
    add_collections_aliases()
    measures_module, layout = find_measures_module()
    from xigsnr_naslib.proxies import get_proxy, list_proxies

    if name in list_proxies() and get_proxy(name).needs_data:
        register([name], settings, measures_module)
    check_predictor(name, measures_module)
    return _registration(measures_module), layout


def _write_test_file(config: dict, archs: list[str], save: str, dataset_api, cfg) -> list[float]:
    """NASLib's test-data file (``save/test.json``: each architecture's spec and accuracy), set on ``cfg``."""
    test_file = os.path.join(save, "test.json")
    os.makedirs(save, exist_ok=True)
    accuracies = query_accuracies(config, archs, dataset_api)
    with open(test_file, "w") as f:
        json.dump([{"arch": _spec(key), "accuracy": acc} for key, acc in zip(archs, accuracies)], f)
    cfg.test_data_file = test_file
    cfg.test_size = len(archs)
    return accuracies


@contextmanager
def _fixed_loaders(evaluator_utils, fixed_batch):
    """NASLib's ``get_train_val_loaders`` serving ``fixed_batch`` every time (nothing changed when None)."""
    if fixed_batch is None:
        yield
        return
    fixed = FixedBatchLoader(*fixed_batch)
    original = evaluator_utils.get_train_val_loaders
    evaluator_utils.get_train_val_loaders = lambda *a, **k: (fixed, fixed, fixed, None, None)
    try:
        yield
    finally:
        evaluator_utils.get_train_val_loaders = original


def _evaluate(predictor, cfg, search_space, dataset_api, archs: list[str], evaluator_utils) -> str:
    """Query ``predictor`` on ``archs``: NASLib's live evaluator where the layout has one, else
    the same loop here; returns which ran."""
    import inspect

    from naslib.evaluators.zc_evaluator import ZeroCostPredictorEvaluator

    if "use_zc_api" in inspect.signature(ZeroCostPredictorEvaluator.__init__).parameters:
        evaluator = ZeroCostPredictorEvaluator(predictor, config=cfg, zc_api=None, use_zc_api=False,
                                               log_results=False)
        evaluator.adapt_search_space(search_space, dataset_api=dataset_api, load_labeled=True)
        predictor.pre_process()
        loaded = evaluator.load_test_data()  # NASLib reads the test.json written before
        evaluator.single_evaluate(loaded, zc_api=None)
        return "ZeroCostPredictorEvaluator(use_zc_api=False)"
    predictor.set_ss_type(search_space.get_type())
    predictor.pre_process()
    train_loader = evaluator_utils.get_train_val_loaders(cfg)[0]
    for key in archs:
        graph = search_space.clone()
        graph.set_spec(_spec(key), dataset_api)
        graph.parse()
        predictor.query(graph, dataloader=train_loader)
    return "live loop (this layout's evaluator reads precomputed scores only)"


def run_naslib_zero_cost(config: dict, archs: Sequence[str], *, save: str,
                         settings: MeasureSettings = MeasureSettings(),
                         fixed_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                         dataset_api: dict | None = None, naslib_data: str | None = None) -> dict:
    """Score ``archs`` (NASLib keys) with NASLib's zero-cost evaluation of ``config['predictor']``, live.

    On the Develop layout this is NASLib's ``ZeroCostPredictorEvaluator`` with
    ``use_zc_api=False``, reading ``archs`` from its test-data file (``test.json`` in
    ``save``); the zerocost layout's evaluator can only read precomputed scores, so there the
    same loop runs here with NASLib's search space, ``ZeroCost`` predictor and benchmark API
    (as that branch's benchmark runner does). The caller draws ``archs``
    (:mod:`xigsnr_naslib.integrations.naslib.draw`). A project predictor is registered with
    ``settings`` (:func:`register`).

    ``fixed_batch`` (one concatenated batch) replaces NASLib's training loader, which
    otherwise draws a new random, augmented batch for every architecture. ``dataset_api``
    defaults to NASLib's ``get_dataset_api`` (its benchmark files; missing ones raise
    :class:`~xigsnr_naslib.data.data_root.MissingDataError` naming the file).

    A measure's exception does not stop NASLib: it is logged at error level with the
    architecture, the architecture gets NASLib's -1e8 and its record an ``error``
    (:class:`QueryRecorder`). Returns ``{"records": [{"arch_key", "raw", "score", "seconds",
    "accuracy"[, "error"]}], "layout", "evaluator"}``, records in the order of ``archs``.
    """
    from xigsnr_naslib.integrations.naslib.data import load_naslib_dataset_api, naslib_data_folder

    registration, layout = _predictor_registration(config["predictor"], settings)
    from naslib.evaluators.zc_evaluator import ZeroCostPredictorEvaluator
    from naslib.predictors.zerocost import ZeroCost

    evaluator_utils = sys.modules[ZeroCostPredictorEvaluator.__module__].utils
    cfg = _naslib_config(config, save, naslib_data_folder(naslib_data))
    evaluator_utils.set_seed(cfg.seed)
    if dataset_api is None:
        dataset_api = load_naslib_dataset_api(cfg.search_space, cfg.dataset)
    predictor = ZeroCost(method_type=config["predictor"])
    recorder = QueryRecorder(predictor, registration)
    predictor.query = recorder
    search_space = load_naslib_search_space(config)
    archs = list(archs)
    accuracies = _write_test_file(config, archs, save, dataset_api, cfg)
    with _fixed_loaders(evaluator_utils, fixed_batch), torch.inference_mode(False):
        evaluator_name = _evaluate(predictor, cfg, search_space, dataset_api, archs, evaluator_utils)
    records = recorder.records
    if len(records) != len(archs):
        raise RuntimeError(f"NASLib scored {len(records)} architectures of the {len(archs)} asked for")
    for key, record, accuracy in zip(archs, records, accuracies):
        record["arch_key"] = key  # the key asked for (NASLib's graph hash names the same cell)
        record["accuracy"] = float(accuracy)
    return {"records": records, "layout": layout, "evaluator": evaluator_name}
