"""Cost of the recent proxies (MeCo, SWAP, AZ-NAS components, VKDNW, layer counts) against xi-GSNR alone,
per NAS-Bench-201 architecture, measured in one run.

    OMP_NUM_THREADS=1 python evaluation/bench_recent_proxies.py --archs 4 --data-root ../shared/data

For each of ``--archs`` seeded NB201 architectures (``Selection(sample=archs, sample_seed=seed)``
of the benchmark's indices), with the paper's protocol (8 batches of 64 CIFAR-10 images), in
this process on one thread, the script times, interleaved: ``xi_gsnr`` alone (8 forward +
backward passes of 64 images), each pass of the recent proxies alone together with the proxies
that read it (MeCo's one-image forward, SWAP's 16-image forward, the AZ-NAS stage features with
the three components, VKDNW's Jacobians with both scores), and all of them together as a study
runs them (each pass once). Prints seconds per architecture and the ratio to ``xi_gsnr``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from xigsnr_naslib import PAPER_NB201, Selection, draw_batches, get_card
from xigsnr_naslib.data.datasets import load_images
from xigsnr_naslib.proxies import PassResults, get_proxy, run_passes
from xigsnr_naslib.scoring.study import build_model

GROUPS = {
    "meco, meco_opt": ("meco", "meco_opt"),
    "swap": ("swap",),
    "aznas_expressivity, _progressivity, _trainability": ("aznas_expressivity", "aznas_progressivity",
                                                          "aznas_trainability"),
    "vkdnw, vkdnw_fisher": ("vkdnw", "vkdnw_fisher"),
    "aznas_complexity, trainable_layers, trainable_weight_layers": ("aznas_complexity", "trainable_layers",
                                                                    "trainable_weight_layers"),
}
ALL = tuple(name for names in GROUPS.values() for name in names)


def timed(model, batches, names) -> float:
    """Seconds to run the proxies' passes once and compute each of them."""
    proxies = [get_proxy(n) for n in names]
    start = time.perf_counter()
    results = run_passes(model, batches, F.cross_entropy, [need for p in proxies for need in p.needs])
    shared = PassResults(model, batches, F.cross_entropy, tuple(batches[0][0].shape[1:]), results)
    for proxy in proxies:
        try:
            proxy.compute(shared)
        except Exception as exc:  # noqa: BLE001 - a not-computable architecture still costs its passes
            print(f"  ({proxy.name}: {type(exc).__name__}: {exc})")
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=4, help="seeded NB201 architectures (default 4)")
    p.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    p.add_argument("--data-root", default=None, help="reference data (default $XIGSNR_DATA_ROOT)")
    args = p.parse_args(argv)
    if args.archs < 1:
        p.error(f"--archs must be at least 1, got {args.archs}")
    torch.set_num_threads(1)
    card = get_card("nb201")
    truth = card.load_ground_truth("cifar10", args.data_root)
    space = card.space()
    indices = Selection(sample=args.archs, sample_seed=args.seed).apply(truth.index)
    batches = draw_batches(load_images("cifar10", args.data_root), PAPER_NB201, "cifar10")
    rows = {"xi_gsnr": [], **{g: [] for g in GROUPS}, "all recent proxies, passes shared": []}
    for index in indices:
        arch = space.decode(truth.at[index, "arch"])
        model = build_model(space, arch, 10, PAPER_NB201.init_seed)
        rows["xi_gsnr"].append(timed(model, batches, ("xi_gsnr",)))
        for group, names in GROUPS.items():
            rows[group].append(timed(model, batches, names))
        rows["all recent proxies, passes shared"].append(timed(model, batches, ALL))
        print(f"index {index}: xi_gsnr {rows['xi_gsnr'][-1]:.2f} s, all recent "
              f"{rows['all recent proxies, passes shared'][-1]:.2f} s", flush=True)
    base = statistics.mean(rows["xi_gsnr"])
    print(f"\nNB201 CIFAR-10, {len(indices)} seeded architectures, 8 x 64 images, one thread; mean seconds per architecture")
    print(f"{'proxies':62s} {'s/arch':>8s} {'vs xi_gsnr':>11s}")
    for name, values in rows.items():
        mean = statistics.mean(values)
        print(f"{name:62s} {mean:8.2f} {mean / base:10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
