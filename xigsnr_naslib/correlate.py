"""The main job: score benchmark architectures and correlate the scores with accuracy.

:func:`correlate` is what ``xigsnr-naslib correlate`` runs: pick architectures from the
ground truth (a range, a list of indices or a seeded random sample), score them with the
chosen proxies under a protocol (results appended to a resumable JSON-lines file), then
compute Kendall tau, Spearman rho, Pearson r and P@Top-5%/10% against the accuracies.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .datasets import DATASET_CLASSES, canonical_dataset, load_images
from .evaluation.metrics import correlation_report
from .ground_truth import load_ground_truth
from .pipeline import score_architectures
from .protocol import PAPER_NB201, Protocol, draw_batches
from .proxies import get_proxy
from .results import ResultsStore, record_score
from .spaces import create_space

__all__ = ["select_indices", "correlate", "CorrelationResult", "scores_table"]


def select_indices(available: Sequence[int], *, indices: Sequence[int] | None = None, first: int | None = None,
                   start: int = 0, stop: int | None = None, sample: int | None = None,
                   sample_seed: int = 0) -> list[int]:
    """Benchmark indices to score: explicit ``indices``, a ``sample`` (seeded, sorted), or a range.

    ``first=n`` is ``start=0, stop=n``. Unknown indices raise ``KeyError`` naming them.
    """
    available_list = sorted(int(i) for i in available)
    known = set(available_list)
    if indices is not None:
        missing = [i for i in indices if i not in known]
        if missing:
            raise KeyError(f"indices not in the ground truth: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        return list(dict.fromkeys(int(i) for i in indices))
    if sample is not None:
        if sample > len(available_list):
            raise ValueError(f"cannot sample {sample} of {len(available_list)} architectures")
        return sorted(random.Random(sample_seed).sample(available_list, sample))
    if first is not None:
        start, stop = 0, first
    return [i for i in available_list if i >= start and (stop is None or i < stop)]


def scores_table(records: list[dict]) -> pd.DataFrame:
    """Records -> one row per benchmark index, one column per proxy (NaN for non-finite/failed)."""
    rows = [{"index": r["index"], "proxy": r["proxy"], "score": record_score(r)} for r in records]
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).pivot_table(index="index", columns="proxy", values="score", aggfunc="first", dropna=False)


@dataclass
class CorrelationResult:
    """What :func:`correlate` returns: per-proxy metrics, the joined table, the records."""

    metrics: dict[str, dict]
    table: pd.DataFrame
    records: list[dict]
    ground_truth_definition: str

    def to_json(self) -> dict:
        return {"ground_truth": self.ground_truth_definition, "metrics": self.metrics,
                "n_architectures": int(len(self.table))}


def correlate(space: str = "nb201", dataset: str = "cifar10", *, proxies: Sequence[str] = ("xi_gsnr",),
              indices: Sequence[int] | None = None, first: int | None = None, start: int = 0,
              stop: int | None = None, sample: int | None = None, sample_seed: int = 0,
              protocol: Protocol = PAPER_NB201, data_root: str | Path | None = None,
              results: str | Path | None = None, device: str = "cpu", progress: bool = True,
              top_fractions: Sequence[float] = (0.05, 0.10)) -> CorrelationResult:
    """Score architectures of ``space`` on ``dataset`` and correlate with the ground truth."""
    dataset = canonical_dataset(dataset)
    truth = load_ground_truth(space, dataset, data_root)
    chosen = select_indices(truth.index, indices=indices, first=first, start=start, stop=stop,
                            sample=sample, sample_seed=sample_seed)
    if not chosen:
        raise ValueError("no architectures selected")
    proxy_objs = [get_proxy(p) for p in proxies]
    batches: list = []
    if any(p.needs_data for p in proxy_objs):
        images = load_images(dataset, data_root)
        batches = draw_batches(images, protocol, dataset, device)
    search_space = create_space(space)
    archs = [(int(i), search_space.decode(truth.at[i, "arch"])) for i in chosen]
    store = ResultsStore(results) if results is not None else None
    with torch.inference_mode(False):
        records = score_architectures(search_space, archs, dataset=dataset, batches=batches, proxies=proxy_objs,
                                      protocol=protocol, num_classes=DATASET_CLASSES[dataset], store=store,
                                      device=device, progress=progress)
    table = scores_table(records).join(truth[["arch", "accuracy"]], how="left")
    metrics = {p.name: correlation_report(table[p.name].to_numpy(), table["accuracy"].to_numpy(), top_fractions)
               for p in proxy_objs}
    for p in proxy_objs:
        statuses = [r["status"] for r in records if r["proxy"] == p.name]
        metrics[p.name]["n_nonfinite"] = statuses.count("nonfinite")
        metrics[p.name]["n_error"] = statuses.count("error")
        seconds = [r.get("seconds", np.nan) for r in records if r["proxy"] == p.name]
        metrics[p.name]["seconds_per_arch"] = float(np.nanmean(seconds)) if seconds else float("nan")
    return CorrelationResult(metrics, table, records, truth.attrs.get("definition", ""))


def write_report(result: CorrelationResult, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2, allow_nan=True) + "\n")
