"""The proxy leaderboard: every proxy ranked on the same architectures, with the same metrics.

:func:`build_leaderboard` is what ``xigsnr-naslib leaderboard`` runs: a study (what to compute,
and how) and a :class:`LeaderboardSettings` (tables, exclusions, the architecture set, metrics)::

    board = build_leaderboard(Study("nb201", "cifar10", ["xi_gsnr"], store="scores.jsonl"),
                              LeaderboardSettings(sample=200, seed=0, bootstrap=Bootstrap(n_boot=1000)))
    board.write("results/leaderboard/nb201_cifar10")

Its sources:

* the ground truth of the search space (its benchmark card's reader: test accuracy as the
  paper uses it), the target ``test_accuracy``;
* precomputed tables of other proxies (:mod:`.score_tables`): those that the space's card
  lists for the dataset, and any NASLib ``zc_<space>.json`` the user passes; the
  first table that carries NASLib's validation accuracy gives the second target,
  ``naslib_val``;
* scores this project computes, through the study (:class:`~xigsnr_naslib.scoring.study.Study`,
  the one scoring path), by proxy name from the registry: by default the xi-GSNR modes ``xi_gsnr`` and
  ``xi_gsnr_paper``, every proxy of the zoo (:data:`xigsnr_naslib.proxies.zoo.BASELINES`) and the
  ensemble, sharing their passes. They go to a results store, so an interrupted run
  resumes where it stopped. A proxy computed here and also found in a table appears twice,
  labelled by source (``snip (computed)``, ``snip (suitezero)``).

Architectures are matched across sources by the space's canonical string (one per
benchmark architecture: ``space.encode``), so each counts once; a ground truth that lists one
architecture twice (two spellings of it) is refused with the indices of both.

The architecture set: an architecture is a candidate when every source has it with a finite
value (every target and every precomputed score); the candidates' number, and what each
source removed and why, are printed. A seeded sample of the candidates (``sample``
architectures; ``random.Random(seed)``, as ``correlate --sample`` draws) is then scored with
the computed proxies, or all candidates when ``sample`` is None. An architecture whose
computed score is not finite (or failed) leaves the set for every proxy, and is named. So
every proxy, computed or precomputed, is ranked on exactly the same architectures against
the same targets.

Metrics (:func:`~xigsnr_naslib.analysis.metrics.standard_metrics`) come with paired
percentile bootstrap intervals (``n_boot`` resamples, seeded with ``seed``).
:meth:`Leaderboard.write` writes the Markdown table, a CSV of the metrics, a CSV of every
score, a JSON record of the run, and the figures (:mod:`.figures`). The score CSV holds no
target: accuracies are the benchmark's ground truth, which stays in the data root (join them
back by benchmark index with the card's ``load_ground_truth``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from xigsnr_naslib.data.outputs import writing
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.data_root import find_file, reading, resolve_data_root
from xigsnr_naslib.registry import choose
from xigsnr_naslib.analysis.metrics import Metric, metric_table, standard_metrics
from xigsnr_naslib.proxies.ensemble import POPULATION_AGGREGATES, rank_combine
from xigsnr_naslib.benchmarks.card import DatasetCard
from xigsnr_naslib.data.protocol import Protocol
from xigsnr_naslib.proxies import check_computable, get_proxy, list_proxies
from xigsnr_naslib.proxies.zoo import BASELINES
from xigsnr_naslib.analysis.score_tables import TABLE_FORMATS, ProxyTable, read_zc_json
from xigsnr_naslib.analysis.correlate import Selection, scores_table
from xigsnr_naslib.scoring.study import Study

__all__ = ["DEFAULT_PROXIES", "default_proxies", "default_proxies_for", "Leaderboard", "LeaderboardSettings",
           "Bootstrap", "build_leaderboard", "load_tables"]

#: the proxies this project computes by default, those of them that are registered: the
#: xi-GSNR modes, the whole zoo (:data:`xigsnr_naslib.proxies.zoo.BASELINES`) and the ensemble
DEFAULT_PROXIES = ("xi_gsnr", "xi_gsnr_paper") + tuple(p for p in BASELINES if p != "xi_gsnr") + ("ensemble",)

TEST_TARGET = "test_accuracy"
VAL_TARGET = "naslib_val"
_VAL_DEFINITION = ("NASLib's validation accuracy (the target NAS-Bench-Suite-Zero correlates with), "
                   "from the {table} table")


def machine_description(device: str = "cpu") -> str:
    """``x86_64, 2 CPUs, torch 2.13.0+cpu, Python 3.12.3``, and the GPU's name on CUDA."""
    import torch

    gpu = ""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        gpu = f", {torch.cuda.get_device_name(torch.device(device))}"
    return (f"{platform.machine()}, {os.cpu_count()} CPUs{gpu}, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def default_proxies() -> list[str]:
    """:data:`DEFAULT_PROXIES` that the registry knows."""
    known = set(list_proxies())
    return [p for p in DEFAULT_PROXIES if p in known]


def default_proxies_for(dataset: DatasetCard, protocol: Protocol) -> tuple[list[str], list[str]]:
    """The default proxies of a leaderboard on ``dataset`` under ``protocol``, and notes.

    :func:`default_proxies`, with the dataset card's own default proxy first where it is not
    among them (``xi_gsnr_per_sample`` on NAS-Bench-101: the released code's protocol), less
    the proxies whose passes ``protocol`` cannot give (e.g. ``xi_gsnr`` from one batch: one
    cumulative gradient sample has no variance); each one left out gets a note saying why.
    """
    names = default_proxies()
    if dataset.proxy not in names:
        names.insert(0, dataset.proxy)
    kept, notes = [], []
    for name in names:
        try:
            check_computable([get_proxy(name)], protocol.n_batches, protocol.batch_size)
        except ValueError as exc:
            notes.append(f"{name} left out of the default proxies: {str(exc).split(': ', 1)[-1]}")
            continue
        kept.append(name)
    return kept, notes


def load_tables(study: Study, names: Sequence[str] | None = None, zc_json: Sequence[str | Path] = ()
                ) -> list[ProxyTable]:
    """The precomputed tables the study's card lists for its dataset: ``names`` (default: the
    card's default ones), then NASLib ``zc_json`` files."""
    space, dataset = study.card.name, study.dataset
    known = study.dataset_card.score_tables
    if names is None:
        names = [n for n, spec in known.items() if spec.default]
    for name in names:
        choose(name, list(known), "precomputed table", f"for {space}/{dataset} (other tables: pass a zc_<space>.json)")
    tables = []
    if names:
        root = resolve_data_root(study.data_root)
        for name in names:
            spec = known[name]
            path = find_file(root, [spec.path], f"precomputed table {name!r}",
                             "The proxy tables come with the project's reference data (DATA_ROOT/nb201/).")
            tables.append(TABLE_FORMATS[spec.format](path, space=space, dataset=dataset, name=name))
    for path in zc_json:
        tables.append(read_zc_json(path, space=space, dataset=dataset))
    taken = [t.name for t in tables]
    if len(set(taken)) != len(taken):
        raise UsageError(f"two tables with the same name among {', '.join(taken)}; rename a zc json file")
    return tables


@dataclass
class Leaderboard:
    """What :func:`build_leaderboard` returns.

    ``scores``: one row per architecture of the final set (index: benchmark index), columns
    ``arch``, the targets, then one column per proxy key; ``proxies``: key -> (name, source);
    ``targets``: target column -> definition; ``metrics``: target -> :func:`metric_table`
    frame (one row per proxy key); ``notes``: everything that removed architectures or
    proxies, and why; ``settings``: how the run was made.
    """

    space: str
    dataset: str
    scores: pd.DataFrame
    proxies: dict[str, tuple[str, str]]
    targets: dict[str, str]
    metrics: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def n_archs(self) -> int:
        return len(self.scores)

    def metric_names(self) -> list[str]:
        frame = next(iter(self.metrics.values()))
        return [c for c in frame.columns if c != "n" and not c.endswith(("_low", "_high"))]

    def ranking(self, target: str = TEST_TARGET) -> list[str]:
        """Proxy keys sorted by Kendall tau against ``target``, best first (NaN last)."""
        tau = self.metrics[target]["kendall_tau"]
        return list(tau.sort_values(ascending=False, na_position="last", kind="stable").index)

    def summary(self) -> pd.DataFrame:
        """The long metrics table (the CSV): one row per (target, proxy)."""
        frames = []
        for target, frame in self.metrics.items():
            frame = frame.loc[self.ranking(target)]
            head = pd.DataFrame({"target": target, "proxy": [self.proxies[k][0] for k in frame.index],
                                 "source": [self.proxies[k][1] for k in frame.index]}, index=frame.index)
            frames.append(pd.concat([head, frame], axis=1))
        out = pd.concat(frames)
        out.index.name = "key"
        return out.reset_index()

    def to_markdown(self, ci_metrics: Sequence[str] = ("kendall_tau", "spearman_rho")) -> str:
        """One Markdown table per target: a row per proxy, a column per metric, best in bold."""
        return _markdown(self, ci_metrics)

    def write(self, out: str | Path, figures: bool = True) -> dict[str, Path]:
        """Write ``leaderboard.md``, ``leaderboard.csv``, ``scores.csv``, ``run.json`` and the figures.

        ``scores.csv`` is :attr:`scores` less the target columns (benchmark index, ``arch``, one
        column per proxy key): the targets are the benchmark's ground truth, read from the data
        root, and are not copied out of it.
        """
        out = Path(out)
        with writing(out, "leaderboard"):
            out.mkdir(parents=True, exist_ok=True)
            written = {"markdown": out / "leaderboard.md", "csv": out / "leaderboard.csv",
                       "scores": out / "scores.csv", "run": out / "run.json"}
            self.summary().to_csv(written["csv"], index=False, float_format="%.6g")
            self.scores.drop(columns=[t for t in self.targets if t in self.scores]).to_csv(
                written["scores"], float_format="%.9g")
            run = {"space": self.space, "dataset": self.dataset, "n_architectures": self.n_archs,
                   "targets": self.targets, "proxies": {k: {"name": n, "source": s} for k, (n, s) in self.proxies.items()},
                   "settings": self.settings, "notes": self.notes}
            written["run"].write_text(json.dumps(run, indent=2, allow_nan=True, default=str) + "\n")
            if figures:
                from xigsnr_naslib.analysis.figures import correlation_bars, score_scatter

                for target in self.targets:
                    path = out / f"bars_{target}.png"
                    correlation_bars(self, target, path)
                    written[f"bars_{target}"] = path
                for key in self.proxies:
                    if self.proxies[key][1] == "computed" and key.startswith("xi_gsnr"):
                        path = out / f"scatter_{key}.png"
                        score_scatter(self, key, TEST_TARGET, path)
                        written[f"scatter_{key}"] = path
            written["markdown"].write_text(self.to_markdown() + _figure_links(written, out))
        return written


#: column headers of the Markdown table
_HEADERS = {"kendall_tau": "Kendall τ", "spearman_rho": "Spearman ρ", "pearson_r": "Pearson r"}
_TARGET_TITLES = {TEST_TARGET: "test accuracy", VAL_TARGET: "NASLib validation accuracy"}


def _header(metric: str) -> str:
    if metric in _HEADERS:
        return _HEADERS[metric]
    if metric.startswith("p_at_top") and metric.endswith("%"):
        return f"P@Top{metric[len('p_at_top'):]}"
    if metric.startswith("ndcg@"):
        return f"nDCG@{metric[len('ndcg@'):]}"
    return metric


def _cell(value: float, best: bool, low: float | None = None, high: float | None = None) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.3f}"
    if best:
        text = f"**{text}**"
    if low is not None and np.isfinite(low) and np.isfinite(high):
        text += f" [{low:.2f}, {high:.2f}]"
    return text


