"""With a real NASLib checkout importable: its NB201 graphs, ZeroCost.query, and the runner end to end.

Skipped (with the reason shown by ``pytest -rs``) when NASLib cannot be imported; see the
NASLib guide (docs/guides/naslib.md) for how to put a checkout next to this package.
"""
import copy
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from xigsnr_naslib import XiGSNR
from xigsnr_naslib.integrations.naslib import bridge
from xigsnr_naslib.proxies.zico import zico

pytestmark = pytest.mark.naslib


def _naslib_layout():
    bridge.add_collections_aliases()
    try:
        return bridge.find_measures_module()[1], None
    except bridge.NASLibNotFound as exc:
        return None, str(exc)


LAYOUT, WHY_NOT = _naslib_layout()
if LAYOUT is None:
    pytest.skip(f"NASLib is not importable: {WHY_NOT}", allow_module_level=True)

SPLIT = dict(n_batches=2, batch_size=4)
OP_INDICES = (2, 3, 0, 2, 4, 1)


@pytest.fixture(scope="module")
def one_batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen)


def naslib_graph(seed=0):
    from naslib.search_spaces import get_search_space

    torch.manual_seed(seed)
    graph = get_search_space("nasbench201", "cifar10")
    graph.set_spec(list(OP_INDICES))
    graph.parse()
    return graph


@pytest.mark.parametrize("name", ["xi_gsnr", "xi_gsnr_paper", "gsnr_inv_var", "zico"])
def test_zero_cost_query_on_a_naslib_graph_matches_the_estimator(one_batch, name):
    from naslib.predictors.zerocost import ZeroCost

    bridge.register_naslib_measures(**SPLIT)
    x, y = one_batch
    graph = naslib_graph()
    reference = copy.deepcopy(graph).train()
    predictor = ZeroCost(method_type=name)
    predictor.device = torch.device("cpu")
    score = predictor.query(graph, dataloader=bridge.FixedBatchLoader(x, y))
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    if name == "zico":
        expected = zico(reference, batches)
    else:
        expected = XiGSNR(**{"xi_gsnr": {}, "xi_gsnr_paper": {"mode": "paper"},
                             "gsnr_inv_var": {"variant": "inv_var"}}[name]).score(reference, batches)
    assert math.isfinite(score) and score == pytest.approx(expected, rel=1e-9)
    assert bridge.last_raw_score(name) == pytest.approx(expected, rel=1e-9)


def test_a_batch_that_does_not_split_stops_naslib_with_the_reason(one_batch):
    from naslib.predictors.zerocost import ZeroCost

    bridge.register_naslib_measures(n_batches=8, batch_size=64)
    try:
        predictor = ZeroCost(method_type="xi_gsnr")
        predictor.device = torch.device("cpu")
        with pytest.raises(ValueError, match="batch_size: 512"):
            predictor.query(naslib_graph(), dataloader=bridge.FixedBatchLoader(*one_batch))
    finally:
        bridge.register_naslib_measures(**SPLIT)


def nb201_dataset_api(data_root, dataset="cifar10"):
    """NASLib's in-memory NB201 benchmark layout, filled from the reference CSV (test accuracy)."""
    table = pd.read_csv(data_root / "nb201" / "nb201_groundtruth_all15625.csv")
    key = {"cifar10": "cifar10-valid", "cifar100": "cifar100", "ImageNet16-120": "ImageNet16-120"}[dataset]
    column = {"cifar10": "cifar10_ori_test", "cifar100": "cifar100_x_test",
              "ImageNet16-120": "imagenet16_120_x_test"}[dataset]
    return {"nb201_data": {arch: {key: {"eval_acc1es": [acc] * 200, "cost_info": {"train_time": 1.0}}}
                           for arch, acc in zip(table["arch_str"], table[column])}}


