"""Score all 15,625 NAS-Bench-201 CIFAR-10 cells: a resumable, sharded job whose store travels as chunks.

The proxy set (:func:`proxy_names`): ``xi_gsnr`` in both joint modes (official, paper) and
every Table 9 variant (:func:`xigsnr_naslib.proxies.xi_gsnr_proxies`, one set of passes),
``zico``, ``meco``, ``swap``, the registered ``ensemble`` (meco + xi_gsnr + swap) and the
cheap proxies ``params``, ``flops``, ``nwot``, ``synflow``, ``trainable_layers``, under the
NB201 card's protocol (8 x 64 CIFAR-10 training images, data and init seed 1, BatchNorm in
train mode), scored through the study (the one scoring path).

Layout (``evaluation/whole_space/``):

* ``store/nb201_cifar10_<start>-<stop>.jsonl``: one results store per shard of benchmark
  indices [start, stop) (git-ignored; the study's append-only store, so a killed run resumes);
* ``chunks/nb201_cifar10_<start>-<stop>.jsonl.gz``: the records of a complete shard, sorted,
  gzip (committed; written atomically); ``...partial.jsonl.gz``: an incomplete shard's
  records so far (``export`` only; replaced by the complete chunk);
* ``chunks/shards.jsonl``: one line per shard run (cells, wall seconds, machine, workers,
  peak RSS of the job and its workers) (committed);
* ``logs/`` (git-ignored): the run's log and ``memory.log`` (RSS every few minutes).

Commands::

    python evaluation/whole_space/job.py run --workers 2        # import chunks, score, export per shard
    python evaluation/whole_space/job.py status                 # cells done, time per shard
    python evaluation/whole_space/job.py export                 # chunks from the stores (partial ones too)
    python evaluation/whole_space/job.py import                 # stores from the chunks

Start it detached, at the lowest priority, killable as a process group::

    setsid nohup nice -n 19 .venv/bin/python evaluation/whole_space/job.py run --workers 2 \\
        --data-root ../shared/data > evaluation/whole_space/logs/run.log 2>&1 &
    kill -- -<pid>          # the job and its workers; a rerun resumes where it stopped

A run first loads every chunk into its store (records it lacks, nothing twice), so a run on
another machine continues where the committed chunks stop. Records of a failed scoring
(``status: "error"``, e.g. a worker killed) are a failure of the run, not a fact: they are
dropped from the shard's store and scored again (once per shard per run; any left are
retried on the next run).
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPACE, DATASET, N_CELLS = "nb201", "cifar10", 15625
#: the proxies computed beside the xi-GSNR modes x variants
OTHERS = ("zico", "meco", "swap", "ensemble", "params", "flops", "nwot", "synflow", "trainable_layers")


@dataclass(frozen=True)
class Layout:
    """Where the job keeps its stores, chunks and logs."""

    root: Path = HERE

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def chunks(self) -> Path:
        return self.root / "chunks"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def name(self, start: int, stop: int) -> str:
        return f"{SPACE}_{DATASET}_{start:05d}-{stop:05d}"

    def shard_store(self, start: int, stop: int) -> Path:
        return self.store / f"{self.name(start, stop)}.jsonl"

    def chunk(self, start: int, stop: int, partial: bool = False) -> Path:
        return self.chunks / f"{self.name(start, stop)}{'.partial' if partial else ''}.jsonl.gz"


def proxies():
    """The job's proxies (Proxy objects): xi-GSNR modes x variants, then :data:`OTHERS`."""
    from xigsnr_naslib.proxies import get_proxy, xi_gsnr_proxies

    return list(xi_gsnr_proxies()) + [get_proxy(n) for n in OTHERS]


def proxy_names() -> list[str]:
    return [p.name for p in proxies()]