def _markdown(board: "Leaderboard", ci_metrics: Sequence[str]) -> str:
    lines = [f"## {board.space} on {board.dataset}: {board.n_archs:,} architectures", ""]
    lines += _run_lines(board)
    for target, definition in board.targets.items():
        lines += _target_table(board, target, definition, ci_metrics)
    lines += _legend_lines(board)
    if board.notes:
        lines += ["", "### Notes on the sources: what left the architecture set, and why", ""]
        lines += [f"- {n}" for n in board.notes]
    return "\n".join(lines) + "\n"


def _run_lines(board: "Leaderboard") -> list[str]:
    """The paragraph under the title: the architecture set, the computed proxies and their
    protocol, the tables, the machine and the intervals."""
    s = board.settings
    lines = []
    chosen = ("the requested indices" if s.get("indices") else
              "all" if s.get("sample") is None else f"a seeded sample (seed {s.get('seed')}) of {s.get('n_selected'):,}")
    lines.append(f"Every proxy is ranked on the same {board.n_archs:,} architectures: {chosen} of the "
                 f"{s.get('n_candidates', 0):,} that every source has with a finite value"
                 + (f", less {s['n_selected'] - board.n_archs} whose computed score failed" if
                    s.get("n_selected", board.n_archs) != board.n_archs else "") + ".")
    if s.get("computed"):
        proto = s.get("protocol", {})
        lines.append(f"Computed proxies: {', '.join(s['computed'])}, with {proto.get('n_batches')} "
                     f"batch{'' if proto.get('n_batches') == 1 else 'es'} of "
                     f"{proto.get('batch_size')} training images (data seed {proto.get('data_seed')}, "
                     f"init seed {proto.get('init_seed')}).")
    if s.get("tables"):
        lines.append(f"Precomputed tables: {', '.join(s['tables'])}.")
    if s.get("machine"):
        lines.append(f"Built on {s['machine']} in {s.get('wall_seconds', math.nan):,.0f} s, computing "
                     f"{s.get('new_records', 0):,} new scores (the others came from the store).")
    if s.get("n_boot"):
        lines.append(f"Intervals: {s['level']:.0%} percentile bootstrap over architectures, {s['n_boot']} resamples "
                     f"(seed {s.get('seed')}), the same resamples for every proxy; all intervals are in "
                     "`leaderboard.csv`.")
    return lines


