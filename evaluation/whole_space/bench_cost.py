"""What the whole-space job's proxy set costs per cell beside ``xi_gsnr`` alone.

Scores the same seeded NB201 CIFAR-10 cells through the study (the one scoring path), in
this process with one thread, alternating per cell: ``xi_gsnr`` alone (8 x 64 forward and
backward passes), then the job's set (:func:`job.proxies`: xi-GSNR in both joint modes with
every Table 9 variant from one set of passes, zico, meco, swap, the ensemble and the cheap
proxies). No store: every score is computed. Prints per-cell CPU seconds of this process
(``time.process_time``: on a machine shared with other work, wall time measures the
neighbours) and wall seconds, and the ratio of CPU seconds (target <= 1.2)::

    OMP_NUM_THREADS=1 nice python evaluation/whole_space/bench_cost.py --archs 4 --data-root ../shared/data
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from job import machine, proxies  # noqa: E402
from xigsnr_naslib import Execution, Study  # noqa: E402
from xigsnr_naslib.benchmarks.card import get_card  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", type=int, default=4, help="cells (a seeded sample; default 4)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--seed", type=int, default=0, help="seed of the cell sample (default 0)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    card = get_card("nb201")
    truth = card.load_ground_truth("cifar10", args.data_root)
    archs = [(int(i), truth.at[i, "arch"]) for i in truth.sample(args.archs, random_state=args.seed).index]
    studies = {}
    for name, chosen in (("xi_gsnr alone", ["xi_gsnr"]), ("job set", proxies())):
        warm = Study(card, "cifar10", chosen, execution=Execution(workers=0), data_root=args.data_root)
        warm.score(archs[:1])  # warm-up: image loading, batch draw, first-call kernels
        studies[name] = Study(card, "cifar10", chosen, execution=Execution(workers=0), data_root=args.data_root,
                              images=warm.images)
    seconds: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, float] = defaultdict(float)
    for arch in archs:
        for name, study in studies.items():
            start, cpu = time.perf_counter(), time.process_time()
            records = study.score([arch])
            seconds[name].append(time.process_time() - cpu)
            wall[name].append(time.perf_counter() - start)
            if name == "job set":
                for r in records:
                    if r.get("seconds") is not None and not r.get("shared_by") and r["proxy"] != "ensemble":
                        parts[r["proxy"]] += r["seconds"]
    alone, whole = sum(seconds["xi_gsnr alone"]), sum(seconds["job set"])
    m = machine()
    print(f"machine: {m['machine']} {m['cpu']}, {m['cores']} cores, 1 thread, torch {m['torch']}, "
          f"python {platform.python_version()}")
    n_set = len(studies["job set"].proxies)
    print(f"{args.archs} NB201 CIFAR-10 cells (seed {args.seed}), 8 x 64; set = {n_set} proxies")
    print(f"{'cell':>8} {'xi_gsnr alone CPU s':>20} {'set CPU s':>10} {'ratio':>7} {'wall s alone / set':>20}")
    for i, ((index, _), a, z) in enumerate(zip(archs, seconds["xi_gsnr alone"], seconds["job set"])):
        print(f"{index:>8} {a:>20.2f} {z:>10.2f} {z / a:>7.2f} "
              f"{wall['xi_gsnr alone'][i]:>10.2f} / {wall['job set'][i]:.2f}")
    print(f"{'total':>8} {alone:>20.2f} {whole:>10.2f} {whole / alone:>7.2f}   (target <= 1.2; wall "
          f"{sum(wall['xi_gsnr alone']):.1f} / {sum(wall['job set']):.1f} s)")
    print("seconds per cell of the proxies timed on their own (the rest share the xi-GSNR passes):")
    for key, value in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<20} {value / len(archs):7.3f}")


if __name__ == "__main__":
    main()