def shards(start: int, stop: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) cut into the shards of the grid of multiples of ``size`` (the last one ends
    at 15,625); ``start`` and ``stop`` must lie on the grid, so every run names a cell's shard alike."""
    from xigsnr_naslib.errors import UsageError

    if size < 1:
        raise UsageError(f"shard size must be >= 1, got {size}")
    if not 0 <= start < stop <= N_CELLS:
        raise UsageError(f"need 0 <= start < stop <= {N_CELLS}, got start {start}, stop {stop}")
    off = [v for v in (start, stop) if v % size and v != N_CELLS]
    if off:
        raise UsageError(f"start and stop must be multiples of the shard size {size} (or {N_CELLS}), got {off[0]}")
    edges = list(range(start, stop, size)) + [stop]
    return list(zip(edges[:-1], edges[1:]))


def shard_of(index: int, size: int) -> tuple[int, int]:
    """The shard of the grid of ``size`` that holds benchmark index ``index``."""
    start = index // size * size
    return start, min(start + size, N_CELLS)


# --- stores and chunks -----------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    """Records of a store (``.jsonl``) or chunk (``.jsonl.gz``); a torn last line is skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    print(f"{path}: unreadable line skipped", file=sys.stderr)
    return out


def atomic_write(path: Path, records: list[dict], compress: bool) -> None:
    """Write ``records`` as JSON lines to ``path`` via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") if compress else raw
            for record in records:
                sink.write((json.dumps(record, allow_nan=False, sort_keys=True) + "\n").encode())
            if compress:
                sink.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _sorted(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (r["index"], r["proxy"], json.dumps(r.get("settings"), sort_keys=True)))


def merge_into_store(path: Path, records: list[dict]) -> int:
    """Add to the store at ``path`` the records whose key it lacks; returns how many were added.

    A stored error record gives way to a chunk's non-error record of the same key.
    """
    from xigsnr_naslib.scoring.results import record_key

    stored = read_jsonl(path) if path.exists() else []
    by_key = {record_key(r): r for r in stored}
    added = 0
    for r in records:
        key = record_key(r)
        if key not in by_key or (by_key[key].get("status") == "error" and r.get("status") != "error"):
            by_key[key] = r
            added += 1
    if added:
        atomic_write(path, _sorted(list(by_key.values())), compress=False)
    return added


def chunk_files(layout: Layout) -> list[tuple[int, int, bool, Path]]:
    """(start, stop, partial, path) of every chunk, sorted by start."""
    out = []
    for path in layout.chunks.glob(f"{SPACE}_{DATASET}_*.jsonl.gz"):
        stem = path.name[len(f"{SPACE}_{DATASET}_"):-len(".jsonl.gz")]
        partial = stem.endswith(".partial")
        start, stop = (int(v) for v in stem.removesuffix(".partial").split("-"))
        out.append((start, stop, partial, path))
    return sorted(out)


def import_chunks(layout: Layout, size: int) -> int:
    """Load every chunk's records (and those of stores cut on another grid) into the stores of
    the shards of ``size`` that hold their cells; returns how many records were added."""
    sources = [path for *_, path in chunk_files(layout)]
    grid = {layout.shard_store(a, b).name for a, b in shards(0, N_CELLS, size)}
    sources += [p for p in sorted(layout.store.glob("*.jsonl")) if p.name not in grid]
    added = 0
    for path in sources:
        groups: dict[tuple[int, int], list[dict]] = {}
        for r in read_jsonl(path):
            groups.setdefault(shard_of(int(r["index"]), size), []).append(r)
        for (start, stop), records in groups.items():
            added += merge_into_store(layout.shard_store(start, stop), records)
    return added


def export_shard(layout: Layout, start: int, stop: int, complete: bool) -> Path | None:
    """Write the shard's chunk (complete, or ``.partial``); a complete one removes the partial."""
    store = layout.shard_store(start, stop)
    if not store.exists():
        return None
    records = [r for r in read_jsonl(store) if r.get("status") != "error"]
    if not records:
        return None
    path = layout.chunk(start, stop, partial=not complete)
    atomic_write(path, _sorted(records), compress=True)
    if complete and layout.chunk(start, stop, partial=True).exists():
        layout.chunk(start, stop, partial=True).unlink()
    return path


