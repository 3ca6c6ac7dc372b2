"""Scoring several architectures at once: worker processes on this machine, or Ray tasks.

Both runners take a picklable scorer (``scorer.records(index, arch, proxy_names)`` returns
the records of one architecture, ``scorer.failed(...)`` the error records of one whose
scoring never returned) and a list of tasks ``(task_id, index, arch, proxy_names)``, and
yield ``(task_id, records)`` as architectures finish, in completion order. The caller
(:meth:`xigsnr_naslib.scoring.study.Study.score`) is the only writer of the results
store, so a record is appended exactly once, as soon as it arrives.

:func:`run_processes`
    ``workers`` processes, each with ``threads`` intra-op threads, fed one architecture
    at a time by the parent, which therefore knows what each worker holds: a worker that
    dies (killed, out of memory, a crash in native code) costs an error record for its
    architecture and is replaced; nothing is lost or scored twice. CPU work forks (the
    workers inherit everything, nothing is pickled); CUDA work spawns (CUDA cannot be
    forked), and registered proxies then travel by name.
:func:`run_ray`
    One Ray task per architecture on an existing cluster (``address``) or a local one
    started for the run with ``workers`` x ``threads`` CPUs (and the GPUs Ray detects).
    Ray is an optional dependency (``pip install "xigsnr-naslib[ray]"``), imported here
    only. A task that fails after Ray's retries gives error records.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
from typing import Hashable, Iterator, Sequence

import torch

__all__ = ["run_processes", "run_ray"]

Task = tuple[int, object, Hashable, Sequence[str]]


def _precision_flags() -> dict:
    """The parent's float32 precision settings (TF32 and the like), for workers to copy:
    a spawned process starts from torch's defaults, which may differ."""
    return {"matmul": torch.get_float32_matmul_precision(),
            "cuda_matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_tf32": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark}


def _set_precision_flags(flags: dict) -> None:
    torch.set_float32_matmul_precision(flags["matmul"])
    torch.backends.cuda.matmul.allow_tf32 = flags["cuda_matmul_tf32"]
    torch.backends.cudnn.allow_tf32 = flags["cudnn_tf32"]
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]


def _exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """End this worker (``os._exit``) within ``poll_seconds`` of its parent's death.

    A parent killed with SIGKILL runs no clean-up, and a worker waiting on its inbox would
    wait for ever: a daemon thread watches the parent's pid (the worker is re-parented when
    the parent dies).
    """
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _process_worker(scorer, threads: int, inbox, outbox, worker_id: int, flags: dict, parent_pid: int) -> None:
    _exit_with_parent(parent_pid)
    torch.set_num_threads(threads)
    _set_precision_flags(flags)
    while True:
        task = inbox.get()
        if task is None:
            return
        task_id, index, arch, names = task
        try:
            records = scorer.records(index, arch, names)
        except Exception as exc:  # records() already catches scoring errors; this is the last net
            records = scorer.failed(index, arch, names, f"{type(exc).__name__}: {exc}")
        outbox.put((worker_id, task_id, records))


def run_processes(scorer, tasks: Sequence[Task], workers: int, threads: int = 1, device="cpu",
                  start_method: str | None = None, poll_seconds: float = 0.5) -> Iterator[tuple[int, list[dict]]]:
    """Score ``tasks`` in ``workers`` local processes; yield ``(task_id, records)`` as they finish.

    ``start_method`` (default: ``fork`` for single-threaded CPU workers where the platform
    has it, else ``spawn``) starts the workers; the parent looks for dead workers every
    ``poll_seconds`` while no result arrives.
    """
    tasks = list(tasks)
    if not tasks:
        return
    if start_method is None:
        start_method = _default_start_method(device, threads)
    pool = _WorkerPool(scorer, tasks, threads, mp.get_context(start_method), restarts=workers + len(tasks))
    try:
        for worker_id in [pool.start_worker() for _ in range(min(workers, len(tasks)))]:  # fork all, then feed
            pool.feed(worker_id)
        while len(pool.finished) < len(tasks):
            try:
                worker_id, task_id, records = pool.outbox.get(timeout=poll_seconds)
            except queue.Empty:
                yield from pool.replace_dead()
                continue
            if task_id not in pool.finished:
                pool.finished.add(task_id)
                yield task_id, records
            if worker_id in pool.procs:
                pool.feed(worker_id)
    finally:
        pool.close()


def _default_start_method(device, threads: int) -> str:
    """``fork`` only for single-threaded CPU workers: a forked child inherits the parent's
    OpenMP state but not its threads, and its first multi-threaded operator waits for ever at
    the team barrier (libgomp); CUDA cannot be forked either."""
    on_cuda = torch.device(device).type != "cpu"
    can_fork = "fork" in mp.get_all_start_methods() and not on_cuda and threads == 1
    return "fork" if can_fork else "spawn"


