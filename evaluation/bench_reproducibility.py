"""How much a score moves with the CPU's kernel set and the thread count.

Scores a seeded sample of NAS-Bench-201 cells on real CIFAR-10 at the NB201 card's default
protocol (8 x 64) with the leaderboard's default proxies
(:func:`xigsnr_naslib.analysis.leaderboard.default_proxies_for`) once per *configuration*: a thread
count and a set of environment variables that limit the CPU kernels (oneDNN's
``ONEDNN_MAX_CPU_ISA``, MKL's ``MKL_ENABLE_INSTRUCTIONS``, ATen's ``ATEN_CPU_CAPABILITY``).
Each configuration runs in a fresh interpreter with its environment set before torch is
imported, and scores into a results store of its own (``--store-dir``), so a rerun reuses
every record already computed and an interrupted run resumes.

Then, per proxy and per pair of configurations: how many cells agree bit for bit, the
largest and the median relative difference ``|a - b| / |b|`` over the cells, and Kendall's
tau between the two runs' scores. Writes ``<out>/scores.csv`` (every score of every
configuration, with the environment each record carries) and ``<out>/spread.csv`` /
``<out>/spread.md`` (the table), and prints the table::

    nice -n 10 python evaluation/bench_reproducibility.py --data-root ../shared/data
    python evaluation/bench_reproducibility.py --probe --data-root ../shared/data   # which variables matter

Configurations ``native-t1-det`` / ``native-t2-det`` also call
``torch.use_deterministic_algorithms(True)`` (``--configs native-t1 native-t1-det
native-t2-det``: does it make thread counts agree?).

``--expensive-archs K`` scores the costly proxies (their own passes: grasp, fisher, zen,
the AZ-NAS and VKDNW passes) on the first K cells only; every other proxy on all of them.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: kernel-set limits one step below this machine's AVX2 (oneDNN, MKL and ATen alike)
AVX = {"ONEDNN_MAX_CPU_ISA": "AVX", "MKL_ENABLE_INSTRUCTIONS": "AVX", "ATEN_CPU_CAPABILITY": "default"}
LIMITS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")

#: name -> (environment, threads, deterministic algorithms)
CONFIGS = {
    "native-t1": ({}, 1, False),
    "native-t2": ({}, 2, False),
    "avx-t1": (AVX, 1, False),
    "avx-t2": (AVX, 2, False),
    "native-t1-det": ({}, 1, True),
    "native-t2-det": ({}, 2, True),
}
DEFAULT_CONFIGS = ["native-t1", "native-t2", "avx-t1", "avx-t2"]

#: scored first, in every configuration, before the rest of the zoo: the xi-GSNR passes
FIRST = ("xi_gsnr", "xi_gsnr_paper", "zico", "params", "flops", "trainable_layers")
#: proxies that run passes of their own, costly at 8 x 64 (README, "Cost"): fewer cells
EXPENSIVE = ("grasp", "fisher", "zen", "aznas_expressivity", "aznas_progressivity", "aznas_trainability",
             "vkdnw", "vkdnw_single")

#: --probe: one environment variable at a time (and the thread count), one cell, 2 x 16
PROBES = {"native": {}, "aten=default": {"ATEN_CPU_CAPABILITY": "default"},
          "onednn=AVX": {"ONEDNN_MAX_CPU_ISA": "AVX"}, "onednn=SSE41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
          "mkl=AVX": {"MKL_ENABLE_INSTRUCTIONS": "AVX"}, "mkl=SSE4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
          "all=AVX": AVX}
PROBE_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def sample_cells(n: int, seed: int, data_root) -> list[tuple[int, str]]:
    """``n`` NB201 cells drawn with ``random.Random(seed)``: (benchmark index, arch string)."""
    from xigsnr_naslib.benchmarks.card import get_card

    truth = get_card("nb201").load_ground_truth("cifar10", data_root)
    chosen = sorted(random.Random(seed).sample(list(truth.index), n))
    return [(int(i), truth.at[i, "arch"]) for i in chosen]


def default_nb201_proxies() -> list[str]:
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.analysis.leaderboard import default_proxies_for

    dataset = get_card("nb201").dataset("cifar10")
    return default_proxies_for(dataset, dataset.protocol)[0]


def stages(proxies: list[str], cells: list, expensive_archs: int) -> list[tuple[list[str], list]]:
    """(proxies, cells) scored in turn in every configuration: the xi-GSNR passes, the rest
    of the cheap zoo, the costly proxies on the first ``expensive_archs`` cells."""
    first = [p for p in proxies if p in FIRST]
    cheap = [p for p in proxies if p not in FIRST and p not in EXPENSIVE]
    return [(first, cells), (cheap, cells), ([p for p in proxies if p in EXPENSIVE], cells[:expensive_archs])]


def worker(args) -> None:
    """Score the sample in this interpreter (its environment was set by the parent)."""
    import torch

    from xigsnr_naslib import Execution, Study

    env, threads, deterministic = CONFIGS[args.worker]
    torch.use_deterministic_algorithms(deterministic)
    cells = sample_cells(args.n_archs, args.sample_seed, args.data_root)
    names, group = stages(args.proxies or default_nb201_proxies(), cells, args.expensive_archs)[args.stage]
    store = Path(args.store_dir) / f"{args.worker}.jsonl"
    execution = Execution(workers=0, threads=threads)
    print(f"{args.worker} stage {args.stage}: ATen {torch.backends.cpu.get_cpu_capability()}, {threads} thread(s), "
          f"{json.dumps(env)}", flush=True)
    if names and group:
        study = Study("nb201", "cifar10", names, execution=execution, store=store, data_root=args.data_root)
        for cell in group:  # one at a time: each record is stored as soon as it is computed
            began = time.perf_counter()
            study.score([cell])
            print(f"{args.worker}: cell {cell[0]} {len(names)} proxies {time.perf_counter() - began:.1f} s",
                  flush=True)


def start_configuration(name: str, stage: int, extra: list[str]) -> subprocess.Popen:
    env, _, _ = CONFIGS[name]
    full = {k: v for k, v in os.environ.items() if k not in LIMITS}
    full.update(env)
    full["OMP_NUM_THREADS"] = str(CONFIGS[name][1])
    # threads that sleep instead of spinning while they wait: on a loaded machine a spinning
    # thread holds the core its partner needs (no effect on the values)
    full.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    command = [sys.executable, __file__, "--worker", name, "--stage", str(stage), *extra]
    return subprocess.Popen(command, env=full, cwd=ROOT)


def load_scores(configs: list[str], store_dir: Path, cells: list, proxies: list[str]):
    """A frame: one row per (configuration, cell, proxy) found in the stores."""
    import pandas as pd

    from xigsnr_naslib.scoring.results import ResultsStore, record_score

    wanted = {(i, p) for i, _ in cells for p in proxies}
    rows = []
    for name in configs:
        path = store_dir / f"{name}.jsonl"
        for r in (ResultsStore(path) if path.exists() else []):
            if (r.get("index"), r.get("proxy")) in wanted:
                env = r.get("environment") or {}
                rows.append({"config": name, "index": r["index"], "arch": r["arch"], "proxy": r["proxy"],
                             "status": r["status"], "score": record_score(r), "torch": env.get("torch"),
                             "cpu_capability": env.get("cpu_capability"), "threads": env.get("threads")})
    return pd.DataFrame(rows).drop_duplicates(["config", "index", "proxy"], keep="last")


def spread(frame, configs: list[str], proxies: list[str]):
    """Per proxy and pair of configurations: cells, equal bit for bit, max and median relative
    difference, Kendall's tau between the two runs."""
    import numpy as np
    import pandas as pd

    from xigsnr_naslib.analysis.metrics import kendall_tau

    wide = frame.pivot_table(index=["proxy", "index"], columns="config", values="score", aggfunc="first")
    rows = []
    for proxy in proxies:
        if proxy not in wide.index.get_level_values(0):
            continue
        table = wide.loc[proxy]
        for a, b in itertools.combinations([c for c in configs if c in table.columns], 2):
            pair = table[[a, b]].dropna()
            x, y = pair[a].to_numpy(), pair[b].to_numpy()
            if len(x) == 0:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(x == y, 0.0, np.abs(x - y) / np.abs(y))
            rows.append({"proxy": proxy, "a": a, "b": b, "cells": len(x), "equal": int((x == y).sum()),
                         "max_rel": float(rel.max()), "median_rel": float(np.median(rel)),
                         "kendall_tau": kendall_tau(x, y) if len(x) > 2 else float("nan")})
    return pd.DataFrame(rows)


