"""What the training-free ensemble costs per architecture beside xi-GSNR alone.

Scores the same seeded NB201 CIFAR-10 architectures through the study (the one scoring
path), in this process with one thread, alternating per architecture: ``xi_gsnr`` alone
(8 x 64 forward and backward passes), the ensemble (its members computed together, sharing
their passes, then the fixed rule), and each member in a study of its own (the sum is what
the members would cost without shared passes). No store: every score is computed. Prints
per-architecture seconds and the ratios (target: ensemble <= 2x xi_gsnr)::

    OMP_NUM_THREADS=1 python evaluation/bench_ensemble_cost.py --archs 4 --data-root ../shared/data
"""
from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict

import torch

from xigsnr_naslib import Execution, Study
from xigsnr_naslib.benchmarks.card import get_card
from xigsnr_naslib.proxies import get_proxy


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proxy", default="ensemble", help="the derived proxy to time (default: ensemble)")
    p.add_argument("--archs", type=int, default=4, help="architectures (a seeded sample; default 4)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--seed", type=int, default=0, help="seed of the architecture sample (default 0)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ensemble = get_proxy(args.proxy)
    if not ensemble.members:
        raise SystemExit(f"{args.proxy!r} is not a derived proxy (it has no members)")
    card = get_card("nb201")
    truth = card.load_ground_truth("cifar10", args.data_root)
    space = card.create_space()
    archs = [(int(i), space.decode(truth.at[i, "arch"])) for i in truth.sample(args.archs, random_state=args.seed).index]
    groups = {"xi_gsnr alone": ["xi_gsnr"], args.proxy: [args.proxy]}
    groups.update({f"member {m}": [m] for m in ensemble.members})
    studies = {}
    for name, proxies in groups.items():
        warm = Study(card, "cifar10", proxies, execution=Execution(workers=0), data_root=args.data_root)
        warm.score(archs[:1])  # warm-up: image loading, batch draw, first-call kernels
        studies[name] = Study(card, "cifar10", proxies, execution=Execution(workers=0), data_root=args.data_root,
                              images=warm.images)
    seconds: dict[str, list[float]] = defaultdict(list)
    for arch in archs:
        for name, study in studies.items():
            start = time.perf_counter()
            study.score([arch])
            seconds[name].append(time.perf_counter() - start)
    alone, together = sum(seconds["xi_gsnr alone"]), sum(seconds[args.proxy])
    separate = [sum(x) for x in zip(*(seconds[n] for n in groups if n.startswith("member ")))]
    print(f"machine: {platform.machine()} {platform.processor() or ''}, 1 thread, torch {torch.__version__}")
    print(f"{args.archs} NB201 CIFAR-10 architectures (seed {args.seed}), 8 x 64; {args.proxy} = "
          f"{' + '.join(ensemble.members)}")
    print(f"{'architecture':>12} {'xi_gsnr alone s':>16} {args.proxy + ' s':>12} {'members apart s':>16} {'ratio':>7}")
    for (index, _), a, e, s in zip(archs, seconds["xi_gsnr alone"], seconds[args.proxy], separate):
        print(f"{index:>12} {a:>16.2f} {e:>12.2f} {s:>16.2f} {e / a:>7.2f}")
    print(f"{'total':>12} {alone:>16.2f} {together:>12.2f} {sum(separate):>16.2f} {together / alone:>7.2f}"
          f"   (target <= 2; members apart {sum(separate) / alone:.2f}x)")
    for name in groups:
        if name.startswith("member "):
            print(f"  {name:<40} {sum(seconds[name]) / len(archs):7.2f} s per architecture")


if __name__ == "__main__":
    main()