def test_runner_end_to_end_through_naslib(data_root, tmp_path):
    from xigsnr_naslib.integrations.naslib.runner import RunSettings, load_config, run_config
    from xigsnr_naslib.benchmarks.nb201.space import to_naslib_key as nb201_naslib_key

    path = tmp_path / "c.yaml"
    path.write_text("search_space: nasbench201\ndataset: cifar10\npredictor: xi_gsnr\nseed: 1\ntest_size: 3\n"
                    f"batch_size: 8\nout_dir: {tmp_path / 'run'}\nxigsnr: {{n_batches: 2, batch_size: 4}}\n")
    api = nb201_dataset_api(data_root)
    zc = tmp_path / "zc_nasbench201.json"
    result = run_config(load_config(path), RunSettings(engine="naslib", data_root=data_root, zc_json=zc), api)
    assert result.engine == "naslib" and result.extra["layout"] == LAYOUT
    scores = json.loads(result.scores_json.read_text())
    assert len(scores) == 2 and scores[0]["predictor"] == "xi_gsnr"
    metrics = scores[1]
    assert len(metrics["full_testpred"]) == 3 and math.isfinite(metrics["kendalltau"])
    assert all(math.isfinite(v) and v > 0 for v in metrics["full_testpred"])
    assert len({r["arch_key"] for r in result.records}) == 3  # drawn without repeats
    from xigsnr_naslib.integrations.naslib.runner import plan_run

    assert [r["arch_key"] for r in result.records] == plan_run(load_config(path)).test
    table = pd.read_csv(data_root / "nb201" / "nb201_groundtruth_all15625.csv")
    by_key = {nb201_naslib_key(a): acc for a, acc in zip(table["arch_str"], table["cifar10_ori_test"])}
    for record in result.records:
        assert record["accuracy"] == pytest.approx(by_key[record["arch_key"]])
    assert set(json.loads(zc.read_text())["cifar10"]) == {r["arch_key"] for r in result.records}


# --- NASLib's own draw, both engines, NASLib's own metrics and runner scripts ------------------------

def naslib_cfg(tmp_path, **extra):
    from xigsnr_naslib.integrations.naslib.bridge import _naslib_config

    config = {"search_space": "nasbench201", "dataset": "cifar10", "predictor": "xi_gsnr", "seed": 7,
              "test_size": 12, "batch_size": 8, **extra}
    return _naslib_config(config, str(tmp_path / "save"), str(tmp_path))


def test_the_draw_is_naslibs_zc_runner_draw(tmp_path):
    """NASLib's evaluator samples the test set itself (load_dataset, labelled architectures after
    utils.set_seed, as runners/zc/runner.py); the project's draw is its sequence, repeats skipped."""
    from naslib import utils as naslib_utils
    from naslib.evaluators.zc_evaluator import ZeroCostPredictorEvaluator
    from naslib.predictors.zerocost import ZeroCost
    from naslib.search_spaces import get_search_space

    from xigsnr_naslib.integrations.naslib.draw import draw_test_set, draws_before, nb201_pool

    utils = getattr(naslib_utils, "utils", naslib_utils)  # zerocost: naslib.utils.utils
    pool = nb201_pool()[::409]  # 39 architectures: repeats are likely among 12 draws
    zc_api = {key: {"val_accuracy": float(i)} for i, key in enumerate(pool)}
    for seed in (0, 7, 8):
        cfg = naslib_cfg(tmp_path, seed=seed)
        utils.set_seed(seed)
        predictor = ZeroCost(method_type="xi_gsnr")
        space = get_search_space(name="nasbench201", dataset="cifar10")
        space.labeled_archs = [eval(key) for key in zc_api]
        if LAYOUT == "Develop":
            evaluator = ZeroCostPredictorEvaluator(predictor, config=cfg, zc_api=zc_api, use_zc_api=True)
        else:
            space.instantiate_model = False
            evaluator = ZeroCostPredictorEvaluator(predictor, zc_api=zc_api, config=cfg)
        evaluator.adapt_search_space(space, dataset_api=None, load_labeled=True)
        drawn = [str(tuple(h)) for h in evaluator.load_dataset(load_labeled=True, data_size=12)[0]]
        distinct = list(dict.fromkeys(drawn))
        assert draw_test_set(pool, len(distinct), seed, draws_before("nasbench201")) == distinct


def test_both_engines_score_the_same_architectures(data_root, tmp_path):
    from xigsnr_naslib.integrations.naslib.runner import RunSettings, load_config, run_config

    path = tmp_path / "c.yaml"
    path.write_text("search_space: nasbench201\ndataset: cifar10\npredictor: xi_gsnr\nseed: 4\ntest_size: 4\n"
                    f"batch_size: 8\nout_dir: {tmp_path / 'run'}\nxigsnr: {{n_batches: 2, batch_size: 4}}\n")
    naslib = run_config(load_config(path), RunSettings(engine="naslib", data_root=data_root),
                        nb201_dataset_api(data_root))
    alone = run_config(load_config(path), RunSettings(engine="standalone", data_root=data_root,
                                                      out_dir=str(tmp_path / "alone"), progress=False))
    assert [r["arch_key"] for r in naslib.records] == [r["arch_key"] for r in alone.records]
    # the NASLib API here is filled from the same table: the same accuracy for each architecture
    # (the scores differ: NASLib initialises its own graphs from its own seed sequence)
    assert [r["accuracy"] for r in naslib.records] == pytest.approx([r["accuracy"] for r in alone.records])


