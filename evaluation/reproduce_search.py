"""The xi-GSNR paper's NAS-Bench-201 search table (Table 4), measured: prune, sample, evolution.

Runs seeded zero-shot searches on NAS-Bench-201 with real CIFAR-10 training images (the
reference set ``images/cifar10_jpeg_train5000_test10000.npz`` under the data root) through
``xigsnr-naslib search``, then writes

* ``<out>/runs/<variant>_seed<k>.json``: each run's report (chosen cell, proxy score,
  ground truth, rank, params, FLOPs, CPU seconds, networks scored); the variant names the
  algorithm and its budget: ``prune_r<repeats>``, ``sample_n<N>``, ``evolution``;
* ``<out>/search_table.md`` and ``.csv``: per variant, mean +- std over its seeds of the
  chosen cells' CIFAR-10 test and validation accuracy (and CIFAR-100, ImageNet16-120 test),
  networks scored and seconds, beside the paper's figures, the space's best, and random
  search at equal budget;
* ``<out>/search_accuracy.png``: the CIFAR-10 test accuracy of every chosen cell per
  algorithm, with the space's best and random search at equal budget marked.

Runs (seed k = 1..``--seeds``): ``prune`` with ``--data-seed k --init-seed k`` (its repeats at
init seeds k, k+1000, k+2000), ``sample`` with ``--search-seed k`` (the default protocol, so
the runs share scores through the store), ``evolution`` with ``--search-seed k``. Every run
resumes: rerun the same command after an interruption and nothing is scored twice
(``<out>/scores.jsonl`` is the store; ``<out>/checkpoints/`` the run headers).

**Random search at equal budget**: for runs that scored B networks, the test accuracy of the
cell of best CIFAR-10 *validation* accuracy among B cells drawn uniformly from the whole
space, mean and std exact over all draws (``xigsnr_naslib.analysis.metrics.expected_best_of_n``):
NAS-Bench-201's random-search baseline, which trains what it draws, given the budget in
networks that the zero-shot search spent.

**Best of N, expected** (``--pool``, default ``evaluation/ensemble/scores.csv``): the 2,000
NB201 cells that ``evaluation/choose_ensemble.py`` scored (a seeded uniform sample, same
images and protocol as these runs) give, without scoring anything, the exact mean and std
over all N-subsets of that pool of what ``sample`` with N draws finds, by xi-GSNR and by the
registered ensemble (on its 1,000 held-out evaluation cells only): an unbiased estimate of
the search's expected outcome on the whole space, to set beside the seeded runs.

Usage::

    python evaluation/reproduce_search.py --algorithms prune sample evolution --seeds 4
    python evaluation/reproduce_search.py --algorithms prune --seeds 4 --repeats 1   # another variant, same folder
    python evaluation/reproduce_search.py --report-only        # table and figure from the runs so far
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

#: the paper's NAS-Bench-201 search figures (xi-GSNR pruning, 4 runs) and the space's best
PAPER = {"cifar10": (94.05, 0.18), "cifar10_valid": (91.20, 0.43), "cifar100": (72.18, 0.74),
         "ImageNet16-120": (46.24, 0.06)}
IMAGES = "images/cifar10_jpeg_train5000_test10000.npz"


def variant(algorithm: str, args) -> str:
    """The run family's name: the algorithm and the setting that changes its budget
    (``prune_r3``: 3 repeats; ``sample_n1000``: best of 1,000; ``evolution``)."""
    if algorithm == "prune":
        return f"prune_r{args.repeats}"
    if algorithm == "sample":
        return f"sample_n{args.samples}"
    return algorithm


def _run_args(algorithm: str, seed: int, args, out: Path) -> list[str]:
    name = f"{variant(algorithm, args)}_seed{seed}"
    common = ["search", "--space", "nb201", "--algorithm", algorithm, "--proxy", args.proxy,
              "--results", str(args.results or out / "scores.jsonl"), "--checkpoint", str(out / "checkpoints" / f"{name}.json"),
              "--output", str(out / "runs" / f"{name}.json"), "--workers", str(args.workers),
              "--no-progress"] + (["--threads", str(args.threads)] if args.threads else [])
    if args.data_root:
        common += ["--data-root", args.data_root]
    if algorithm == "prune":
        return common + ["--data-seed", str(seed), "--init-seed", str(seed), "--repeats", str(args.repeats)]
    if algorithm == "sample":
        return common + ["--samples", str(args.samples), "--search-seed", str(seed)]
    return common + ["--population", str(args.population), "--steps", str(args.steps), "--sample-size",
                     str(args.tournament), "--search-seed", str(seed)]


def _variant_order(tag: str) -> tuple:
    algorithm, _, budget = tag.partition("_")
    return (("prune", "sample", "evolution").index(algorithm) if algorithm in ("prune", "sample", "evolution") else 3,
            int(budget[1:]) if budget[1:].isdigit() else 0, tag)


def _label(tag: str) -> str:
    """``prune_r3`` -> ``prune (repeats 3)``; ``sample_n1000`` -> ``sample (N = 1000)``."""
    algorithm, _, budget = tag.partition("_")
    if algorithm == "prune" and budget.startswith("r"):
        return f"prune (repeats {budget[1:]})"
    if algorithm == "sample" and budget.startswith("n"):
        return f"sample (N = {budget[1:]})"
    return tag


def random_search(truth, valid, budget: int) -> tuple[float, float]:
    """Mean and std of the test accuracy of the best-validation cell among ``budget`` cells
    drawn uniformly from the whole space (exact over all draws: ``expected_best_of_n``)."""
    from xigsnr_naslib.analysis.metrics import expected_best_of_n

    return expected_best_of_n(valid, truth, int(budget))


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def report(out: Path, data_root: str | None, pool: Path | None = None) -> list[dict]:
    """Table (md, csv) and figure from the run reports under ``out/runs``."""
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.benchmarks.nb201.ground_truth import nb201_cifar10_validation

    card = get_card("nb201")
    test = card.load_ground_truth("cifar10", data_root)
    valid = nb201_cifar10_validation(data_root).set_index("arch")["accuracy"].reindex(test["arch"]).to_numpy()
    truth = test["accuracy"].to_numpy()
    best = {"cifar10": truth.max(), "cifar10_valid": float(valid.max())}
    for name in ("cifar100", "ImageNet16-120"):
        best[name] = float(card.load_ground_truth(name, data_root)["accuracy"].max())
    runs: dict[str, list[dict]] = {}
    for path in sorted((out / "runs").glob("*.json")):
        r = json.loads(path.read_text())
        tag, seed = path.stem.rsplit("_seed", 1)
        r["seed"], r["variant"] = int(seed), tag
        runs.setdefault(tag, []).append(r)
    rows = []
    for tag in sorted(runs, key=_variant_order):
        rs = runs[tag]
        gt = [r["ground_truth"] for r in rs]
        budget = round(statistics.fmean(r["networks_scored"] for r in rs))
        row = {"variant": tag, "algorithm": _label(tag), "runs": len(rs), "seeds": " ".join(str(r["seed"]) for r in rs),
               "settings": json.dumps({k: v for k, v in rs[0]["header"]["algorithm_settings"].items()
                                       if k not in ("seed", "repeat_init_seeds")}, sort_keys=True)}
        for key, values in (("cifar10_test", [g["cifar10"]["accuracy"] for g in gt]),
                            ("cifar10_valid", [g["cifar10"]["valid"]["accuracy"] for g in gt]),
                            ("cifar100_test", [g["cifar100"]["accuracy"] for g in gt]),
                            ("imagenet16_120_test", [g["ImageNet16-120"]["accuracy"] for g in gt]),
                            ("cifar10_top_percent", [g["cifar10"]["top_percent"] for g in gt]),
                            ("networks_scored", [r["networks_scored"] for r in rs]),
                            ("scoring_seconds", [r["scoring_seconds"] for r in rs]),
                            ):
            row[key], row[key + "_std"] = _mean_std([float(v) for v in values])
        row["random_search_cifar10_test"], row["random_search_cifar10_test_std"] = random_search(truth, valid, budget)
        row["archs"] = " ; ".join(r["arch"] for r in rs)
        row["cifar10_test_each"] = " ".join(f"{g['cifar10']['accuracy']:.2f}" for g in gt)
        rows.append(row)
    if not rows:
        print(f"no runs yet under {out / 'runs'}", file=sys.stderr)
        return rows
    with open(out / "search_table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| algorithm | runs | CIFAR-10 test | CIFAR-10 valid | CIFAR-100 test | ImageNet16-120 test | "
             "top % (C10) | networks scored | scoring s/run | random search, same budget (C10 test) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['algorithm']} | {r['runs']} | {r['cifar10_test']:.2f} ± {r['cifar10_test_std']:.2f} | "
                     f"{r['cifar10_valid']:.2f} ± {r['cifar10_valid_std']:.2f} | {r['cifar100_test']:.2f} ± "
                     f"{r['cifar100_test_std']:.2f} | {r['imagenet16_120_test']:.2f} ± {r['imagenet16_120_test_std']:.2f} | "
                     f"{r['cifar10_top_percent']:.2f} | {r['networks_scored']:.0f} | {r['scoring_seconds']:.0f} | "
                     f"{r['random_search_cifar10_test']:.2f} ± {r['random_search_cifar10_test_std']:.2f} |")
    lines.append(f"| paper, xi-GSNR pruning | 4 | {PAPER['cifar10'][0]:.2f} ± {PAPER['cifar10'][1]:.2f} | "
                 f"{PAPER['cifar10_valid'][0]:.2f} ± {PAPER['cifar10_valid'][1]:.2f} | {PAPER['cifar100'][0]:.2f} ± "
                 f"{PAPER['cifar100'][1]:.2f} | {PAPER['ImageNet16-120'][0]:.2f} ± {PAPER['ImageNet16-120'][1]:.2f} | | | | |")
    lines.append(f"| space's best | | {best['cifar10']:.2f} | {best['cifar10_valid']:.2f} | {best['cifar100']:.2f} | "
                 f"{best['ImageNet16-120']:.2f} | | | | |")
    lines.append("")
    for r in rows:
        lines.append(f"- {r['algorithm']} (seeds {r['seeds']}; {r['settings']}): CIFAR-10 test per run "
                     f"{r['cifar10_test_each']}; cells {r['archs']}")
    lines += _pool_estimates(pool, truth, valid, test) if pool else []
    lines += _prune_costs(runs)
    lines += _edge_analysis(runs, test)
    (out / "search_table.md").write_text("\n".join(lines) + "\n")
    _figure(rows, runs, best["cifar10"], out / "search_accuracy.png")
    print("\n".join(lines))
    return rows


def _pool_estimates(pool: Path, truth, valid, test, budgets=(100, 1000)) -> list[str]:
    """Expected best-of-N by xi-GSNR and by the ensemble on a scored uniform pool (see above)."""
    import numpy as np
    import pandas as pd

    from xigsnr_naslib.analysis.metrics import expected_best_of_n
    from xigsnr_naslib.proxies import get_proxy

    table = pd.read_csv(pool, index_col="index")
    table = table[table["sample"].isin(["tuning", "evaluation"])]  # NB201 cells (the file also holds NB101's)
    acc = test["accuracy"]
    ensemble = get_proxy("ensemble")
    held_out = table[table["sample"] == "evaluation"]

    def combine(row):
        values = {m: row[m] for m in ensemble.members}
        return ensemble.compute(values) if all(np.isfinite(v) for v in values.values()) else np.nan  # not computable

    combined = held_out.apply(combine, axis=1)
    lines = ["", f"Best of N, expected (exact over every N-subset of the scored uniform pool `{pool}`; "
             "random search: exact over the whole space):", "",
             "| N | xi_gsnr (pool of %d) | ensemble (pool of %d held-out) | random search, best validation of N (trained) |"
             % (len(table), len(held_out)), "|---|---|---|---|"]
    for n in budgets:
        cells = []
        for scores, index in ((table["xi_gsnr"], table.index), (combined, held_out.index)):
            if n < len(index):  # unbiased for any N below the pool's size (noisier as N nears it)
                mean, std = expected_best_of_n(scores.to_numpy(), acc.loc[index].to_numpy(), n)
                cells.append(f"{mean:.2f} ± {std:.2f}")
            else:
                cells.append("(pool not larger than N)")
        mean, std = random_search(truth, valid, n)
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {mean:.2f} ± {std:.2f} |")
    return lines


def _prune_costs(runs: dict) -> list[str]:
    """Per pruning variant, the first round's removal cost of each operation (mean, min, max
    over edges and runs; relative drop of the indicator) and how often it was the one pruned."""
    lines = []
    for tag in sorted(runs, key=_variant_order):
        if not tag.startswith("prune"):
            continue
        costs: dict[str, list[float]] = {}
        pruned: dict[str, int] = {}
        for r in runs[tag]:
            first = r["steps"][0]
            for _, op, cost in first["costs"]:
                costs.setdefault(op, []).append(float(cost))
            edge_costs: dict[str, list] = {}
            for edge, op, cost in first["costs"]:
                edge_costs.setdefault(edge, []).append((float(cost), op))
            for values in edge_costs.values():
                op = min(values)[1]
                pruned[op] = pruned.get(op, 0) + 1
        if not lines:
            lines += ["", "Pruning, first round: the cost of removing each operation (relative drop of the indicator; "
                      "mean [min, max] over the edges of every run) and how often it was the edge's least costly, "
                      "hence pruned first:", "", "| variant | " + " | ".join(costs) + " |", "|---|" + "---|" * len(costs)]
        cells = [f"{statistics.fmean(v):+.3f} [{min(v):+.3f}, {max(v):+.3f}], pruned {pruned.get(op, 0)}/{len(v)}"
                 for op, v in costs.items()]
        lines.append(f"| {_label(tag)} | " + " | ".join(cells) + " |")
    return lines


def _edge_analysis(runs: dict, test) -> list[str]:
    """Per edge of the cell: the space's best cell's operation, and what each algorithm's runs chose."""
    from xigsnr_naslib.benchmarks.nb201.space import EDGES, parse_arch

    best = parse_arch(test.loc[test["accuracy"].idxmax(), "arch"])
    lines = ["", f"Per edge (node <- node), the best cell's operation ({test['accuracy'].max():.2f}) and the "
             "runs' choices (runs that chose it):", "",
             "| algorithm | " + " | ".join(f"{t}<-{s}" for t, s in EDGES) + " |", "|---|" + "---|" * len(EDGES),
             "| best cell | " + " | ".join(best) + " |"]
    for tag in sorted(runs, key=_variant_order):
        rs = runs[tag]
        cells = []
        for e in range(len(EDGES)):
            chosen = [parse_arch(r["arch"])[e] for r in rs]
            counts = {op: chosen.count(op) for op in dict.fromkeys(chosen)}
            cells.append(", ".join(f"{op} ({n})" for op, n in counts.items()))
        lines.append(f"| {_label(tag)} | " + " | ".join(cells) + " |")
    return lines


