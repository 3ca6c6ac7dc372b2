"""Spaces and proxies from another package reach every command through entry points alone.

The toy package (tests/toy_space_package) is installed with pip into a temporary folder;
``xigsnr-naslib`` then runs in a fresh interpreter with that folder on its path and finds the
toy card and proxy through ``importlib.metadata`` entry points: no project file names them.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOY = Path(__file__).parent / "toy_space_package"


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("toy_site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(TOY)], check=True, capture_output=True)
    return site


def run_cli(site, *args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "xigsnr_naslib.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd)


@pytest.mark.slow  # pip-installs a package and runs three commands in fresh interpreters (about 14 s)
def test_a_toy_space_from_another_package_is_listed_scored_and_correlated(toy_site, data_root, tmp_path):
    listed = run_cli(toy_site, "spaces", cwd=tmp_path)
    assert listed.returncode == 0 and "a toy space from another package" in listed.stdout
    results = tmp_path / "toy.jsonl"
    done = run_cli(toy_site, "correlate", "--space", "toy", "--proxy", "toy_width", "--proxy", "xi_gsnr",
                   "--workers", "0", "--no-progress", "--data-root", str(data_root), "--results", str(results),
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert {r["arch"] for r in records} == {str(w) for w in range(1, 9)}
    assert all(r["status"] == "ok" for r in records)
    # the toy card's own protocol (2 x 4) is the default, and the width proxy ranks perfectly
    assert {(r["protocol"] or {}).get("batch_size") for r in records if r["proxy"] == "xi_gsnr"} == {4}
    report = json.loads(results.with_suffix(".report.json").read_text())
    assert report["metrics"]["toy_width"]["kendall_tau"] == pytest.approx(1.0)
    assert report["ground_truth"] == "toy accuracy: 50 + 5 x width"
    # without the package on the path, the space is unknown and the message lists the known ones
    alone = subprocess.run([sys.executable, "-m", "xigsnr_naslib.cli", "correlate", "--space", "toy"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert alone.returncode == 2 and "unknown search space 'toy'; choose one of:" in alone.stderr
    assert "nb201" in alone.stderr and "Traceback" not in alone.stderr
