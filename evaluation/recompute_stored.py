"""Recompute stored records with the code of this checkout and compare them bit for bit.

A change that should not move any score (a refactoring, a faster kernel) is checked here:
records written by an earlier version of the code (a results store, or the whole-space job's
compressed chunks) are recomputed for a seeded sample of their architectures, every proxy the
store holds for them, with the same space, dataset, protocol and settings, into a temporary
store; then each new score is compared with the stored one. Bit-for-bit equality is expected
where the new record's ``environment`` (torch, CPU kernel set, thread count) equals the stored
one; elsewhere the relative difference is printed (the bounds: ``docs/guides/scoring.md``, "Reproducibility")::

    python evaluation/recompute_stored.py evaluation/whole_space/chunks/nb201_cifar10_00000-00200.jsonl.gz \\
        --n-archs 30 --data-root ../shared/data

Exits 1 when a score differs between records of the same environment.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path


def read_records(paths: list[str]) -> list[dict]:
    """Every record of the given JSON-lines files (``.gz`` read compressed)."""
    out = []
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as lines:
            out.extend(json.loads(line) for line in lines if line.strip())
    return out


def choose_archs(records: list[dict], n: int, seed: int) -> list[tuple[int, str]]:
    """``n`` architectures (index, arch) whose records are all ``ok``, drawn with ``random.Random(seed)``."""
    status = defaultdict(set)
    for r in records:
        status[(r["index"], r["arch"])].add(r["status"])
    complete = sorted(a for a, s in status.items() if s == {"ok"})
    return sorted(random.Random(seed).sample(complete, min(n, len(complete))))


def proxies_by_name(names: set[str]) -> list:
    """The registered proxies of these names (the xi-GSNR modes x variants included)."""
    from xigsnr_naslib.proxies import get_proxy, xi_gsnr_proxies

    known = {p.name: p for p in xi_gsnr_proxies()}
    return [known[n] if n in known else get_proxy(n) for n in sorted(names)]


def compare(stored: list[dict], fresh: list[dict]) -> tuple[list[tuple], int]:
    """Per proxy: (proxy, records, equal bit for bit, other environment, max relative difference);
    and the number of records that differ although their environments agree."""
    old = {(r["arch"], r["proxy"]): r for r in stored}
    rows, bad = defaultdict(lambda: [0, 0, 0, 0.0]), 0
    for r in fresh:
        before = old.get((r["arch"], r["proxy"]))
        if before is None or r.get("status") != "ok":
            continue
        row = rows[r["proxy"]]
        row[0] += 1
        a, b = float(r["score"]), float(before["score"])
        same = a == b or (math.isnan(a) and math.isnan(b))
        row[1] += same
        if r.get("environment") != before.get("environment"):
            row[2] += 1
        elif not same:
            bad += 1
        if not same:
            row[3] = max(row[3], abs(a - b) / max(abs(b), 1e-300))
    return [(name, *row) for name, row in sorted(rows.items())], bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stores", nargs="+", help="JSON-lines results stores (.jsonl or .jsonl.gz)")
    p.add_argument("--n-archs", type=int, default=30, help="architectures recomputed (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed of their sample (default 0)")
    p.add_argument("--workers", type=int, default=1, help="scoring processes (default 1)")
    p.add_argument("--data-root", default=None, help="reference data root (default $XIGSNR_DATA_ROOT)")
    args = p.parse_args(argv)

    from xigsnr_naslib import Execution, Study

    records = read_records(args.stores)
    archs = choose_archs(records, args.n_archs, args.seed)
    chosen = {a for _, a in archs}
    stored = [r for r in records if r["arch"] in chosen]
    first = stored[0]
    with tempfile.TemporaryDirectory() as tmp:
        study = Study(first["space"], first["dataset"], proxies_by_name({r["proxy"] for r in stored}),
                      execution=Execution(workers=args.workers), store=Path(tmp) / "fresh.jsonl",
                      data_root=args.data_root)
        study.score(archs)
        fresh = read_records([str(study.store.path)])
    rows, bad = compare(stored, fresh)
    print(f"{len(archs)} architectures of {', '.join(args.stores)} (seed {args.seed}); "
          f"{sum(r[1] for r in rows)} records recomputed")
    print(f"{'proxy':<28}{'records':>9}{'equal':>7}{'other env':>11}{'max rel diff':>14}")
    for name, n, equal, other, rel in rows:
        print(f"{name:<28}{n:>9}{equal:>7}{other:>11}{rel:>14.2e}")
    print(f"total: {sum(r[2] for r in rows)} of {sum(r[1] for r in rows)} equal bit for bit; "
          f"{bad} differ within one environment")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
