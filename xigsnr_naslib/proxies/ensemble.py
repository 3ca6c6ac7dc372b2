"""Training-free ensembles: a proxy derived from several registered proxies by a fixed rule.

An ensemble's score of one architecture is a fixed function of its members' values on that
architecture, so it is defined for a single architecture (search fitness, the NASLib
plugin, ``xigsnr-naslib score``) exactly as for a population (correlate, leaderboard), and
it is stored like any proxy's score. The rule is a weighted sum of standardised
transformed member values:

    ensemble(a) = sum_m  w_m * (t_m(v_m(a)) - c_m) / s_m

with, per member m, a transform t_m (``log`` for proxies whose values span orders of
magnitude, such as xi-GSNR, SynFlow, FLOPs; ``identity`` for proxies already on a log scale,
such as NASWOT or ZiCo), a centre c_m and a scale s_m (the median and spread of t_m on a
tuning sample of architectures) and a weight w_m. Centres do not change any ranking; scales
make members comparable (a member spanning four orders of magnitude must not drown one
spanning one). Centres, scales and weights are constants frozen when the ensemble is
chosen (:func:`fit_members` on a tuning sample; ``evaluation/choose_ensemble.py``), then
used unchanged on every space and dataset.

The members are computed by the scoring path like any proxies, sharing their passes; a
member that is not computable (or failed, or not finite) for an architecture makes the
ensemble not computable there, with the member named in the reason
(:class:`~xigsnr_naslib.scoring.study.ArchitectureScorer`). A ``log`` member whose value is not
positive is not computable either.

Rank rules that need the whole population (AZ-NAS's sum of log-ranks, a plain rank sum)
are in :func:`rank_combine`, for comparing rules on a scored sample.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.passes import NotComputable
from xigsnr_naslib.proxies import Proxy, get_proxy, register_proxy
from xigsnr_naslib.registry import choose

__all__ = ["TRANSFORMS", "RANK_RULES", "Member", "WeightedSum", "ensemble_proxy", "fit_members", "rank_combine",
           "transform", "load_choice", "CHOICE_FILE", "POPULATION_AGGREGATES"]

#: transforms of a member's value before it is standardised
TRANSFORMS = ("log", "identity")
#: population rules of :func:`rank_combine`
RANK_RULES = ("rank_sum", "log_rank_sum")


def transform(kind: str, value: float, member: str = "member") -> float:
    """``log(value)`` or ``value``; a ``log`` of a value <= 0 is :class:`NotComputable`."""
    if kind == "identity":
        return float(value)
    if value > 0:
        return math.log(value)
    raise NotComputable(f"{member} = {value!r}: the ensemble takes its log, which needs a positive value")


@dataclass(frozen=True)
class Member:
    """One member of an ensemble: a registered proxy name, its transform ("log" or
    "identity"), centre and scale of the transformed value (from a tuning sample), and weight."""

    proxy: str
    transform: str = "log"
    centre: float = 0.0
    scale: float = 1.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        choose(self.transform, TRANSFORMS, "transform")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise UsageError(f"scale of member {self.proxy!r} must be a positive number, got {self.scale!r}")
        if not (math.isfinite(self.centre) and math.isfinite(self.weight)):
            raise UsageError(f"centre and weight of member {self.proxy!r} must be finite")

    def standardised(self, value: float) -> float:
        return (transform(self.transform, value, self.proxy) - self.centre) / self.scale


class WeightedSum:
    """``compute`` of an ensemble: ``sum_m weight_m * standardised_m(values[m])``."""

    def __init__(self, members: Sequence[Member]):
        self.members = tuple(members)

    def __call__(self, values: Mapping[str, float]) -> float:
        return float(sum(m.weight * m.standardised(values[m.proxy]) for m in self.members))

    def __eq__(self, other) -> bool:
        return isinstance(other, WeightedSum) and other.members == self.members

    def __hash__(self) -> int:
        return hash(self.members)


def ensemble_proxy(name: str, members: Sequence[Member], description: str = "") -> Proxy:
    """The proxy ``name`` combining ``members`` (registered proxy names, checked here)."""
    members = tuple(members)
    if len(members) < 1:
        raise UsageError("an ensemble needs at least one member")
    names = [m.proxy for m in members]
    if len(set(names)) != len(names):
        raise UsageError(f"a member appears twice in {names}")
    proxies = [get_proxy(n) for n in names]
    nested = [p.name for p in proxies if p.members]
    if nested:
        raise UsageError(f"members must be proxies of their own, not ensembles: {nested}")
    return Proxy(name, WeightedSum(members), settings={"members": [asdict(m) for m in members]},
                 description=description or f"ensemble of {', '.join(names)}",
                 needs_data=any(p.needs_data for p in proxies), members=tuple(names),
                 on_supernet=all(p.on_supernet for p in proxies))


def fit_members(scores: pd.DataFrame, transforms: Mapping[str, str] | None = None,
                weights: Mapping[str, float] | None = None) -> list[Member]:
    """Members with centres and scales fitted on a tuning sample.

    ``scores``: one column per member (a registered proxy name), one row per tuning
    architecture; rows with a missing or non-finite value are left out. ``transforms``
    (default: ``log`` where every value is positive and the largest is more than ten times
    the smallest, else ``identity``). Centre: the median of the transformed values; scale:
    their interquartile range divided by 1.349 (the standard deviation for normal data,
    robust to outliers), or their standard deviation if the IQR is 0.
    """
    out = []
    for name in scores.columns:
        values = scores[name].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values) < 2:
            raise UsageError(f"member {name!r} has fewer than two finite values on the tuning sample")
        kind = (transforms or {}).get(name) or ("log" if values.min() > 0 and values.max() > 10 * values.min()
                                                 else "identity")
        t = np.log(values) if kind == "log" else values
        spread = stats.iqr(t) / 1.349 or float(np.std(t))
        if not spread > 0:
            raise UsageError(f"member {name!r} takes one value on the whole tuning sample")
        out.append(Member(name, kind, float(np.median(t)), float(spread), float((weights or {}).get(name, 1.0))))
    return out


#: aggregates defined over a population by their authors, computed where a population is
#: ranked (the leaderboard): name -> (member proxies, rank rule). AZ-NAS (Lee & Ham, CVPR
#: 2024): the sum of the log-ranks of its four components; VKDNW's aggregate likewise.
POPULATION_AGGREGATES = {
    "aznas": (("aznas_expressivity", "aznas_progressivity", "aznas_trainability", "aznas_complexity"),
              "log_rank_sum"),
    # VKDNW's aggregate (Tybl & Neumann, CVPR 2025, Table 1; ``NB201/tss_utils.py`` of the
    # released code): the same rule over VKDNW_single, AZ-NAS's expressivity and trainability,
    # FLOPs and Jacov
    "vkdnw_agg": (("vkdnw_single", "aznas_expressivity", "aznas_trainability", "flops", "jacov"), "log_rank_sum"),
}


def rank_combine(scores: pd.DataFrame, rule: str = "log_rank_sum") -> pd.Series:
    """A population rule over the rows of ``scores`` (one column per member): each member's
    values are ranked over the rows (1 = lowest, ties get their average rank, a missing
    value ranks below all), then ``rank_sum`` adds the ranks and ``log_rank_sum`` adds
    their logarithms (AZ-NAS, Lee & Ham, CVPR 2024, Eq. 9). Higher is better."""
    choose(rule, RANK_RULES, "rank rule")
    ranks = scores.apply(lambda c: stats.rankdata(c.fillna(-np.inf).to_numpy(dtype=float)), raw=False)
    return (np.log(ranks) if rule == "log_rank_sum" else ranks).sum(axis=1)


# --- the project's ensemble, as chosen by evaluation/choose_ensemble.py --------------------------

#: the frozen choice (members with centres, scales and weights, and how they were chosen)
CHOICE_FILE = Path(__file__).with_name("ensemble_choice.json")


def load_choice(path: str | Path = CHOICE_FILE) -> Proxy:
    """The ensemble proxy of a choice file written by ``evaluation/choose_ensemble.py``:
    JSON with ``name`` and ``members`` (a list of :class:`Member` fields), and ``tuning``
    (how it was chosen). A file that cannot be read as one raises
    :class:`~xigsnr_naslib.data.data_root.DataFileError` naming it; an unknown member proxy raises
    the registry's ``UnknownChoiceError`` (a ``ValueError``) listing the registered ones."""
    from xigsnr_naslib.data.data_root import reading

    with reading(path, "an ensemble choice (JSON with 'name' and 'members')"):
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data.get("members"):
            raise UsageError("expected an object with a 'name' and a non-empty 'members' list")
        members = [Member(**m) for m in data["members"]]
    tuning = data.get("tuning", {})
    return ensemble_proxy(data["name"], members,
                          f"training-free ensemble chosen on {tuning.get('n', '?')} {tuning.get('space', '')} "
                          f"{tuning.get('dataset', '')} tuning architectures")


if CHOICE_FILE.exists():
    try:
        register_proxy(load_choice())
    except (OSError, ValueError, KeyError, TypeError) as exc:  # the rest of the package stays usable
        import warnings

        warnings.warn(f"the ensemble is not registered: {exc}")