# --- completeness ----------------------------------------------------------------------------------

def shard_progress(records: list[dict], start: int, stop: int, names: list[str]) -> tuple[int, int]:
    """(cells with a non-error record of every proxy, error records) among ``records``."""
    have: dict[int, set] = {}
    errors = 0
    for r in records:
        if r.get("status") == "error":
            errors += 1
        elif start <= r["index"] < stop:
            have.setdefault(r["index"], set()).add(r["proxy"])
    wanted = set(names)
    return sum(1 for s in have.values() if wanted <= s), errors


def drop_errors(path: Path) -> int:
    """Remove error records from a shard's store (so they are scored again); returns how many."""
    if not path.exists():
        return 0
    records = read_jsonl(path)
    kept = [r for r in records if r.get("status") != "error"]
    if len(kept) != len(records):
        atomic_write(path, kept, compress=False)
    return len(records) - len(kept)


def cell_records(paths, on_record=None) -> dict[tuple[int, str], dict]:
    """One record per (index, proxy) among the stores and chunks ``paths``, read in order: the
    first non-error record wins, an error record stands only where no other exists (it waits
    for a retry). ``on_record(path, record)`` is called for every record read."""
    best: dict[tuple[int, str], dict] = {}
    for path in paths:
        for r in read_jsonl(path):
            if on_record is not None:
                on_record(path, r)
            key = (int(r["index"]), r["proxy"])
            if key not in best or (best[key].get("status") == "error" and r.get("status") != "error"):
                best[key] = r
    return best


# --- memory ----------------------------------------------------------------------------------------

def _rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc (0, 0 where unreadable)."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":")[0] + ":"
                if key in values:
                    values[key] = int(line.split()[1])
    except OSError:
        pass
    return values["VmRSS:"], values["VmHWM:"]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


