"""The whole-space score table inside real NASLib: NASLib's own BBO runner reads ``xi_gsnr``
from a ``zc_nasbench201.json`` that the project's exporter wrote, and computes nothing.

NASLib's zero-cost branch reads ``<naslib>/data/zc_<space>.json`` (``get_zc_benchmark_api``);
the test runs ``naslib/runners/bbo/runner.py`` (NPENAS, ``zc_names: [xi_gsnr]``) against a
temporary copy of NASLib's data folder that holds the exported file, with every zero-cost
computation of NASLib made to fail, and checks that each architecture the runner drew carries
the file's ``xi_gsnr`` score and ``val_accuracy``.

The run stays within NPENAS's initial random phase (``epochs == num_init``): the phase that
reads the file; the predictor phase would train XGBoost on these features and reads nothing
more. NASLib imports ``xgboost`` and ``torch.utils.tensorboard`` at module level; where the
environment lacks them, stand-ins are put in their place: for xgboost one that fails when used
(the phase run here does not use it, so a use would fail the test), for the summary writer one
that keeps the scalars NASLib logs. NASLib's training loaders (which would
download CIFAR-10) are replaced by ones that fail when iterated: no batch is ever needed.
NASLib's ``count_parameters_in_MB`` calls ``np.sum`` on a generator, which NumPy 2 refuses; the
optimizer's copy is replaced by the same count with the builtin ``sum``.

Skipped when NASLib is not importable, and on NASLib's Develop branch (whose BBO runner needs
the benchmark's own data beside the zc file); ``tests/test_in_real_naslib.py`` runs it inside
the NASLib environments.
"""
import gzip
import importlib
import json
import runpy
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.naslib

try:
    import naslib  # noqa: F401
except ImportError as _exc:
    pytest.skip(f"NASLib is not importable: {_exc}", allow_module_level=True)
try:
    _zc_module = importlib.import_module("naslib.utils.get_dataset_api")  # the zero-cost branch's reader
    importlib.import_module("naslib.utils.utils")  # the zero-cost branch's layout
    if not hasattr(_zc_module, "get_zc_benchmark_api"):
        raise ImportError("no get_zc_benchmark_api")
except ImportError as _exc:
    # Develop's BBO runner reads the zc file only beside the benchmark's own data (get_dataset_api)
    pytest.skip(f"this NASLib branch is not the zero-cost branch ({_exc}): its BBO runner does not run on a "
                "zc file alone", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "evaluation" / "whole_space"))


class _Unused:
    def __init__(self, name):
        self.name = name

    def __getattr__(self, item):
        raise AssertionError(f"{self.name}.{item} used: the run was to read scores only")

    def __iter__(self):
        raise AssertionError(f"{self.name} iterated: the run was to read scores only")


class _Writer:
    """Stands in for tensorboard's SummaryWriter: keeps the scalars NASLib logs."""

    def __init__(self, *args, **kwargs):
        self.scalars = []

    def add_scalar(self, *args, **kwargs):
        self.scalars.append(args)

    def flush(self):
        pass

    def close(self):
        pass


def _stand_in(monkeypatch, module: str, **attrs) -> None:
    try:
        importlib.import_module(module)
    except ImportError:
        stub = types.ModuleType(module)
        for key, value in attrs.items():
            setattr(stub, key, value)
        monkeypatch.setitem(sys.modules, module, stub)


def _exported_json(tmp_path, data_root) -> tuple[Path, pd.DataFrame]:
    """A small zc_nasbench201.json from the project's exporter: 12 cells, every job proxy."""
    from job import proxy_names
    from report import write_zc_json

    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.benchmarks.nb201.ground_truth import nb201_cifar10_validation

    truth = get_card("nb201").load_ground_truth("cifar10", str(data_root))
    validation = nb201_cifar10_validation(str(data_root)).accuracy
    names = proxy_names()
    cells = truth.index[[11, 222, 1333, 2444, 3555, 4666, 5777, 6888, 7999, 9111, 12222, 15333]]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.uniform(1, 2, (len(cells), len(names))), index=cells, columns=names)
    table.insert(0, "arch", truth.arch[cells])
    table["status"] = "scored"
    long = pd.DataFrame([(i, n, 0.5) for i in cells for n in names], columns=["index", "proxy", "seconds"])
    out = tmp_path / "zc_nasbench201.json.gz"
    write_zc_json(table, long, validation, truth.accuracy, names, out)
    return out, table


