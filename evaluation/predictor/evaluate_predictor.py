"""Few-shot predictors (:class:`xigsnr_naslib.analysis.predictor.ZeroCostPredictor`) against the label-free rules.

Stages (``--stage``):

``develop``
    The learner and the target (:data:`~xigsnr_naslib.analysis.predictor.LEARNERS`,
    :data:`~xigsnr_naslib.analysis.predictor.TARGETS`) are chosen here and only here, on a development
    pool that no reported number uses: the NAS-Bench-Suite-Zero NB201 CIFAR-10 cells outside the
    zoo board and outside the ensemble's tuning sample, split by seed 12345 into a development
    half and a report half. Features: the table's 13 proxies + graph features; 20, 100, 400
    training cells, 3 draws; test: 1,000 development cells. The choice (highest mean tau over
    the 9 runs, among the pairs whose mean fit takes at most ``MAX_FIT_SECONDS``) is written to
    ``learner_choice.json``.
``report``
    With the frozen choice: learning curves (training sizes, five seeded draws, disjoint test
    cells; proxies + graph, proxies only, graph only) on the setups below, the label-free
    rows on the same test cells, the published anchors, feature importances, the NB101
    label-free ensemble chosen on NB101 tuning cells, and the figure.

Setups (``setups`` in the code):

* ``nb201_board``: the 964-cell NB201 CIFAR-10 zoo board (every proxy column); test: 264 cells
  per draw, training sizes up to 700 (the largest that leaves those 264 disjoint).
* ``nb201_tuning_to_board``: training cells drawn from the ensemble's 1,000 NB201 tuning cells
  (the 11 proxies scored there), test: the 964 board cells (disjoint from them), sizes up to 1,000.
* ``nb201_suitezero``: the report half of the Suite-Zero cells (13 NASLib proxies); test 2,000.
* ``nb101_board``: the 300-cell NB101 zoo board; test 100 per draw, sizes up to 200.
* ``nb101_graph``: graph features only on the 2,500-cell NB101 reference sample; test 1,000.

Usage (from the project root)::

    python evaluation/predictor/evaluate_predictor.py --data-root ../shared/data --stage develop
    python evaluation/predictor/evaluate_predictor.py --data-root ../shared/data --stage report
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from xigsnr_naslib import get_card
from xigsnr_naslib.proxies.ensemble import POPULATION_AGGREGATES, rank_combine
from xigsnr_naslib.analysis.metrics import kendall_tau
from xigsnr_naslib.analysis.predictor import (ZeroCostPredictor, draw_split, evaluate_split, ranking_metrics,
                                     read_score_table)
from xigsnr_naslib.analysis.score_tables import read_suitezero_csv

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
BOARD201 = ROOT / "evaluation/leaderboard/nb201_cifar10_zoo/scores.csv"
BOARD101 = ROOT / "evaluation/leaderboard/nb101_cifar10/scores.csv"
ENSEMBLE_SCORES = ROOT / "evaluation/ensemble/scores.csv"
SIZES = (10, 20, 50, 100, 200, 400)
SEEDS = range(5)
DEV_SEED = 12345
#: the report stage fits about 400 models on a shared 2-core machine: a learner whose mean fit
#: (on the development runs) takes longer is not chosen
MAX_FIT_SECONDS = 5.0
#: published figures (NB201 CIFAR-10, Kendall tau): (label, tau, training cells)
ANCHORS = [("NASLib XGBoost on 13 zero-cost proxies (NAS-Bench-Suite-Zero), published", 0.794, 400),
           ("GRAF graph features (ICML 2024), published", 0.820, 1024),
           ("VKDNW + zero-cost proxies in a model, published", 0.840, 1024),
           ("VKDNW + zero-cost proxies + GRAF, published", 0.859, 1024)]


def codes_of(space: str, archs) -> list[str]:
    s = get_card(space).create_space()
    return [s.encode(s.decode(a)) for a in archs]


def truth_by_code(space: str, data_root) -> pd.Series:
    truth = get_card(space).load_ground_truth("cifar10", data_root)
    return pd.Series(truth["accuracy"].to_numpy(float), index=codes_of(space, truth["arch"]))


def nb201_tables(data_root):
    """The NB201 sources, each a DataFrame of proxy columns indexed by canonical string."""
    board = read_score_table(BOARD201, "nb201")
    scores = pd.read_csv(ENSEMBLE_SCORES)
    tuning = scores[scores["sample"] == "tuning"].drop(columns=["sample", "accuracy"])
    truth = get_card("nb201").load_ground_truth("cifar10", data_root)
    tuning.index = codes_of("nb201", truth.loc[tuning["index"], "arch"])
    tuning = tuning.drop(columns=["index"]).replace([np.inf, -np.inf], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        suite = read_suitezero_csv(Path(data_root) / "nb201/suitezero_cifar10_9445.csv").scores
    outside = suite.index.difference(board.index).difference(tuning.index)
    order = np.random.default_rng(DEV_SEED).permutation(len(outside))
    dev = suite.loc[outside[np.sort(order[: len(order) // 2])]]
    report = suite.loc[outside[np.sort(order[len(order) // 2:])]]
    return board, tuning, dev, report


def curve(space, table, acc: pd.Series, variants, sizes, n_test, choice, fixed_test=None, pool=None) -> list[dict]:
    """Learning curve rows: per variant, size and seed, the metrics on the test cells."""
    rows = []
    pool = list(pool if pool is not None else table.index)
    for seed in SEEDS:
        if fixed_test is None:
            train_pos, test_pos = draw_split(len(pool), max(sizes), n_test, seed)
            order = np.random.default_rng(seed).permutation(len(pool))[: max(sizes)]
            cells, test = [pool[i] for i in order], [pool[i] for i in test_pos]
        else:
            cells = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
            test = list(fixed_test)
        for n in sizes:
            train = cells[:n]
            archs, y = train + test, acc.loc[train + test].to_numpy()
            for variant, (proxies, graph) in variants.items():
                if variant != FULL and n not in ABLATION_SIZES + (max(sizes),):
                    continue
                model = ZeroCostPredictor(space, proxies, graph, table, choice["learner"], None, choice["target"],
                                          seed)
                r = evaluate_split(model, archs, y, np.arange(n), np.arange(n, n + len(test)))
                rows.append({"variant": variant, "n_train": n, "seed": seed, "n_test": len(test),
                             **{k: v for k, v in r.items() if k not in ("predicted", "model")}})
    return rows


def develop(data_root, log) -> dict:
    acc201 = truth_by_code("nb201", data_root)
    _, _, dev, _ = nb201_tables(data_root)
    rows = []
    for learner in ("xgboost", "lightgbm", "random_forest"):
        for target in ("quantile", "raw"):
            for seed in range(3):
                _, test_pos = draw_split(len(dev), 400, 1000, 100 + seed)
                rest = np.setdiff1d(np.arange(len(dev)), test_pos)
                for n in (20, 100, 400):
                    train = list(dev.index[np.random.default_rng(100 + seed).permutation(rest)[:n]])
                    test = list(dev.index[test_pos])
                    model = ZeroCostPredictor("nb201", "all", True, dev, learner, None, target, seed)
                    r = evaluate_split(model, train + test, acc201.loc[train + test].to_numpy(), np.arange(n),
                                       np.arange(n, n + len(test)))
                    rows.append({"learner": learner, "target": target, "n_train": n, "seed": seed, "tau": r["tau"],
                                 "fit_seconds": r["fit_seconds"], "predict_seconds": r["predict_seconds"]})
                    log(f"develop {learner} {target} n={n} seed={seed}: tau {r['tau']:.4f} ({r['fit_seconds']:.2f} s)")
    frame = pd.DataFrame(rows)
    frame.to_csv(OUT / "develop.csv", index=False, float_format="%.4f")
    return write_choice(frame, len(dev), log)


def write_choice(frame: pd.DataFrame, n_dev: int, log) -> dict:
    """The most accurate (learner, target) whose mean fit takes at most MAX_FIT_SECONDS."""
    summary = frame.groupby(["learner", "target"]).agg(tau=("tau", "mean"), fit_seconds=("fit_seconds", "mean"))
    affordable = summary[summary["fit_seconds"] <= MAX_FIT_SECONDS]
    best = affordable["tau"].idxmax()
    choice = {"learner": best[0], "target": best[1], "mean_tau": float(summary.loc[best, "tau"]),
              "rule": f"highest mean tau among those whose mean fit takes at most {MAX_FIT_SECONDS} s",
              "pool": f"Suite-Zero NB201 CIFAR-10 cells outside the zoo board and the tuning sample, development "
                      f"half (seed {DEV_SEED}): {n_dev} cells", "summary": summary.reset_index().to_dict("records")}
    (OUT / "learner_choice.json").write_text(json.dumps(choice, indent=2) + "\n")
    log(summary.to_string())
    return choice

FULL = "proxies + graph"
VARIANTS = {FULL: ("all", True), "proxies": ("all", False), "graph": ((), True)}
#: the ablations (proxies alone, graph alone) run at these sizes and the largest (CPU budget)
ABLATION_SIZES = (20, 100, 400)


def label_free(raw: pd.DataFrame, acc: pd.Series, test: list[str], columns) -> dict[str, float]:
    """Tau of label-free rules on the test cells: population aggregates ranked within them,
    and columns taken as they are."""
    out = {}
    for name, (members, rule) in POPULATION_AGGREGATES.items():
        if all(m in raw.columns for m in members):
            out[name] = kendall_tau(rank_combine(raw.loc[test, list(members)], rule).to_numpy(), acc.loc[test])
    for c in columns:
        out[c] = kendall_tau(raw.loc[test, c].to_numpy(), acc.loc[test])
    return out


def test_cells(pool: list[str], n_max: int, n_test: int, seed: int) -> list[str]:
    return [pool[i] for i in draw_split(len(pool), n_max, n_test, seed)[1]]


def choose_nb101_ensemble(board: pd.DataFrame, acc: pd.Series, log) -> tuple[list[dict], dict]:
    """Per draw: greedy forward selection (evaluation/choose_ensemble.py) on the 200 board cells
    outside the draw's 100 test cells, frozen, evaluated on those 100; the draw-0 choice is stored."""
    spec = importlib.util.spec_from_file_location("choose_ensemble", ROOT / "evaluation/choose_ensemble.py")
    chooser = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chooser)
    candidates = [c for c in board.columns if c not in POPULATION_AGGREGATES]
    pool = list(board.index)
    rows, stored = [], None
    for seed in SEEDS:
        test = test_cells(pool, 200, 100, seed)
        tune = [c for c in pool if c not in set(test)]
        table = board.loc[tune, candidates].assign(accuracy=acc.loc[tune].to_numpy())
        keep = [c for c in candidates if np.isfinite(table[c]).sum() >= 2 and table[c].nunique() > 1]
        members, path = chooser.greedy(table.dropna(subset=keep), keep, 0.002, 5, lambda *_: None)
        values = chooser.ensemble_values(board.loc[test], members)
        r = ranking_metrics(values, acc.loc[test].to_numpy())
        rows.append({"seed": seed, "members": " + ".join(m.proxy for m in members), "tuning_tau": path[-1][1], **r})
        log(f"NB101 ensemble draw {seed}: {rows[-1]['members']}: tuning tau {path[-1][1]:.3f}, test tau {r['tau']:.3f}")
        if seed == 0:
            stored = {"name": "ensemble_nb101", "members": [m.__dict__ for m in members],
                      "tuning": {"space": "nb101", "dataset": "cifar10", "n": len(tune), "cells": "the 300-cell NB101 "
                                 "zoo board less draw 0's 100 test cells", "protocol": "the board's (1 x 8, per-sample)",
                                 "path": path, "test_tau_draw0": r["tau"],
                                 "command": "python evaluation/predictor/evaluate_predictor.py --stage report"}}
    return rows, stored