class MemoryWatch:
    """Samples the RSS of this process and its workers every ``seconds`` into ``log``; keeps peaks."""

    def __init__(self, log: Path, seconds: float):
        self.log, self.seconds = log, seconds
        self.peak_parent_kib = self.peak_worker_kib = 0
        self._stop = threading.Event()
        self.log.parent.mkdir(parents=True, exist_ok=True)

    def sample(self, note: str = "") -> dict:
        rss, hwm = _rss_kib(os.getpid())
        workers = [_rss_kib(c) for c in _children(os.getpid())]
        self.peak_parent_kib = max(self.peak_parent_kib, hwm)
        self.peak_worker_kib = max([self.peak_worker_kib] + [w[1] for w in workers])
        row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "parent_rss_mib": round(rss / 1024, 1),
               "parent_peak_mib": round(hwm / 1024, 1), "workers_rss_mib": [round(w[0] / 1024, 1) for w in workers],
               "workers_peak_mib": [round(w[1] / 1024, 1) for w in workers], "note": note}
        with open(self.log, "a") as f:
            f.write(json.dumps(row) + "\n")
        return row

    def __enter__(self) -> "MemoryWatch":
        def loop() -> None:
            while not self._stop.wait(self.seconds):
                self.sample()

        self.sample("start")
        threading.Thread(target=loop, name="memory-watch", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()


def machine(device: str = "cpu") -> dict:
    """What ran the shard: host, CPU, cores, Python and torch versions (and the GPU on a CUDA device)."""
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    out = {"host": platform.node(), "machine": platform.machine(), "cpu": cpu, "cores": os.cpu_count(),
           "python": platform.python_version(), "torch": torch.__version__}
    if torch.device(device).type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


# --- the run ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSettings:
    """One run of the job: the index range, shard size, workers, threads, device, strategy, data root."""

    start: int = 0
    stop: int = N_CELLS
    shard_size: int = 200
    workers: int = 2
    threads: int = 1
    data_root: str | None = None
    memory_seconds: float = 300.0
    device: str = "cpu"
    strategy: str = "loop"

    def execution(self):
        """The study's execution (device and strategy checked at the door). On a GPU, TF32 is
        turned off in this process (its workers inherit it): cuDNN's default would round every
        convolution's inputs to 10 mantissa bits, a move far beyond float32 rounding."""
        import torch

        from xigsnr_naslib import Execution

        execution = Execution(device=self.device, strategy=self.strategy, workers=self.workers, threads=self.threads)
        if torch.device(self.device).type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        return execution


def score_shard(layout: Layout, settings: RunSettings, truth, start: int, stop: int, images=None):
    """Score the cells [start, stop) into the shard's store; returns the study."""
    from xigsnr_naslib import Study

    study = Study(SPACE, DATASET, proxies(), execution=settings.execution(),
                  store=layout.shard_store(start, stop), data_root=settings.data_root, images=images)
    study.score([(int(i), truth.at[i, "arch"]) for i in truth.index if start <= i < stop])
    return study


def _ok_records(path: Path) -> int:
    return sum(r.get("status") != "error" for r in read_jsonl(path)) if path.exists() else 0


def run_shard(layout: Layout, settings: RunSettings, truth, start: int, stop: int, images=None):
    """Score one shard (retrying error records once), export its chunk, log it; returns the images.

    The shard's line in ``chunks/shards.jsonl`` is written however the run ends: complete, or
    stopped (``kill``: SIGTERM, Ctrl-C) with ``"interrupted": true`` and what it had scored, so
    the time every part took stays on record."""
    names = proxy_names()
    path = layout.shard_store(start, stop)
    done, _ = shard_progress(read_jsonl(path) if path.exists() else [], start, stop, names)
    if done == stop - start:
        if not layout.chunk(start, stop).exists():
            export_shard(layout, start, stop, complete=True)
        return images
    watch = MemoryWatch(layout.logs / "memory.log", settings.memory_seconds)
    before, began, dropped, retried, interrupted = _ok_records(path), time.perf_counter(), 0, 0, True
    try:
        with watch:
            dropped = drop_errors(path)
            study = score_shard(layout, settings, truth, start, stop, images)
            retried = drop_errors(path)
            if retried:
                study = score_shard(layout, settings, truth, start, stop, study.images)
            watch.sample(f"shard {start}-{stop} done")
        interrupted = False
    finally:
        _log_shard(layout, settings, watch, start, stop, {
            "done_before": done, "new_records": _ok_records(path) - before, "errors_retried": dropped + retried,
            "wall_s": time.perf_counter() - began, "interrupted": interrupted})
    return study.images


def _log_shard(layout: Layout, settings: RunSettings, watch: "MemoryWatch", start: int, stop: int, run: dict) -> None:
    """Export the shard's chunk and append its line to ``chunks/shards.jsonl``."""
    records = read_jsonl(layout.shard_store(start, stop))
    cells, errors = shard_progress(records, start, stop, proxy_names())
    complete = cells == stop - start
    export_shard(layout, start, stop, complete=complete)
    row = {"start": start, "stop": stop, "cells_done": cells, "cells_scored_now": cells - run["done_before"],
           "new_records": run["new_records"], "error_records": errors, "errors_retried": run["errors_retried"],
           "wall_s": round(run["wall_s"], 1), "workers": settings.workers, "threads": settings.threads,
           "device": settings.device, "strategy": settings.strategy,
           "peak_rss_parent_mib": round(watch.peak_parent_kib / 1024, 1),
           "peak_rss_worker_mib": round(watch.peak_worker_kib / 1024, 1),
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": complete,
           **({"interrupted": True} if run["interrupted"] else {}), **machine(settings.device)}
    layout.chunks.mkdir(parents=True, exist_ok=True)
    with open(layout.chunks / "shards.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def exclusive(layout: Layout):
    """Hold the folder's job lock (``store/job.lock``) for a block: one run or import per folder,
    since a second would rewrite the stores the first appends to. ``UsageError`` if it is held."""
    from filelock import FileLock, Timeout

    from xigsnr_naslib.errors import UsageError

    layout.store.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(layout.store / "job.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"another run of the job holds {layout.store / 'job.lock'}; stop it first "
                         f"(or give this one another --root)") from None
    try:
        yield
    finally:
        lock.release()


def run(layout: Layout, settings: RunSettings) -> None:
    """Import the chunks, then score every shard of [start, stop) that is not complete."""
    from xigsnr_naslib.benchmarks.card import get_card

    settings.execution()  # device, strategy and the range checked before anything is read
    grid = shards(settings.start, settings.stop, settings.shard_size)
    truth = get_card(SPACE).load_ground_truth(DATASET, settings.data_root)
    signal.signal(signal.SIGTERM, _terminated)  # `kill`: end like Ctrl-C, so the shard's line is written
    with exclusive(layout):
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid {os.getpid()} pgid {os.getpgid(0)}: "
              f"{json.dumps(settings.__dict__)}", flush=True)
        added = import_chunks(layout, settings.shard_size)
        print(f"imported {added} records from {len(chunk_files(layout))} chunks", flush=True)
        images = None
        for start, stop in grid:
            images = run_shard(layout, settings, truth, start, stop, images)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} all shards of [{settings.start}, {settings.stop}) done",
          flush=True)


