"""Scoring many architectures: space -> model -> batches -> proxy -> results store.

:func:`score_architectures` builds each architecture (weights seeded by the protocol), runs
every requested proxy on the protocol's batches and appends one record per (architecture,
proxy) to the results store as soon as it is computed. Records already in the store are
reused, so an interrupted run resumes where it stopped. A failure on one architecture is
recorded (``status: "error"``) and the run goes on.

How the work is executed (the scores do not depend on it):

* ``joint`` (default on): the xi-GSNR proxies of a run (every mode except ``per_sample``,
  every variant; :func:`xi_gsnr_proxies` makes one per (mode, variant)) are scored from
  ONE set of N passes per architecture
  (:func:`~xigsnr_naslib.gsnr.score_jointly`), bit for bit as each alone; BatchNorm
  running statistics, which no score reads, are not updated.
* ``strategy``: ``"loop"`` or ``"vmap"`` (see :mod:`xigsnr_naslib.gsnr`).
* ``workers``: 0 scores in this process; ``k`` scores k architectures at a time in
  worker processes (``backend="processes"``, this machine) or Ray tasks
  (``backend="ray"``, a cluster), each with ``threads`` intra-op threads. The parent
  alone writes the results store, so a record is never lost or written twice.

``with execution(workers="auto", ...):`` sets these for every call inside the block (the
command line's ``--workers``/``--strategy``/``--backend`` work this way), so code that
scores through ``correlate`` or the leaderboard needs no extra arguments.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

from .gradients import Batch, LossFn
from .gsnr import JOINT_MODES, VARIANTS, XiGSNR, score_jointly
from .protocol import Protocol
from .proxies import Proxy, get_proxy, list_proxies
from .results import ResultsStore, record_key, score_fields
from .spaces.base import SearchSpace

__all__ = ["score_architectures", "execution", "build_model", "xi_gsnr_proxies", "ArchitectureScorer", "BACKENDS"]

BACKENDS = ("processes", "ray")


def build_model(space: SearchSpace, arch: Hashable, num_classes: int, seed: int,
                device: str | torch.device = "cpu") -> torch.nn.Module:
    """The architecture's network, initialised after ``torch.manual_seed(seed)``, in train mode."""
    torch.manual_seed(seed)
    return space.build(arch, num_classes=num_classes).to(device).train()


def _base_record(space: SearchSpace, dataset: str, index, code: str, proxy: Proxy, protocol: Protocol) -> dict:
    return {"space": space.name, "dataset": dataset, "index": index, "arch": code, "proxy": proxy.name,
            "settings": proxy.settings, "protocol": protocol.settings() if proxy.needs_data else {}}


class EstimatorScore:
    """A picklable proxy function ``(model, batches, loss_fn) -> score`` for one estimator."""

    def __init__(self, estimator: XiGSNR):
        self.estimator = estimator

    def __call__(self, model: torch.nn.Module, batches: list, loss_fn: LossFn) -> float:
        return self.estimator.score(model, batches, loss_fn)


def xi_gsnr_proxies(modes: Sequence[str] = JOINT_MODES, variants: Sequence[str] = VARIANTS, *,
                    xi: float = 1e-8, params: str = "conv_linear") -> list[Proxy]:
    """One proxy per (mode, variant), to score them all from one set of passes per architecture.

    Where a registered proxy computes the same thing (``xi_gsnr``, ``xi_gsnr_paper``,
    ``gsnr_inv_var``, ...) it is used, so records keep their usual names; the others are
    named ``xi_gsnr_<mode>_<variant>``. Pass the list to :func:`score_architectures`.
    """
    registered = {}
    for name in list_proxies():
        proxy = get_proxy(name)
        estimator = _estimator_of(proxy)
        if estimator is not None:
            registered.setdefault(json.dumps(proxy.settings, sort_keys=True), proxy)
    out = []
    for mode in modes:
        for variant in variants:
            estimator = XiGSNR(mode=mode, xi=xi, variant=variant, params=params)
            key = json.dumps(estimator.settings(), sort_keys=True)
            out.append(registered.get(key) or Proxy(f"xi_gsnr_{mode}_{variant}", EstimatorScore(estimator),
                                                    estimator.settings(), f"xi-GSNR {variant}, {mode} mode"))
    return out


def _estimator_of(proxy: Proxy) -> XiGSNR | None:
    """The xi-GSNR estimator behind a proxy, if it has one (then it can share passes)."""
    estimator = getattr(proxy.fn, "estimator", None)
    return estimator if isinstance(estimator, XiGSNR) else None