def test_naslib_named_metrics_equal_naslibs_compute_scores(monkeypatch):
    """NASLib's own compute_scores, with scikit-learn's removed squared=False argument restored
    (NASLib calls mean_squared_error(squared=False), gone in scikit-learn 1.6)."""
    import sklearn.metrics

    from xigsnr_naslib.integrations.naslib.metrics import compute_scores

    module = sys.modules[next(m for m in ("naslib.utils.zerocost", "naslib.utils.utils")
                              if _importable(m))]

    class Metrics:
        @staticmethod
        def mean_squared_error(y, p, squared=True):
            value = sklearn.metrics.mean_squared_error(y, p)
            return value if squared else math.sqrt(value)

    monkeypatch.setattr(module, "metrics", Metrics)
    cases = [([70.0, 90.0, 80.0], [0.1, 0.3, 0.2]),
             ([80.0, 80.0, 85.0, 85.0, 90.0, 70.0, 70.0], [0.5, 0.1, 0.9, 0.4, 0.8, 0.2, 0.3]),
             ([88.0, 88.0, 90.0, 91.0, 70.0, 72.0, 88.0, 90.0], [-1e8, 0.25, 0.25, 0.7, -1e8, 0.1, 0.25, 0.7])]
    rng = __import__("numpy").random.default_rng(3)
    cases += [(rng.normal(80, 5, n).round(1).tolist(), rng.integers(0, 6, n).astype(float).tolist())
              for n in (15, 20, 150)]
    for y, p in cases:
        theirs, ours = module.compute_scores(y, p), compute_scores(y, p)
        assert set(theirs) == set(ours)
        for key, value in theirs.items():
            if isinstance(value, list):
                assert value == ours[key]
            elif value != value:
                assert ours[key] != ours[key], key
            else:
                assert ours[key] == pytest.approx(float(value), rel=1e-12, abs=1e-15), key


def _importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


# --- NASLib's own runner scripts, through the launcher, on a copy of the checkout's package ---------

def naslib_package_copy(tmp_path, data_root):
    """A copy of the importable NASLib package with a data folder NASLib's scripts read:
    nb201_cifar10_full_training.pickle (NASLib's in-memory layout, from the reference CSV), the
    CIFAR-10 python layout written from the reference images, and archs/archs_nasbench201.json."""
    import naslib

    from xigsnr_naslib.integrations.naslib.data import reference_cifar10, write_cifar10_layout

    root = tmp_path / "checkout"
    shutil.copytree(Path(naslib.__file__).parent, root / "naslib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pickle", "zc_*.json"))
    data = root / "naslib" / "data"
    with open(data / "nb201_cifar10_full_training.pickle", "wb") as f:
        pickle.dump(nb201_dataset_api(data_root)["nb201_data"], f)
    write_cifar10_layout(data, *reference_cifar10(data_root))
    (data / "archs").mkdir(exist_ok=True)
    keys = ["(2, 3, 0, 2, 4, 1)", "(4, 0, 3, 1, 4, 3)", "(3, 3, 2, 0, 1, 2)"]
    (data / "archs" / "archs_nasbench201.json").write_text(json.dumps({str(i): k for i, k in enumerate(keys)}))
    return root, keys


def launch(root, script, config, *extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "xigsnr_naslib.naslib", "run", "--n-batches", "2", "--batch-size",
                           "4", str(root / "naslib" / script), "--config-file", str(config), *extra],
                          capture_output=True, text=True, env=env, cwd=root, timeout=600)


ZC_CONFIG = """search_space: nasbench201
dataset: cifar10
predictor: {predictor}
config_type: zc_example
seed: 0
test_size: {test_size}
batch_size: 8
train_size: 400
train_portion: 0.7
cutout: false
cutout_length: 16
cutout_prob: 1.0
out_dir: {out}
start_idx: 0
n_models: 3
optimizer: npenas
search:
  seed: 0
  batch_size: 8
  train_portion: 0.7
  cutout: false
  cutout_length: 16
  cutout_prob: 1.0
  use_zc_api: false
"""
BENCHMARK_RUNNER = {"Develop": "runners/zc/benchmarks/runner.py", "zerocost": "runners/benchmarks/runner.py"}
ZC_RUNNER = {"Develop": "runners/zc/runner.py", "zerocost": "runners/runner.py"}


