"""The NASLib tests, run inside real NASLib environments of both branches.

NASLib is not on PyPI and refuses Python > 3.9, so it is never installed here. ``.ci/naslib-envs``
builds one environment per NASLib snapshot in ``../shared/naslib`` (``.naslib/Develop``,
``.naslib/zerocost``) with this project installed in it; this test runs the ``naslib``-marked test
files in each, in a fresh interpreter, and fails when any of them fails or is skipped there (a
skip inside a NASLib environment means NASLib did not import: the host is not being tested).

Outside CI an environment that was not built is a skip naming the command that builds it; under
CI (``CI`` set) it is a failure.
"""
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the test files that exercise the plugin inside NASLib (each skips itself without NASLib)
NASLIB_TEST_FILES = ("tests/test_naslib_real_host.py", "tests/test_naslib_bridge.py", "tests/test_naslib_launcher.py",
                     "tests/test_naslib_integration.py", "tests/test_naslib_zc_table.py")
BRANCHES = ("Develop", "zerocost")


def environment(branch: str) -> Path:
    return REPO / ".naslib" / branch / "bin" / "python"


@pytest.fixture(scope="module")
def naslib_runs(data_root):
    """Both branches' runs, started together (one torch thread each: the two share the machine's
    cores), each waited for by its own test."""
    files = [f for f in NASLIB_TEST_FILES if (REPO / f).exists()]
    env = {**os.environ, "XIGSNR_DATA_ROOT": str(data_root), "OMP_NUM_THREADS": "1", "XIGSNR_TEST_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    runs = {}
    for branch in BRANCHES:
        if environment(branch).exists():
            log = tempfile.TemporaryFile(mode="w+")
            process = subprocess.Popen([str(environment(branch)), "-m", "pytest", "-q", "-rs", "-p",
                                        "no:cacheprovider", *files], cwd=REPO, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, text=True)
            runs[branch] = (process, log)
    yield runs
    for process, log in runs.values():
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow  # two NASLib environments, NASLib's own runner scripts in fresh interpreters
@pytest.mark.parametrize("branch", BRANCHES)
def test_the_plugin_inside_real_naslib(branch, naslib_runs):
    if branch not in naslib_runs:
        message = f"no NASLib {branch} environment at {environment(branch).parent.parent}: run .ci/naslib-envs"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    process, log = naslib_runs[branch]
    try:
        process.wait(timeout=2400)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.seek(0)
    out = log.read()
    assert process.returncode == 0, f"NASLib {branch}:\n{out[-6000:]}"
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    # a skip is allowed only where a test names this branch as not having the feature
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all("branch" in line for line in skipped), "\n".join(skipped)