@dataclass
class ArchitectureScorer:
    """Everything needed to score one architecture with every proxy: a picklable unit of work.

    :meth:`records` returns the new records of one architecture. Instances travel to
    worker processes and Ray tasks: registered proxies travel by name (and are looked up
    in the worker), the batches as CPU tensors moved to ``device`` on first use.
    """

    space: SearchSpace
    dataset: str
    batches: Sequence[Batch]
    proxies: Sequence[Proxy]
    protocol: Protocol
    num_classes: int
    device: str | torch.device = "cpu"
    loss_fn: LossFn = F.cross_entropy
    strategy: str = "loop"
    joint: bool = True
    _on_device: list | None = field(default=None, init=False, repr=False)

    def _device_batches(self) -> list:
        if self._on_device is None:
            self._on_device = [(x.to(self.device), y.to(self.device)) for x, y in self.batches]
        return self._on_device

    def _groups(self, proxies: Sequence[Proxy]) -> list[list[Proxy]]:
        """Proxies that share one model and one set of passes (xi-GSNR ones), then the rest alone."""
        shared = [p for p in proxies if _estimator_of(p) is not None and _estimator_of(p).mode != "per_sample"]
        groups = [shared] if (self.joint and shared) else [[p] for p in shared]
        return groups + [[p] for p in proxies if p not in shared]

    def records(self, index, arch: Hashable, proxy_names: Sequence[str] | None = None) -> list[dict]:
        """One record per proxy (those named, or all) for ``arch``, scoring errors included."""
        proxies = [p for p in self.proxies if proxy_names is None or p.name in proxy_names]
        code = self.space.encode(arch)
        out = []
        for group in self._groups(proxies):
            records = [_base_record(self.space, self.dataset, index, code, p, self.protocol) for p in group]
            start = time.perf_counter()
            try:
                values = self._score_group(arch, group)
                for record, value in zip(records, values):
                    record.update(score_fields(value))
            except (RuntimeError, ValueError) as exc:  # a broken architecture must not end the run
                for record in records:
                    record.update({"score": None, "status": "error", "error": f"{type(exc).__name__}: {exc}"})
                warnings.warn(f"{self.space.name} {code}: {', '.join(p.name for p in group)} failed: {exc}")
            seconds = round(time.perf_counter() - start, 4)
            for record in records:
                record["seconds"] = seconds
                if len(group) > 1:
                    record["shared_by"] = len(group)  # one computation for the group: seconds is its time
            out.extend(records)
        return out

    def _score_group(self, arch: Hashable, group: Sequence[Proxy]) -> list[float]:
        model = build_model(self.space, arch, self.num_classes, self.protocol.seed, self.device)
        batches = self._device_batches()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            estimators = [_estimator_of(p) for p in group]
            if all(e is not None for e in estimators):
                return score_jointly(estimators, model, batches, self.loss_fn, self.strategy,
                                     update_batchnorm_stats=False)
            return [float(p(model, batches, self.loss_fn)) for p in group]

    def failed(self, index, arch: Hashable, proxy_names: Sequence[str], reason: str) -> list[dict]:
        """Error records for an architecture whose scoring never returned (a worker died)."""
        code = self.space.encode(arch)
        records = []
        for p in self.proxies:
            if p.name in proxy_names:
                record = _base_record(self.space, self.dataset, index, code, p, self.protocol)
                record.update({"score": None, "status": "error", "error": reason, "seconds": None})
                records.append(record)
        return records

    # pickling: registered proxies by name, batches on the CPU
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_on_device"] = None
        state["batches"] = [(x.cpu(), y.cpu()) for x, y in self.batches]
        state["proxies"] = [_by_name(p) for p in self.proxies]
        return state

    def __setstate__(self, state: dict) -> None:
        state["proxies"] = [_from_name(p) for p in state["proxies"]]
        self.__dict__.update(state)


def _by_name(proxy: Proxy):
    try:
        if get_proxy(proxy.name) is proxy:
            return ("registered proxy", proxy.name, proxy.settings)
    except KeyError:
        pass
    return proxy  # travels as an object: needs a pickler that handles its function (Ray's does)


def _from_name(item):
    if isinstance(item, tuple) and item and item[0] == "registered proxy":
        _, name, settings = item
        proxy = get_proxy(name)
        if proxy.settings != settings:
            raise ValueError(f"proxy {name!r} has other settings in this worker: {proxy.settings} != {settings}")
        return proxy
    return item


def _auto_workers(n_tasks: int, device, backend: str) -> int:
    """``workers="auto"``: one single-threaded process per core for CPU runs of several
    architectures (what the speed benchmark found fastest), else this process."""
    cores = os.cpu_count() or 1
    if backend == "processes" and torch.device(device).type == "cpu" and cores > 1 and n_tasks > 1:
        return min(cores, n_tasks)
    return 0


def _default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


