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
  ``find_measures`` put it), scores it in place and leaves it as found (modes, parameters,
  buffers, ``requires_grad``, ``.grad``). ``bn=False`` needs ``copy_net=True`` (NASLib only drops
  BatchNorm in its copy) and is refused otherwise.
* Every measure outside NASLib's short hard-coded list must return a list of tensors, which
  ``find_measures`` sums: the bridge returns ``[tensor(score, float64)]``. ``ZeroCost``
  turns a NaN or infinite score into -1e8 without a word; the raw value of the last call of
  each measure is kept (:func:`last_raw_score`) so that a runner can record it as such.
* A measure returns a float, whatever the architecture: that is the host's contract
  (NASLib's own measures return ``0.0`` on a cell whose output does not depend on its input,
  and NASLib's ``ZeroCostPredictorEvaluator`` calls ``query`` without catching, so one
  exception ends the whole experiment). Where the score is undefined
  (:class:`~xigsnr_naslib.passes.requests.NotComputable`: e.g. the 341 NB201 cells with no path from
  input to output) the measure returns NaN, which ``ZeroCost`` records as -1e8; the reason is
  logged once per measure and architecture at warning level, kept for the last call
  (:func:`last_not_computable`) and counted (:func:`measure_report`, ``not_computable``).
* Any other exception is a failure of the run or a bad setting (a batch that does not split,
  out of memory): it is logged at error level with the measure, the architecture and the
  error, counted (:func:`measure_report`) and raised. NASLib's runners that catch a measure's
  exception go on (the benchmark runner logs "Failed to compute score" at info level). :func:`guard_registry` does the same for a name that is
  not registered (NASLib's bare ``KeyError``), so a launcher can fail a run in which every
  architecture failed (``python -m xigsnr_naslib.naslib run``).
"""
from __future__ import annotations

import importlib
import json
import logging
import math
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from xigsnr_naslib.passes.requests import NotComputable

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
    "last_not_computable",
    "naslib_score",
    "measure_report",
    "reset_measure_report",
    "guard_registry",
    "architecture_name",
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
        self.calls: dict[str, int] = {}
        self.failures: dict[str, list[str]] = {}
        self.not_computable: dict[str, str] = {}  # measure -> reason of its last call, when undefined
        self.undefined: dict[str, dict[str, str]] = {}  # measure -> {architecture: reason}, reported once each

    def count(self, name: str, failure: str | None = None) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if failure is not None:
            self.failures.setdefault(name, []).append(failure)


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
        except ImportError as exc:
            if "from 'collections'" not in str(exc):
                raise
            raise NASLibNotFound(
                f"NASLib is importable but {module} is not: {exc}. This NASLib imports ABCs from 'collections' "
                f"(gone in Python 3.10): call xigsnr_naslib.integrations.naslib.bridge.add_collections_aliases() first, "
                f"or use Python <= 3.9") from exc
    raise NASLibNotFound(f"no NASLib measures registry found ({'; '.join(failures)}). {_HOW_TO_INSTALL}")


def last_raw_score(name: str) -> float | None:
    """The raw score of the last call of bridge measure ``name`` (NaN and inf kept), or None."""
    return _BRIDGE.last_raw.get(name)


def architecture_name(net) -> str:
    """A NASLib graph's key (``str(graph.get_hash())``, NASLib's zc-file key), else its class name."""
    try:
        return str(tuple(net.get_hash()))
    except Exception:  # not a NASLib graph, or one without an architecture set
        return type(net).__name__


def _failed(name: str, net, exc: BaseException) -> None:
    arch = architecture_name(net)
    logger.error("NASLib measure %r failed on architecture %s: %s: %s", name, arch, type(exc).__name__, exc)
    _BRIDGE.count(name, f"{arch}: {type(exc).__name__}: {exc}")


def _not_computable(name: str, net, exc: BaseException) -> None:
    """Record that ``name`` is undefined on ``net``'s architecture; warn once per (measure, architecture)."""
    arch = architecture_name(net)
    reason = str(exc) or type(exc).__name__
    _BRIDGE.not_computable[name] = reason
    _BRIDGE.undefined.setdefault(name, {})
    if arch not in _BRIDGE.undefined[name]:
        logger.warning("NASLib measure %r is not computable on architecture %s: %s; it returns NaN (NASLib's "
                       "ZeroCost records -1e8)", name, arch, reason)
    _BRIDGE.undefined[name][arch] = reason


def last_not_computable(name: str) -> str | None:
    """Why the last call of bridge measure ``name`` was not computable (None when it was)."""
    return _BRIDGE.not_computable.get(name)


