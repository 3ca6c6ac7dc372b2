"""ZiCo on NAS-Bench-201 CIFAR-10: Kendall tau / Spearman rho against accuracy, seconds per arch.

    python evaluation/bench_zico.py --data-root ../shared/data [--n 100] [--seed 0]

Scores a seeded random sample of ``--n`` NAS-Bench-201 architectures with ZiCo on real
CIFAR-10 training images (``--n-batches`` batches of ``--batch-size``; default 2 x 64: the
released code's two batches at the xi-GSNR paper's batch size), correlates the scores with
the benchmark's CIFAR-10 test accuracy (the project's ground truth) and prints the result.
The published figure over all 15,625 cells is Kendall tau about 0.59-0.61; a sample of 100
has a wide spread around it. Results go to a resumable JSON-lines file.
"""
from __future__ import annotations

import argparse
import json
import sys

from xigsnr_naslib.analysis.correlate import Selection, correlate
from xigsnr_naslib.scoring.study import Execution, Study
from xigsnr_naslib.data.protocol import Protocol


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None, help="reference data (default $XIGSNR_DATA_ROOT)")
    p.add_argument("--n", type=int, default=100, help="number of sampled architectures (default 100)")
    p.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    p.add_argument("--n-batches", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--protocol-seed", type=int, default=1, help="seeds the batches and the initialisation")
    p.add_argument("--results", default="results/bench_zico_nb201_cifar10.jsonl")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    protocol = Protocol(n_batches=args.n_batches, batch_size=args.batch_size, data_seed=args.protocol_seed,
                        init_seed=args.protocol_seed)
    study = Study("nb201", "cifar10", ["zico"], protocol, Execution(args.device), args.results, args.data_root)
    result = correlate(study, Selection(sample=args.n, sample_seed=args.seed))
    m = result.metrics["zico"]
    print(f"ZiCo, NAS-Bench-201 CIFAR-10, {m['n']} archs (sample seed {args.seed}), "
          f"{args.n_batches} x {args.batch_size} real CIFAR-10 training images")
    print(f"ground truth: {result.ground_truth_definition}")
    print(f"Kendall tau {m['kendall_tau']:.4f}  Spearman rho {m['spearman_rho']:.4f}  "
          f"seconds/arch {m['seconds_per_arch']:.3f}  (non-finite {m['n_nonfinite']}, errors {m['n_error']})")
    print(json.dumps(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