def importances(space, table, acc, cells, choice) -> pd.Series:
    model = ZeroCostPredictor(space, "all", True, table, choice["learner"], None, choice["target"], 0)
    series = model.fit(cells, acc.loc[cells].to_numpy()).feature_importances_
    return series / series.sum()  # shares of the total gain


def run_setups(data_root, choice, log) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    acc201, acc101 = truth_by_code("nb201", data_root), truth_by_code("nb101", data_root)
    board, tuning, _, suite = nb201_tables(data_root)
    raw201 = pd.read_csv(BOARD201).set_axis(codes_of("nb201", pd.read_csv(BOARD201)["arch"]), axis=0)
    board101 = read_score_table(BOARD101, "nb101")
    raw101 = pd.read_csv(BOARD101).set_axis(list(board101.index), axis=0)
    common = [c for c in tuning.columns if c in board.columns]
    both = pd.concat([tuning[common], board[common]])
    setups = {  # name: (space, table, acc, sizes, n_test, fixed test, pool, variants, label-free (raw, columns))
        "nb201_board": ("nb201", board, acc201, SIZES + (700,), 264, None, None, VARIANTS,
                        (raw201, ["ensemble", "meco"])),
        "nb201_tuning_to_board": ("nb201", both, acc201, SIZES + (1000,), None, list(board.index), list(tuning.index),
                                  VARIANTS, (raw201, ["ensemble", "meco"])),
        "nb201_suitezero": ("nb201", suite, acc201, SIZES + (1000,), 2000, None, None, VARIANTS, None),
        "nb101_board": ("nb101", board101, acc101, (10, 20, 50, 100, 200), 100, None, None, VARIANTS,
                        (raw101, ["xi_gsnr_per_sample"])),
        "nb101_graph": ("nb101", None, acc101, SIZES + (1000,), 1000, None, list(acc101.index),
                        {"graph": ((), True)}, None),
    }
    rows, free = [], []
    for name, (space, table, acc, sizes, n_test, fixed, pool, variants, lf) in setups.items():
        started = time.time()
        part = curve(space, table, acc, variants, sizes, n_test, choice, fixed, pool)
        rows += [{"setup": name, **r} for r in part]
        log(f"{name}: {len(part)} fits in {time.time() - started:.0f} s")
        if lf is not None:
            pool_list = list(pool if pool is not None else table.index)
            for seed in SEEDS:
                test = fixed if fixed is not None else test_cells(pool_list, max(sizes), n_test, seed)
                free += [{"setup": name, "seed": seed, "rule": k, "tau": v}
                         for k, v in label_free(lf[0], acc, test, lf[1]).items()]
    ens_rows, stored = choose_nb101_ensemble(board101, acc101, log)
    free += [{"setup": "nb101_board", "seed": r["seed"], "rule": "ensemble_nb101", "tau": r["tau"]} for r in ens_rows]
    (OUT / "nb101_ensemble_choice.json").write_text(json.dumps(stored, indent=2) + "\n")
    pd.DataFrame(ens_rows).to_csv(OUT / "nb101_ensemble.csv", index=False, float_format="%.4f")
    imp = {"nb201_board (700 cells)": importances("nb201", board, acc201, list(board.index)[:700], choice),
           "nb201_tuning (1000 cells)": importances("nb201", both, acc201, list(tuning.index), choice),
           "nb101_board (200 cells)": importances("nb101", board101, acc101, list(board101.index)[:200], choice)}
    return pd.DataFrame(rows), pd.DataFrame(free), imp


