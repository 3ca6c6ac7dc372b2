"""Seconds per candidate of a xi-GSNR search in the ProxylessNAS and BurgerFormer spaces.

Sizes a real search: for each space and resolution, a few architectures are sampled within
the paper's constraints (ProxylessNAS: 400M FLOPs; BurgerFormer: 30M parameters, 5G FLOPs),
built, and scored with xi-GSNR (official mode) on random-noise images of that resolution
(the cost does not depend on what the pixels show). Each candidate's time is split into
building the network and scoring ``--n-batches`` batches of ``--batch-size`` images; the cost
of the paper's protocol (8 batches of 64 = 512 images) is extrapolated as
build + score x 512 / (n_batches x batch_size), since scoring is one forward and backward
pass per batch and its cost grows with the number of images. A search of S steps and population P costs about
(P + S) x that figure, less for architectures met twice.

Usage (about 3-5 minutes on two CPU cores with the defaults)::

    python evaluation/bench_search_cost.py
    python evaluation/bench_search_cost.py --device cuda --n-batches 8 --candidates 5

The figures are wall-clock times of this machine; rerun on the machine that will search.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from xigsnr_naslib.search.evolution import Constraints, arch_size
from xigsnr_naslib.data.image_folder import synthetic_images
from xigsnr_naslib.scoring.study import build_model
from xigsnr_naslib.data.protocol import Protocol, draw_batches
from xigsnr_naslib.proxies import get_proxy
from xigsnr_naslib.benchmarks import create_space

SPACES = {"proxylessnas_xigsnr": {"max_flops": 400e6}, "burgerformer": {"max_params": 30e6, "max_flops": 5e9}}
PAPER_IMAGES = 8 * 64


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(space_name: str, resolution: int, candidates: int, n_batches: int, batch_size: int, device: str,
            seed: int = 0) -> dict:
    """Median build and scoring seconds of ``candidates`` constrained architectures."""
    space = create_space(space_name, resolution=resolution)
    # the constraints hold at 224x224 (as in the paper), whatever resolution is scored
    bounds = Constraints(**SPACES[space_name], resolution=224)
    rng = random.Random(seed)
    archs = []
    while len(archs) < candidates:
        arch = space.sample(rng)
        if not bounds.violations(*arch_size(space, arch, 224)):
            archs.append(arch)
    images = synthetic_images(n_batches * batch_size, resolution, 1000, seed)
    batches = draw_batches(images, Protocol(n_batches, batch_size, normalization="imagenet"), "imagenet", device)
    proxy = get_proxy("xi_gsnr")
    builds, scores = [], []
    for arch in archs:
        start = time.perf_counter()
        model = build_model(space, arch, 1000, 1, device)
        _sync(device)
        built = time.perf_counter()
        proxy(model, batches)
        _sync(device)
        builds.append(built - start)
        scores.append(time.perf_counter() - built)
    build, score = statistics.median(builds), statistics.median(scores)
    return {"space": space_name, "resolution": resolution, "candidates": candidates, "batches": f"{n_batches}x{batch_size}",
            "build_s": build, "score_s": score, "per_candidate_s": build + score,
            "paper_protocol_s": build + score * PAPER_IMAGES / (n_batches * batch_size)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spaces", nargs="+", default=list(SPACES), choices=list(SPACES))
    p.add_argument("--resolutions", nargs="+", type=int, default=[224, 64])
    p.add_argument("--candidates", type=int, default=2, help="architectures per setting (default 2)")
    p.add_argument("--n-batches", type=int, default=2, help="batches scored per candidate (default 2)")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, {torch.get_num_threads()} CPU thread(s), torch {torch.__version__}; "
          f"xi-GSNR official mode, noise images")
    cols = ("space", "resolution", "batches", "build_s", "score_s", "per_candidate_s", "paper_protocol_s")
    print("".join(f"{c:>21}" for c in cols))
    for space in args.spaces:
        for resolution in args.resolutions:
            row = measure(space, resolution, args.candidates, args.n_batches, args.batch_size, args.device)
            print("".join(f"{row[c]:>21.3f}" if isinstance(row[c], float) else f"{row[c]:>21}" for c in cols),
                  flush=True)
    print(f"paper_protocol_s: seconds per candidate for 8 batches of 64 images "
          f"(build + score x {PAPER_IMAGES}/{args.n_batches * args.batch_size})")


if __name__ == "__main__":
    main()