def _target_table(board: "Leaderboard", target: str, definition: str, ci_metrics: Sequence[str]) -> list[str]:
    """The section of one target: a row per proxy (best first), a column per metric, best in bold."""
    frame = board.metrics[target].loc[board.ranking(target)]
    metrics = board.metric_names()
    # best = the highest value at the printed precision; a column without variation has none
    best = {m: (frame[m].max(skipna=True) if frame[m].round(3).nunique() > 1 else np.nan) for m in metrics}
    lines = ["", f"### Against {_TARGET_TITLES.get(target, target)}", "", f"Target: {definition}.", ""]
    with_ci = bool(board.settings.get("n_boot"))
    heads = ["#", "proxy (source)"] + [_header(m) + (" [CI]" if m in ci_metrics and with_ci else "") for m in metrics]
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("|" + "|".join(["---:", ":---"] + ["---:"] * len(metrics)) + "|")
    for key, rank in zip(frame.index, _rank_marks(frame)):
        name, source = board.proxies[key]
        cells = [rank, f"{name} ({source})"]
        for m in metrics:
            value = frame.at[key, m]
            is_best = bool(np.isfinite(value) and np.isfinite(best[m]) and round(value, 3) == round(best[m], 3))
            ci = (frame.at[key, f"{m}_low"], frame.at[key, f"{m}_high"]) \
                if m in ci_metrics and f"{m}_low" in frame else (None, None)
            cells.append(_cell(value, is_best, *ci))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _legend_lines(board: "Leaderboard") -> list[str]:
    """What the sources, the rank marks and the metrics mean."""
    lines = []
    if any(source == "aggregate" for _, source in board.proxies.values()):
        lines += ["", "Source `aggregate`: its authors' rule over a population, ranked within these architectures: "
                  "the sum of the log-ranks of computed proxies (aznas: AZ-NAS's four components; vkdnw_agg: "
                  "vkdnw_single, aznas_expressivity, aznas_trainability, flops and jacov, as VKDNW's code)."]
    lines += ["", "Ranks by Kendall τ: `=` a tie with the row above at the printed precision (the same rank); "
              "`≈` the row's τ interval overlaps the leader's (not distinguishable from the leader on these "
              "architectures at the interval's level).",
              "", "Metrics (higher is better; best of each column in bold): Kendall τ (tau-b), Spearman ρ and "
              "Pearson r over all architectures; P@TopK% the paper's Table 10 (share of the true top K% that the "
              "proxy also puts in its top K%); p_at_topK and kd_at_topK NASLib's formulas (K architectures: share of the "
              "true top K in the predicted top K, and Kendall τ inside the predicted top K), with two differences "
              "outside the clean case: pairs with a missing value are dropped and tied scores are not left to "
              "argsort order (the metrics module says how); NaN where K exceeds the architectures; nDCG@K with gain "
              "2^accuracy − 1 (accuracy in percent) and discount 1/log2(1 + position)."]
    return lines