# --- cross-check on another device ----------------------------------------------------------------

#: how far a score may move between two machines by float32 rounding alone (the field issue's
#: report: 2e-3 relative between AVX2 and AVX-512 CPUs at 3 x 16; at the job's 8 x 64 this
#: machine's kernel sets move xi_gsnr by at most 2.5e-4 over 48 cells, every other default
#: proxy by less: evaluation/reproducibility/spread.md)
CROSS_MACHINE = 2e-3
#: the Table 9 variants that sum mean^2 alone: the mean of gradient samples that nearly cancel is
#: ill-conditioned (relative rounding of m is eps * mean|g| / |m|), and nothing in the sum damps
#: it; they moved by up to 1.9e-3 between this machine's AVX2 and AVX/scalar kernels (12 cells,
#: README), so their bound is 5x that
BOUNDS = {"gsnr_sq_mean": 1e-2, "xi_gsnr_paper_sq_mean": 1e-2}


#: crosscheck's exit status when a proxy moved beyond its bound or changed status (1: missing data, 2: a bad value)
CROSSCHECK_FAILED = 3


def bound(proxy: str) -> float:
    """The largest relative move of ``proxy``'s score that float32 rounding explains across machines."""
    return BOUNDS.get(proxy, CROSS_MACHINE)


def chunk_records(layout: Layout) -> dict[tuple[int, str], dict]:
    """The non-error records of every chunk (complete and partial), by (index, proxy)."""
    return {key: r for key, r in cell_records(p for *_, p in chunk_files(layout)).items()
            if r.get("status") != "error"}


def relative_move(old: float, new: float) -> float:
    if old == new:
        return 0.0
    return abs(new - old) / max(abs(old), abs(new))


def compare(committed: dict[tuple[int, str], dict], records: list[dict], names: list[str]) -> list[dict]:
    """Per proxy: cells compared, cells whose status differs, median and largest relative move of
    the score, cells beyond its :func:`bound`, Kendall tau between the two sets of scores."""
    from scipy.stats import kendalltau

    rows = []
    for name in names:
        pairs = [(committed[(int(r["index"]), name)], r) for r in records
                 if r["proxy"] == name and r.get("status") != "error" and (int(r["index"]), name) in committed]
        both = [(a["score"], b["score"]) for a, b in pairs if a["status"] == b["status"] == "ok"]
        moves = [relative_move(a, b) for a, b in both]
        tau = kendalltau([a for a, _ in both], [b for _, b in both])[0] if len(both) > 2 else float("nan")
        rows.append({"proxy": name, "cells": len(pairs), "status_differs": sum(a["status"] != b["status"] for a, b in pairs),
                     "median_move": statistics.median(moves) if moves else float("nan"),
                     "max_move": max(moves) if moves else float("nan"),
                     "bound": bound(name), "beyond_bound": sum(m > bound(name) for m in moves), "tau": float(tau)})
    return rows


