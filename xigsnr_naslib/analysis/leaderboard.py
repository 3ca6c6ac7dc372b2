"""The proxy leaderboard: every proxy ranked on the same architectures, with the same metrics.

:func:`build_leaderboard` is what ``xigsnr-naslib leaderboard`` runs. Its sources:

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
score, a JSON record of the run, and the figures (:mod:`.figures`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

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

__all__ = ["DEFAULT_PROXIES", "default_proxies", "default_proxies_for", "Leaderboard", "build_leaderboard",
           "load_tables"]

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
        raise ValueError(f"two tables with the same name among {', '.join(taken)}; rename a zc json file")
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
        """Write ``leaderboard.md``, ``leaderboard.csv``, ``scores.csv``, ``run.json`` and the figures."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = {"markdown": out / "leaderboard.md", "csv": out / "leaderboard.csv",
                   "scores": out / "scores.csv", "run": out / "run.json"}
        self.summary().to_csv(written["csv"], index=False, float_format="%.6g")
        self.scores.to_csv(written["scores"], float_format="%.9g")
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
    s = board.settings
    lines = [f"## {board.space} on {board.dataset}: {board.n_archs:,} architectures", ""]
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
    for target, definition in board.targets.items():
        frame = board.metrics[target].loc[board.ranking(target)]
        metrics = board.metric_names()
        # best = the highest value at the printed precision; a column without variation has none
        best = {m: (frame[m].max(skipna=True) if frame[m].round(3).nunique() > 1 else np.nan) for m in metrics}
        lines += ["", f"### Against {_TARGET_TITLES.get(target, target)}", "", f"Target: {definition}.", ""]
        heads = ["#", "proxy (source)"] + [_header(m) + (" [CI]" if m in ci_metrics and s.get("n_boot") else "")
                                          for m in metrics]
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
    if board.notes:
        lines += ["", "### Notes on the sources: what left the architecture set, and why", ""]
        lines += [f"- {n}" for n in board.notes]
    return "\n".join(lines) + "\n"


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


