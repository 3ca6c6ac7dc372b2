import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The reference data: $XIGSNR_DATA_ROOT, else ../shared/data beside the project."""
    # resolved: tests that run the command line in another folder get the same root
    root = Path(os.environ.get("XIGSNR_DATA_ROOT", REPO.parent / "shared" / "data")).resolve()
    if not (root / "nb201").is_dir():
        pytest.skip(f"reference data not found at {root} (set XIGSNR_DATA_ROOT)")
    return root


#: XIGSNR_TEST_THREADS=N runs the tests with N torch CPU threads (tests/test_thread_counts.py
#: runs the numerical modules at 1, 2 and 4 threads: their tolerances must hold at each)
_THREADS = os.environ.get("XIGSNR_TEST_THREADS")


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    if _THREADS:
        torch.set_num_threads(int(_THREADS))
    yield


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_torch_thread():
    """One torch CPU thread: fast and repeatable on a small, shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