def crosscheck(layout: Layout, settings: RunSettings, cells: int = 200, seed: int = 0) -> tuple[Path, list[dict]]:
    """Score a seeded sample of ``cells`` cells the chunks hold with every proxy on
    ``settings.device`` (into ``store/crosscheck/<device>.jsonl``, resumable) and compare each
    proxy's scores with the chunks'; writes ``crosscheck_<device>.md``, returns its path and rows."""
    import random
    import re

    from xigsnr_naslib import Study
    from xigsnr_naslib.errors import DataError, UsageError

    if cells < 1:
        raise UsageError(f"--cells must be >= 1, got {cells}")
    execution = settings.execution()  # device and strategy checked before anything is read
    names = proxy_names()
    committed = chunk_records(layout)
    complete = sorted({i for i, _ in committed if all((i, n) in committed for n in names)})
    if not complete:
        raise DataError(f"no chunk under {layout.chunks} holds a fully scored cell to compare with")
    sample = sorted(random.Random(seed).sample(complete, min(cells, len(complete))))
    tag = re.sub(r"\W", "", settings.device)
    study = Study(SPACE, DATASET, proxies(), execution=execution,
                  store=layout.store / "crosscheck" / f"{tag}.jsonl", data_root=settings.data_root)
    began = time.perf_counter()
    records = study.score([(i, committed[(i, names[0])]["arch"]) for i in sample])
    seconds = time.perf_counter() - began
    rows = compare(committed, records, names)
    failed = [r["proxy"] for r in rows if r["beyond_bound"] or r["status_differs"]]
    where = machine(settings.device)
    flags = "".join(f" --{k} {v}" for k, v in (("root", layout.root), ("data-root", settings.data_root))
                    if v is not None and v != HERE)
    lines = [f"# Cross-check: {len(sample)} cells scored on `{settings.device}` against the committed chunks", "",
             f"Written by `python evaluation/whole_space/job.py crosscheck --device {settings.device} --cells {cells} "
             f"--seed {seed} --workers {settings.workers} --strategy {settings.strategy}{flags}` on "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')} in {seconds:.0f} s.", "",
             f"**{'Every proxy within its bound, no status changed' if not failed else 'Beyond the bound or a changed status: ' + ', '.join(failed)}.**", "",
             f"Machine: {where.get('gpu', where['cpu'])}, torch {where['torch']}; environment "
             f"`{json.dumps(records[0].get('environment') if records else None)}`. Cells: a seeded sample (seed {seed}) of the "
             f"{len(complete)} cells the chunks hold with every proxy: {', '.join(map(str, sample))}. Move: "
             f"|new - committed| / max(|new|, |committed|), over the cells both score; bound: what float32 rounding "
             f"moves a score between machines (job.py `bound`); Kendall τ needs 3 cells or more (nan below).", "",
             "| proxy | cells | status differs | median move | max move | bound | beyond bound | Kendall τ |",
             "|:---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['proxy']} | {r['cells']} | {r['status_differs']} | {r['median_move']:.1e} | {r['max_move']:.1e} "
              f"| {r['bound']:g} | {r['beyond_bound']} | {r['tau']:.4f} |" for r in rows]
    path = layout.root / f"crosscheck_{tag}.md"
    path.write_text("\n".join(lines) + "\n")
    return path, rows


# --- status ----------------------------------------------------------------------------------------

def check_job_folder(layout: Layout) -> None:
    """``DataError`` unless ``layout.root`` holds the job's chunks or stores (a wrong ``--root``)."""
    from xigsnr_naslib.errors import DataError

    if not layout.chunks.is_dir() and not layout.store.is_dir():
        raise DataError(f"{layout.root} is not the job's folder: it has neither chunks/ nor store/ "
                        f"(--root names the folder that holds them; default {HERE})")


