"""The numerical tests hold at 1, 2 and 4 torch threads.

A thread count changes how float32 reductions (convolution backward, sums over a batch) are
split, so gradients differ in their last bits between thread counts; every tolerance of the
numerical modules is derived from the size of the sums it bounds (see each test), never
fitted to one machine. This runs those modules, fast cases, in fresh interpreters with
``XIGSNR_TEST_THREADS`` = 1, 2 and 4 (tests/conftest.py sets torch's thread count from it;
the tests that pin one thread for bit-for-bit comparisons keep their one thread).

A study scores with :data:`xigsnr_naslib.scoring.study.DEFAULT_THREADS` (1) unless told otherwise,
whatever torch's global count, the command or the number of workers, so that `score` and
`correlate` store the same values; each record names its torch, thread count and CPU kernel
set (``environment``). Other thread counts move a score within the rounding bound derived in
tests/test_study.py.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
TINY = ["--n-batches", "2", "--batch-size", "4", "--proxy", "xi_gsnr", "--proxy", "zico", "--no-progress"]


@pytest.fixture
def two_torch_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a global count other than the default: `score` used to inherit it
    yield
    torch.set_num_threads(threads)


def test_score_and_correlate_store_the_same_bits_by_default(tmp_path, data_root, two_torch_threads):
    """One default thread count for every command: `score` (one architecture, in this process)
    and `correlate` (worker processes on a machine with several cores) store equal values, and
    every record names the environment that fixes its last bits."""
    from xigsnr_naslib.cli.app import main
    from xigsnr_naslib.scoring.results import ResultsStore

    root = ["--data-root", str(data_root)]
    assert main(["correlate", "--archs", "1,219", *TINY, *root, "--results", str(tmp_path / "c.jsonl")]) == 0
    assert main(["score", ARCH, *TINY, *root, "--results", str(tmp_path / "s.jsonl")]) == 0
    correlated = {r["proxy"]: r for r in ResultsStore(tmp_path / "c.jsonl") if r["index"] == 1}
    scored = {r["proxy"]: r for r in ResultsStore(tmp_path / "s.jsonl")}
    for proxy in ("xi_gsnr", "zico"):
        assert scored[proxy]["score"] == correlated[proxy]["score"], proxy
        for record in (scored[proxy], correlated[proxy]):
            env = record["environment"]
            assert (env["torch"], env["threads"], env["cpu_capability"]) == \
                (torch.__version__, 1, torch.backends.cpu.get_cpu_capability())
    assert torch.get_num_threads() == 2  # the caller's thread count is given back


@pytest.mark.slow  # one NB201 cell at 3 x 16, three times (seconds each)
def test_scores_at_other_thread_counts_stay_within_the_rounding_bound(data_root):
    """An explicit thread count is honoured and recorded; the scores it gives differ from the
    default's by float32 rounding only, within the bound derived in tests/test_study.py."""
    from test_study import RELEASE_PROTOCOL, rounding_bounds
    from xigsnr_naslib import Execution, Study
    from xigsnr_naslib.data.datasets import load_images
    from xigsnr_naslib.data.protocol import draw_batches
    from xigsnr_naslib.scoring.study import build_model

    proxies = ["xi_gsnr", "xi_gsnr_paper", "zico"]
    images = load_images("cifar10", data_root)
    runs = {}
    for threads in (1, 2, 4):
        study = Study("nb201", "cifar10", proxies, RELEASE_PROTOCOL, Execution(workers=0, threads=threads),
                      images=images)
        records = study.score([(1, ARCH)])
        assert {r["environment"]["threads"] for r in records} == {threads}
        runs[threads] = {r["proxy"]: r["score"] for r in records}
    model = build_model(study.space, study.space.decode(ARCH), 10, RELEASE_PROTOCOL.init_seed)
    bounds = rounding_bounds(model, draw_batches(images, RELEASE_PROTOCOL, "cifar10"))
    for threads in (2, 4):
        for proxy in proxies:
            assert abs(runs[threads][proxy] - runs[1][proxy]) <= bounds[proxy] * abs(runs[1][proxy]), (threads, proxy)