def _rank_marks(frame: pd.DataFrame, metric: str = "kendall_tau") -> list[str]:
    """Rank labels of rows sorted by ``metric`` (best first): equal values at the printed
    precision share a rank, marked ``=``; rows whose interval overlaps the leader's get ``≈``."""
    values = frame[metric].to_numpy(dtype=float)
    low = frame[f"{metric}_low"].to_numpy(dtype=float) if f"{metric}_low" in frame else None
    high = frame[f"{metric}_high"].to_numpy(dtype=float) if f"{metric}_high" in frame else None
    marks, rank = [], 0
    for i, value in enumerate(values):
        tied = i > 0 and np.isfinite(value) and np.isfinite(values[i - 1]) and round(value, 3) == round(values[i - 1], 3)
        rank = rank if tied else i + 1
        mark = f"={rank}" if tied else str(rank)
        if i > 0 and low is not None and np.isfinite(low[0]) and np.isfinite(high[i]) and high[i] >= low[0] \
                and low[i] <= high[0]:
            mark += " ≈"
        marks.append(mark)
    return marks


def _figure_links(written: Mapping[str, Path], out: Path) -> str:
    figures = [p for k, p in written.items() if k.startswith(("bars_", "scatter_"))]
    if not figures:
        return ""
    return "\n" + "\n".join(f"![{p.stem}]({p.relative_to(out)})" for p in figures) + "\n"