def measure_report() -> dict[str, dict]:
    """Per measure name, since the last :func:`reset_measure_report`: ``calls``, ``failed``
    and the ``errors`` (``"ARCH: Type: message"``, in order) of the bridge's measures and of
    the names :func:`guard_registry` saw."""
    return {name: {"calls": calls, "failed": len(_BRIDGE.failures.get(name, [])),
                   "errors": list(_BRIDGE.failures.get(name, [])),
                   "not_computable": dict(_BRIDGE.undefined.get(name, {}))}
            for name, calls in _BRIDGE.calls.items()}


def reset_measure_report() -> None:
    """Forget the counts of :func:`measure_report`."""
    _BRIDGE.calls.clear()
    _BRIDGE.failures.clear()
    _BRIDGE.undefined.clear()


def guard_registry(measures_module: ModuleType | None = None) -> None:
    """Make NASLib's ``calc_measure`` report a name nobody registered.

    NASLib's ``calc_measure(name, ...)`` looks ``name`` up in ``_measure_impls`` and raises a
    bare ``KeyError: 'xi_gsnr'``, which its benchmark runner logs at info level and skips.
    After this call the same lookup logs an error naming the measure, the architecture and
    the registered names, counts the failure (:func:`measure_report`) and raises a
    ``KeyError`` with that message. Idempotent; registered measures are called as before.
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
            _failed(name, net, exc)
            raise exc
        return original(name, net, *args, **kwargs)

    calc_measure._xigsnr_guard = True
    calc_measure.__wrapped__ = original
    measures_module.calc_measure = calc_measure


def naslib_score(value: float) -> float:
    """What NASLib's ``ZeroCost.query`` turns a raw score into (NaN and +-inf become -1e8)."""
    return -1e8 if (math.isnan(value) or math.isinf(value)) else float(value)