def markdown(table, header: str) -> str:
    lines = [header, "", "| proxy | a | b | cells | equal | max rel | median rel | Kendall tau |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.proxy} | {r.a} | {r.b} | {r.cells} | {r.equal} | {r.max_rel:.2e} | "
                     f"{r.median_rel:.2e} | {r.kendall_tau:.4f} |")
    return "\n".join(lines) + "\n"


def probe(args) -> None:
    """One cell, 2 x 16, xi_gsnr and zico: which variable changes the numbers."""
    code = ("import json, torch; from xigsnr_naslib import Execution, Protocol, Study; "
            f"s = Study('nb201', 'cifar10', ['xi_gsnr', 'zico'], Protocol(2, 16), Execution(workers=0, threads=T), "
            f"data_root={str(args.data_root)!r}); "
            f"print(json.dumps([torch.backends.cpu.get_cpu_capability(), s.score_one({PROBE_ARCH!r})]))")
    for threads in (1, 2):
        for name, env in PROBES.items():
            full = {k: v for k, v in os.environ.items() if k not in LIMITS}
            full.update(env)
            out = subprocess.run([sys.executable, "-c", code.replace("threads=T", f"threads={threads}")], env=full,
                                 capture_output=True, text=True, cwd=ROOT)
            line = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else out.stderr.strip()[-300:]
            print(f"{threads} thread(s)  {name:<14} {line}", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.environ.get("XIGSNR_DATA_ROOT"))
    p.add_argument("--n-archs", type=int, default=50, help="NB201 cells (default 50)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the cell sample (default 0)")
    p.add_argument("--expensive-archs", type=int, default=10,
                   help=f"cells for the costly proxies {', '.join(EXPENSIVE)} (default 10)")
    p.add_argument("--proxies", nargs="+", default=None, help="default: the NB201 leaderboard's default proxies")
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS),
                   help=f"configurations (default {' '.join(DEFAULT_CONFIGS)})")
    p.add_argument("--store-dir", default=str(ROOT / "results" / "reproducibility"),
                   help="one results store per configuration (default results/reproducibility)")
    p.add_argument("--out", default=str(ROOT / "evaluation" / "reproducibility"))
    p.add_argument("--report-only", action="store_true", help="no scoring: the table from the stores as they are")
    p.add_argument("--probe", action="store_true", help="which environment variable changes the numbers")
    p.add_argument("--stages", type=int, nargs="+", default=[0, 1, 2], help="0: xi-GSNR passes and the "
                   "static proxies, 1: the rest of the cheap zoo, 2: the costly proxies (default: all, in turn)")
    p.add_argument("--parallel", type=int, default=1, help="configurations scored at a time (default 1)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--stage", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.probe:
        return probe(args)
    extra = ["--n-archs", str(args.n_archs), "--sample-seed", str(args.sample_seed), "--expensive-archs",
             str(args.expensive_archs), "--store-dir", args.store_dir]
    extra += ["--data-root", args.data_root] if args.data_root else []
    extra += ["--proxies", *args.proxies] if args.proxies else []
    if not args.report_only:
        for stage in args.stages:
            for start in range(0, len(args.configs), args.parallel):  # each waits for the one before
                running = [start_configuration(n, stage, extra) for n in args.configs[start:start + args.parallel]]
                if any(r.wait() for r in running):
                    raise SystemExit(f"a configuration of stage {stage} failed (see above)")
    report(args)


def report(args) -> None:
    import torch

    cells = sample_cells(args.n_archs, args.sample_seed, args.data_root)
    proxies = args.proxies or default_nb201_proxies()
    frame = load_scores(args.configs, Path(args.store_dir), cells, proxies)
    table = spread(frame, args.configs, proxies)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame.sort_values(["config", "proxy", "index"]).to_csv(out / "scores.csv", index=False)
    table.to_csv(out / "spread.csv", index=False)
    configs = "; ".join(f"{n}: {CONFIGS[n][1]} thread(s), {json.dumps(CONFIGS[n][0]) if CONFIGS[n][0] else 'no limit'}"
                        + (", deterministic algorithms" if CONFIGS[n][2] else "") for n in args.configs)
    import platform

    header = (f"# Score spread across kernel sets and thread counts\n\n"
              f"{len(cells)} NB201 cells (random.Random({args.sample_seed}).sample), CIFAR-10, 8 x 64; costly proxies "
              f"({', '.join(EXPENSIVE)}) on the first {args.expensive_archs}. Machine: {platform.machine()}, "
              f"{os.cpu_count()} CPUs, torch {torch.__version__}, ATen {torch.backends.cpu.get_cpu_capability()} "
              f"unlimited. Configurations: {configs}.\n\nCommand: `nice -n 10 python "
              f"evaluation/bench_reproducibility.py --n-archs {args.n_archs} --expensive-archs "
              f"{args.expensive_archs} --configs {' '.join(args.configs)}`. relative difference = |a - b| / |b| "
              "per cell; cells = those scored (finite) in both configurations so far "
              "(the run resumes where it stopped); equal = cells equal bit for bit.")
    text = markdown(table, header)
    (out / "spread.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