def _fmt_count(n: int, total: int) -> str:
    return f"{n:,} of {total:,}"


@dataclass(frozen=True)
class Bootstrap:
    """Paired percentile bootstrap of the metrics: ``n_boot`` resamples (0: no intervals) at ``level``."""

    n_boot: int = 1000
    level: float = 0.95


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class LeaderboardSettings:
    """What a leaderboard ranks, and how: everything of :func:`build_leaderboard` but the study.

    Parameters
    ----------
    tables : sequence of str or None
        Precomputed tables the space's card lists for the dataset (None: the card's default
        ones; ``()`` for none).
    zc_json : sequence of path
        NASLib ``zc_<space>.json`` files of precomputed scores.
    exclude : sequence of str
        Proxy keys to leave out: ``"xi_gsnr"`` (computed), ``"naswot.naswot"`` (table.proxy),
        ``"aznas"`` (a population aggregate).
    sample : int or None
        The size of the seeded sample of the candidates (None: every candidate).
    seed : int
        Seeds the sample and the bootstrap.
    bootstrap : Bootstrap
        Resamples and level of the metrics' intervals.
    metrics : mapping or None
        Metric name -> function (default :func:`~xigsnr_naslib.analysis.metrics.standard_metrics`).
    indices : sequence of int or None
        These benchmark indices instead of a sample (those missing from a source leave with
        a note; an index the ground truth lacks raises ``KeyError`` naming it).

    Raises
    ------
    ValueError
        Naming the bad value: a sample below 1, a negative seed, a bare string where a
        sequence of names belongs.
    TypeError
        ``bootstrap`` not a :class:`Bootstrap`.
    """

    tables: Sequence[str] | None = None
    zc_json: Sequence[str | Path] = ()
    exclude: Sequence[str] = ()
    sample: int | None = 500
    seed: int = 0
    bootstrap: Bootstrap = Bootstrap()
    metrics: Mapping[str, Metric] | None = None
    indices: Sequence[int] | None = None

    def __post_init__(self) -> None:
        for name in ("tables", "zc_json", "exclude", "indices"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes, os.PathLike)):
                raise UsageError(f"{name} must be a sequence, got the single value {value!r}; "
                                 f"write {name}=[{value!r}]")
            if value is not None:  # a copy: the caller's list stays theirs
                object.__setattr__(self, name, tuple(value))
        if self.sample is not None and not (_whole(self.sample) and self.sample >= 1):
            raise UsageError(f"sample must be a whole number >= 1 or None, got {self.sample!r}")
        if not (_whole(self.seed) and self.seed >= 0):
            raise UsageError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if not isinstance(self.bootstrap, Bootstrap):
            raise TypeError(f"bootstrap must be a Bootstrap, got {type(self.bootstrap).__name__}")


