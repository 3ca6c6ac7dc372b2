"""The main job: score benchmark architectures and correlate the scores with accuracy.

:func:`correlate` is what ``xigsnr-naslib correlate`` runs: pick architectures from the
ground truth (a range, a list of indices or a seeded random sample), score them with the
chosen proxies under a protocol (results appended to a resumable JSON-lines file), then
compute Kendall tau, Spearman rho, Pearson r and P@Top-5%/10% against the accuracies.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from xigsnr_naslib.data.outputs import writing
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.analysis.metrics import correlation_report
from xigsnr_naslib.data.data_root import reading
from xigsnr_naslib.registry import choose
from xigsnr_naslib.scoring.results import Status, record_score
from xigsnr_naslib.scoring.study import Study

__all__ = ["NOT_COMPUTABLE_POLICIES", "Selection", "correlate", "CorrelationResult", "scores_table", "write_report"]


@dataclass(frozen=True)
class Selection:
    """Which benchmark indices to score: explicit ``indices``, a seeded ``sample`` (sorted), or
    a range (``first=n`` is ``start=0, stop=n``; default: every architecture).

    ``sample`` draws ``random.Random(sample_seed).sample(sorted indices, sample)``.
    """

    indices: Sequence[int] | None = None
    first: int | None = None
    start: int = 0
    stop: int | None = None
    sample: int | None = None
    sample_seed: int = 0

    def apply(self, available: Sequence[int]) -> list[int]:
        """The selected indices among ``available``; unknown indices raise ``KeyError`` naming them."""
        available_list = sorted(int(i) for i in available)
        known = set(available_list)
        if self.indices is not None:
            missing = [i for i in self.indices if i not in known]
            if missing:
                raise UsageError(f"indices not in the ground truth: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
            return list(dict.fromkeys(int(i) for i in self.indices))
        if self.sample is not None:
            if self.sample > len(available_list):
                raise UsageError(f"cannot sample {self.sample} of {len(available_list)} architectures")
            return sorted(random.Random(self.sample_seed).sample(available_list, self.sample))
        start, stop = (0, self.first) if self.first is not None else (self.start, self.stop)
        return [i for i in available_list if i >= start and (stop is None or i < stop)]


#: what a correlation does with architectures whose score is not computable
NOT_COMPUTABLE_POLICIES = ("drop", "last")


def scores_table(records: list[dict], not_computable: str = "drop") -> pd.DataFrame:
    """Records -> one row per benchmark index, one column per proxy (NaN for non-finite/failed).

    ``not_computable``: ``"drop"`` (NaN: the metrics leave the architecture out) or
    ``"last"`` (``-inf``: ranked below every computed score, as an evaluation that stores
    such networks as 0 or -inf does).
    """
    choose(not_computable, NOT_COMPUTABLE_POLICIES, "not-computable policy")
    last = not_computable == "last"
    rows = [{"index": r["index"], "proxy": r["proxy"],
             "score": -math.inf if last and r.get("status") == Status.NOT_COMPUTABLE else record_score(r)}
            for r in records]
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


def correlate(study: Study | str = "nb201", selection: Selection | None = None, *, accuracy: str | None = None,
              top_fractions: Sequence[float] = (0.05, 0.10), not_computable: str = "drop") -> CorrelationResult:
    """Score the selected benchmark architectures of the study's space and correlate with accuracy.

    ``study`` (or a space name: its card's defaults) names the space, dataset, proxies,
    protocol, execution and results store; ``selection`` which benchmark indices (default:
    all); ``accuracy`` the ground-truth definition where the card offers several
    (NAS-Bench-101: ``released`` or ``naslib``). Returns Kendall tau, Spearman rho, Pearson r
    and P@Top-K per proxy (:func:`xigsnr_naslib.analysis.metrics.correlation_report`), with the counts of
    non-finite, failed and not-computable records; ``not_computable`` (:func:`scores_table`)
    says whether architectures a proxy cannot score are left out (default) or ranked last.
    """
    choose(not_computable, NOT_COMPUTABLE_POLICIES, "not-computable policy")
    study = Study(study) if isinstance(study, str) else study
    truth = study.card.load_ground_truth(study.dataset, study.data_root, accuracy)
    chosen = (selection or Selection()).apply(truth.index)
    if not chosen:
        raise UsageError("no architectures selected")
    with reading(truth.attrs.get("source", "the ground truth"), f"{study.card.name} ground truth"):
        archs = [(int(i), study.space.decode(truth.at[i, "arch"])) for i in chosen]
    records = study.score(archs)
    table = scores_table(records, not_computable).join(truth[["arch", "accuracy"]], how="left")
    metrics = {p.name: correlation_report(table[p.name].to_numpy(), table["accuracy"].to_numpy(), top_fractions)
               for p in study.proxies}
    for p in study.proxies:
        statuses = [r["status"] for r in records if r["proxy"] == p.name]
        metrics[p.name]["n_nonfinite"] = statuses.count(Status.NONFINITE)
        metrics[p.name]["n_error"] = statuses.count(Status.ERROR)
        metrics[p.name]["n_not_computable"] = statuses.count(Status.NOT_COMPUTABLE)
        seconds = [r.get("seconds", np.nan) for r in records if r["proxy"] == p.name]
        metrics[p.name]["seconds_per_arch"] = float(np.nanmean(seconds)) if seconds else float("nan")
    return CorrelationResult(metrics, table, records, truth.attrs.get("definition", ""))


def write_report(result: CorrelationResult, path: str | Path) -> None:
    path = Path(path)
    with writing(path, "report"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_json(), indent=2, allow_nan=True) + "\n")
