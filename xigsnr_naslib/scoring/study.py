"""The one scoring path: card + dataset + architectures + proxies + protocol + execution + store -> records.

Every command scores through :class:`Study`: ``correlate`` and ``score``, the leaderboard
(which scores only what its store lacks), search fitness (so a search resumes and never
scores an architecture twice) and the NASLib runner's standalone engine.

For each architecture not yet in the store, the study builds the network once (weights
seeded by the protocol's ``init_seed``), runs each pass the proxies declared ONCE
(:func:`xigsnr_naslib.proxies.run_passes`) and hands it to every proxy that asked; proxies
that run passes of their own get a network of their own. One record per (architecture,
proxy) is appended to the store as soon as it is computed. A failure on one architecture is
recorded (``status: "error"``) and the run goes on.

A record's key holds everything that changes its value (:func:`xigsnr_naslib.scoring.results.record_key`):
space and its options, dataset, the fingerprint of the images used, proxy and settings,
protocol (batches, batch size, data seed, init seed, normalisation, BatchNorm mode).

How the work is executed (:class:`Execution`; the scores depend on it by float32 rounding
at most): ``strategy`` ``"loop"`` or ``"vmap"`` (:mod:`xigsnr_naslib.core.gsnr`); ``workers`` 0
scores in this process, ``k`` scores k architectures at a time in worker processes
(``backend="processes"``) or Ray tasks (``backend="ray"``), each with ``threads`` intra-op
threads (default :data:`DEFAULT_THREADS`, 1, for every command and worker count, so that
they all store the same values); ``"auto"`` is one process per core for CPU runs of several
architectures. The parent alone writes the store, so a record is never lost or written
twice. Each record carries the ``environment`` that fixes its last bits
(:func:`scoring_environment`: torch version, thread count, CPU kernel set); it is
provenance, not key: another environment moves a score by rounding only.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable, Sequence

import torch
import torch.nn.functional as F

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard, get_card
from xigsnr_naslib.registry import choose
from xigsnr_naslib.core.gradients import Batch, LossFn
from xigsnr_naslib.core.gsnr import STRATEGIES
from xigsnr_naslib.data.image_set import ImageSet
from xigsnr_naslib.data.protocol import Protocol, draw_batches
from xigsnr_naslib.proxies import NotComputable, PassResults, Proxy, check_computable, get_proxy, run_passes
from xigsnr_naslib.scoring.results import NO_VALUE_DEVICES, ResultsStore, Status, record_key, reusable, score_fields, upgrade_record
from xigsnr_naslib.benchmarks.space import SearchSpace, canonical_record

__all__ = ["Execution", "Study", "build_model", "BACKENDS", "DEFAULT_THREADS", "available_devices", "check_device",
           "scoring_environment"]

BACKENDS = ("processes", "ray")
#: the device kinds named when a device string is not one torch reads
DEVICE_KINDS = "cpu, cuda, cuda:N, mps, xpu, xpu:N"


def available_devices() -> list[str]:
    """The devices this torch can score on here: ``cpu``, and ``cuda``/``cuda:N``, ``mps``,
    ``xpu``/``xpu:N`` where present."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        out += ["xpu"] + [f"xpu:{i}" for i in range(xpu.device_count())]
    return out