def status(layout: Layout, shard_size: int = 200) -> str:
    """How many cells are done (chunks and stores together, cut on any grid) and how long each shard took."""
    shards(0, N_CELLS, shard_size)  # the size checked
    check_job_folder(layout)
    names = proxy_names()
    kinds = {path: "partial chunk" if partial else "chunk" for *_, partial, path in chunk_files(layout)}
    kinds.update((path, "store") for path in sorted(layout.store.glob(f"{SPACE}_{DATASET}_*.jsonl")))
    by_shard: dict[tuple[int, int], dict] = {}

    def seen(path: Path, r: dict) -> None:
        by_shard.setdefault(shard_of(int(r["index"]), shard_size), {"records": {}, "kinds": set()})["kinds"].add(
            kinds[path])

    for key, r in cell_records(kinds, seen).items():
        by_shard[shard_of(key[0], shard_size)]["records"][key] = r
    lines, total_done, total_errors = [], 0, 0
    for (start, stop), shard in sorted(by_shard.items()):
        unique = shard["records"]
        done, errors = shard_progress(list(unique.values()), start, stop, names)
        total_done, total_errors = total_done + done, total_errors + errors
        # the ensemble's record times the cell's whole scoring in one worker (every member's passes)
        cost = [r["seconds"] for r in unique.values() if r["proxy"] == "ensemble" and r.get("seconds")]
        per_cell = f", a worker's {sum(cost) / len(cost):.1f} s per cell" if cost else ""
        store = layout.shard_store(start, stop)
        last = f", last record {time.strftime('%Y-%m-%d %H:%M', time.localtime(store.stat().st_mtime))}" \
            if store.exists() and done < stop - start else ""
        lines.append(f"  {start:>5}-{stop:<5} {done:>4}/{stop - start} cells  "
                     f"({' + '.join(sorted(shard['kinds']))}{per_cell}{last})")
    runs = read_jsonl(layout.chunks / "shards.jsonl") if (layout.chunks / "shards.jsonl").exists() else []
    out = [f"{total_done} of {N_CELLS} cells done ({100 * total_done / N_CELLS:.1f}%) with all {len(names)} "
           f"proxies; {total_errors} error records waiting for a retry",
           "shards (cells done; where they are; a worker's seconds per cell: the ensemble record, every proxy's "
           "passes in one worker):"]
    out += lines
    if runs:
        out.append("shard runs (wall s; wall s per cell scored, all workers together; workers x threads; peak RSS "
                   "parent/worker MiB; machine; * interrupted):")
        for r in runs:
            per = r["wall_s"] / r["cells_scored_now"] if r["cells_scored_now"] else float("nan")
            out.append(f"  {r['start']:>5}-{r['stop']:<5} {r['wall_s']:>8.0f} s {per:>6.1f} s/cell  "
                       f"{r['workers']}x{r['threads']}  {r['peak_rss_parent_mib']:.0f}/{r['peak_rss_worker_mib']:.0f}"
                       f"  {r['host']} {r.get('gpu') or r['cpu']} ({r['finished']}){' *' if r.get('interrupted') else ''}")
        left = N_CELLS - total_done
        for what, chosen in (("mean", runs), ("the last 5 runs", runs[-5:])):
            scored, wall = sum(r["cells_scored_now"] for r in chosen), sum(r["wall_s"] for r in chosen)
            if scored:
                out.append(f"{what}: {wall / scored:.1f} wall s per cell over {scored} cells; {left} cells left "
                           f"(about {left * wall / scored / 3600:.1f} h at that rate)")
    out += memory_summary(layout.logs / "memory.log")
    return "\n".join(out)


def memory_summary(log: Path) -> list[str]:
    """First, last and largest RSS of the job and its workers in ``memory.log`` (flat memory:
    the last samples stay near the first)."""
    rows = read_jsonl(log) if log.exists() else []
    if not rows:
        return []
    workers = [r for r in rows if r["workers_rss_mib"]]
    line = (f"memory ({log.name}, {len(rows)} samples {rows[0]['time']} to {rows[-1]['time']}): job RSS "
            f"{rows[0]['parent_rss_mib']:.0f} MiB first, {rows[-1]['parent_rss_mib']:.0f} last, "
            f"{max(r['parent_peak_mib'] for r in rows):.0f} peak")
    if workers:
        line += (f"; workers' RSS {max(workers[0]['workers_rss_mib']):.0f} MiB first, "
                 f"{max(workers[-1]['workers_rss_mib']):.0f} last, "
                 f"{max(max(r['workers_peak_mib']) for r in workers):.0f} peak")
    return [line]


