"""Choose the training-free ensemble on a tuning sample, freeze it, evaluate it on held-out
architectures.

The protocol (no accuracy of an evaluated architecture is ever used to build the ensemble):

1. The NAS-Bench-201 indices are shuffled with ``--split-seed``; the first ``--tune`` form
   the tuning sample, the next ``--evaluate`` the evaluation sample (disjoint by
   construction).
2. Every candidate proxy is scored on the tuning sample (through the study: store, resume).
3. Members are chosen by greedy forward selection on the tuning sample: start from the
   candidate with the highest Kendall tau; add the candidate that raises the ensemble's tau
   most; stop when no candidate raises it by ``--min-gain`` or at ``--max-members``. Each
   ensemble is the fixed rule of :mod:`xigsnr_naslib.proxies.ensemble` (weighted sum of standardised
   member values, weights 1) with centres and scales fitted on the tuning sample.
4. The choice is written (``--choice``, default ``xigsnr_naslib/ensemble_choice.json``,
   which the registered proxy ``ensemble`` reads) and then evaluated, unchanged, on the
   evaluation sample and on ``--nb101`` seeded NAS-Bench-101 cells: tau, rho, P@Top5% with
   bootstrap intervals; an ablation (each member alone, each left out, the whole ensemble)
   on the evaluation sample; and log-rank-sum (AZ-NAS's rule) over the same members, for
   comparison.

Usage::

    python evaluation/choose_ensemble.py --data-root ../shared/data --tune 1000 --evaluate 1000 --nb101 500

Writes ``--out`` (default ``evaluation/ensemble``): ``choice.json``, ``report.md``,
``ablation.csv``, ``scores.csv`` (every score used; no accuracies), ``tuning_indices.txt`` and ``evaluation_indices.txt`` (the two samples, for
``xigsnr-naslib leaderboard --archs-file``); scores go to ``--store`` (default ``<out>/scores.jsonl``), resumed.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xigsnr_naslib import Execution, Study
from xigsnr_naslib.analysis.correlate import scores_table
from xigsnr_naslib.proxies.ensemble import WeightedSum, fit_members, rank_combine
from xigsnr_naslib.analysis.metrics import bootstrap_ci, kendall_tau, precision_at_top, spearman_rho
from xigsnr_naslib.proxies import list_proxies
from xigsnr_naslib.proxies.zoo import BASELINES

#: candidates by default: the xi-GSNR modes and the zoo's proxies under their plain names
DEFAULT_CANDIDATES = ("xi_gsnr", "xi_gsnr_paper") + tuple(BASELINES)


def split(indices, tune: int, evaluate: int, seed: int) -> tuple[list[int], list[int]]:
    """Disjoint seeded tuning and evaluation samples of ``indices``."""
    order = sorted(int(i) for i in indices)
    random.Random(seed).shuffle(order)
    if tune + evaluate > len(order):
        raise ValueError(f"--tune {tune} + --evaluate {evaluate} exceed the {len(order)} architectures")
    return sorted(order[:tune]), sorted(order[tune:tune + evaluate])


def score(study: Study, truth: pd.DataFrame, indices: list[int]) -> pd.DataFrame:
    records = study.score((i, study.space.decode(truth.at[i, "arch"])) for i in indices)
    table = scores_table(records).reindex(indices)
    table["accuracy"] = truth.loc[indices, "accuracy"].to_numpy()
    return table


def ensemble_values(table: pd.DataFrame, members) -> np.ndarray:
    rule = WeightedSum(members)
    out = []
    for _, row in table.iterrows():
        try:
            out.append(rule({m.proxy: row[m.proxy] for m in members}) if all(np.isfinite(row[m.proxy])
                                                                                 for m in members) else np.nan)
        except Exception:  # a log of a non-positive value: not computable
            out.append(np.nan)
    return np.asarray(out, dtype=float)


def greedy(table: pd.DataFrame, candidates: list[str], min_gain: float, max_members: int, log) -> tuple[list, list]:
    """Forward selection on the tuning table; returns the fitted members and the path."""
    acc = table["accuracy"].to_numpy()
    single = {c: kendall_tau(table[c].to_numpy(), acc) for c in candidates}
    chosen = [max(single, key=lambda c: -np.inf if np.isnan(single[c]) else single[c])]
    best = single[chosen[0]]
    path = [(list(chosen), best)]
    log(f"start: {chosen[0]} tau {best:.4f}")
    while len(chosen) < max_members:
        gains = {}
        for c in candidates:
            if c in chosen:
                continue
            members = fit_members(table[chosen + [c]])
            gains[c] = kendall_tau(ensemble_values(table, members), acc)
        if not gains:
            break
        c = max(gains, key=lambda k: -np.inf if np.isnan(gains[k]) else gains[k])
        if not gains[c] >= best + min_gain:
            log(f"stop: the best addition ({c}, tau {gains[c]:.4f}) gains less than {min_gain}")
            break
        chosen.append(c)
        best = gains[c]
        path.append((list(chosen), best))
        log(f"add {c}: tau {best:.4f}")
    return fit_members(table[chosen]), path


def metrics_row(name: str, values: np.ndarray, acc: np.ndarray, n_boot: int, seed: int) -> dict:
    row = {"set": name, "n": int(np.isfinite(values).sum())}
    for key, fn in [("tau", kendall_tau), ("rho", spearman_rho), ("p_at_top5%", lambda s, a: precision_at_top(s, a, 0.05))]:
        row[key] = fn(values, acc)
        low, high = bootstrap_ci(fn, values, acc, n_boot=n_boot, seed=seed) if n_boot else (np.nan, np.nan)
        row[f"{key}_low"], row[f"{key}_high"] = low, high
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--evaluate", type=int, default=1000)
    p.add_argument("--nb101", type=int, default=500, help="NAS-Bench-101 cells to evaluate on (0: none)")
    p.add_argument("--split-seed", type=int, default=2024)
    p.add_argument("--candidates", nargs="*", default=None, help="candidate proxies (default: the zoo's plain names)")
    p.add_argument("--min-gain", type=float, default=0.002)
    p.add_argument("--max-members", type=int, default=5)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--workers", default="auto")
    p.add_argument("--n-batches", type=int, default=None, help="protocol (default: the NB201 card's, 8)")
    p.add_argument("--batch-size", type=int, default=None, help="protocol (default: the NB201 card's, 64)")
    p.add_argument("--out", default="evaluation/ensemble")
    p.add_argument("--store", default=None)
    p.add_argument("--choice", default=None, help="where the frozen choice goes (default: the package's)")
    p.add_argument("--context", action="store_true",
                   help="also score the candidates that are not members on the evaluation sample and the NB101 "
                        "cells (each alone, for context; costs little beside xi_gsnr)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Path(args.store) if args.store else out / "scores.jsonl"
    known = set(list_proxies())
    candidates = [c for c in (args.candidates or DEFAULT_CANDIDATES) if c in known]
    missing = [c for c in (args.candidates or []) if c not in known]
    if missing:
        print(f"unknown candidate proxies: {missing}; registered: {sorted(known)}", file=sys.stderr)
        return 2
    log = print
    execution = Execution(workers=args.workers if args.workers == "auto" else int(args.workers))
    started = time.time()

    from xigsnr_naslib import Protocol, get_card

    default = get_card("nb201").dataset("cifar10").protocol
    protocol = Protocol(n_batches=args.n_batches or default.n_batches, batch_size=args.batch_size or default.batch_size)
    study = Study("nb201", "cifar10", proxies=candidates, protocol=protocol, store=store, data_root=args.data_root,
                  execution=execution)
    truth = study.card.load_ground_truth("cifar10", args.data_root)
    tune_idx, eval_idx = split(truth.index, args.tune, args.evaluate, args.split_seed)
    for name, indices in (("tuning", tune_idx), ("evaluation", eval_idx)):  # for the leaderboard's --archs-file
        (out / f"{name}_indices.txt").write_text("\n".join(map(str, indices)) + "\n")
    log(f"tuning sample: {len(tune_idx)} NB201 architectures; evaluation sample: {len(eval_idx)} (split seed "
        f"{args.split_seed}); candidates: {', '.join(candidates)}")
    tuning = score(study, truth, tune_idx)
    keep = [c for c in candidates if np.isfinite(tuning[c]).sum() >= 2]
    members, path = greedy(tuning.dropna(subset=keep), keep, args.min_gain, args.max_members, log)
    choice = {"name": "ensemble", "members": [m.__dict__ for m in members],
              "tuning": {"space": "nb201", "dataset": "cifar10", "n": len(tune_idx), "split_seed": args.split_seed,
                         "protocol": study.protocol.settings(), "path": path,
                         "command": "python evaluation/choose_ensemble.py " + " ".join(argv or sys.argv[1:])}}
    choice_path = Path(args.choice) if args.choice else Path(__file__).resolve().parents[1] / "xigsnr_naslib" / "ensemble_choice.json"
    choice_path.write_text(json.dumps(choice, indent=2) + "\n")
    (out / "choice.json").write_text(json.dumps(choice, indent=2) + "\n")
    log(f"frozen: {[m.proxy for m in members]} -> {choice_path}")

    rows = []
    chosen = [m.proxy for m in members]
    # after the choice is frozen: the members (ensemble and ablation) on the evaluation sample,
    # with --context the other candidates too (each alone)
    scored = keep if args.context else chosen
    evaluation = score(Study("nb201", "cifar10", proxies=scored, protocol=protocol, store=store,
                             data_root=args.data_root, execution=execution), truth, eval_idx)
    acc = evaluation["accuracy"].to_numpy()
    rows.append(metrics_row("tuning: ensemble", ensemble_values(tuning, members), tuning["accuracy"].to_numpy(),
                            args.n_boot, 0))
    rows.append(metrics_row("evaluation: ensemble", ensemble_values(evaluation, members), acc, args.n_boot, 0))
    for m in members:
        rows.append(metrics_row(f"evaluation: {m.proxy} alone", evaluation[m.proxy].to_numpy(), acc, args.n_boot, 0))
    if len(members) > 1:
        for m in members:
            rest = [x for x in members if x is not m]
            rows.append(metrics_row(f"evaluation: without {m.proxy}", ensemble_values(evaluation, rest), acc,
                                    args.n_boot, 0))
    rows.append(metrics_row("evaluation: log-rank sum (AZ-NAS rule), same members",
                            rank_combine(evaluation[chosen], "log_rank_sum").to_numpy(), acc, args.n_boot, 0))
    for c in scored:
        if c not in chosen:
            rows.append(metrics_row(f"evaluation: {c} alone (not a member)", evaluation[c].to_numpy(), acc,
                                    args.n_boot, 0))
    if args.nb101:
        nb101 = Study("nb101", "cifar10", proxies=scored, protocol=study.protocol, store=store,
                      data_root=args.data_root, execution=execution)
        truth101 = nb101.card.load_ground_truth("cifar10", args.data_root)
        # a seeded permutation, scored in its order: the first k cells are the same whatever
        # --nb101 is, so a run cut short reports the first k with --nb101 k, all from the store
        cells = sorted(int(i) for i in truth101.index)
        random.Random(args.split_seed).shuffle(cells)
        cells = cells[:args.nb101]
        table101 = score(nb101, truth101, cells)
        rows.append(metrics_row("NB101: ensemble", ensemble_values(table101, members),
                                table101["accuracy"].to_numpy(), args.n_boot, 0))
        for c in scored:
            rows.append(metrics_row(f"NB101: {c} alone" + ("" if c in chosen else " (not a member)"),
                                    table101[c].to_numpy(), table101["accuracy"].to_numpy(), args.n_boot, 0))
    report = pd.DataFrame(rows)
    report.to_csv(out / "ablation.csv", index=False, float_format="%.4f")
    # every score used above, one row per (sample, benchmark index); the accuracies are not
    # copied out of the data root (the benchmark card's ground truth gives them by index)
    tables = [("tuning", tuning), ("evaluation", evaluation)] + ([("nb101", table101)] if args.nb101 else [])
    pd.concat([t.drop(columns="accuracy").assign(sample=name) for name, t in tables]).rename_axis(
        "index").reset_index().to_csv(out / "scores.csv", index=False, float_format="%.10g")
    lines = [f"# Ensemble: {' + '.join(chosen)}", "",
             f"Chosen on {len(tune_idx)} tuning architectures (NB201 CIFAR-10, split seed {args.split_seed}); "
             f"evaluated unchanged on {len(eval_idx)} others"
             + (f" and on {args.nb101} NB101 cells (same protocol, {protocol.n_batches} x {protocol.batch_size})"
                if args.nb101 else "") + f". This run: {time.time() - started:.0f} s (scores in the store were reused).",
             "", "Members (transform, centre, scale, weight): " + "; ".join(
                 f"{m.proxy} ({m.transform}, {m.centre:.6g}, {m.scale:.6g}, {m.weight:g})" for m in members), "",
             "Selection path on the tuning sample (members -> tau): " + "; ".join(
                 f"{' + '.join(names)} -> {tau:.4f}" for names, tau in path), "",
             "| set | n | τ [95% CI] | ρ [95% CI] | P@Top5% |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['n']} | {r['tau']:.3f} [{r['tau_low']:.3f}, {r['tau_high']:.3f}] | "
                     f"{r['rho']:.3f} [{r['rho_low']:.3f}, {r['rho_high']:.3f}] | {r['p_at_top5%']:.2f} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