def build_leaderboard(study: Study, *, tables: Sequence[str] | None = None, zc_json: Sequence[str | Path] = (),
                      exclude: Sequence[str] = (), sample: int | None = 500, seed: int = 0,
                      bootstrap: Bootstrap = Bootstrap(), metrics: Mapping[str, Metric] | None = None,
                      indices: Sequence[int] | None = None, log: Callable[[str], None] = print) -> Leaderboard:
    """Build the leaderboard of the study's space and dataset (see the module docstring).

    ``study``: the card, dataset, proxies to compute (``[]`` for none), protocol, execution
    and results store (scores found there are reused; only what is missing is scored);
    ``tables``: names the card lists (default: its default ones; ``[]`` for none);
    ``zc_json``: NASLib ``zc_<space>.json`` files; ``exclude``: proxy keys to leave out
    (``"naswot.naswot"``, ``"xi_gsnr"``); ``sample``: the sample size (None: every
    candidate); ``seed``: seeds the sample and the bootstrap; ``indices``: these benchmark
    indices instead of a sample (those missing from a source leave with a note; an index the
    ground truth lacks raises ``KeyError`` naming it).
    """
    started = time.perf_counter()
    space, dataset, protocol = study.card.name, study.dataset, study.protocol
    new_records = 0
    n_boot, level = bootstrap.n_boot, bootstrap.level
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        log(f"  - {text}")

    # 1. ground truth
    truth = study.card.load_ground_truth(dataset, study.data_root)
    search_space = study.space
    with reading(truth.attrs.get("source", "the ground truth"), f"{study.card.name} ground truth"):
        archs = [search_space.encode(search_space.decode(a)) for a in truth["arch"]]
    frame = pd.DataFrame({"arch": archs, TEST_TARGET: truth["accuracy"].to_numpy(dtype=float)}, index=truth.index)
    repeated = frame["arch"][frame["arch"].duplicated(keep=False)]
    if len(repeated):  # each architecture counts once: two spellings of one are one architecture
        first = repeated.iloc[0]
        same = [int(i) for i in repeated.index[repeated == first]]
        raise ValueError(f"the {space} ground truth lists one architecture at indices {same} "
                         f"(canonical string {first!r}): {len(repeated)} rows hold repeated architectures")
    targets = {TEST_TARGET: truth.attrs.get("definition", "test accuracy")}
    log(f"ground truth: {len(frame):,} {space} architectures on {dataset} ({targets[TEST_TARGET]})")

    # 2. precomputed tables
    proxy_info: dict[str, tuple[str, str]] = {}
    for table in load_tables(study, tables, zc_json):
        log(f"table {table.name}: {len(table):,} architectures, {len(table.proxies)} proxies ({table.source})")
        for text in table.notes:
            note(f"{table.name}: {text}")
        outside = int((~table.scores.index.isin(frame["arch"])).sum())
        if outside:
            note(f"{table.name}: {outside:,} architecture(s) not in the ground truth are left out")
        keys = {p: f"{table.name}.{p}" for p in table.proxies}
        frame = frame.join(table.scores.rename(columns=keys), on="arch")
        proxy_info.update({key: (p, table.name) for p, key in keys.items()})
        if VAL_TARGET in table.targets and VAL_TARGET not in targets:
            frame = frame.join(table.targets[[VAL_TARGET]], on="arch")
            targets[VAL_TARGET] = _VAL_DEFINITION.format(table=table.name)
    if VAL_TARGET not in targets:
        log(f"no table for {space}/{dataset} carries NASLib's validation accuracy: only the test target")

    computed_names = [p.name for p in study.proxies]
    unknown = [k for k in exclude if k not in proxy_info and k not in computed_names and k not in POPULATION_AGGREGATES]
    if unknown:
        raise KeyError(f"cannot exclude {', '.join(map(repr, unknown))}: no such proxy here; proxies are named "
                       f"like 'xi_gsnr' (computed) or 'suitezero.synflow' (table.proxy)")
    for key in exclude:
        if key in proxy_info:
            del proxy_info[key]
            frame = frame.drop(columns=key)
        log(f"excluded on request: {key}")
    proxy_objs = [p for p in study.proxies if p.name not in exclude]

    # 3. the candidates: a finite value in every source
    value_columns = [c for c in frame.columns if c != "arch"]
    finite = pd.DataFrame(np.isfinite(frame[value_columns].to_numpy(dtype=float)), index=frame.index,
                          columns=value_columns)
    total = len(frame)
    for target in targets:
        absent = int((~finite[target]).sum())
        if absent:
            note(f"{target}: no finite value for {_fmt_count(absent, total)} ground-truth architectures")
    for table_name in dict.fromkeys(source for _, source in proxy_info.values()):
        columns = [k for k, (_, source) in proxy_info.items() if source == table_name]
        covered, complete = int(finite[columns].any(axis=1).sum()), int(finite[columns].all(axis=1).sum())
        if complete < total:
            note(f"{table_name}: has {_fmt_count(covered, total)} ground-truth architectures, {complete:,} of them "
                 "with every score finite; the others leave the set")
    candidates = frame.index[finite.all(axis=1)]
    log(f"candidates (a finite value in every source): {len(candidates):,} architectures")
    if len(candidates) == 0:
        raise ValueError("no architecture is in every source; drop a table (--table) or a proxy (--exclude)")

    # 4. the sample
    if indices is not None:
        unknown = [i for i in indices if i not in frame.index]
        if unknown:
            raise KeyError(f"indices not in the {space} ground truth: {unknown[:10]}{' ...' if len(unknown) > 10 else ''}"
                           f" (valid: {frame.index.min()}..{frame.index.max()})")
        wanted = list(dict.fromkeys(int(i) for i in indices))
        in_set = set(candidates)
        chosen = [i for i in wanted if i in in_set]
        if len(chosen) < len(wanted):
            note(f"{len(wanted) - len(chosen)} of the {len(wanted)} requested architectures lack a finite value in "
                 "some source and leave the set")
    elif sample is None:
        chosen = list(candidates)
    else:
        if sample > len(candidates):
            raise ValueError(f"cannot sample {sample} architectures: only {len(candidates):,} are in every source "
                             "(see the notes above); ask for fewer, or drop a table")
        chosen = Selection(sample=sample, sample_seed=seed).apply(candidates)
    log(f"selected: {len(chosen):,} architectures "
        + ("(the requested indices)" if indices is not None else
           "(all candidates)" if sample is None else f"(seeded sample, seed {seed})"))
    frame = frame.loc[chosen]

    # 5. the computed scores
    records: list[dict] = []
    if proxy_objs:
        if study.store is not None:
            log(f"computed scores: {study.store.path} (resumed where present)")
        study = dataclasses.replace(study, proxies=proxy_objs)
        stored_before = len(study._done_records())
        records = study.score((int(i), search_space.decode(frame.at[i, "arch"])) for i in chosen)
        new_records = len(study._done_records()) - stored_before
        computed = scores_table(records).reindex(index=chosen, columns=[p.name for p in proxy_objs])
        for proxy in list(proxy_objs):
            failed = computed.index[~np.isfinite(computed[proxy.name].to_numpy(dtype=float))]
            if not len(failed):
                continue
            mine = {r["index"]: r for r in records if r["proxy"] == proxy.name}
            if 2 * len(failed) > len(chosen):
                # a proxy the space does not suit (zen without global average pooling, say) leaves
                # the board; it does not take the architectures with it
                reasons = sorted({mine[i].get("reason") or mine[i].get("error") or mine[i].get("status", "missing")
                                  for i in failed if i in mine} or {"missing"})
                note(f"{proxy.name}: no finite score for {len(failed)} of the {len(chosen)} selected architectures "
                     f"({'; '.join(map(str, reasons[:2]))}): it leaves the leaderboard, the architectures stay")
                computed = computed.drop(columns=proxy.name)
                proxy_objs.remove(proxy)
                continue
            examples = ", ".join(f"{i} ({mine.get(i, {}).get('status', 'missing')})" for i in list(failed)[:5])
            note(f"{proxy.name}: no finite score for {len(failed)} selected architecture(s), which leave the set "
                 f"for every proxy: index {examples}{' ...' if len(failed) > 5 else ''}")
        frame = frame.join(computed)
        proxy_info = {**{p.name: (p.name, "computed") for p in proxy_objs}, **proxy_info}
        keep = np.isfinite(frame[list(computed.columns)].to_numpy(dtype=float)).all(axis=1)
        frame = frame[keep]
    if len(frame) < 2:
        raise ValueError(f"only {len(frame)} architecture(s) left in every source: nothing to rank")
    if proxy_objs:
        # population aggregates of computed proxies (AZ-NAS's log-rank sum): ranks within this set
        for name, (members, rule) in POPULATION_AGGREGATES.items():
            if name not in exclude and all(m in computed.columns for m in members):
                frame[name] = rank_combine(frame[list(members)], rule)
                proxy_info[name] = (name, "aggregate")
    log(f"final set: {len(frame):,} architectures, ranked by {len(proxy_info)} proxies")

    # 6. metrics
    order = [k for k in proxy_info]
    columns = ["arch", *targets, *order]
    frame = frame[columns]
    metric_fns = dict(metrics if metrics is not None else standard_metrics())
    results_by_target = {
        target: metric_table({k: frame[k].to_numpy() for k in order}, frame[target].to_numpy(), metric_fns,
                             n_boot=n_boot, level=level, seed=seed)
        for target in targets
    }
    seconds = {}
    for proxy in proxy_objs:
        values = [r.get("seconds") for r in records if r["proxy"] == proxy.name and r.get("seconds") is not None]
        seconds[proxy.name] = float(np.mean(values)) if values else math.nan
    settings = {"sample": sample, "indices": indices is not None, "seed": seed, "n_candidates": int(len(candidates)), "n_selected": len(chosen),
                "n_boot": n_boot, "level": level, "protocol": protocol.settings(), "device": study.execution.device,
                "tables": [t for t in dict.fromkeys(s for _, s in proxy_info.values()) if t not in ("computed", "aggregate")],
                "computed": [p.name for p in proxy_objs], "seconds_per_arch": seconds,
                "results": str(study.store.path) if study.store is not None else None,
                "machine": machine_description(study.execution.device), "new_records": new_records,
                "wall_seconds": round(time.perf_counter() - started, 1)}
    return Leaderboard(space, dataset, frame, proxy_info, targets, results_by_target, notes, settings)
