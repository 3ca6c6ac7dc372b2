"""The command line: errors that name the missing file, scoring, resume without recomputing."""
import json

import pytest

from xigsnr_naslib.cli.app import main

CHEAP = "0,3"  # two benchmark indices, scored with tiny batches


def test_missing_data_root_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XIGSNR_DATA_ROOT", raising=False)
    assert main(["correlate", "--first", "2"]) == 2
    assert "--data-root" in capsys.readouterr().err
    assert main(["correlate", "--first", "2", "--data-root", str(tmp_path)]) == 1  # a data error
    assert "nb201_groundtruth_all15625.csv" in capsys.readouterr().err


def test_unknown_proxy_and_dataset(data_root, capsys):
    assert main(["correlate", "--first", "2", "--proxy", "nope", "--data-root", str(data_root)]) == 2
    assert "unknown proxy 'nope'" in capsys.readouterr().err
    assert main(["correlate", "--first", "2", "--dataset", "mnist", "--data-root", str(data_root)]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_correlate_writes_results_and_resumes(data_root, tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    common = ["correlate", "--archs", CHEAP, "--proxy", "xi_gsnr", "--proxy", "params", "--n-batches", "2",
              "--results", str(results), "--data-root", str(data_root), "--no-progress"]
    args = common + ["--batch-size", "8"]
    assert main(args) == 0
    first = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(first) == 4 and {r["index"] for r in first} == {0, 3}
    assert all(r["status"] == "ok" and r["seconds"] >= 0 for r in first)
    gsnr = next(r for r in first if r["proxy"] == "xi_gsnr")
    assert gsnr["settings"]["mode"] == "official" and gsnr["protocol"]["batch_size"] == 8
    report = json.loads(results.with_suffix(".report.json").read_text())
    assert report["metrics"]["xi_gsnr"]["n"] == 2
    # a second run reuses every record: nothing is appended
    assert main(args) == 0
    assert results.read_text().count("\n") == 4
    # a different protocol is a different computation
    assert main(common + ["--batch-size", "4"]) == 0
    assert results.read_text().count("\n") == 6


def test_score_one_arch(data_root, capsys):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert main(["score", arch, "--n-batches", "2", "--batch-size", "4", "--data-root", str(data_root),
                 "--proxy", "xi_gsnr", "--proxy", "params"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scores"]["params"] == 802426 and out["scores"]["xi_gsnr"] > 0


def test_listings(capsys):
    assert main(["proxies"]) == 0
    listed = capsys.readouterr().out
    for name in ["xi_gsnr", "xi_gsnr_paper", "xi_gsnr_per_sample", "gsnr_sq_mean", "params", "flops"]:
        assert name in listed
    assert main(["spaces"]) == 0
    assert "nb201" in capsys.readouterr().out


# --- a read-only results file: reading is enough when nothing is left to append --------------------
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(path)`` makes a file read-only (mode 0444). Root may write any file, so where
    the tests run as root the refusals the OS gives everyone else are made by hand: opening
    the file for writing raises ``PermissionError`` and ``os.access`` says it is not writable."""
    import builtins
    import os

    guarded: set[str] = set()
    real_open, real_access = builtins.open, os.access

    def guarded_open(file, mode="r", *args, **kwargs):
        if str(file) in guarded and any(c in mode for c in "wax+"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    def guarded_access(path, mode, *args, **kwargs):
        return False if str(path) in guarded and mode & os.W_OK else real_access(path, mode, *args, **kwargs)

    def make(path):
        path.chmod(0o444)
        if os.geteuid() == 0:
            guarded.add(str(path))
            monkeypatch.setattr(builtins, "open", guarded_open)
            monkeypatch.setattr(os, "access", guarded_access)

    yield make


def test_a_read_only_store_holding_every_record_is_enough(data_root, tmp_path, capsys, read_only):
    results = tmp_path / "r.jsonl"
    args = ["score", ARCH, "--proxy", "params", "--proxy", "flops", "--results", str(results), "--workers", "0",
            "--data-root", str(data_root), "--no-progress"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    (tmp_path / "r.jsonl.lock").unlink()
    before = results.read_text()
    read_only(results)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert results.read_text() == before and not (tmp_path / "r.jsonl.lock").exists()  # no lock taken


def test_a_read_only_store_with_records_to_append_is_refused_before_scoring(data_root, tmp_path, capsys, monkeypatch,
                                                                           read_only):
    results = tmp_path / "r.jsonl"
    base = ["score", ARCH, "--results", str(results), "--workers", "0", "--data-root", str(data_root), "--no-progress"]
    assert main([*base, "--proxy", "params"]) == 0
    capsys.readouterr()
    before = results.read_text()
    read_only(results)
    monkeypatch.setattr("xigsnr_naslib.scoring.study.build_model", lambda *a, **k: pytest.fail("scored before refusing"))
    assert main([*base, "--proxy", "params", "--proxy", "flops"]) == 1  # a file problem: exit status 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(results) in err and "read-only" in err and "1 record(s) to append" in err
    assert results.read_text() == before
