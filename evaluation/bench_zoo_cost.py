"""What the NAS-Bench-Suite-Zero proxy zoo costs per architecture beside xi-GSNR alone.

Scores the same NB201 CIFAR-10 architectures through the study (the one scoring path), in
this process with one thread, alternating per architecture: ``xi_gsnr`` alone (8 x 64
forward and backward passes), then the zoo (every proxy of :mod:`xigsnr_naslib.proxies.zoo` plus
``params`` and ``flops``, sharing their passes). Prints per-architecture seconds, the ratio
(target <= 3x) and where the zoo's time goes (each record's ``seconds``; proxies that share a
pass each report the shared time, so the shared group is shown once)::

    OMP_NUM_THREADS=1 python evaluation/bench_zoo_cost.py --archs 4 --data-root ../shared/data
"""
from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict

import torch

from xigsnr_naslib import Execution, Study
from xigsnr_naslib.benchmarks.card import get_card

ZOO = ["grad_norm", "snip", "plain", "jacov", "epe_nas", "nwot", "nwot_naslib", "fisher", "grasp", "synflow",
       "l2_norm", "zen", "params", "flops"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", type=int, default=4, help="architectures (a seeded sample; default 4)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--seed", type=int, default=0, help="seed of the architecture sample (default 0)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    card = get_card("nb201")
    truth = card.load_ground_truth("cifar10", args.data_root)
    space = card.create_space()
    archs = [(int(i), space.decode(truth.at[i, "arch"])) for i in truth.sample(args.archs, random_state=args.seed).index]
    studies = {}
    for name, proxies in (("xi_gsnr alone", ["xi_gsnr"]), ("zoo", ZOO)):
        warm = Study(card, "cifar10", proxies, execution=Execution(workers=0), data_root=args.data_root)
        warm.score(archs[:1])  # warm-up: image loading, batch draw, first-call kernels
        studies[name] = Study(card, "cifar10", proxies, execution=Execution(workers=0), data_root=args.data_root,
                              images=warm.images)
    seconds: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, float] = defaultdict(float)
    for arch in archs:
        for name, study in studies.items():
            start = time.perf_counter()
            records = study.score([arch])
            seconds[name].append(time.perf_counter() - start)
            if name == "zoo":
                for r in records:
                    key = "shared passes (grad_norm, snip, plain, jacov, epe_nas, nwot, nwot_naslib)" \
                        if r.get("shared_by") else r["proxy"]
                    if key.startswith("shared"):
                        parts[key] += r["seconds"] / r["shared_by"]
                    else:
                        parts[key] += r["seconds"]
    alone, zoo = sum(seconds["xi_gsnr alone"]), sum(seconds["zoo"])
    print(f"machine: {platform.machine()} {platform.processor() or ''}, 1 thread, torch {torch.__version__}")
    print(f"{args.archs} NB201 CIFAR-10 architectures (seed {args.seed}), 8 x 64 (the zoo reads batch 0)")
    print(f"{'architecture':>12} {'xi_gsnr alone s':>16} {'zoo s':>8} {'ratio':>7}")
    for (index, _), a, z in zip(archs, seconds["xi_gsnr alone"], seconds["zoo"]):
        print(f"{index:>12} {a:>16.2f} {z:>8.2f} {z / a:>7.2f}")
    print(f"{'total':>12} {alone:>16.2f} {zoo:>8.2f} {zoo / alone:>7.2f}   (target <= 3)")
    print("zoo seconds per architecture, by part:")
    for key, value in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<75} {value / len(archs):7.2f}")


if __name__ == "__main__":
    main()