GOALS = [("nb201_tuning_to_board", "proxies + graph", 1000, 0.86), ("nb201_suitezero", "proxies + graph", 1000, 0.86),
         ("nb201_board", "proxies + graph", 100, 0.80), ("nb201_tuning_to_board", "proxies + graph", 100, 0.80),
         ("nb201_suitezero", "proxies + graph", 100, 0.80), ("nb101_board", "proxies + graph", 100, 0.60)]
METRICS = ["tau", "rho", "ndcg@10", "p_at_top5%", "p_at_top10%", "fit_seconds"]


def figure(summary: pd.DataFrame, free: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    setups = list(dict.fromkeys(summary["setup"]))
    fig, axes = plt.subplots(1, len(setups), figsize=(4.2 * len(setups), 4.0), sharey=True)
    for ax, name in zip(axes, setups):
        part = summary[summary["setup"] == name]
        for variant, rows in part.groupby("variant", sort=False):
            ax.errorbar(rows["n_train"], rows["tau_mean"], yerr=rows["tau_sd"], marker="o", ms=3, capsize=2,
                        label=f"predictor: {variant}")
        lf = free[free["setup"] == name].groupby("rule")["tau"].mean()
        for i, (rule, tau) in enumerate(lf.items()):
            ax.axhline(tau, ls="--", lw=1, color=f"C{4 + i}", label=f"{rule} (no training; "
                       f"{'label-selected' if rule.startswith('ensemble') else 'label-free'})")
        if name.startswith("nb201"):
            for i, (label, tau, n) in enumerate(ANCHORS):
                ax.scatter([n], [tau], marker="*", s=70, color=f"C{8 + i % 2}" if i < 2 else "k", zorder=5,
                           label=label.replace(", published", f" (published, {n} cells)"))
        ax.set_xscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("training cells")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5.5, loc="lower right")
    axes[0].set_ylabel("Kendall tau on disjoint test cells (mean +- sd of 5 draws)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def write_markdown(summary, free, imp, choice, ens_rows, seconds) -> str:
    lines = ["# Few-shot predictors from zero-cost features", "",
             f"Learner: {choice['learner']}, target {choice['target']} (chosen in the develop stage on "
             f"{choice['pool']}; mean tau {choice['mean_tau']:.3f}; see develop.csv). Five seeded draws per size; "
             "test cells disjoint from training cells; mean (sd) over draws. "
             f"Report stage: {seconds:.0f} s.", "", "## Goals", "",
             "| setup | features | training cells | goal tau | measured tau (sd) | met |", "|---|---|---:|---:|---:|:-:|"]
    for setup, variant, n, goal in GOALS:
        row = summary[(summary.setup == setup) & (summary.variant == variant) & (summary.n_train == n)]
        if len(row):
            r = row.iloc[0]
            lines.append(f"| {setup} | {variant} | {n} | {goal:.2f} | {r.tau_mean:.3f} ({r.tau_sd:.3f}) | "
                         f"{'yes' if r.tau_mean >= goal else 'no'} |")
    ens = pd.DataFrame(ens_rows)
    lines.append(f"| nb101_board | label-free ensemble chosen on 200 NB101 tuning cells | 0 | 0.50 | "
                 f"{ens.tau.mean():.3f} ({ens.tau.std():.3f}) | {'yes' if ens.tau.mean() >= 0.5 else 'no'} |")
    lines += ["", "## Learning curves", ""]
    for name, part in summary.groupby("setup", sort=False):
        lines += [f"### {name}", "", "| features | train | test | tau | rho | nDCG@10 | P@Top5% | P@Top10% | fit s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for _, r in part.iterrows():
            lines.append(f"| {r.variant} | {r.n_train} | {r.n_test} | {r.tau_mean:.3f} ({r.tau_sd:.3f}) | "
                         f"{r.rho_mean:.3f} | {r['ndcg@10_mean']:.3f} | {r['p_at_top5%_mean']:.3f} | "
                         f"{r['p_at_top10%_mean']:.3f} | {r.fit_seconds_mean:.2f} |")
        lf = free[free.setup == name].groupby("rule")["tau"].agg(["mean", "std"])
        for rule, r in lf.iterrows():
            kind = "label-selected" if rule.startswith("ensemble") else "label-free"
            lines.append(f"| *{rule}* ({kind}, no training) | 0 | same | {r['mean']:.3f} ({r['std']:.3f}) | | | | | |")
        if name.startswith("nb201"):
            for label, tau, n in ANCHORS:
                lines.append(f"| *{label}* | {n} | (theirs) | {tau:.3f} | | | | | |")
        lines.append("")
    lines += ["## Feature importances (the learner's, top 15)", ""]
    for name, series in imp.items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in series.head(15).items()))
    lines += ["", "## NB101 label-selected ensemble (greedy on tuning cells, frozen, evaluated on the test cells)", "",
              "| draw | members | tuning tau | test tau | rho |", "|---:|---|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['members']} | {r['tuning_tau']:.3f} | {r['tau']:.3f} | {r['rho']:.3f} |"
              for r in ens_rows]
    return "\n".join(lines) + "\n"