def test_naslibs_bbo_runner_reads_xi_gsnr_from_the_exported_file(tmp_path, data_root, monkeypatch):
    import naslib.utils.utils as naslib_utils

    exported, table = _exported_json(tmp_path, data_root)
    root = tmp_path / "naslib_root"
    shutil.copytree(Path(naslib_utils.get_project_root()) / "data", root / "data")
    target = root / "data" / "zc_nasbench201.json"
    target.unlink(missing_ok=True)  # a checkout that ships one: ours must be what the runner reads
    with gzip.open(exported, "rt") as src:
        target.write_text(src.read())
    monkeypatch.setattr(naslib_utils, "get_project_root", lambda: root)
    monkeypatch.setattr(_zc_module, "get_project_root", lambda: root)
    _stand_in(monkeypatch, "xgboost", XGBRegressor=_Unused("xgboost.XGBRegressor"), DMatrix=_Unused("xgboost.DMatrix"))
    _stand_in(monkeypatch, "torch.utils.tensorboard", SummaryWriter=_Writer)
    from naslib.predictors.zerocost import ZeroCost
    import naslib.optimizers.discrete.npenas.optimizer as npenas

    def no_computing(*args, **kwargs):
        raise AssertionError("NASLib computed a zero-cost score instead of reading it")

    monkeypatch.setattr(ZeroCost, "query", no_computing)
    monkeypatch.setattr(npenas, "get_train_val_loaders", lambda config: (_Unused("train loader"),) * 5)
    # NASLib's parameter count sums a generator with np.sum, which NumPy >= 2 refuses: the same
    # count with the builtin sum (the optimizer's history is empty here: 0 MB either way)
    monkeypatch.setattr(npenas, "count_parameters_in_MB", lambda model: sum(
        int(np.prod(v.size())) for name, v in model.named_parameters() if "auxiliary" not in name) / 1e6)
    config = tmp_path / "bbo.yaml"
    config.write_text(json.dumps({
        "search_space": "nasbench201", "dataset": "cifar10", "optimizer": "npenas", "seed": 0,
        "out_dir": str(tmp_path / "run"), "config_type": "zc_bbo", "predictor": "npenas",
        "search": {"seed": 0, "epochs": 8, "num_init": 8, "acq_fn_type": "its",
                   "acq_fn_optimization": "random_sampling",
                   "checkpoint_freq": 1000, "k": 2, "num_ensemble": 1,
                   "predictor_type": "xgb", "encoding_type": "adjacency_one_hot", "num_arches_to_mutate": 1,
                   "max_mutations": 1, "num_candidates": 2, "zc_ensemble": True, "zc_names": ["xi_gsnr"],
                   "zc_only": True, "max_zerocost": 1000, "batch_size": 64, "data_size": 64,
                   "cutout": False, "cutout_length": 16, "cutout_prob": 1.0, "train_portion": 0.5}}))
    script = Path(naslib_utils.__file__).parents[1] / "runners" / "bbo" / "runner.py"
    # NASLib's parse_args took sys.argv when it was imported: hand it the runner's command line
    arguments = naslib_utils.default_argument_parser().parse_args(["--config-file", str(config)])
    monkeypatch.setattr(naslib_utils, "parse_args", lambda *a, **k: arguments)
    scope = runpy.run_path(str(script), run_name="__main__")

    models = scope["optimizer"].train_data
    assert len(models) == 8
    from xigsnr_naslib.benchmarks.nb201.space import from_naslib_key

    by_arch = table.set_index("arch")
    validation = json.loads((root / "data" / "zc_nasbench201.json").read_text())["cifar10"]
    for model in models:
        key = str(model.arch_hash)
        assert set(model.zc_scores) == {"xi_gsnr"}
        # the exporter wrote the table's float; NASLib read the same float back
        assert model.zc_scores["xi_gsnr"] == by_arch.at[from_naslib_key(key), "xi_gsnr"]
        assert model.accuracy == validation[key]["val_accuracy"]