def _unavailable(device: torch.device) -> str | None:
    """Why no score can be computed on ``device`` here (None: it can)."""
    if device.type == "cpu":
        return None
    if device.type in NO_VALUE_DEVICES:
        return "its tensors hold no values, so no score can be computed on it"
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            return "this torch sees no CUDA device"
        return None if (device.index or 0) < count else f"this machine has {count} CUDA device(s)"
    try:  # any other kind: it works where a tensor can be made on it
        torch.empty(1, device=device)
    except Exception:  # torch raises many kinds here (AssertionError, NotImplementedError, ...)
        return f"this torch has no working {device.type} backend"
    return None


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device, if a score can be computed on it here.

    Errors: ``ValueError`` naming the device and the devices available (a string torch does
    not read, such as ``gpu`` or ``cuda:x``; a device this torch or machine lacks; ``meta``,
    whose tensors hold no values).
    """
    usable = ", ".join(available_devices())
    with warnings.catch_warnings():  # torch warns of deprecated kinds (mkldnn): the answer below says it all
        warnings.simplefilter("ignore")
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise UsageError(f"unknown device {device!r}; choose one of: {DEVICE_KINDS} (available here: {usable})"
                             ) from None
        why = _unavailable(parsed)
    if why is not None:
        raise UsageError(f"device {device!r} is not available with this torch ({torch.__version__}): {why}; "
                         f"choose one of: {usable}")
    return parsed


@dataclass(frozen=True)
class Execution:
    """How a study runs (the scores depend on it by float32 rounding at most: the device and
    the thread count sum in other orders; records name both).

    Parameters
    ----------
    device : str
        Torch device of the networks and batches (``cpu``, ``cuda``, ``cuda:1``, ...).
    strategy : {"loop", "vmap"}
        How gradient passes run (:mod:`xigsnr_naslib.core.gsnr`).
    workers : int or "auto"
        Architectures scored at a time in worker processes / Ray tasks; 0: this process.
    threads : int or None
        Intra-op threads of each scoring process, this one included (default
        :data:`DEFAULT_THREADS`, 1, whatever the workers: float32 sums split over other
        thread counts round differently, so one default keeps every command's scores equal;
        each record names its thread count, :func:`scoring_environment`).
    backend : {"processes", "ray"}
        Worker processes on this machine, or Ray tasks.
    ray_address : str or None
        An existing Ray cluster (default: a local one).
    progress : bool
        Show a progress bar.
    """

    device: str = "cpu"
    strategy: str = "loop"
    workers: int | str = 0
    threads: int | None = None
    backend: str = "processes"
    ray_address: str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        check_device(self.device)
        choose(self.strategy, list(STRATEGIES), "strategy")
        choose(self.backend, list(BACKENDS), "backend")
        if self.workers != "auto" and (not isinstance(self.workers, int) or self.workers < 0):
            raise UsageError(f"workers must be a whole number >= 0 or 'auto', got {self.workers!r}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads must be >= 1, got {self.threads}")

    def n_workers(self, n_tasks: int) -> int:
        """The workers this run uses for ``n_tasks`` architectures (resolves ``"auto"``)."""
        if self.workers != "auto":
            return int(self.workers)
        cores = os.cpu_count() or 1
        if self.backend == "processes" and torch.device(self.device).type == "cpu" and cores > 1 and n_tasks > 1:
            return min(cores, n_tasks)
        return 0


def build_model(space: SearchSpace, arch: Hashable, num_classes: int, seed: int,
                device: str | torch.device = "cpu") -> torch.nn.Module:
    """The architecture's network, initialised after ``torch.manual_seed(seed)``, in train mode."""
    torch.manual_seed(seed)
    return space.build(arch, num_classes=num_classes).to(device).train()


