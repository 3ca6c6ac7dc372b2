"""Validate the recent proxies (MeCo, SWAP, AZ-NAS components, VKDNW, layer counts) on NAS-Bench-201
CIFAR-10: Kendall tau and Spearman rho against the benchmark's test accuracy on a seeded sample,
with paired percentile-bootstrap intervals, next to the figures the papers publish (whole space).

    python evaluation/validate_recent_proxies.py --n 200 --seed 0 --data-root ../shared/data \\
        --store evaluation/zoo_validation/nb201_cifar10_recent.jsonl --out evaluation/zoo_validation

The sample is ``Selection(sample=n, sample_seed=seed)``, the same seeded sample as the
leaderboard's and every other validation script's for the same n and seed. Scores go through
``Study`` with a results store, so an interrupted run resumes where it stopped. Writes
``<out>/nb201_cifar10_recent.md`` (the table) and ``.json`` (the numbers).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from xigsnr_naslib import Execution, Selection, Study, correlate
from xigsnr_naslib.analysis.metrics import kendall_tau, metric_table, spearman_rho

PROXIES = ("meco", "meco_opt", "swap", "aznas_expressivity", "aznas_progressivity", "aznas_trainability",
           "aznas_complexity", "vkdnw", "vkdnw_fisher", "vkdnw_single", "trainable_layers", "trainable_weight_layers",
           "flops", "jacov")

#: published NAS-Bench-201 CIFAR-10 figures (whole space), (tau, rho, source); None where not published
PUBLISHED = {
    "meco": (None, 0.89, "MeCo paper (NeurIPS 2023), abstract: 0.89 on NATS-Bench-TSS CIFAR-10 (Spearman)"),
    "vkdnw": (None, None, "none for the entropy alone: the VKDNW paper's 'VKDNW' figures rank (layer count, "
                          "entropy), see vkdnw_single"),
    "vkdnw_single": (0.618, 0.815, "VKDNW paper (CVPR 2025) Table 1, VKDNW_single: the dense rank of (number of "
                                   "trainable layers, VKDNW) (NB201/tss_utils.py at 19cad2f), mean of 5 runs"),
    "trainable_layers": (0.626, 0.767, "VKDNW paper Table 1, 'No. of trainable layers'"),
    "aznas_complexity": (0.623, 0.799, "VKDNW paper Table 1, FLOPs"),
    "flops": (0.623, 0.799, "VKDNW paper Table 1, FLOPs"),
}
#: published population aggregates (:data:`xigsnr_naslib.proxies.ensemble.POPULATION_AGGREGATES`), computed
#: over this sample where their members are
PUBLISHED_AGGREGATES = {
    "aznas": (0.712, 0.892, "VKDNW paper Table 1 (AZ-NAS reproduced; the AZ-NAS paper reports 0.741)"),
    "vkdnw_agg": (0.750, 0.919, "VKDNW paper Table 1: sum of log-ranks of VKDNW_single, expressivity, "
                                "trainability, FLOPs and Jacov"),
}


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=positive, default=200, help="architectures in the seeded sample (default 200)")
    p.add_argument("--seed", type=int, default=0, help="sample seed and bootstrap seed (default 0)")
    p.add_argument("--store", default="evaluation/zoo_validation/nb201_cifar10_recent.jsonl",
                   help="results store (resumable JSON lines)")
    p.add_argument("--out", default="evaluation/zoo_validation", help="folder of the table and numbers")
    p.add_argument("--data-root", default=None, help="reference data (default $XIGSNR_DATA_ROOT)")
    p.add_argument("--workers", default="auto", help="worker processes: auto or a number (default auto)")
    p.add_argument("--n-boot", type=positive, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--proxy", action="append", choices=PROXIES, help="only these proxies (repeatable)")
    p.add_argument("--name", default="nb201_cifar10_recent",
                   help="file name of the table and numbers, <out>/<name>.md and .json (default nb201_cifar10_recent)")
    args = p.parse_args(argv)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    proxies = tuple(args.proxy or PROXIES)

    store_path = Path(args.store)
    before = sum(1 for _ in store_path.open()) if store_path.exists() else 0
    start = time.perf_counter()
    study = Study("nb201", "cifar10", list(proxies), data_root=args.data_root, store=args.store,
                  execution=Execution(workers=workers, progress=True))
    result = correlate(study, Selection(sample=args.n, sample_seed=args.seed))
    wall = time.perf_counter() - start
    new_records = (sum(1 for _ in store_path.open()) if store_path.exists() else 0) - before

    table = result.table
    accuracy = table["accuracy"].to_numpy(dtype=float)
    scores = {name: table[name].to_numpy(dtype=float) for name in proxies}
    ci = metric_table(scores, accuracy, {"kendall_tau": kendall_tau, "spearman_rho": spearman_rho},
                      n_boot=args.n_boot, seed=args.seed)
    rows = []
    for name in proxies:
        m = result.metrics[name]
        published = PUBLISHED.get(name)
        rows.append({
            "proxy": name, "n": int(ci.at[name, "n"]), "not_computable": m["n_not_computable"],
            "nonfinite": m["n_nonfinite"], "error": m["n_error"],
            "tau": float(ci.at[name, "kendall_tau"]), "tau_low": float(ci.at[name, "kendall_tau_low"]),
            "tau_high": float(ci.at[name, "kendall_tau_high"]),
            "rho": float(ci.at[name, "spearman_rho"]), "rho_low": float(ci.at[name, "spearman_rho_low"]),
            "rho_high": float(ci.at[name, "spearman_rho_high"]),
            "seconds_per_arch": m["seconds_per_arch"],
            "published_tau": published[0] if published else None, "published_rho": published[1] if published else None,
            "published_source": published[2] if published else "no published NAS-Bench-201 CIFAR-10 figure found",
        })
    from xigsnr_naslib.proxies.ensemble import POPULATION_AGGREGATES, rank_combine

    aggregates = {}
    for name, (members, rule) in POPULATION_AGGREGATES.items():
        if all(m in proxies for m in members):
            # the authors' rule over THIS sample; a missing value ranks lowest (their minimum fill)
            combined = rank_combine(table[list(members)], rule).to_numpy()
            aggregates[name] = {"tau": kendall_tau(combined, accuracy), "rho": spearman_rho(combined, accuracy),
                                "members": list(members), "rule": rule}
    not_computable = {}
    for record in result.records:
        if record["status"] == "not computable":
            not_computable.setdefault(record["proxy"], []).append({"arch": record["arch"], "reason": record["reason"]})

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    lines = [f"NAS-Bench-201 CIFAR-10 (test accuracy, 200 epochs), seeded sample of {args.n} "
             f"(Selection(sample={args.n}, sample_seed={args.seed})); 95% paired percentile bootstrap "
             f"({args.n_boot} resamples, seed {args.seed}); wall time of this run {wall / 60:.1f} min, "
             f"{new_records} of {len(result.records)} records computed in it (the rest read from the store).",
             "Published: whole space (15,625 architectures), as labelled.", "",
             "| proxy | n | τ [95% CI] | ρ [95% CI] | published τ / ρ (whole space) | not computable / non-finite |",
             "|---|---:|---|---|---|---:|"]
    for r in rows:
        lines.append(f"| `{r['proxy']}` | {r['n']} | {r['tau']:.3f} [{r['tau_low']:.2f}, {r['tau_high']:.2f}] | "
                     f"{r['rho']:.3f} [{r['rho_low']:.2f}, {r['rho_high']:.2f}] | "
                     f"{fmt(r['published_tau'])} / {fmt(r['published_rho'])} | "
                     f"{r['not_computable']} / {r['nonfinite']} |")
    lines += ["", "Population aggregates (their authors' rule, the sum of log-ranks, over this sample's scores; "
                  "published: whole space):", "",
              "| aggregate | members | τ | ρ | published τ / ρ |", "|---|---|---:|---:|---|"]
    for k, v in PUBLISHED_AGGREGATES.items():
        got = aggregates.get(k)
        lines.append(f"| `{k}` | {', '.join(POPULATION_AGGREGATES[k][0])} | "
                     + (f"{got['tau']:.3f} | {got['rho']:.3f}" if got else "not computed | not computed")
                     + f" | {v[0]:.3f} / {v[1]:.3f} ({v[2]}) |")
    lines += ["", "Sources of the published figures:", ""]
    lines += [f"- `{r['proxy']}`: {r['published_source']}" for r in rows]
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.md").write_text(text)
    (out / f"{args.name}.json").write_text(json.dumps(
        {"n": args.n, "seed": args.seed, "wall_seconds": wall, "new_records": new_records, "rows": rows, "not_computable": not_computable,
         "aggregates_on_this_sample": aggregates,
         "published_aggregates": PUBLISHED_AGGREGATES}, indent=2, allow_nan=True) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
