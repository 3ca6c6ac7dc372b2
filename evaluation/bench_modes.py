"""Benchmark: the first N NAS-Bench-201 architectures on CIFAR-10 in each xi-GSNR mode.

Prints Kendall tau, Spearman rho, Pearson r, P@Top-5%/10% against the CIFAR-10 test
accuracy and the seconds per architecture of each mode, next to the paper's figures for all
15,625 architectures. Scores are appended to a resumable results file, so an interrupted
run continues where it stopped (the seconds printed are those recorded when each score was
computed).

    python evaluation/bench_modes.py --data-root ../shared/data [--first 200] [--workers 2]

Modes: ``official`` and ``paper`` use the paper's protocol (8 batches of 64) and are
scored together from the same 8 forward/backward passes per architecture (bit for bit what
each gives alone; see the README's Speed section), so their seconds are those of the shared
passes; ``per_sample`` uses the released NAS-Bench-101 protocol (per-image gradients of one
batch of 8), which is what that mode exists for.
"""
from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from xigsnr_naslib.analysis.correlate import Selection, correlate
from xigsnr_naslib.scoring.study import Execution, Study
from xigsnr_naslib.data.protocol import PAPER_NB201, RELEASED_NB101

#: (proxy, protocol) per mode
MODES = {
    "official": ("xi_gsnr_official", PAPER_NB201),
    "paper": ("xi_gsnr_paper", PAPER_NB201),
    "per_sample": ("xi_gsnr_per_sample", RELEASED_NB101),
}
PUBLISHED = {"kendall_tau": 0.661, "spearman_rho": 0.845}  # Table 1, CIFAR-10, all 15,625


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--first", type=int, default=200, help="score benchmark indices 0..N-1 (default 200)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--results", default="results/bench_modes_nb201_cifar10.jsonl")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", default=None,
                        help="architectures scored at a time, one single-threaded process each ('auto': one per "
                             "CPU core); default: in this process. Seconds per architecture are each worker's.")
    args = parser.parse_args(argv)
    workers = 0 if args.workers is None else (args.workers if args.workers == "auto" else int(args.workers))

    print(f"machine: {platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {args.device}, workers {args.workers or 'in-process'}")
    metrics = {}
    for protocol in dict.fromkeys(MODES[mode][1] for mode in args.modes):
        proxies = [MODES[mode][0] for mode in args.modes if MODES[mode][1] == protocol]
        study = Study("nb201", "cifar10", proxies, protocol, Execution(args.device, workers=workers, progress=True),
                      Path(args.results), args.data_root)
        result = correlate(study, Selection(first=args.first))
        metrics.update(result.metrics)
    rows = [(mode, MODES[mode][1], metrics[MODES[mode][0]]) for mode in args.modes]
    print(f"\nNAS-Bench-201 CIFAR-10, benchmark indices 0..{args.first - 1}; "
          f"paper (all 15,625, official code): tau {PUBLISHED['kendall_tau']}, rho {PUBLISHED['spearman_rho']}")
    print(f"{'mode':<11}{'protocol':<10}{'n':>5}{'tau':>8}{'rho':>8}{'pearson':>9}{'P@5%':>7}{'P@10%':>7}"
          f"{'s/arch':>8}{'nonfinite':>10}")
    for mode, protocol, m in rows:
        print(f"{mode:<11}{f'{protocol.n_batches}x{protocol.batch_size}':<10}{m['n']:>5}{m['kendall_tau']:>8.3f}"
              f"{m['spearman_rho']:>8.3f}{m['pearson_r']:>9.3f}{m['p_at_top5%']:>7.2f}{m['p_at_top10%']:>7.2f}"
              f"{m['seconds_per_arch']:>8.2f}{m['n_nonfinite']:>10}")


if __name__ == "__main__":
    main()