def _figure(rows, runs, space_best: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, row in enumerate(rows):
        values = [r["ground_truth"]["cifar10"]["accuracy"] for r in runs[row["variant"]]]
        ax.scatter([i] * len(values), values, color="C0", zorder=3, label="chosen cell (one run)" if i == 0 else None)
        ax.errorbar(i + 0.15, row["cifar10_test"], yerr=row["cifar10_test_std"], fmt="o", color="C0", mfc="white",
                    capsize=3, label="mean ± std" if i == 0 else None)
        ax.errorbar(i + 0.3, row["random_search_cifar10_test"], yerr=row["random_search_cifar10_test_std"], fmt="s",
                    color="C2", capsize=3, label="random search, same budget" if i == 0 else None)
    ax.axhline(space_best, color="C3", ls="--", lw=1, label=f"space's best ({space_best:.2f})")
    ax.axhline(PAPER["cifar10"][0], color="C1", ls=":", lw=1, label=f"paper, xi-GSNR pruning ({PAPER['cifar10'][0]})")
    ax.set_xticks(range(len(rows)), [r["algorithm"].replace(" (", "\n(") for r in rows], fontsize=7)
    ax.set_xlim(-0.5, len(rows) - 0.3)
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_title("NAS-Bench-201 search with xi-GSNR (real CIFAR-10 images)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algorithms", nargs="+", default=["prune", "sample", "evolution"],
                   choices=["prune", "sample", "evolution"])
    p.add_argument("--seeds", type=int, default=4, help="runs per algorithm, seeds 1..N (default 4)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--proxy", default="xi_gsnr")
    p.add_argument("--repeats", type=int, default=3, help="prune: initialisations per removal (default 3, TE-NAS)")
    p.add_argument("--samples", type=int, default=100, help="sample: N (default 100)")
    p.add_argument("--population", type=int, default=20, help="evolution: population (default 20)")
    p.add_argument("--steps", type=int, default=80, help="evolution: children (default 80: 100 networks)")
    p.add_argument("--tournament", type=int, default=5, help="evolution: tournament size (default 5)")
    p.add_argument("--workers", default="auto")
    p.add_argument("--results", default=None,
                   help="results store (default <out>/scores.jsonl); one run writes a store at a time, so runs side "
                        "by side each need their own")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per worker (default: the CLI's)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="evaluation/search_nb201")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--pool", default="evaluation/ensemble/scores.csv",
                   help="scored uniform NB201 sample for the expected best-of-N table ('' for none)")
    args = p.parse_args(argv)
    out = Path(args.out)
    if not args.report_only:
        (out / "runs").mkdir(parents=True, exist_ok=True)
        from xigsnr_naslib.cli.app import main as cli

        seeds = range(args.first_seed, args.first_seed + args.seeds)
        # every prune run first (the paper's result), then sample and evolution seed by seed
        plan = [("prune", s) for s in seeds if "prune" in args.algorithms]
        plan += [(a, s) for s in seeds for a in ("sample", "evolution") if a in args.algorithms]
        for algorithm, seed in plan:
            if (out / "runs" / f"{variant(algorithm, args)}_seed{seed}.json").exists():
                continue
            argv_run = _run_args(algorithm, seed, args, out)
            print("xigsnr-naslib " + " ".join(argv_run), flush=True)
            code = cli(argv_run)
            if code:
                print(f"run failed with status {code}", file=sys.stderr)
                return code
    report(out, args.data_root, Path(args.pool) if args.pool else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
