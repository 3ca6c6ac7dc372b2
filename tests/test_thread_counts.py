"""The numerical tests hold at 1, 2 and 4 torch threads.

A thread count changes how float32 reductions (convolution backward, sums over a batch) are
split, so gradients differ in their last bits between thread counts; every tolerance of the
numerical modules is derived from the size of the sums it bounds (see each test), never
fitted to one machine. This runs those modules, fast cases, in fresh interpreters with
``XIGSNR_TEST_THREADS`` = 1, 2 and 4 (tests/conftest.py sets torch's thread count from it;
the tests that pin one thread for bit-for-bit comparisons keep their one thread).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NUMERICAL = ["tests/test_strategies.py", "tests/test_estimator.py", "tests/test_zico.py", "tests/test_passes.py",
             "tests/test_metrics_properties.py"]


@pytest.mark.slow  # three fresh pytest runs of five modules: about a minute each
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_numerical_modules_pass_at_this_thread_count(threads, data_root):
    env = {**os.environ, "XIGSNR_TEST_THREADS": str(threads), "XIGSNR_DATA_ROOT": str(data_root)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider",
                          *NUMERICAL], cwd=REPO, env=env, capture_output=True, text=True, timeout=3000)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