#: execution settings of :func:`score_architectures` calls that do not give them
_EXECUTION_DEFAULTS = {"strategy": "loop", "joint": True, "workers": 0, "threads": None, "backend": "processes",
                       "ray_address": None}
_execution_settings: dict = {}


@contextlib.contextmanager
def execution(**settings) -> Iterator[None]:
    """Execution settings for every :func:`score_architectures` call inside the block.

    In the style of scikit-learn's ``config_context``: code that scores through
    ``correlate``, the leaderboard or anything else calling :func:`score_architectures`
    runs with these settings unless the call gives its own::

        with execution(workers="auto"):
            correlate("nb201", "cifar10", first=200)

    Keys: ``strategy``, ``joint``, ``workers``, ``threads``, ``backend``, ``ray_address``.
    """
    unknown = set(settings) - set(_EXECUTION_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown execution settings {sorted(unknown)}; known: {', '.join(_EXECUTION_DEFAULTS)}")
    global _execution_settings
    previous = _execution_settings
    _execution_settings = {**previous, **settings}
    try:
        yield
    finally:
        _execution_settings = previous


def _setting(name: str, value):
    if value is not None:
        return value
    return _execution_settings.get(name, _EXECUTION_DEFAULTS[name])


def score_architectures(
    space: SearchSpace,
    archs: Iterable[tuple[int | None, Hashable]],
    *,
    dataset: str,
    batches: Sequence[Batch],
    proxies: Sequence[Proxy],
    protocol: Protocol,
    num_classes: int,
    store: ResultsStore | None = None,
    device: str | torch.device = "cpu",
    loss_fn: LossFn = F.cross_entropy,
    progress: bool = True,
    strategy: str | None = None,
    joint: bool | None = None,
    workers: int | str | None = None,
    threads: int | None = None,
    backend: str | None = None,
    ray_address: str | None = None,
) -> list[dict]:
    """Score ``archs`` (pairs of benchmark index or None, architecture) with every proxy.

    Returns one record per (architecture, proxy), reused from ``store`` or new, in the
    order of ``archs`` then ``proxies``. See the module documentation for ``strategy``,
    ``joint``, ``workers`` (``"auto"``: one process per core on a CPU), ``threads``
    (intra-op threads of each worker; default: the machine's cores shared out, or
    unchanged when ``workers=0``), ``backend`` and
    ``ray_address`` (an existing Ray cluster; default: start a local one). Settings left
    at ``None`` come from the enclosing :func:`execution` block, else: ``strategy="loop"``,
    ``joint=True``, ``workers=0`` (this process), ``backend="processes"``.
    """
    strategy, joint, workers = _setting("strategy", strategy), _setting("joint", joint), _setting("workers", workers)
    threads, backend = _setting("threads", threads), _setting("backend", backend)
    ray_address = _setting("ray_address", ray_address)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if workers != "auto" and (not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be >= 0 or 'auto', got {workers!r}")
    archs = list(archs)
    scorer = ArchitectureScorer(space, dataset, batches, proxies, protocol, num_classes, device, loss_fn,
                                strategy, joint)
    done = {record_key(r): r for r in store} if store is not None else {}
    keys = []  # per architecture: the record key of each proxy
    tasks = []  # (task id, index, arch, names of the proxies still to score)
    for position, (index, arch) in enumerate(archs):
        code = space.encode(arch)
        arch_keys = [record_key(_base_record(space, dataset, index, code, p, protocol)) for p in proxies]
        keys.append(arch_keys)
        todo = [p.name for p, key in zip(proxies, arch_keys) if key not in done]
        if todo:
            tasks.append((position, index, arch, list(dict.fromkeys(todo))))
    if workers == "auto":
        workers = _auto_workers(len(tasks), device, backend)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(archs) * len(proxies), desc=f"{space.name}/{dataset}", unit="score")
        bar.update(len(archs) * len(proxies) - sum(len(t[3]) for t in tasks))
    previous_threads = torch.get_num_threads()
    try:
        if workers == 0:
            if threads is not None:
                torch.set_num_threads(threads)
            results = ((t[0], scorer.records(t[1], t[2], t[3])) for t in tasks)
        else:
            from . import parallel

            threads = threads or _default_threads(workers)
            if backend == "ray":
                results = parallel.run_ray(scorer, tasks, workers, threads, address=ray_address)
            else:
                results = parallel.run_processes(scorer, tasks, workers, threads, device=device)
        for _, records in results:
            for record in records:
                key = record_key(record)
                if key in done:  # never write one computation twice
                    continue
                if store is not None:
                    store.append(record)
                done[key] = record
                if bar is not None:
                    bar.update(1)
    finally:
        torch.set_num_threads(previous_threads)
        if bar is not None:
            bar.close()
    return [done[key] for arch_keys in keys for key in arch_keys if key in done]