@dataclass
class ArchitectureScorer:
    """Everything needed to score one architecture with every proxy: a picklable unit of work.

    :meth:`records` returns the new records of one architecture. Instances travel to worker
    processes and Ray tasks: registered proxies travel by name (and are looked up in the
    worker), the batches as CPU tensors moved to ``device`` on first use.
    """

    space: SearchSpace
    context: dict  # the record fields every record of the study shares
    batches: Sequence[Batch]
    proxies: Sequence[Proxy]
    protocol: Protocol
    num_classes: int
    input_shape: tuple[int, ...]
    device: str | torch.device = "cpu"
    loss_fn: LossFn = F.cross_entropy
    strategy: str = "loop"
    _on_device: list | None = field(default=None, init=False, repr=False)

    def base_record(self, index, code: str, proxy: Proxy) -> dict:
        record = {**self.context, "index": index, "arch": code, "proxy": proxy.name, "settings": proxy.settings,
                  "protocol": self.protocol.settings() if proxy.needs_data else {}}
        if not proxy.needs_data:
            record["images"] = None
        return record

    def _device_batches(self) -> list:
        if self._on_device is None:
            self._on_device = [(x.to(self.device), y.to(self.device)) for x, y in self.batches]
        return self._on_device

    def _model(self, arch: Hashable) -> torch.nn.Module:
        return build_model(self.space, arch, self.num_classes, self.protocol.init_seed, self.device)

    def records(self, index, arch: Hashable, proxy_names: Sequence[str] | None = None) -> list[dict]:
        """One record per proxy (those named, or all) for ``arch``, scoring errors included.

        The proxies that need no network of their own share one network; those that declare
        passes share the passes, and their records carry ``shared_by`` (how many shared) and
        ``seconds`` (build, passes and their own computation); a proxy that reads only the
        network is timed alone.
        """
        proxies = [p for p in self.proxies if proxy_names is None or p.name in proxy_names]
        code = self.space.encode(arch)
        began = time.perf_counter()
        derived = [p for p in proxies if p.members]
        computing = {p.name: p for p in proxies if not p.members}
        for p in derived:  # members computed with the others, sharing their passes
            for member in p.member_proxies():
                computing.setdefault(member.name, member)
        shared = [p for p in computing.values() if not p.fresh_model]
        groups = ([shared] if shared else []) + [[p] for p in computing.values() if p.fresh_model]
        out = {}
        for group in groups:
            records = [self.base_record(index, code, p) for p in group]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self._score_group(arch, group, records)
            out.update({p.name: r for p, r in zip(group, records)})
        for p in derived:
            out[p.name] = self._derived_record(index, code, p, out, time.perf_counter() - began)
        environment = scoring_environment(self.device)
        for record in out.values():  # provenance, not key: stamped where the score was computed
            record["environment"] = dict(environment)
        # members computed only for a derived proxy are returned too (the store keeps them)
        return [out[p.name] for p in proxies] + [r for name, r in out.items() if name not in {p.name for p in proxies}]

    def _derived_record(self, index, code: str, proxy: Proxy, member_records: dict, seconds: float) -> dict:
        record = self.base_record(index, code, proxy)
        values, missing, failed = {}, [], []
        for name in proxy.members:
            member = member_records[name]
            if member.get("status") == Status.OK:
                values[name] = float(member["score"])
            else:
                why = member.get("reason") or member.get("error") or member.get("value") or ""
                said = f"{name} is {member.get('status')}" + (f" ({why})" if why else "")
                (failed if member.get("status") == Status.ERROR else missing).append(said)
        if failed:  # a member's failure is the run's, not the architecture's: retried like it
            record.update({"score": None, "status": Status.ERROR, "error": "member " + "; ".join(failed)})
        elif missing:
            record.update({"score": None, "status": Status.NOT_COMPUTABLE, "reason": "member " + "; ".join(missing)})
        else:
            try:
                record.update(score_fields(float(proxy.compute(values))))
            except NotComputable as exc:
                record.update({"score": None, "status": Status.NOT_COMPUTABLE, "reason": str(exc)})
        record["seconds"] = round(seconds, 4)  # the architecture's whole scoring: the members' passes
        return record

    def _score_group(self, arch: Hashable, group: Sequence[Proxy], records: list[dict]) -> None:
        """Fill ``records`` (one per proxy of ``group``): the network and the passes once, then each proxy."""
        start = time.perf_counter()
        passing = [p for p in group if p.needs]
        try:
            model = self._model(arch)
            batches = self._device_batches() if any(p.needs_data for p in group) else []
            moments = run_passes(model, batches, self.loss_fn, [n for p in passing for n in p.needs], self.strategy)
        except (RuntimeError, ValueError) as exc:  # a broken architecture must not end the run
            self._fail(records, group, exc)
            for record in records:
                record["seconds"] = round(time.perf_counter() - start, 4)
            return
        shared_seconds = time.perf_counter() - start
        results = PassResults(model, batches, self.loss_fn, self.input_shape, moments)
        for proxy, record in zip(group, records):
            began = time.perf_counter()
            try:
                record.update(score_fields(float(proxy.compute(results))))
            except NotComputable as exc:
                record.update({"score": None, "status": Status.NOT_COMPUTABLE, "reason": str(exc)})
            except (RuntimeError, ValueError) as exc:
                self._fail([record], [proxy], exc)
            own = time.perf_counter() - began
            record["seconds"] = round(own + (shared_seconds if (proxy.needs or len(group) == 1) else 0.0), 4)
            if proxy.needs and len(passing) > 1:
                record["shared_by"] = len(passing)  # one set of passes for these: seconds includes it

    def _fail(self, records: list[dict], group: Sequence[Proxy], exc: Exception) -> None:
        for record in records:
            record.update({"score": None, "status": Status.ERROR, "error": f"{type(exc).__name__}: {exc}"})
        warnings.warn(f"{self.space.name} {records[0]['arch']}: {', '.join(p.name for p in group)} failed: {exc}")

    def failed(self, index, arch: Hashable, proxy_names: Sequence[str], reason: str) -> list[dict]:
        """Error records for an architecture whose scoring never returned (a worker died)."""
        code = self.space.encode(arch)
        records = []
        for p in self.proxies:
            if p.name in proxy_names:
                record = self.base_record(index, code, p)
                record.update({"score": None, "status": Status.ERROR, "error": reason, "seconds": None})
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
    except ValueError:
        pass
    return proxy  # travels as an object: its compute must be picklable