def _workers(text: str):
    """``--workers``: a count or ``auto`` (one per core on a CPU), as the library's Execution takes."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a worker count: {text!r} (a number, or auto)") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="import the chunks, score every incomplete shard, export per shard")
    r.add_argument("--start", type=int, default=0, help="first benchmark index (default 0)")
    r.add_argument("--stop", type=int, default=N_CELLS, help=f"one past the last index (default {N_CELLS})")
    r.add_argument("--shard-size", type=int, default=200, help="cells per shard and chunk (default 200)")
    r.add_argument("--workers", type=_workers, default=2, help="worker processes (default 2; 0: this process; auto)")
    r.add_argument("--threads", type=int, default=1, help="intra-op threads per worker (default 1)")
    r.add_argument("--data-root", default=None, help="reference data root (default $XIGSNR_DATA_ROOT)")
    r.add_argument("--memory-seconds", type=float, default=300.0, help="RSS sampling period (default 300)")
    c = sub.add_parser("crosscheck", help="score a sample of committed cells on a device, compare with the chunks")
    c.add_argument("--cells", type=int, default=200, help="cells of the sample (default 200)")
    c.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    c.add_argument("--workers", type=_workers, default=0, help="worker processes (default 0: this process; auto)")
    c.add_argument("--threads", type=int, default=1, help="intra-op threads per worker (default 1)")
    c.add_argument("--data-root", default=None, help="reference data root (default $XIGSNR_DATA_ROOT)")
    for s in (r, c):
        s.add_argument("--device", default="cpu", help="device to score on (default cpu; e.g. cuda)")
        s.add_argument("--strategy", default="loop", choices=["loop", "vmap"],
                       help="gradient strategy (default loop; vmap stacks the official mode's samples on a GPU)")
    for name, text in (("status", "cells done and time per shard"), ("export", "chunks from the stores"),
                       ("import", "stores from the chunks")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--shard-size", type=int, default=200, help="cells per shard (default 200)")
    for s in sub.choices.values():
        s.add_argument("--root", default=str(HERE), help="the job's folder (default: this script's)")
    args = p.parse_args(argv)
    from xigsnr_naslib.errors import DataError, UsageError

    try:
        return _command(args, Layout(Path(args.root)))
    except (UsageError, DataError) as exc:  # a bad value or missing data: one line, the library's status
        print(f"job.py {args.command}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


def _command(args, layout: Layout) -> int:
    if args.command == "run":
        run(layout, RunSettings(args.start, args.stop, args.shard_size, args.workers, args.threads, args.data_root,
                                args.memory_seconds, args.device, args.strategy))
    elif args.command == "crosscheck":
        settings = RunSettings(workers=args.workers, threads=args.threads, data_root=args.data_root,
                               device=args.device, strategy=args.strategy)
        path, rows = crosscheck(layout, settings, args.cells, args.seed)
        print(path.read_text())
        return 0 if all(r["beyond_bound"] == 0 and r["status_differs"] == 0 for r in rows) else CROSSCHECK_FAILED
    elif args.command == "status":
        print(status(layout, args.shard_size))
    elif args.command == "import":
        check_job_folder(layout)
        with exclusive(layout):
            print(f"imported {import_chunks(layout, args.shard_size)} records")
    else:
        check_job_folder(layout)
        names, written = proxy_names(), 0
        for start, stop in shards(0, N_CELLS, args.shard_size):
            path = layout.shard_store(start, stop)
            if path.exists():
                done, _ = shard_progress(read_jsonl(path), start, stop, names)
                print(export_shard(layout, start, stop, complete=done == stop - start))
                written += 1
        if not written:
            print(f"nothing to export: no store under {layout.store} on the grid of {args.shard_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