class _WorkerPool:
    """The worker processes of :func:`run_processes` and what each one holds.

    The parent hands one task at a time to each worker (``feed``), so it knows which task a
    dead worker took with it: :meth:`replace_dead` turns that task into error records and
    starts a replacement while tasks are pending, at most ``restarts`` times in all.
    """

    def __init__(self, scorer, tasks: list[Task], threads: int, ctx, restarts: int):
        self.scorer, self.threads, self.ctx = scorer, threads, ctx
        self.n_tasks = len(tasks)
        self.flags = _precision_flags()
        self.outbox = ctx.Queue()
        self.pending = list(reversed(tasks))  # popped from the end: original order
        self.procs: dict[int, tuple] = {}  # worker id -> (process, inbox)
        self.holding: dict[int, Task] = {}  # worker id -> the task it is scoring
        self.finished: set[int] = set()
        self.next_id = 0
        self.restarts_left = restarts

    def start_worker(self) -> int:
        worker_id, self.next_id = self.next_id, self.next_id + 1
        inbox = self.ctx.Queue()
        proc = self.ctx.Process(target=_process_worker, daemon=True,
                                args=(self.scorer, self.threads, inbox, self.outbox, worker_id, self.flags,
                                      os.getpid()))
        proc.start()
        self.procs[worker_id] = (proc, inbox)
        return worker_id

    def feed(self, worker_id: int) -> None:
        """Give the worker the next pending task, or tell it to stop when none is left."""
        _, inbox = self.procs[worker_id]
        if self.pending:
            self.holding[worker_id] = self.pending.pop()
            inbox.put(self.holding[worker_id])
        else:
            self.holding.pop(worker_id, None)
            inbox.put(None)

    def replace_dead(self) -> Iterator[tuple[int, list[dict]]]:
        """Yield ``(task_id, error records)`` for each task a dead worker held; replace the
        dead while tasks are pending."""
        for worker_id, (proc, _) in list(self.procs.items()):
            if proc.is_alive():
                continue
            del self.procs[worker_id]
            task = self.holding.pop(worker_id, None)
            if task is not None and task[0] not in self.finished:
                self.finished.add(task[0])
                yield task[0], self.scorer.failed(task[1], task[2], task[3],
                                                  f"worker process died (exit code {proc.exitcode})")
            if self.pending:
                if self.restarts_left <= 0:
                    raise RuntimeError("worker processes keep dying; giving up")
                self.restarts_left -= 1
                self.feed(self.start_worker())
        if not self.procs and len(self.finished) < self.n_tasks:
            raise RuntimeError("every worker process exited with architectures left to score")

    def close(self) -> None:
        """End the workers still alive, and wait for each (5 s at most)."""
        for proc, inbox in self.procs.values():
            if proc.is_alive():
                proc.terminate()
        for proc, _ in self.procs.values():
            proc.join(timeout=5)


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError('the Ray backend needs Ray: pip install "xigsnr-naslib[ray]" (or pip install ray)') from exc
    return ray


def _ray_records(scorer, threads: int, flags: dict, index, arch, names) -> list[dict]:
    torch.set_num_threads(threads)
    _set_precision_flags(flags)
    return scorer.records(index, arch, names)


def run_ray(scorer, tasks: Sequence[Task], workers: int, threads: int = 1, address: str | None = None,
            gpus_per_task: float = 0.0, max_in_flight: int | None = None) -> Iterator[tuple[int, list[dict]]]:
    """Score ``tasks`` as Ray tasks; yield ``(task_id, records)`` as they finish.

    Without ``address`` and with no Ray running, a local Ray instance with ``workers *
    threads`` CPUs is started for the run and shut down after it. At most
    ``max_in_flight`` (default ``4 * workers``) tasks are submitted at a time.
    """
    tasks = list(tasks)
    if not tasks:
        return
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        options = {"address": address} if address else {"num_cpus": workers * threads}
        ray.init(include_dashboard=False, log_to_driver=False, **options)
        started = True
    try:
        remote = ray.remote(num_cpus=threads, num_gpus=gpus_per_task, max_retries=1)(_ray_records)
        scorer_ref = ray.put(scorer)
        flags = _precision_flags()
        pending = list(reversed(tasks))
        in_flight: dict = {}
        limit = max_in_flight or 4 * workers

        def submit() -> None:
            while pending and len(in_flight) < limit:
                task = pending.pop()
                in_flight[remote.remote(scorer_ref, threads, flags, task[1], task[2], task[3])] = task

        submit()
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            task = in_flight.pop(ready[0])
            try:
                records = ray.get(ready[0])
            except Exception as exc:  # the task failed in Ray (worker lost, error after retries)
                records = scorer.failed(task[1], task[2], task[3], f"ray task failed: {type(exc).__name__}: {exc}")
            yield task[0], records
            submit()
    finally:
        if started:
            ray.shutdown()
