"""Tables and figures of the whole-space job, from whatever it has scored so far.

Reads the committed chunks and the local shard stores of :mod:`job` (``evaluation/whole_space``)
and writes, next to this script (rerun it when more cells land; every figure names N)::

    scores.csv.gz          one row per cell: index, arch, one column per proxy (NaN: not
                           computable / not finite / not yet scored), status, not_computable
    zc_nasbench201.json.gz NASLib's zero-cost file for cifar10 (every fully scored cell)
    leaderboard.md / .csv  Kendall tau, Spearman rho over all scored cells, the non-isomorphic
                           ones and NAS-Bench-Suite-Zero's 9,445, each beside the figures
                           published on the same cells (PUBLISHED, PUBLISHED_ON)
    running_tau.csv / .png xi-GSNR's Kendall tau over cells 0..n-1 (index order) beside the
                           authors' released running tau
    report.md              all of it, with the command and the counts, and the authors' NB201
                           search protocol replayed on the table

Usage::

    python evaluation/whole_space/report.py --data-root ../shared/data
    python evaluation/whole_space/report.py --authors-log gradmeansq_gradvar_c10_b64n8_e08.log   # re-extract

``--authors-log``: the Xi-GSNR repository's ``Xi_GSNR_Consistency/logs/gradmeansq_gradvar_c10_b64n8_e08.log``
(github.com/Sunzh1996/Xi-GSNR); its running Kendall tau and Spearman rho are extracted to
``authors_running_tau.csv`` (every n up to 200, then every 25, and the last), which later runs read.
"""
from __future__ import annotations

import argparse
import gzip
import math
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from job import HERE, N_CELLS, Layout, cell_records, check_job_folder, chunk_files, proxy_names  # noqa: E402

#: where the published figures were measured: the cells, and how the cells a proxy cannot
#: score were treated (read from each group's released code)
PUBLISHED_ON = {
    "all": "all 15,625 cells",
    "suitezero": "NAS-Bench-Suite-Zero's 9,445 cells",
}
TREATMENT = {
    "xi_gsnr": "all 15,625 ranked; a cell without gradient scores 0, the lowest (Sunzh1996/Xi-GSNR, "
               "Xi_GSNR_Consistency/run_gsnr.py; its log ends at n = 15,625 with τ 0.6609)",
    "aznas": "all 15,625 ranked; a component that fails (NaN, or no gradient through the cell) scores -inf, "
             "the lowest rank of that component (cvlab-yonsei/AZ-NAS, NB201/tss_general.ipynb, "
             "NB201/ZeroShotProxy/compute_az_nas_score.py)",
    "vkdnw": "NAS-Bench-Suite-Zero's 9,445 only (GRAF's valid cells, one per group of cells that differ only in "
             "operations cut off by `none`: 340 of the 341 cells with no path from input to output are dropped); "
             "in the one left, -inf or NaN becomes the proxy's smallest finite score (ondratybl/VKDNW at commit "
             "779a3a8, NB201/tss_analyze.ipynb, `compute_graf = True`: 9,445 cells; paper_preparation.ipynb)",
}
#: published NAS-Bench-201 CIFAR-10 Kendall tau (and Spearman rho where given): (proxy, who,
#: tau, rho, cells (a key of PUBLISHED_ON), treatment (a key of TREATMENT))
PUBLISHED = [
    ("xi_gsnr", "xi-GSNR, the paper (Table 1)", 0.661, 0.845, "all", "xi_gsnr"),
    ("aznas", "AZ-NAS, its own paper", 0.741, None, "all", "aznas"),
    ("aznas", "AZ-NAS, VKDNW's reproduction", 0.712, 0.892, "suitezero", "vkdnw"),
    ("vkdnw_agg", "VKDNW_agg (VKDNW Table 1)", 0.750, 0.919, "suitezero", "vkdnw"),
    ("trainable_layers", "layer count (VKDNW Table 1)", 0.626, 0.767, "suitezero", "vkdnw"),
    ("flops", "FLOPs (VKDNW Table 1)", 0.623, 0.799, "suitezero", "vkdnw"),
    ("jacov", "jacov (VKDNW Table 1)", 0.616, None, "suitezero", "vkdnw"),
    ("zico", "ZiCo (VKDNW Table 1)", 0.607, None, "suitezero", "vkdnw"),
    ("nwot", "NASWOT (VKDNW Table 1)", 0.571, None, "suitezero", "vkdnw"),
    ("synflow", "synflow (VKDNW Table 1)", 0.561, None, "suitezero", "vkdnw"),
]
SUITEZERO = "nb201/suitezero_cifar10_9445.csv"
TUNING = HERE.parent / "ensemble" / "tuning_indices.txt"
AUTHORS_TAU = HERE / "authors_running_tau.csv"


