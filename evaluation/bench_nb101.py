"""Rank correlation of xi-GSNR with NAS-Bench-101 accuracy on the 2,500-cell reference sample.

Scores a seeded part (or all) of the reference sample ``nb101/nb101_sample2500.csv`` with the
released NAS-Bench-101 protocol (per-image gradients of one batch of 8 CIFAR-10 training
images, 16-channel stem) and reports Kendall's tau and Spearman's rho against the sample's
accuracy, with the number of parameters as a baseline. Results go to a resumable JSON-lines
file, so a second run with the same arguments only prints.

Caveat, printed with the numbers: the sample's accuracy is ONE seed's, and whether it is the
test or the validation accuracy is not confirmed; the paper correlates with the maximum over
seeds of the test accuracy on 4,500 cells. The numbers are indicative, not a reproduction.

    python evaluation/bench_nb101.py --data-root ../shared/data --n 300
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

CAVEAT = ("caveat: ground truth is ONE seed's 108-epoch accuracy of the 2,500-cell reference sample (test or "
          "validation not confirmed); the paper uses the max over 3 seeds of test accuracy on 4,500 cells")


def main(argv=None) -> int:
    from xigsnr_naslib.analysis.correlate import Selection, correlate
    from xigsnr_naslib.scoring.study import Execution, Study
    from xigsnr_naslib.data.protocol import RELEASED_NB101

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None, help="default: $XIGSNR_DATA_ROOT")
    p.add_argument("--n", type=int, default=300, help="cells drawn from the 2,500 (seeded); 0 = all (default 300)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the draw (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: per-image passes are "
                   "small, and more threads only contend on a shared machine)")
    p.add_argument("--results", default="results/bench_nb101.jsonl", help="resumable JSON-lines results")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    study = Study("nb101", "cifar10", ["xi_gsnr_per_sample", "params"], RELEASED_NB101,
                  Execution(args.device, progress=sys.stderr.isatty()), Path(args.results), args.data_root)
    result = correlate(study, Selection(sample=args.n or None, sample_seed=args.sample_seed))
    elapsed = time.perf_counter() - start
    print(f"NAS-Bench-101, {len(result.table)} cells, protocol {RELEASED_NB101.settings()}, "
          f"wall {elapsed:.0f} s")
    print(f"ground truth: {result.ground_truth_definition}")
    for name, m in result.metrics.items():
        print(f"{name:<20} kendall_tau {m['kendall_tau']:.4f}  spearman_rho {m['spearman_rho']:.4f}  "
              f"n {m['n']}  non-finite {m['n_nonfinite']}  errors {m['n_error']}")
    print(CAVEAT)
    print(json.dumps({k: {"kendall_tau": v["kendall_tau"], "spearman_rho": v["spearman_rho"], "n": v["n"]}
                      for k, v in result.metrics.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