def build_leaderboard(study: Study, settings: LeaderboardSettings = LeaderboardSettings(), *,
                      log: Callable[[str], None] = print) -> Leaderboard:
    """Build the leaderboard of the study's space and dataset (see the module docstring).

    ``study``: the card, dataset, proxies to compute (``[]`` for none), protocol, execution
    and results store (scores found there are reused; only what is missing is scored);
    ``settings``: the tables, exclusions, architecture set and metrics
    (:class:`LeaderboardSettings`); ``log``: receives each progress line.
    """
    if not isinstance(settings, LeaderboardSettings):
        raise TypeError(f"settings must be a LeaderboardSettings, got {type(settings).__name__}")
    build = _Build(study, settings, log)
    build.read_ground_truth()
    build.join_tables()
    build.apply_exclusions()
    build.find_candidates()
    build.select()
    build.score()
    return build.result()


class _Build:
    """The steps of :func:`build_leaderboard`, in order, on one growing frame.

    ``frame``: one row per architecture (index: benchmark index), ``arch``, the targets,
    one column per proxy key; ``proxy_info``: key -> (name, source); ``proxies``: the
    computed proxies still on the board.
    """

    def __init__(self, study: Study, settings: LeaderboardSettings, log: Callable[[str], None]):
        self.started = time.perf_counter()
        self.study, self.settings, self.log = study, settings, log
        self.space, self.dataset, self.protocol = study.card.name, study.dataset, study.protocol
        self.search_space = study.space
        self.notes: list[str] = []
        self.proxy_info: dict[str, tuple[str, str]] = {}
        self.proxies = []
        self.records: list[dict] = []
        self.new_records = 0
        self.computed_columns: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.log(f"  - {text}")

    # 1. ground truth
    def read_ground_truth(self) -> None:
        study, space = self.study, self.space
        truth = study.card.load_ground_truth(self.dataset, study.data_root)
        with reading(truth.attrs.get("source", "the ground truth"), f"{study.card.name} ground truth"):
            archs = [self.search_space.encode(self.search_space.decode(a)) for a in truth["arch"]]
        frame = pd.DataFrame({"arch": archs, TEST_TARGET: truth["accuracy"].to_numpy(dtype=float)}, index=truth.index)
        repeated = frame["arch"][frame["arch"].duplicated(keep=False)]
        if len(repeated):  # each architecture counts once: two spellings of one are one architecture
            first = repeated.iloc[0]
            same = [int(i) for i in repeated.index[repeated == first]]
            raise UsageError(f"the {space} ground truth lists one architecture at indices {same} "
                             f"(canonical string {first!r}): {len(repeated)} rows hold repeated architectures")
        self.frame = frame
        self.targets = {TEST_TARGET: truth.attrs.get("definition", "test accuracy")}
        self.log(f"ground truth: {len(frame):,} {space} architectures on {self.dataset} ({self.targets[TEST_TARGET]})")

    # 2. precomputed tables
    def join_tables(self) -> None:
        for table in load_tables(self.study, self.settings.tables, self.settings.zc_json):
            self.log(f"table {table.name}: {len(table):,} architectures, {len(table.proxies)} proxies ({table.source})")
            for text in table.notes:
                self.note(f"{table.name}: {text}")
            outside = int((~table.scores.index.isin(self.frame["arch"])).sum())
            if outside:
                self.note(f"{table.name}: {outside:,} architecture(s) not in the ground truth are left out")
            keys = {p: f"{table.name}.{p}" for p in table.proxies}
            self.frame = self.frame.join(table.scores.rename(columns=keys), on="arch")
            self.proxy_info.update({key: (p, table.name) for p, key in keys.items()})
            if VAL_TARGET in table.targets and VAL_TARGET not in self.targets:
                self.frame = self.frame.join(table.targets[[VAL_TARGET]], on="arch")
                self.targets[VAL_TARGET] = _VAL_DEFINITION.format(table=table.name)
        if VAL_TARGET not in self.targets:
            self.log(f"no table for {self.space}/{self.dataset} carries NASLib's validation accuracy: "
                     "only the test target")

    def apply_exclusions(self) -> None:
        exclude, proxy_info = self.settings.exclude, self.proxy_info
        computed_names = [p.name for p in self.study.proxies]
        unknown = [k for k in exclude
                   if k not in proxy_info and k not in computed_names and k not in POPULATION_AGGREGATES]
        if unknown:
            raise UsageError(f"cannot exclude {', '.join(map(repr, unknown))}: no such proxy here; proxies are named "
                           f"like 'xi_gsnr' (computed) or 'suitezero.synflow' (table.proxy)")
        for key in exclude:
            if key in proxy_info:
                del proxy_info[key]
                self.frame = self.frame.drop(columns=key)
            self.log(f"excluded on request: {key}")
        self.proxies = [p for p in self.study.proxies if p.name not in exclude]

    # 3. the candidates: a finite value in every source
    def find_candidates(self) -> None:
        frame, proxy_info = self.frame, self.proxy_info
        value_columns = [c for c in frame.columns if c != "arch"]
        finite = pd.DataFrame(np.isfinite(frame[value_columns].to_numpy(dtype=float)), index=frame.index,
                              columns=value_columns)
        total = len(frame)
        for target in self.targets:
            absent = int((~finite[target]).sum())
            if absent:
                self.note(f"{target}: no finite value for {_fmt_count(absent, total)} ground-truth architectures")
        for table_name in dict.fromkeys(source for _, source in proxy_info.values()):
            columns = [k for k, (_, source) in proxy_info.items() if source == table_name]
            covered, complete = int(finite[columns].any(axis=1).sum()), int(finite[columns].all(axis=1).sum())
            if complete < total:
                self.note(f"{table_name}: has {_fmt_count(covered, total)} ground-truth architectures, {complete:,} "
                          "of them with every score finite; the others leave the set")
        self.candidates = frame.index[finite.all(axis=1)]
        self.log(f"candidates (a finite value in every source): {len(self.candidates):,} architectures")
        if len(self.candidates) == 0:
            raise UsageError("no architecture is in every source; drop a table (--table) or a proxy (--exclude)")

    # 4. the sample
    def select(self) -> None:
        indices, sample, seed = self.settings.indices, self.settings.sample, self.settings.seed
        candidates = self.candidates
        if indices is not None:
            chosen = self._requested(indices)
        elif sample is None:
            chosen = list(candidates)
        else:
            if sample > len(candidates):
                raise UsageError(f"cannot sample {sample} architectures: only {len(candidates):,} are in every "
                                 "source (see the notes above); ask for fewer, or drop a table")
            chosen = Selection(sample=sample, sample_seed=seed).apply(candidates)
        self.log(f"selected: {len(chosen):,} architectures "
                 + ("(the requested indices)" if indices is not None else
                    "(all candidates)" if sample is None else f"(seeded sample, seed {seed})"))
        self.chosen = chosen
        self.frame = self.frame.loc[chosen]

    def _requested(self, indices: Sequence[int]) -> list:
        frame = self.frame
        unknown = [i for i in indices if i not in frame.index]
        if unknown:
            raise UsageError(f"indices not in the {self.space} ground truth: "
                           f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}"
                           f" (valid: {frame.index.min()}..{frame.index.max()})")
        wanted = list(dict.fromkeys(int(i) for i in indices))
        in_set = set(self.candidates)
        chosen = [i for i in wanted if i in in_set]
        if len(chosen) < len(wanted):
            self.note(f"{len(wanted) - len(chosen)} of the {len(wanted)} requested architectures lack a finite "
                      "value in some source and leave the set")
        return chosen

    # 5. the computed scores
    def score(self) -> None:
        if self.proxies:
            computed = self._computed_scores()
            self.frame = self.frame.join(computed)
            self.proxy_info = {**{p.name: (p.name, "computed") for p in self.proxies}, **self.proxy_info}
            keep = np.isfinite(self.frame[list(computed.columns)].to_numpy(dtype=float)).all(axis=1)
            self.frame = self.frame[keep]
            self.computed_columns = list(computed.columns)
        if len(self.frame) < 2:
            raise UsageError(f"only {len(self.frame)} architecture(s) left in every source: nothing to rank")
        if self.proxies:
            self._add_aggregates()
        self.log(f"final set: {len(self.frame):,} architectures, ranked by {len(self.proxy_info)} proxies")

    def _computed_scores(self) -> pd.DataFrame:
        """Score the chosen architectures with the study (resuming from its store); a proxy
        without a finite score on most of them leaves the board, with a note."""
        study, chosen = self.study, self.chosen
        if study.store is not None:
            self.log(f"computed scores: {study.store.path} (resumed where present)")
        study = self.study = dataclasses.replace(study, proxies=self.proxies)
        stored_before = len(study._done_records())
        self.records = study.score((int(i), self.search_space.decode(self.frame.at[i, "arch"])) for i in chosen)
        self.new_records = len(study._done_records()) - stored_before
        computed = scores_table(self.records).reindex(index=chosen, columns=[p.name for p in self.proxies])
        for proxy in list(self.proxies):
            failed = computed.index[~np.isfinite(computed[proxy.name].to_numpy(dtype=float))]
            if not len(failed):
                continue
            mine = {r["index"]: r for r in self.records if r["proxy"] == proxy.name}
            if 2 * len(failed) > len(chosen):
                # a proxy the space does not suit (zen without global average pooling, say) leaves
                # the board; it does not take the architectures with it
                reasons = sorted({mine[i].get("reason") or mine[i].get("error") or mine[i].get("status", "missing")
                                  for i in failed if i in mine} or {"missing"})
                self.note(f"{proxy.name}: no finite score for {len(failed)} of the {len(chosen)} selected "
                          f"architectures ({'; '.join(map(str, reasons[:2]))}): it leaves the leaderboard, the "
                          "architectures stay")
                computed = computed.drop(columns=proxy.name)
                self.proxies.remove(proxy)
                continue
            examples = ", ".join(f"{i} ({mine.get(i, {}).get('status', 'missing')})" for i in list(failed)[:5])
            self.note(f"{proxy.name}: no finite score for {len(failed)} selected architecture(s), which leave the "
                      f"set for every proxy: index {examples}{' ...' if len(failed) > 5 else ''}")
        return computed

    def _add_aggregates(self) -> None:
        """Population aggregates of computed proxies (AZ-NAS's log-rank sum): ranks within this set."""
        for name, (members, rule) in POPULATION_AGGREGATES.items():
            if name not in self.settings.exclude and all(m in self.computed_columns for m in members):
                self.frame[name] = rank_combine(self.frame[list(members)], rule)
                self.proxy_info[name] = (name, "aggregate")

    # 6. metrics
    def result(self) -> Leaderboard:
        targets, proxy_info, settings = self.targets, self.proxy_info, self.settings
        order = [k for k in proxy_info]
        frame = self.frame[["arch", *targets, *order]]
        metric_fns = dict(settings.metrics if settings.metrics is not None else standard_metrics())
        results_by_target = {
            target: metric_table({k: frame[k].to_numpy() for k in order}, frame[target].to_numpy(), metric_fns,
                                 n_boot=settings.bootstrap.n_boot, level=settings.bootstrap.level, seed=settings.seed)
            for target in targets
        }
        return Leaderboard(self.space, self.dataset, frame, proxy_info, targets, results_by_target, self.notes,
                           self._run_settings())

    def _run_settings(self) -> dict:
        """How the run was made (``Leaderboard.settings``, the ``settings`` of ``run.json``)."""
        settings, study, proxy_info = self.settings, self.study, self.proxy_info
        seconds = {}
        for proxy in self.proxies:
            values = [r.get("seconds") for r in self.records
                      if r["proxy"] == proxy.name and r.get("seconds") is not None]
            seconds[proxy.name] = float(np.mean(values)) if values else math.nan
        return {"sample": settings.sample, "indices": settings.indices is not None, "seed": settings.seed,
                "n_candidates": int(len(self.candidates)), "n_selected": len(self.chosen),
                "n_boot": settings.bootstrap.n_boot, "level": settings.bootstrap.level,
                "protocol": self.protocol.settings(), "device": study.execution.device,
                "tables": [t for t in dict.fromkeys(s for _, s in proxy_info.values())
                           if t not in ("computed", "aggregate")],
                "computed": [p.name for p in self.proxies], "seconds_per_arch": seconds,
                "results": str(study.store.path) if study.store is not None else None,
                "machine": machine_description(study.execution.device), "new_records": self.new_records,
                "wall_seconds": round(time.perf_counter() - self.started, 1)}