# --- the table -------------------------------------------------------------------------------------

def load_long(layout: Layout) -> pd.DataFrame:
    """One row per (index, proxy) from every chunk and shard store (a non-error record wins)."""
    best = cell_records([p for *_, p in chunk_files(layout)] + sorted(layout.store.glob("*.jsonl")))
    rows = [(i, p, r["arch"], r.get("status"), r["score"] if r.get("status") == "ok" else math.nan, r.get("seconds"))
            for (i, p), r in best.items()]
    return pd.DataFrame(rows, columns=["index", "proxy", "arch", "status", "score", "seconds"])


def wide_table(long: pd.DataFrame, truth: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Every cell: arch, one score column per proxy, ``status`` (scored / partial / not scored)
    and ``not_computable`` (the proxies whose record is not computable or not finite)."""
    ok = long[long.status != "error"]
    scores = ok.pivot(index="index", columns="proxy", values="score").reindex(index=truth.index, columns=names)
    table = pd.concat([truth[["arch"]], scores], axis=1)
    counts = ok.groupby("index").proxy.nunique().reindex(truth.index, fill_value=0)
    table["status"] = np.where(counts >= len(names), "scored", np.where(counts > 0, "partial", "not scored"))
    bad = ok[ok.status.isin(["not computable", "nonfinite"])]
    table["not_computable"] = bad.groupby("index").proxy.agg(lambda s: ";".join(sorted(s))).reindex(truth.index)
    table.index.name = "index"
    return table


def write_zc_json(table: pd.DataFrame, long: pd.DataFrame, validation: pd.Series, test: pd.Series,
                  names: list[str], path: Path) -> int:
    """NASLib's ``zc_nasbench201.json`` (gzip) for cifar10 through the project's writer
    (:func:`xigsnr_naslib.integrations.naslib.runner.merge_zc_json`): ``{"cifar10": {str(op-index tuple):
    {proxy: {"score", "time"}, "val_accuracy", "test_accuracy"}}}`` for every fully scored
    cell; a score that is not computable is NASLib's -1e8. Returns the number of cells."""
    import tempfile

    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.integrations.naslib.runner import _atomic_write_json, merge_zc_json, read_zc_json
    from xigsnr_naslib.analysis.score_tables import NASLIB_FAILED

    codec = get_card("nb201").naslib
    done = table.index[table.status == "scored"]
    keys = {i: codec.to_naslib(table.at[i, "arch"]) for i in done}
    seconds = long.set_index(["index", "proxy"]).seconds
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        plain = Path(tmp) / "zc_nasbench201.json"
        for name in names:
            records = [{"arch_key": keys[i], "score": NASLIB_FAILED if math.isnan(table.at[i, name]) else
                        float(table.at[i, name]), "seconds": _time(seconds.get((i, name))),
                        "accuracy": float(validation[i]), "accuracy_kind": "val"} for i in done]
            merge_zc_json(plain, "cifar10", name, records)
        data = read_zc_json(plain) or {"cifar10": {}}
        for i in done:
            data["cifar10"][keys[i]]["test_accuracy"] = float(test[i])
        _atomic_write_json(plain, data)
        with open(plain, "rb") as src, gzip.GzipFile(Path(tmp) / "out.gz", "wb", mtime=0) as dst:
            dst.write(src.read())
        (Path(tmp) / "out.gz").chmod(0o644)
        (Path(tmp) / "out.gz").replace(path)
    return len(done)


def _time(value) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


# --- leaderboards ----------------------------------------------------------------------------------

def subsets(table: pd.DataFrame, truth: pd.DataFrame, data_root: Path) -> dict[str, tuple[str, pd.Index]]:
    """The scored cells, by key (``all``, ``non-isomorphic``, ``suitezero``: the keys of
    :data:`PUBLISHED_ON` where figures were published on those cells): (title, cells). All, the
    non-isomorphic ones (the lowest index of each NB201 isomorphism class), NAS-Bench-Suite-Zero's 9,445."""
    scored = table.index[table.status == "scored"]
    reference = pd.read_csv(data_root / "nb201/nb201_groundtruth_all15625.csv", index_col="nb201_index")
    unique = reference.reset_index().groupby("isomorphism_unique_str").nb201_index.min()
    suite = pd.read_csv(data_root / SUITEZERO, usecols=["nb201_index"]).nb201_index
    everything = f"all {N_CELLS:,} cells" if len(scored) == N_CELLS else "all scored cells"
    return {"all": (everything, scored),
            "non-isomorphic": (f"non-isomorphic (of {len(unique):,})", scored.intersection(pd.Index(unique.to_numpy()))),
            "suitezero": (f"NAS-Bench-Suite-Zero's {len(suite):,}", scored.intersection(pd.Index(suite.to_numpy())))}


def board(table: pd.DataFrame, accuracy: pd.Series, cells: pd.Index, names: list[str], n_boot: int) -> pd.DataFrame:
    """Per proxy: tau and rho (not computable left out) with bootstrap intervals, tau with
    not computable ranked last, P@Top-5%, and how many cells were not computable."""
    from xigsnr_naslib.analysis.metrics import kendall_tau, metric_table, precision_at_top, spearman_rho

    metrics = {"kendall_tau": kendall_tau, "spearman_rho": spearman_rho,
               "p_at_top5%": lambda s, a: precision_at_top(s, a, 0.05)}
    sub = table.loc[cells, names]
    out = metric_table({n: sub[n].to_numpy(float) for n in names}, accuracy[cells].to_numpy(float), metrics,
                       n_boot=n_boot, seed=0)
    out["not_computable"] = [int(sub[n].isna().sum()) for n in names]
    out["kendall_tau_last"] = [kendall_tau(sub[n].fillna(-np.inf).to_numpy(float), accuracy[cells].to_numpy(float))
                               for n in names]
    return out.sort_values("kendall_tau", ascending=False)


def board_markdown(title: str, frame: pd.DataFrame, n_cells: int, cells: str) -> str:
    """A board as Markdown, beside the figures published on the same cells (``cells``: a key of
    :data:`PUBLISHED_ON`, or one no figure was published on)."""
    where = PUBLISHED_ON.get(cells)
    header = f"published τ / ρ on {where}" if where else "published τ / ρ (none on these cells)"
    lines = [f"**{title}**: {n_cells:,} cells", "",
             "| # | proxy | Kendall τ [95% CI] | Spearman ρ [95% CI] | τ, not computable last | P@Top5% | "
             f"not computable | {header} |", "|---:|:---|---:|---:|---:|---:|---:|:---|"]
    for rank, (name, r) in enumerate(frame.iterrows(), start=1):
        ci = (lambda m: f"{r[m]:.3f} [{r[m + '_low']:.3f}, {r[m + '_high']:.3f}]" if m + "_low" in r
              else f"{r[m]:.3f}")
        published = "; ".join(f"{tau:.3f}" + (f" / {rho:.3f}" if rho else "") + f" ({who})"
                              for key, who, tau, rho, on, _ in PUBLISHED if key == name and on == cells)
        lines.append(f"| {rank} | {name} | {ci('kendall_tau')} | {ci('spearman_rho')} | {r.kendall_tau_last:.3f} | "
                     f"{r['p_at_top5%']:.2f} | {int(r.not_computable)} | {published} |")
    return "\n".join(lines)


# --- running tau -----------------------------------------------------------------------------------

def extract_authors_log(log: Path, out: Path) -> None:
    """The authors' running Kendall tau / Spearman rho (``<k> kendalltau = v``: cells 0..k)."""
    pattern = re.compile(r"\s(\d+) (kendalltau|spearmanr) = (\S+)\s*$")
    values: dict[int, dict] = {}
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = pattern.search(line)
            if m:
                values.setdefault(int(m.group(1)) + 1, {})[m.group(2)] = float(m.group(3))
    last = max(values)
    keep = [n for n in sorted(values) if n <= 200 or n % 25 == 0 or n == last]
    frame = pd.DataFrame({"n_cells": keep, "kendall_tau": [values[n].get("kendalltau") for n in keep],
                          "spearman_rho": [values[n].get("spearmanr") for n in keep]})
    frame.to_csv(out, index=False, float_format="%.10g")


def running_tau(table: pd.DataFrame, accuracy: pd.Series, proxy: str = "xi_gsnr") -> pd.DataFrame:
    """Kendall tau of ``proxy`` over cells 0..n-1 (the scored prefix), not computable ranked
    last (the authors' code scores a cell without gradient 0, its lowest), at the authors'
    checkpoints, beside their released values."""
    from scipy import stats

    scored = (table.status == "scored").to_numpy()
    prefix = int(np.argmin(scored)) if not scored.all() else len(scored)
    authors = pd.read_csv(AUTHORS_TAU) if AUTHORS_TAU.exists() else pd.DataFrame(columns=["n_cells", "kendall_tau"])
    s = table[proxy].fillna(-np.inf).to_numpy(float)
    a = accuracy.reindex(table.index).to_numpy(float)
    rows = []
    for n in sorted(set(authors.n_cells.astype(int)) | {prefix}):
        if 2 <= n <= prefix:
            rows.append({"n_cells": n, "kendall_tau": float(stats.kendalltau(s[:n], a[:n]).statistic)})
    ours = pd.DataFrame(rows, columns=["n_cells", "kendall_tau"])
    theirs = authors[["n_cells", "kendall_tau"]].rename(columns={"kendall_tau": "authors_kendall_tau"})
    return ours.merge(theirs, on="n_cells", how="left"), prefix


def running_agreement(running: pd.DataFrame) -> str:
    """How far this table's running τ is from the authors' at every n both have (all n, and n >= 200)."""
    both = running.dropna(subset=["authors_kendall_tau"])
    both = both[both.n_cells >= 10]
    if both.empty:
        return ""
    parts = []
    for label, rows in (("n >= 10", both), ("n >= 200", both[both.n_cells >= 200])):
        if len(rows):
            d = rows.kendall_tau - rows.authors_kendall_tau
            worst = rows.loc[d.abs().idxmax()]
            parts.append(f"{label} ({len(rows)} values of n): mean {d.mean():+.4f}, largest |difference| "
                         f"{d.abs().max():.4f} (n = {int(worst.n_cells):,})")
    return "\nThis table's τ minus the authors' at every n both have, " + "; ".join(parts) + ".\n"


def running_figure(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    authors = pd.read_csv(AUTHORS_TAU)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(authors.n_cells, authors.kendall_tau, color="0.6", label="authors' released log")
    ax.plot(frame.n_cells, frame.kendall_tau, color="C0", label="this table (xi_gsnr)")
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("cells 0..n-1 (NB201 index order)")
    ax.set_ylabel("Kendall τ (CIFAR-10 test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- the authors' search ---------------------------------------------------------------------------

def authors_search(scores: np.ndarray, accuracy: np.ndarray, n_runs: int = 500, n_samples: int = 100,
                   seed: int = 1) -> dict:
    """The Xi-GSNR repository's ``gradnoise_search_201.py`` on a score table: ``np.random.seed(seed)``,
    then per run ``np.random.randint(0, 15625, n_samples)`` (with replacement) and the cell of
    ``np.nanargmax`` of the scores; its CIFAR-10 test accuracy. Cells not (yet) scored are NaN
    (``nanargmax`` passes them over); a run whose draws are all NaN chooses nothing."""
    state = np.random.RandomState(seed)  # the legacy global generator's stream after np.random.seed(seed)
    chosen, full = [], 0
    for _ in range(n_runs):
        draws = state.randint(0, len(scores), n_samples)
        values = scores[draws]
        full += int(not np.isnan(values).any())
        if not np.isnan(values).all():
            chosen.append(accuracy[draws[np.nanargmax(values)]])
    chosen = np.asarray(chosen, dtype=float)
    return {"runs": n_runs, "runs_choosing": len(chosen), "runs_all_scored": full,
            "mean": float(chosen.mean()) if len(chosen) else math.nan,
            "std": float(chosen.std()) if len(chosen) else math.nan}


def search_markdown(table: pd.DataFrame, accuracy: pd.Series, names: list[str]) -> str:
    a = accuracy.reindex(table.index).to_numpy(float)
    lines = ["| scores | runs with a choice | runs whose 100 draws are all scored | "
             "CIFAR-10 test, mean ± std (ddof 0) |",
             "|:---|---:|---:|---:|"]
    for name in names:
        s = table[name].where(table.status == "scored").to_numpy(float)
        r = authors_search(s, a)
        lines.append(f"| {name} | {r['runs_choosing']} / {r['runs']} | {r['runs_all_scored']} | "
                     f"{r['mean']:.2f} ± {r['std']:.2f} |")
    oracle = authors_search(a.copy(), a)
    lines.append(f"| oracle (the test accuracy itself) | {oracle['runs_choosing']} / 500 | 500 | "
                 f"{oracle['mean']:.2f} ± {oracle['std']:.2f} |")
    return "\n".join(lines)


# --- the report ------------------------------------------------------------------------------------

def ensemble_markdown(table: pd.DataFrame, accuracy: pd.Series) -> str:
    """The ensemble (and its members) over the scored cells, and over them less the ensemble's
    1,000 tuning cells (its rule was fitted there)."""
    from xigsnr_naslib.analysis.metrics import kendall_tau, spearman_rho

    scored = table.index[table.status == "scored"]
    tuning = pd.Index([int(t) for t in TUNING.read_text().replace(",", " ").split()])
    lines = ["| proxy | cells | Kendall τ | Spearman ρ | cells less the tuning 1,000 | Kendall τ | Spearman ρ |",
             "|:---|---:|---:|---:|---:|---:|---:|"]
    for name in ("ensemble", "meco", "xi_gsnr", "swap"):
        row = f"| {name} "
        for cells in (scored, scored.difference(tuning)):
            s, a = table.loc[cells, name].to_numpy(float), accuracy[cells].to_numpy(float)
            n = int((~np.isnan(s)).sum())
            row += f"| {n:,} | {kendall_tau(s, a):.3f} | {spearman_rho(s, a):.3f} "
        lines.append(row + "|")
    return "\n".join(lines)


def report_markdown(table: pd.DataFrame, truth: pd.DataFrame, sections: list[str], running: pd.DataFrame,
                    prefix: int, n_zc: int, names: list[str], made: tuple) -> str:
    """The report; ``made``: (the command's arguments, its seconds, whether the figure was drawn)."""
    argv, seconds, figure = made
    counts = table.status.value_counts()
    command = "python evaluation/whole_space/report.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    published = "\n".join(f"- {who}: τ {tau:.3f}" + (f", ρ {rho:.3f}" if rho else "") + f"; {PUBLISHED_ON[on]}"
                          for _, who, tau, rho, on, _ in PUBLISHED)
    treatments = "\n".join(f"- {', '.join(who for _, who, *_, how in PUBLISHED if how == key)}: {text}"
                           for key, text in TREATMENT.items())
    logged = running.n_cells[running.authors_kendall_tau.notna()]
    marks = [n for n in (10, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15625) if n <= prefix] + [prefix]
    marks += [int(logged.max())] if len(logged) else []  # the authors' last logged n within the prefix
    shown = running[running.n_cells.isin(marks)].drop_duplicates("n_cells")
    complete = counts.get("scored", 0) == N_CELLS  # the wording of a finished job: no prefix, no "so far"
    if complete:
        title, cells_note = "", "Every cell is scored, so the figures below are over the whole space."
        prefix_note = f"all {N_CELLS:,} cells are scored"
        search_note = ("Every cell is scored, so this is the script's own run on this table, draw for draw.")
    else:
        title = " (so far)"
        cells_note = ("The scored cells are those the sharded job has\n"
                      "finished, in index order shard by shard, so they are not a uniform sample until the job ends.")
        prefix_note = f"the scored prefix is {prefix:,} cells"
        search_note = "Exact once every cell is scored; until then\nunscored cells are NaN and passed over."
    run_lines = ["| n (cells 0..n-1) | xi_gsnr τ (this table) | authors' released τ |", "|---:|---:|---:|"]
    run_lines += [f"| {int(r.n_cells):,} | {r.kendall_tau:.4f} | "
                  f"{'not logged at this n' if math.isnan(r.authors_kendall_tau) else f'{r.authors_kendall_tau:.4f}'} |"
                  for r in shown.itertuples()]
    return f"""# NAS-Bench-201 CIFAR-10, the whole space{title}

Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M %Z')} in {seconds:.0f} s, from the job's chunks and stores.

Cells: {counts.get('scored', 0):,} scored with all {len(names)} proxies, {counts.get('partial', 0):,} partly,
{counts.get('not scored', 0):,} not yet, of {N_CELLS:,}. {cells_note}

## Leaderboards

Not computable (a score the proxy cannot give the cell, e.g. a cell with no path from input to
output): left out of τ, ρ and P@Top5% (its count is shown), and in the column "τ, not computable
last" ranked below every computed score. Intervals: percentile bootstrap over cells.

{chr(10).join(s + chr(10) for s in sections)}
Published figures (NAS-Bench-201 CIFAR-10), each beside this table's board of the same cells:
{published}

How each treats the cells a proxy cannot score (read from the released code):
{treatments}

## xi-GSNR's running τ in index order

Kendall τ of `xi_gsnr` over cells 0..n-1 (not computable ranked last, as the authors' code scores
a cell without gradient 0, its lowest) beside the running τ of the authors' released log
(`authors_running_tau.csv`); {prefix_note}. Every checkpoint: `running_tau.csv`.
{running_agreement(running)}

{chr(10).join(run_lines)}

## The ensemble over the scored space

{ensemble_markdown(table, truth.accuracy)}

## The authors' search protocol, replayed on this table

`gradnoise_search_201.py` of the Xi-GSNR repository: `np.random.seed(1)`; 500 runs, each the best
(`np.nanargmax`) of 100 cells drawn uniformly with replacement from all 15,625; the chosen cell's
CIFAR-10 test accuracy (mean over seeds, 200 epochs). {search_note} The paper's Table 4: 94.05 ± 0.18 (xi-GSNR pruning, 4 runs);
this project's own search (`evaluation/search_nb201/search_table.md`): sample N = 100, 93.18 ± 0.57
(4 runs), best of 100 expected over the 2,000-cell pool 93.15 ± 0.59.

{search_markdown(table, truth.accuracy, ["xi_gsnr", "xi_gsnr_paper", "ensemble", "meco"])}

## Files

`scores.csv.gz` (all {N_CELLS:,} rows), `zc_nasbench201.json.gz` ({n_zc:,} cells, NASLib's layout),
`leaderboard.csv`, `running_tau.csv`{", `running_tau.png`" if figure else " (no figure: `--no-figures`)"}.
"""


# --- main ------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.data.data_root import resolve_data_root
    from xigsnr_naslib.benchmarks.nb201.ground_truth import nb201_cifar10_validation

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None, help="reference data root (default $XIGSNR_DATA_ROOT)")
    p.add_argument("--root", default=str(HERE), help="the job's folder (chunks/, store/; default this script's)")
    p.add_argument("--out", default=str(HERE), help="where to write (default this script's folder)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples of the intervals (default 200)")
    p.add_argument("--authors-log", default=None, help="re-extract authors_running_tau.csv from this log")
    p.add_argument("--no-figures", action="store_true", help="skip running_tau.png")
    args = p.parse_args(argv)
    from xigsnr_naslib.errors import DataError

    try:  # a wrong --root is named, not reported as 0 cells scored
        check_job_folder(Layout(Path(args.root)))
    except DataError as exc:
        print(f"report.py: {exc}", file=sys.stderr)
        return 1
    began = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.authors_log:
        extract_authors_log(Path(args.authors_log), AUTHORS_TAU)
    data_root = Path(resolve_data_root(args.data_root))
    truth = get_card("nb201").load_ground_truth("cifar10", str(data_root))
    validation = nb201_cifar10_validation(str(data_root)).accuracy
    names = proxy_names()
    long = load_long(Layout(Path(args.root)))
    table = wide_table(long, truth, names)
    table.to_csv(out / "scores.csv.gz", float_format="%.9g", compression={"method": "gzip", "mtime": 0})
    n_zc = write_zc_json(table, long, validation, truth.accuracy, names, out / "zc_nasbench201.json.gz")
    sections, frames = [], []
    for key, (title, cells) in subsets(table, truth, data_root).items():
        if len(cells) < 3:
            sections.append(f"**{title}**: {len(cells)} cells scored, too few to rank")
            continue
        frame = board(table, truth.accuracy, cells, names, args.n_boot)
        frames.append(frame.assign(subset=title, n_cells=len(cells)))
        sections.append(board_markdown(title, frame, len(cells), key))
    if frames:
        pd.concat(frames).rename_axis("proxy").to_csv(out / "leaderboard.csv", float_format="%.6g")
    running, prefix = running_tau(table, truth.accuracy)
    running.to_csv(out / "running_tau.csv", index=False, float_format="%.6g")
    figure = not args.no_figures and len(running) > 0 and AUTHORS_TAU.exists()
    if figure:
        running_figure(running, out / "running_tau.png")
    text = report_markdown(table, truth, sections, running, prefix, n_zc, names,
                           (argv, time.perf_counter() - began, figure))
    (out / "leaderboard.md").write_text("\n\n".join(sections) + "\n")
    (out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