def report(data_root, log) -> None:
    choice = json.loads((OUT / "learner_choice.json").read_text())
    started = time.time()
    rows, free, imp = run_setups(data_root, choice, log)
    rows.to_csv(OUT / "results.csv", index=False, float_format="%.4f")
    free.to_csv(OUT / "label_free.csv", index=False, float_format="%.4f")
    agg = {f"{m}_{f}": (m, f) for m in METRICS for f in ("mean", "std")}
    summary = rows.groupby(["setup", "variant", "n_train"], sort=False).agg(n_test=("n_test", "first"), **agg)
    summary = summary.rename(columns=lambda c: c.replace("_std", "_sd")).reset_index()
    summary.to_csv(OUT / "summary.csv", index=False, float_format="%.4f")
    pd.concat({k: v for k, v in imp.items()}, names=["fit", "feature"]).rename("importance").to_csv(
        OUT / "importances.csv", float_format="%.5f")
    figure(summary, free, OUT / "learning_curves.png")
    ens_rows = pd.read_csv(OUT / "nb101_ensemble.csv").to_dict("records")
    text = write_markdown(summary, free, imp, choice, ens_rows, time.time() - started)
    (OUT / "results.md").write_text(text)
    log(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None)
    p.add_argument("--stage", choices=("develop", "report"), required=True)
    args = p.parse_args(argv)
    from xigsnr_naslib.data.data_root import resolve_data_root

    data_root = resolve_data_root(args.data_root)
    started = time.time()
    if args.stage == "develop":
        develop(data_root, print)
    else:
        report(data_root, print)
    print(f"stage {args.stage}: {time.time() - started:.0f} s on {platform.machine()}, "
          f"{__import__('os').cpu_count()} CPUs, Python {platform.python_version()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
