"""Scoring many architectures: space -> model -> batches -> proxy -> results store.

:func:`score_architectures` builds each architecture (weights seeded by the protocol), runs
every requested proxy on the protocol's batches and appends one record per (architecture,
proxy) to the results store as soon as it is computed. Records already in the store are
reused, so an interrupted run resumes where it stopped. A failure on one architecture is
recorded (``status: "error"``) and the run goes on.
"""
from __future__ import annotations

import time
import warnings
from typing import Hashable, Iterable, Sequence

import torch
import torch.nn.functional as F

from .gradients import Batch, LossFn
from .protocol import Protocol
from .proxies import Proxy
from .results import ResultsStore, record_key, score_fields
from .spaces.base import SearchSpace

__all__ = ["score_architectures", "build_model"]


def build_model(space: SearchSpace, arch: Hashable, num_classes: int, seed: int,
                device: str | torch.device = "cpu") -> torch.nn.Module:
    """The architecture's network, initialised after ``torch.manual_seed(seed)``, in train mode."""
    torch.manual_seed(seed)
    return space.build(arch, num_classes=num_classes).to(device).train()


def _base_record(space: SearchSpace, dataset: str, index, code: str, proxy: Proxy, protocol: Protocol) -> dict:
    return {"space": space.name, "dataset": dataset, "index": index, "arch": code, "proxy": proxy.name,
            "settings": proxy.settings, "protocol": protocol.settings() if proxy.needs_data else {}}


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
) -> list[dict]:
    """Score ``archs`` (pairs of benchmark index or None, architecture) with every proxy.

    Returns one record per (architecture, proxy), reused from ``store`` or new.
    """
    archs = list(archs)
    done = {record_key(r): r for r in store} if store is not None else {}
    records: list[dict] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(archs) * len(proxies), desc=f"{space.name}/{dataset}", unit="score")
    try:
        for index, arch in archs:
            code = space.encode(arch)
            for proxy in proxies:
                record = _base_record(space, dataset, index, code, proxy, protocol)
                key = record_key(record)
                if key in done:
                    records.append(done[key])
                    if bar is not None:
                        bar.update(1)
                    continue
                start = time.perf_counter()
                try:
                    model = build_model(space, arch, num_classes, protocol.seed, device)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        value = proxy(model, batches, loss_fn)
                    record.update(score_fields(value))
                except (RuntimeError, ValueError) as exc:  # a broken architecture must not end the run
                    record.update({"score": None, "status": "error", "error": f"{type(exc).__name__}: {exc}"})
                    warnings.warn(f"{space.name} {code}: {proxy.name} failed: {exc}")
                record["seconds"] = round(time.perf_counter() - start, 4)
                if store is not None:
                    store.append(record)
                done[key] = record
                records.append(record)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return records
