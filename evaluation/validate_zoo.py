"""The proxy zoo against NAS-Bench-Suite-Zero's published scores on NAS-Bench-201 CIFAR-10.

    python evaluation/validate_zoo.py --data-root ../shared/data --n 200 --seed 0 \\
        --store results/validate_zoo.jsonl --out evaluation/zoo_validation/nb201_cifar10.md

Draws ``--n`` architectures (seeded by ``--seed``) from the Suite-Zero table
(``nb201/suitezero_cifar10_9445.csv``), scores them with every zoo proxy through
:class:`~xigsnr_naslib.scoring.study.Study` under the card's protocol (8 x 64 real CIFAR-10 training
images; single-batch proxies read batch 0) twice: with data and init seed ``a`` and with
``b`` (``--seeds a b``; seed b on the first ``--floor-n`` archs only, if given). Per proxy it reports

* ``rho(table)``: Spearman between our scores (seed a) and the table's on the same archs;
* ``floor``: Spearman between our seed-a and seed-b scores (how well our own scores agree
  with themselves under another batch and initialisation: the best agreement with a table
  computed under other random draws can be expected to reach);
* ``tau(ours)``, ``tau(table)``: Kendall tau against the test accuracy (the project's
  ground truth), each with a 95% percentile bootstrap interval over the archs;
* ``|rho - floor|`` and whether it is within 0.05;
* whether ``tau(ours)`` lies inside the bootstrap interval of ``tau(table)``;
* ``tau(ours, seed b)``: the same tau from the seed-b scores (how far the draw alone moves it:
  the bootstrap resamples architectures, not draws).

Also NASWOT's own run (``nb201/naswot_scores_all15625.csv``: the first version's Jacobian
score) against ``jacov`` and ``nwot``, with the same columns. Scoring goes in chunks (seed a
on every arch, then seed b) into a resumable store; ``--report-only`` builds the table from
what the store holds (the floor over the archs both seeds have). The table (markdown) goes
to ``--out``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from xigsnr_naslib.data.data_root import resolve_data_root
from xigsnr_naslib.benchmarks.nb201.ground_truth import nb201_ground_truth
from xigsnr_naslib.analysis.metrics import bootstrap_ci, kendall_tau, spearman_rho
from xigsnr_naslib.data.protocol import PAPER_NB201
from xigsnr_naslib.proxies import get_proxy
from xigsnr_naslib.scoring.results import ResultsStore, record_score
from xigsnr_naslib.analysis.score_tables import ProxyTableWarning, read_naswot_csv, read_suitezero_csv
from xigsnr_naslib.scoring.study import Execution, Study

#: our proxy -> the Suite-Zero column it is compared with
TABLE_COLUMN = {"grad_norm": "grad_norm", "snip": "snip", "grasp": "grasp", "fisher": "fisher",
                "synflow": "synflow", "jacov": "jacov", "nwot": "nwot", "nwot_naslib": "nwot",
                "epe_nas": "epe_nas", "zen": "zen", "l2_norm": "l2_norm", "plain": "plain",
                "params": "params", "flops": "flops"}
TOLERANCE = 0.05


def sample_archs(table, n: int, seed: int) -> list[str]:
    if not 1 <= n <= len(table):
        raise ValueError(f"--n must be between 1 and {len(table)}, got {n}")
    rows = np.sort(np.random.default_rng(seed).choice(len(table), size=n, replace=False))
    return [table.scores.index[i] for i in rows]


def _records(stores: list[Path]):
    for store in stores:
        if store.exists():
            yield from ResultsStore(store)


def our_scores(stores: list[Path], proxies: list[str], archs: list[str], seed: int) -> dict[str, dict[str, float]]:
    """{proxy: {arch: score}} from the stores, for the current settings and this seed."""
    wanted = set(archs)
    settings = {name: get_proxy(name).settings for name in proxies}
    out: dict[str, dict[str, float]] = {name: {} for name in proxies}
    for record in _records(stores):
        name = record.get("proxy")
        if name not in out or record.get("arch") not in wanted or record.get("settings") != settings[name]:
            continue
        if record.get("space") != "nb201" or record.get("dataset") != "cifar10":
            continue
        protocol = record.get("protocol") or {}
        if protocol and (protocol.get("init_seed") != seed or protocol.get("data_seed") != seed
                         or protocol.get("n_batches") != PAPER_NB201.n_batches
                         or protocol.get("batch_size") != PAPER_NB201.batch_size):
            continue
        out[name][record["arch"]] = record_score(record) if record.get("status") != "not computable" else np.nan
    return out


def score(args, proxies: list[str], archs: list[str], index: dict[str, int]) -> float:
    start = time.perf_counter()
    studies = [Study("nb201", "cifar10", proxies, protocol=PAPER_NB201.replace(data_seed=s, init_seed=s),
                     execution=Execution(workers=args.workers, threads=args.threads),
                     store=args.store, data_root=args.data_root) for s in args.seeds]
    # seed a on every arch first (the comparison with the table), then seed b on the first
    # --floor-n archs (the floor); chunks keep the store's progress visible and resumable
    for k, (seed, study, n) in enumerate(zip(args.seeds, studies, (len(archs), args.floor_n or len(archs)))):
        if args.score_seed != "both" and "ab"[k] != args.score_seed:
            continue
        todo = archs[:n][::-1] if args.reverse else archs[:n]
        todo = todo[args.offset:] + todo[:args.offset]
        for first in range(0, n, args.chunk):
            study.score([(index[a], a) for a in todo[first:min(first + args.chunk, n)]])
            print(f"seed {seed}: {min(first + args.chunk, n)}/{n} archs ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    return time.perf_counter() - start


def _interval(metric, s, a, n_boot: int) -> str:
    low, high = bootstrap_ci(metric, s, a, n_boot=n_boot, seed=0)
    return f"[{low:.3f}, {high:.3f}]"


def _comparison(ours_a: dict, ours_b: dict, theirs, archs: list[str], accuracy: dict[str, float],
                n_boot: int) -> tuple[int, int, str]:
    """(n, not computable, the row's cells from rho(ours, theirs) on) for one proxy: ``theirs``
    maps arch -> the other source's score (a pandas Series)."""
    scored = [x for x in archs if x in ours_a and x in theirs.index]
    mine = np.array([ours_a[x] for x in scored], dtype=float)
    other = np.array([theirs[x] for x in scored], dtype=float)
    acc = np.array([accuracy[x] for x in scored], dtype=float)
    common = [x for x in scored if x in ours_b]
    pair = (np.array([ours_a[x] for x in common], dtype=float), np.array([ours_b[x] for x in common], dtype=float))
    acc_b = np.array([accuracy[x] for x in common], dtype=float)
    floor, rho = spearman_rho(*pair), spearman_rho(mine, other)
    gap = abs(rho - floor)
    tau_ours = kendall_tau(mine, acc)
    low, high = bootstrap_ci(kendall_tau, other, acc, n_boot=n_boot, seed=0)
    cells = (f"{rho:.3f} {_interval(spearman_rho, mine, other, n_boot)} | "
             f"{floor:.3f} {_interval(spearman_rho, *pair, n_boot)} (n={len(common)}) | "
             f"{gap:.3f} {'ok' if gap <= TOLERANCE else '**> 0.05**'} | "
             f"{tau_ours:.3f} {_interval(kendall_tau, mine, acc, n_boot)} | "
             f"{kendall_tau(other, acc):.3f} [{low:.3f}, {high:.3f}] | "
             f"{'yes' if low <= tau_ours <= high else '**no**'} | "
             f"{kendall_tau(pair[1], acc_b):.3f} {_interval(kendall_tau, pair[1], acc_b, n_boot)} |")
    return len(scored), int(np.isnan(mine).sum()), cells


def report(args, proxies: list[str], archs: list[str], table, naswot, accuracy: dict[str, float]) -> str:
    stores = [Path(args.store), *map(Path, args.also_read)]
    a, b = (our_scores(stores, proxies, archs, s) for s in args.seeds)
    lines = [f"NAS-Bench-201 CIFAR-10, {len(archs)} archs drawn from NAS-Bench-Suite-Zero's table (sample seed "
             f"{args.seed}); ours: 8 x 64 real CIFAR-10 training images, seeds a={args.seeds[0]} / b={args.seeds[1]} "
             "(data and init); accuracy: test (the project's ground truth); 95% bootstrap intervals "
             f"({args.n_boot} resamples).", "",
             "| proxy | n | not computable (a) | rho(ours, table) | floor rho(a, b) | abs(rho - floor) | "
             "tau(ours, acc) | tau(table, acc) | tau(ours) in the table's interval | tau(ours, seed b, acc) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in proxies:
        n, missing, cells = _comparison(a[name], b[name], table.scores[TABLE_COLUMN[name]], archs, accuracy,
                                        args.n_boot)
        lines.append(f"| {name} (vs {TABLE_COLUMN[name]}) | {n} | {missing} | {cells}")
    lines += ["", "NASWOT's own run (`naswot_scores_all15625.csv`, the first version's Jacobian score, "
              "batch 128) on the same archs:", "",
              "| proxy | n | rho(ours, NASWOT run) | floor rho(a, b) | abs(rho - floor) | tau(ours, acc) | "
              "tau(NASWOT run, acc) | tau(ours) in the run's interval | tau(ours, seed b, acc) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name in ("jacov", "nwot"):
        if name in proxies:
            n, _, cells = _comparison(a[name], b[name], naswot.scores["naswot"], archs, accuracy, args.n_boot)
            lines.append(f"| {name} | {n} | {cells}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None, help="reference data (default $XIGSNR_DATA_ROOT)")
    p.add_argument("--n", type=int, default=200, help="architectures drawn from the table (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the architecture draw (default 0)")
    p.add_argument("--seeds", type=int, nargs=2, default=(1, 2), metavar=("A", "B"),
                   help="the two data/init seeds of the floor (default 1 2)")
    p.add_argument("--proxies", nargs="+", default=list(TABLE_COLUMN), choices=list(TABLE_COLUMN))
    p.add_argument("--store", default="results/validate_zoo.jsonl", help="resumable results file")
    p.add_argument("--also-read", action="append", default=[], metavar="FILE",
                   help="more results files the report reads (e.g. a side-by-side run of seed b)")
    p.add_argument("--out", default="evaluation/zoo_validation/nb201_cifar10.md", help="markdown table")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--floor-n", type=int, default=None,
                   help="score seed b on the first this many archs only (default: all)")
    p.add_argument("--score-seed", choices=("a", "b", "both"), default="both",
                   help="score only seed a, only seed b (e.g. two runs side by side), or both (default)")
    p.add_argument("--reverse", action="store_true",
                   help="score the archs last first (a second run on its own store meets the first halfway)")
    p.add_argument("--offset", type=int, default=0,
                   help="start scoring at this position of the order (wrapping round; runs side by side)")
    p.add_argument("--chunk", type=int, default=20, help="archs per call of the study (progress, resumption)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--report-only", action="store_true", help="no scoring: the table from what the store holds")
    args = p.parse_args(argv)
    root = resolve_data_root(args.data_root)
    args.data_root = root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProxyTableWarning)
        table = read_suitezero_csv(root / "nb201" / "suitezero_cifar10_9445.csv")
        naswot = read_naswot_csv(root / "nb201" / "naswot_scores_all15625.csv")
    truth = nb201_ground_truth("cifar10", root)
    accuracy = dict(zip(truth["arch"], truth["accuracy"]))
    index = dict(zip(truth["arch"], truth.index))
    archs = sample_archs(table, args.n, args.seed)
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    wall = None
    if not args.report_only:
        wall = score(args, list(args.proxies), archs, index)
    text = report(args, list(args.proxies), archs, table, naswot, accuracy)
    if wall is not None:
        text += f"\nScoring wall time: {wall:.0f} s ({args.workers} workers x {args.threads} thread).\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