@pytest.mark.slow  # NASLib's own runner in a fresh interpreter, its loader on 15,000 real images
def test_naslibs_benchmark_runner_through_the_launcher_on_real_images(data_root, tmp_path):
    root, keys = naslib_package_copy(tmp_path, data_root)
    config = tmp_path / "zc.yaml"
    config.write_text(ZC_CONFIG.format(predictor="xi_gsnr", test_size=3, out=tmp_path / "run"))
    done = launch(root, BENCHMARK_RUNNER[LAYOUT], config)
    assert done.returncode == 0, done.stderr[-3000:]
    out = root / "naslib" / "data" / "zc_benchmarks" / "xi_gsnr" / "benchmark--nasbench201--cifar10--0.json"
    scores = json.loads(out.read_text())
    assert [s["arch"] for s in scores] == [str(eval(k)) for k in keys]
    assert all(math.isfinite(s["xi_gsnr"]["score"]) and s["xi_gsnr"]["score"] > 0 for s in scores)
    # a name nobody registered, and the plugin's own error: loud, exit status 1
    config.write_text(ZC_CONFIG.format(predictor="xi_gsnr_v2", test_size=3, out=tmp_path / "run"))
    done = launch(root, BENCHMARK_RUNNER[LAYOUT], config)
    assert done.returncode == 1 and "measure 'xi_gsnr_v2' failed on every one of the 3 architectures" in done.stderr
    assert "is not registered" in done.stderr and keys[0] in done.stderr
    config.write_text(ZC_CONFIG.format(predictor="xi_gsnr", test_size=3, out=tmp_path / "run").replace(
        "batch_size: 8", "batch_size: 6"))
    done = launch(root, BENCHMARK_RUNNER[LAYOUT], config)
    assert done.returncode == 1 and "batch_size: 8" in done.stderr and "ERROR" in done.stderr


@pytest.mark.slow  # NASLib's zc runner in a fresh interpreter
def test_a_filled_zc_file_serves_naslibs_zc_runner(data_root, tmp_path):
    from xigsnr_naslib.integrations.naslib.runner import RunSettings, load_config, run_config

    root, keys = naslib_package_copy(tmp_path, data_root)
    zc = root / "naslib" / "data" / "zc_nasbench201.json"
    table = pd.read_csv(data_root / "nb201" / "nb201_groundtruth_all15625.csv")
    from xigsnr_naslib.benchmarks.nb201.space import to_naslib_key as nb201_naslib_key

    val = {nb201_naslib_key(a): acc for a, acc in zip(table["arch_str"], table["cifar10_ori_test"])}
    zc.write_text(json.dumps({"cifar10": {k: {"snip": {"score": float(i), "time": 0.1}, "val_accuracy": val[k]}
                                          for i, k in enumerate(keys)}}))
    path = tmp_path / "c.yaml"
    path.write_text("search_space: nasbench201\ndataset: cifar10\npredictor: xi_gsnr\nseed: 0\ntest_size: 2\n"
                    f"batch_size: 8\nout_dir: {tmp_path / 'run'}\nxigsnr: {{n_batches: 2, batch_size: 4}}\n")
    with pytest.raises(ValueError, match="--zc-fill"):
        run_config(load_config(path), RunSettings(engine="naslib", data_root=data_root, zc_json=zc),
                   nb201_dataset_api(data_root))
    run_config(load_config(path), RunSettings(engine="naslib", data_root=data_root, zc_json=zc, zc_fill=True),
               nb201_dataset_api(data_root))
    filled = json.loads(zc.read_text())["cifar10"]
    assert all("xi_gsnr" in e and "snip" in e for e in filled.values())
    config = tmp_path / "zc.yaml"
    config.write_text(ZC_CONFIG.format(predictor="xi_gsnr", test_size=3, out=tmp_path / "naslib_run"))
    done = launch(root, ZC_RUNNER[LAYOUT], config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "KeyError" not in done.stderr  # every architecture NASLib drew had its xi_gsnr score
    scores_json = next((tmp_path / "naslib_run").rglob("scores.json"))
    naslib_metrics = json.loads(scores_json.read_text())[1]
    # NASLib's compute_scores sets its correlation keys to NaN with scikit-learn >= 1.6 (a removed
    # argument inside a bare except); its top-K keys come first and are computed from the scores read
    assert 0 <= naslib_metrics["p_at_top1"] <= 1 and "kd_at_top5" in naslib_metrics