def _from_name(item):
    if isinstance(item, tuple) and item and item[0] == "registered proxy":
        _, name, settings = item
        proxy = get_proxy(name)
        if proxy.settings != settings:
            raise UsageError(f"proxy {name!r} has other settings in this worker: {proxy.settings} != {settings}")
        return proxy
    return item


#: intra-op threads of a scoring process unless :class:`Execution` names others: one
#: default for every command (``score``, ``correlate``, leaderboard, search), every worker
#: count and every number of architectures, so that they store the same values bit for bit
DEFAULT_THREADS = 1

#: environment variables that limit the CPU kernels (oneDNN, MKL, ATen), recorded when set
_ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")


def scoring_environment(device: str | torch.device = "cpu") -> dict:
    """What, beside a record's key, fixes a score's last bits in this process: the torch
    version, its intra-op thread count and ATen's CPU kernel set (``AVX2``, ``AVX512``, ...),
    and any variable of :data:`_ISA_LIMITS` that is set; on a CUDA ``device`` also the GPU's
    model, the CUDA and cuDNN versions and whether TF32 is allowed in matrix products and
    convolutions (it rounds their inputs to 10 mantissa bits). Within one environment a score
    is reproduced bit for bit; across environments it moves by float32 rounding only (bounds:
    tests/test_study.py)."""
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    limits = {k: os.environ[k] for k in _ISA_LIMITS if os.environ.get(k)}
    if limits:
        env["isa_limits"] = limits
    device = torch.device(device)
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(),
                   tf32={"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32})
    return env


@dataclass
class Study:
    """Score architectures of one benchmark card on one dataset: the project's only scoring loop.

    Parameters
    ----------
    card : BenchmarkCard or str
        The search space's card (or its registered name).
    dataset : str, DatasetCard or None
        One of the card's datasets (default: its first), or a :class:`DatasetCard` (e.g. a
        card's dataset with another class count).
    proxies : sequence of str or Proxy, or None
        Default (``None``): the dataset's default proxy; ``[]``: none.
    protocol : Protocol or None
        Default: the dataset's default protocol.
    execution : Execution
        Device, strategy, workers, threads (the scores depend on it by float32 rounding at most).
    store : ResultsStore, path or None
        Append-only results file; records already there are reused (resume).
    data_root : path or None
        Where the dataset's images are read (default ``$XIGSNR_DATA_ROOT``).
    images : ImageSet or None
        Images to draw the batches from instead of the dataset's own (e.g. a user's own
        images, or synthetic images to size a search); their fingerprint is recorded.
    space_options : dict
        Options of the space (validated by the card; recorded with every score).
    loss_fn : callable
        ``loss_fn(logits, labels) -> scalar``; cross-entropy by default.

    Raises
    ------
    UnknownChoiceError
        (a ``ValueError``) for an unknown space, dataset, proxy or space option, naming the
        valid choices.
    """

    card: BenchmarkCard | str
    dataset: str | None = None
    proxies: Sequence[str | Proxy] | None = None
    protocol: Protocol | None = None
    execution: Execution = field(default_factory=Execution)
    store: ResultsStore | str | os.PathLike | None = None
    data_root: str | os.PathLike | None = None
    images: ImageSet | None = None
    space_options: dict = field(default_factory=dict)
    loss_fn: LossFn = F.cross_entropy

    def __post_init__(self) -> None:
        if isinstance(self.card, str):
            self.card = get_card(self.card)
        if isinstance(self.dataset, DatasetCard):  # a card's dataset with changes (e.g. other classes)
            self.dataset_card = self.dataset
        else:
            self.dataset_card = self.card.dataset(self.dataset)
        self.dataset = self.dataset_card.name
        names = list(self.proxies) if self.proxies is not None else [self.dataset_card.proxy]
        self.proxies = [p if isinstance(p, Proxy) else get_proxy(p) for p in names]
        self.protocol = self.protocol or self.dataset_card.protocol
        check_computable(self.proxies, self.protocol.n_batches, self.protocol.batch_size)
        self.space_options = self.card.options(**self.space_options)
        self.space = self.card.space(**self.space_options)
        if self.store is not None and not isinstance(self.store, ResultsStore):
            self.store = ResultsStore(self.store)
        self._scorer: ArchitectureScorer | None = None
        self._done: dict | None = None
        self._read_size = -1

    @property
    def needs_data(self) -> bool:
        return any(p.needs_data or any(m.needs_data for m in p.member_proxies()) for p in self.proxies)

    def _prepare(self) -> ArchitectureScorer:
        if self._scorer is None:
            batches: list = []
            fingerprint = None
            if self.needs_data:
                if self.images is None:
                    from xigsnr_naslib.data.datasets import load_images

                    self.images = load_images(self.dataset_card.images, self.data_root)
                batches = draw_batches(self.images, self.protocol, self.dataset_card.images, "cpu")
                fingerprint = self.images.fingerprint()
            context = {"space": self.card.name, "space_options": self.space_options, "dataset": self.dataset,
                       "images": fingerprint, "device": str(torch.device(self.execution.device))}
            resolution = self.space.resolution or self.dataset_card.resolution
            self._scorer = ArchitectureScorer(self.space, context, batches, self.proxies, self.protocol,
                                              self.dataset_card.num_classes, (3, resolution, resolution),
                                              self.execution.device, self.loss_fn, self.execution.strategy)
        return self._scorer

    def _done_records(self) -> dict:
        """Records already in the store that may be served, by key (records of earlier releases
        upgraded; failures of the run that wrote them and records of devices without values
        left out, so they are scored again: :func:`~xigsnr_naslib.scoring.results.reusable`)."""
        if self._done is None:
            self._done = {}
            if self.store is not None:
                scorer = self._prepare()
                defaults = {"space_options": self.space_options, "images": scorer.context["images"]}
                self._read_size = self._store_size()
                codes: dict = {}  # stored arch string -> canonical string
                for record in self.store:
                    if record.get("space") == self.card.name and reusable(record):
                        record = canonical_record(self.space, record, codes)  # earlier encodings
                        key = record_key(upgrade_record(record, defaults))
                        if key not in self._done or "encoded_as" not in record:  # the canonical spelling's wins
                            self._done[key] = record
        return self._done

    def keys(self, index, arch: Hashable) -> list[tuple]:
        """The record key of each proxy for ``arch``."""
        scorer = self._prepare()
        code = self.space.encode(arch)
        return [record_key(scorer.base_record(index, code, p)) for p in self.proxies]

    def score(self, archs: Iterable[tuple[Any, Hashable]]) -> list[dict]:
        """Score ``archs`` (pairs of benchmark index or None, architecture or its canonical
        string) with every proxy.

        Returns one record per (architecture, proxy), reused from the store or new, in the
        order of ``archs`` then of the proxies.
        """
        archs = [(index, self.space.decode(arch) if isinstance(arch, str) else arch) for index, arch in archs]
        if self.store is None:
            return self._score(archs)
        self._reread_if_changed()
        pending = self._pending(archs)
        if not pending:  # every record is stored: reading is enough (a read-only file will do)
            return self._score(archs)
        self.store.check_writable(pending)  # refused before any scoring work
        with self.store.writing():  # a second run on the same file is refused, never interleaved
            self._reread_if_changed()
            try:
                return self._score(archs)
            finally:
                self._read_size = self._store_size()

    def _reread_if_changed(self) -> None:
        if self._store_size() != self._read_size:
            self._done = None  # another run added records since they were read: read again

    def _pending(self, archs: list) -> int:
        """How many records of ``archs`` the store cannot serve."""
        done = self._done_records()
        return sum(key not in done for index, arch in archs for key in self.keys(index, arch))

    def _store_size(self) -> int:
        return self.store.path.stat().st_size if self.store.path.exists() else 0

    def _score(self, archs: list) -> list[dict]:
        scorer = self._prepare()
        done = self._done_records()
        keys, tasks, queued = [], [], set()
        for position, (index, arch) in enumerate(archs):
            arch_keys = self.keys(index, arch)
            keys.append(arch_keys)
            # an architecture given twice (or two spellings of one) is scored once
            todo = [p.name for p, key in zip(self.proxies, arch_keys) if key not in done and key not in queued]
            for proxy, key in zip(self.proxies, arch_keys):
                if proxy.name in todo and proxy.members:
                    record = self._derive_from_store(scorer, done, index, arch, proxy)
                    if record is not None:  # every member is stored: nothing to run
                        if self.store is not None:
                            self.store.append(record)
                        done[key] = record
                        todo.remove(proxy.name)
            if todo:
                queued.update(key for p, key in zip(self.proxies, arch_keys) if p.name in todo)
                tasks.append((position, index, arch, list(dict.fromkeys(todo))))
        for record in self._run(scorer, tasks, len(archs)):
            key = record_key(record)
            if key in done:  # never write one computation twice
                continue
            if self.store is not None:
                self.store.append(record)
            done[key] = record
        return [done[key] for arch_keys in keys for key in arch_keys if key in done]

    @staticmethod
    def _derive_from_store(scorer: ArchitectureScorer, done: dict, index, arch: Hashable, proxy: Proxy):
        """The record of derived ``proxy`` from its members' stored records, or None where a
        member is not stored (the same function of the same values as a fresh computation)."""
        code = scorer.space.encode(arch)
        members = {}
        for member in proxy.member_proxies():
            stored = done.get(record_key(scorer.base_record(index, code, member)))
            if stored is None:
                return None
            members[member.name] = stored
        record = scorer._derived_record(index, code, proxy, members, 0.0)
        record["seconds"] = None  # nothing ran: the members' records hold their cost
        record["from_stored_members"] = True
        environments = {json.dumps(m.get("environment"), sort_keys=True) for m in members.values()}
        if len(environments) == 1 and None not in (m.get("environment") for m in members.values()):
            record["environment"] = dict(next(iter(members.values()))["environment"])
        return record

    def _run(self, scorer: ArchitectureScorer, tasks: list, n_archs: int):
        ex = self.execution
        workers = ex.n_workers(len(tasks))
        bar = None
        if ex.progress:
            from tqdm.auto import tqdm

            total = n_archs * len(self.proxies)
            bar = tqdm(total=total, desc=f"{self.card.name}/{self.dataset}", unit="score")
            bar.update(total - sum(len(t[3]) for t in tasks))
        previous_threads = torch.get_num_threads()
        try:
            if workers == 0:
                torch.set_num_threads(ex.threads or DEFAULT_THREADS)
                results = ((t[0], scorer.records(t[1], t[2], t[3])) for t in tasks)
            else:
                from xigsnr_naslib.scoring import parallel

                threads = ex.threads or DEFAULT_THREADS
                if ex.backend == "ray":
                    results = parallel.run_ray(scorer, tasks, workers, threads, address=ex.ray_address)
                else:
                    results = parallel.run_processes(scorer, tasks, workers, threads, device=ex.device)
            requested = {p.name for p in self.proxies}
            for _, records in results:
                for record in records:
                    yield record
                    if bar is not None and record["proxy"] in requested:  # not a derived proxy's member
                        bar.update(1)
        finally:
            torch.set_num_threads(previous_threads)
            if bar is not None:
                bar.close()

    def score_one(self, arch: Hashable, index: Any = None) -> dict[str, float]:
        """``{proxy: score}`` of one architecture (NaN where not finite or failed)."""
        from xigsnr_naslib.scoring.results import record_score

        return {r["proxy"]: record_score(r) for r in self.score([(index, arch)])}

    def settings(self) -> dict:
        """Everything that determines the study's scores, as plain data (search checkpoints
        hold it): space and options, dataset, image fingerprint, proxies and their settings,
        protocol with both seeds."""
        scorer = self._prepare()
        return {"space": self.card.name, "space_options": self.space_options, "dataset": self.dataset,
                "images": scorer.context["images"], "proxies": {p.name: p.settings for p in self.proxies},
                "protocol": self.protocol.settings() if self.needs_data else {}}

    def fitness(self, arch: Hashable) -> float:
        """The first proxy's score of ``arch`` (search fitness; resumes from the store)."""
        return self.score_one(arch)[self.proxies[0].name]