def naslib_measure(name: str) -> Callable:
    """The NASLib measure function of project proxy ``name``.

    Its signature is what NASLib's ``find_measures`` calls:
    ``fn(net, inputs, targets, loss_fn=..., split_data=..., **decorator_args)``; it returns
    ``[tensor(score)]``. The split in force when it is called applies (:class:`BatchSplit`).
    """
    from xigsnr_naslib.proxies import get_proxy

    proxy = get_proxy(name)
    if not proxy.needs_data:
        raise ValueError(f"proxy {name!r} does not look at data; NASLib has its own {name!r} measure")

    def measure(net, inputs, targets, loss_fn=None, split_data=1, **_decorator_args):
        _BRIDGE.not_computable.pop(name, None)
        try:
            batches = _BRIDGE.split.split(inputs, targets, name)
            # the proxy scores in the mode its protocol prescribes and hands the network back as found
            # (modes, parameters, buffers, requires_grad, .grad): NASLib's own graph with copy_net=False
            score = proxy(net.to(inputs.device), batches, loss_fn if loss_fn is not None else F.cross_entropy)
        except NotComputable as exc:  # a property of the architecture: the host's contract is a float
            score = math.nan
            _not_computable(name, net, exc)
        except Exception as exc:  # a failure of the run or a bad setting: logged and counted, then raised
            _failed(name, net, exc)
            raise
        _BRIDGE.count(name)
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
        raise ValueError(f"NASLib's {type(search_space).__name__} cannot list its architectures here ({exc}); "
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
        raise ValueError(f"NASLib has no measure named {name!r}; registered: {', '.join(sorted(known))}")


def run_naslib_zero_cost(config: dict, *, save: str, archs: Sequence[str], n_batches: int = 8, batch_size: int = 64,
                         bn: bool = True, copy_net: bool = True,
                         fixed_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                         dataset_api: dict | None = None, naslib_data: str | None = None) -> dict:
    """Score ``archs`` (NASLib keys) with NASLib's zero-cost evaluation of ``config['predictor']``, live.

    On the Develop layout this is NASLib's ``ZeroCostPredictorEvaluator`` with
    ``use_zc_api=False``, reading ``archs`` from its test-data file (``test.json`` in
    ``save``); the zerocost layout's evaluator can only read precomputed scores, so there the
    same loop runs here with NASLib's search space, ``ZeroCost`` predictor and benchmark API
    (as that branch's benchmark runner does). The caller draws ``archs``
    (:mod:`xigsnr_naslib.integrations.naslib.draw`).

    ``fixed_batch`` (one concatenated batch) replaces NASLib's training loader, which
    otherwise draws a new random, augmented batch for every architecture. ``dataset_api``
    defaults to NASLib's ``get_dataset_api`` (its benchmark files; missing ones raise
    :class:`~xigsnr_naslib.data.data_root.MissingDataError` naming the file).

    A measure's exception does not stop NASLib: it is logged at error level with the
    architecture, the architecture gets NASLib's -1e8 and its record an ``error``.
    Returns ``{"records": [{"arch_key", "raw", "score", "seconds", "accuracy"[, "error"]}],
    "layout", "evaluator"}``, records in the order of ``archs``.
    """
    import contextlib
    import inspect
    import sys
    import time

    from xigsnr_naslib.integrations.naslib.data import load_naslib_dataset_api, naslib_data_folder

    add_collections_aliases()
    measures_module, layout = find_measures_module()
    from xigsnr_naslib.proxies import get_proxy, list_proxies

    predictor_name = config["predictor"]
    if predictor_name in list_proxies() and get_proxy(predictor_name).needs_data:
        register_naslib_measures([predictor_name], n_batches=n_batches, batch_size=batch_size, bn=bn,
                                 copy_net=copy_net)
    check_predictor(predictor_name, measures_module)
    from naslib.evaluators.zc_evaluator import ZeroCostPredictorEvaluator
    from naslib.predictors.zerocost import ZeroCost
    from naslib.search_spaces.core.query_metrics import Metric

    evaluator_utils = sys.modules[ZeroCostPredictorEvaluator.__module__].utils
    cfg = _naslib_config(config, save, naslib_data_folder(naslib_data))
    evaluator_utils.set_seed(cfg.seed)
    if dataset_api is None:
        dataset_api = load_naslib_dataset_api(cfg.search_space, cfg.dataset)
    records: list[dict] = []
    ours = set(getattr(measures_module, _MARK, {}))

    class RecordingZeroCost(ZeroCost):
        """NASLib's ZeroCost, recording each raw score (NaN/inf kept), its time and its error."""

        def query(self, graph, dataloader=None, info=None):
            start = time.perf_counter()
            _BRIDGE.last_raw.pop(self.method_type, None)
            record = {"arch_key": architecture_name(graph)}
            try:
                score = super().query(graph, dataloader=dataloader, info=info)
                raw = _BRIDGE.last_raw.pop(self.method_type, score)
                why = _BRIDGE.not_computable.pop(self.method_type, None)
                if why is not None:
                    record["not_computable"] = why
            except Exception as exc:  # the run goes on, as NASLib's runners do, but not silently
                if self.method_type not in ours:  # the bridge's measures have logged it already
                    logger.error("NASLib measure %r failed on architecture %s: %s: %s", self.method_type,
                                 record["arch_key"], type(exc).__name__, exc)
                score, raw = -1e8, math.nan
                record["error"] = f"{type(exc).__name__}: {exc}"
            record.update({"raw": float(raw), "score": float(score),
                           "seconds": round(time.perf_counter() - start, 4)})
            records.append(record)
            return score

    predictor = RecordingZeroCost(method_type=predictor_name)
    search_space = load_naslib_search_space(config)
    archs = list(archs)
    test_file = os.path.join(save, "test.json")
    os.makedirs(save, exist_ok=True)
    accuracies = query_accuracies(config, archs, dataset_api)
    with open(test_file, "w") as f:
        json.dump([{"arch": _spec(key), "accuracy": acc} for key, acc in zip(archs, accuracies)], f)
    cfg.test_data_file = test_file
    cfg.test_size = len(archs)

    @contextlib.contextmanager
    def loaders():
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

    with loaders(), torch.inference_mode(False):
        if "use_zc_api" in inspect.signature(ZeroCostPredictorEvaluator.__init__).parameters:
            evaluator = ZeroCostPredictorEvaluator(predictor, config=cfg, zc_api=None, use_zc_api=False,
                                                   log_results=False)
            evaluator.adapt_search_space(search_space, dataset_api=dataset_api, load_labeled=True)
            predictor.pre_process()
            loaded = evaluator.load_test_data()  # NASLib reads the test.json written above
            evaluator.single_evaluate(loaded, zc_api=None)
            evaluator_name = "ZeroCostPredictorEvaluator(use_zc_api=False)"
        else:
            predictor.set_ss_type(search_space.get_type())
            predictor.pre_process()
            train_loader = evaluator_utils.get_train_val_loaders(cfg)[0]
            for key in archs:
                graph = search_space.clone()
                graph.set_spec(_spec(key), dataset_api)
                graph.parse()
                predictor.query(graph, dataloader=train_loader)
            evaluator_name = "live loop (this layout's evaluator reads precomputed scores only)"
    if len(records) != len(archs):
        raise RuntimeError(f"NASLib scored {len(records)} architectures of the {len(archs)} asked for")
    for key, record, accuracy in zip(archs, records, accuracies):
        record["arch_key"] = key  # the key asked for (NASLib's graph hash names the same cell)
        record["accuracy"] = float(accuracy)
    return {"records": records, "layout": layout, "evaluator": evaluator_name}
