"""The launcher ``python -m xigsnr_naslib.naslib run SCRIPT ARGS``: against NASLib's own measures
registry where NASLib imports (the NASLib environments of ``tests/test_in_real_naslib.py``), else
against the stand-in.

The stand-in (``tests/naslib_standin.py``) reproduces NASLib's measures registry (a bare
``KeyError`` for an unregistered name) and the control flow of NASLib's zc benchmark runner,
which catches every failure per architecture, logs it at info level and exits 0: the
behaviour that hid the plugin's errors. ``tests/test_naslib_integration.py`` runs NASLib's
own runner script through the launcher where NASLib is importable.
"""
import json
import subprocess
import sys

import pytest
import torch
import yaml

from xigsnr_naslib import XiGSNR
from xigsnr_naslib.integrations.naslib import bridge
from xigsnr_naslib.naslib import main
from xigsnr_naslib.benchmarks.nb201.space import NB201Network, to_naslib_key

from naslib_standin import BENCHMARK_RUNNER, install_fake_naslib

ARCHS = ["|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
         "|avg_pool_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"]
KEYS = [to_naslib_key(a) for a in ARCHS]


bridge.add_collections_aliases()
try:
    REAL, _ = bridge.find_measures_module()
except bridge.NASLibNotFound:
    REAL = None


@pytest.fixture
def registry(monkeypatch):
    """NASLib's own measures registry where NASLib imports (holding NASLib's own measures only during
    the test, restored after it), else the stand-in's."""
    if REAL is None:
        module = install_fake_naslib(monkeypatch, "Develop")
    else:
        module = REAL
        theirs = {k: v for k, v in module._measure_impls.items() if k not in getattr(module, "_xigsnr_registered", {})}
        monkeypatch.setattr(module, "_measure_impls", theirs)
        monkeypatch.setattr(module, "available_measures", [m for m in module.available_measures if m in theirs])
        monkeypatch.delattr(module, "_xigsnr_registered", raising=False)  # no registration of ours
        monkeypatch.setattr(module, "calc_measure", module.calc_measure)  # the launcher's guard wraps it
    yield module


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "runner.py"
    path.write_text(BENCHMARK_RUNNER)
    return path


def write_config(tmp_path, predictor="xi_gsnr", batch_size=12):
    path = tmp_path / "zc_config.yaml"
    path.write_text(yaml.safe_dump({"predictor": predictor, "seed": 0, "batch_size": batch_size,
                                    "archs_str": ARCHS, "archs": [json.loads(k.replace("(", "[").replace(")", "]"))
                                                                  for k in KEYS],
                                    "out": str(tmp_path / "out.json")}))
    return path


def test_the_script_runs_unchanged_with_the_measures_registered(registry, script, tmp_path):
    config = write_config(tmp_path)
    argv = [str(script), "--config-file", str(config), "seed", "1"]
    assert main(["run", "--n-batches", "3", "--batch-size", "4", *argv]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["argv"] == argv  # the script's own command line, untouched
    assert set(bridge.DEFAULT_MEASURES) <= set(registry._measure_impls)
    gen = torch.Generator().manual_seed(1)  # the "seed 1" override reached the script
    x, y = torch.randn(12, 3, 32, 32, generator=gen), torch.randint(0, 10, (12,), generator=gen)
    batches = [(x[i * 4:(i + 1) * 4], y[i * 4:(i + 1) * 4]) for i in range(3)]
    for position, (arch, got) in enumerate(zip(ARCHS, out["scores"])):
        torch.manual_seed(position)
        expected = XiGSNR().score(NB201Network(arch, num_classes=10, channels=4, cells_per_stage=1), batches)
        assert got["arch"] == arch and got["score"] == pytest.approx(expected, rel=1e-12)


def test_an_unregistered_name_fails_loudly(registry, script, tmp_path, capsys, caplog):
    config = write_config(tmp_path, predictor="xi_gsnr_v2")
    with caplog.at_level("ERROR"):
        assert main(["run", str(script), "--config-file", str(config)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "measure 'xi_gsnr_v2' failed on every one of the 2 architectures" in err[0]
    assert "not registered (registered: " in err[0] and "xi_gsnr," in err[0]
    logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert [any(key in m for m in logged) for key in KEYS] == [True, True]  # each architecture named


def test_the_plugins_own_error_reaches_the_user(registry, script, tmp_path, capsys, caplog):
    config = write_config(tmp_path, batch_size=10)  # the measure needs 3 x 4 = 12 images
    with caplog.at_level("ERROR"):
        assert main(["run", "--n-batches", "3", "--batch-size", "4", str(script), "--config-file", str(config)]) == 1
    err = capsys.readouterr().err
    assert "measure 'xi_gsnr' failed on every one of the 2 architectures" in err and "batch_size: 12" in err
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "xigsnr_naslib.integrations.naslib.bridge"]
    assert len(logged) == 2 and KEYS[0] in logged[0].getMessage() and "batch_size: 12" in logged[0].getMessage()


def test_the_scripts_exit_status_and_module_form(registry, tmp_path, monkeypatch):
    (tmp_path / "naslib_like_module.py").write_text("import sys\nsys.exit(int(sys.argv[1]))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["run", "-m", "naslib_like_module", "3"]) == 3
    (tmp_path / "ok.py").write_text("import sys\nassert sys.argv[1:] == ['--x', 'y']\n")
    assert main(["run", str(tmp_path / "ok.py"), "--x", "y"]) == 0


def test_usage_errors(registry, tmp_path, capsys, monkeypatch):
    assert main(["run", str(tmp_path / "absent.py")]) == 2
    assert "no such NASLib script" in capsys.readouterr().err
    assert main(["run", "--no-bn", "--in-place", str(tmp_path / "absent.py")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["run", "--n-batches", "0", "x.py"])
    assert exc.value.code == 2
    assert "expected a whole number >= 1, got '0'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "naslib", None)
    (tmp_path / "present.py").write_text("")
    assert main(["run", str(tmp_path / "present.py")]) == 2
    assert "NASLib is not importable" in capsys.readouterr().err


def test_missing_naslib_data_is_one_line(registry, tmp_path, capsys):
    script = tmp_path / "needs_data.py"  # what NASLib's get_dataset_api raises for a missing pickle
    script.write_text("assert False, 'Could not find /x/naslib/data/nb201_cifar10_full_training.pickle. Please "
                      "download nb201_cifar10_full_training.pickle from https://drive.google.com/x'\n")
    assert main(["run", str(script)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["python -m xigsnr_naslib.naslib: error: NASLib's data file is missing: "
                   "/x/naslib/data/nb201_cifar10_full_training.pickle; get it as NASLib's README says"]


@pytest.mark.slow  # a fresh interpreter imports torch (about 3 s)
def test_python_dash_m_entry_point(tmp_path):
    done = subprocess.run([sys.executable, "-m", "xigsnr_naslib.naslib", "run", str(tmp_path / "absent.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "error:" in done.stderr
