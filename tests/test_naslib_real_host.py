"""The plugin inside the real NASLib: every measure the project can register, on NASLib's own
NB201 graphs, through NASLib's own ``ZeroCost``, evaluator and runner scripts, including cells
whose output does not depend on their input.

The host's contract: a measure returns a float. NASLib's own measures return ``0.0`` on a cell
with no path from input to output, and NASLib's ``ZeroCostPredictorEvaluator`` calls
``ZeroCost.query`` without catching, so a measure that raises there ends the whole experiment.
A project measure whose score is undefined returns NaN, which ``ZeroCost`` records as -1e8, and
says why once per measure and architecture at warning level.

Skipped (with the reason shown by ``pytest -rs``) when NASLib cannot be imported. CI runs this
file inside real NASLib environments of both branches (``.ci/naslib-envs``, built from
``../shared/naslib``) through ``tests/test_in_real_naslib.py``, which fails when it is skipped there.
"""
import functools
import json
import logging
import math

import pytest
import torch

from xigsnr_naslib.integrations.naslib import bridge
from xigsnr_naslib.proxies import get_proxy, list_proxies
from xigsnr_naslib.benchmarks.nb201.space import to_naslib_key

pytestmark = pytest.mark.naslib

bridge.add_collections_aliases()
try:
    REGISTRY, LAYOUT = bridge.find_measures_module()
except bridge.NASLibNotFound as _exc:
    pytest.skip(f"NASLib is not importable: {_exc}", allow_module_level=True)

#: two batches of 16: the smallest split every registered measure accepts (swap reads 16 images of a batch)
SPLIT = dict(n_batches=2, batch_size=16)
#: no path from input to output (one of the 341 such NB201 cells): the output is a constant
DISCONNECTED = "|none~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"
#: the input reaches the output only through a pooling edge
POOL_ONLY = "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|"
CONNECTED = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def registerable() -> list[str]:
    """Every project proxy NASLib can host: it looks at data and NASLib has no measure of that name."""
    impls = REGISTRY._measure_impls
    ours = getattr(REGISTRY, "_xigsnr_registered", {})
    return [n for n in list_proxies() if get_proxy(n).needs_data and (n not in impls or n in ours)]


MEASURES = registerable()


@pytest.fixture(scope="module", autouse=True)
def registered():
    bridge.register_naslib_measures(MEASURES, **SPLIT, measures_module=REGISTRY)
    yield


@pytest.fixture(scope="module")
def one_batch():
    gen = torch.Generator().manual_seed(0)
    # 16 x 16 images: NASLib's NB201 network pools globally, so any size from 8 x 8 up runs it (4x
    # cheaper than CIFAR's 32 x 32; what is tested does not depend on the size)
    return torch.randn(32, 3, 16, 16, generator=gen), torch.randint(0, 10, (32,), generator=gen)


@functools.lru_cache(maxsize=None)
def naslib_graph(arch: str, seed: int = 0):
    """NASLib's NB201 graph of ``arch`` (built once: measures registered with ``copy_net=True`` score
    NASLib's copy of it)."""
    from naslib.search_spaces import get_search_space

    torch.manual_seed(seed)
    graph = get_search_space("nasbench201", "cifar10")
    graph.set_spec(list(eval(to_naslib_key(arch))))
    graph.parse()
    return graph


def query(name, arch, batch):
    from naslib.predictors.zerocost import ZeroCost

    predictor = ZeroCost(method_type=name)
    predictor.device = torch.device("cpu")
    return predictor.query(naslib_graph(arch), dataloader=bridge.FixedBatchLoader(*batch))


def test_every_hostable_measure_is_registered_on_this_branch():
    names = set(MEASURES)
    assert set(bridge.DEFAULT_MEASURES) <= names  # the modes, the Table 9 variants, zico
    assert {"ensemble", "meco", "swap"} <= names  # the zoo and the ensemble too
    assert set(names) <= set(REGISTRY._measure_impls)


@pytest.mark.parametrize("name", MEASURES)
def test_a_measure_returns_a_float_on_a_cell_without_a_path_from_input_to_output(one_batch, name, caplog):
    """NASLib's contract: a float, whatever the cell. Undefined -> NaN -> NASLib's -1e8, and the reason
    logged once per measure and architecture at warning level (querying the cell again adds no line)."""
    bridge.reset_measure_report()
    repeats = 2 if name == "xi_gsnr" else 1  # the once-per-architecture warning, checked on one measure
    with caplog.at_level(logging.WARNING, logger=bridge.logger.name):
        values = [query(name, DISCONNECTED, one_batch) for _ in range(repeats)]
    first = values[0]
    assert all(isinstance(v, float) and v == first for v in values)
    report = bridge.measure_report()[name]
    assert report["calls"] == repeats and report["failed"] == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "not computable" in r.getMessage()]
    if first == -1e8:
        assert math.isnan(bridge.last_raw_score(name))
        key = str(tuple(eval(to_naslib_key(DISCONNECTED))))
        assert list(report["not_computable"]) == [key]
        assert len(warnings) == 1 and key in warnings[0].getMessage() and name in warnings[0].getMessage()
    else:  # defined there (e.g. a proxy that reads the architecture): a finite value, no warning
        assert math.isfinite(first) and not report["not_computable"] and not warnings


@pytest.mark.parametrize("name", ["xi_gsnr", "xi_gsnr_paper", "gsnr", "zico", "ensemble"])
def test_the_gradient_proxies_are_undefined_where_no_gradient_reaches_a_weight(one_batch, name):
    """No path from input to output: every Conv/Linear weight's gradient is zero in every batch, so
    mean^2/var (and ZiCo's mean/std) is 0/0: undefined, not 0 (what NASLib's own measures return)."""
    assert query(name, DISCONNECTED, one_batch) == -1e8
    assert "no" in bridge.last_not_computable(name) or "member" in bridge.last_not_computable(name)


@pytest.mark.parametrize("name", MEASURES)
def test_a_measure_scores_a_connected_cell(one_batch, name):
    """Finite, except for proxies that read what NASLib's graphs do not name (AZ-NAS reads the
    network's feature stages): NaN with that reason, never an exception."""
    score = query(name, CONNECTED, one_batch)
    assert isinstance(score, float)
    if name.startswith("aznas"):
        assert score == -1e8 and "feature stages" in bridge.last_not_computable(name)
    else:
        assert math.isfinite(score) and score != -1e8 and bridge.last_not_computable(name) is None


def test_a_setting_that_cannot_work_still_stops_with_its_reason(one_batch):
    """A batch that does not split is a bad setting, the same for every cell: it is raised (one line
    naming what to set), not recorded as a property of the architecture."""
    from naslib.predictors.zerocost import ZeroCost

    bridge.register_naslib_measures(n_batches=8, batch_size=64, measures_module=REGISTRY)
    try:
        predictor = ZeroCost(method_type="xi_gsnr")
        predictor.device = torch.device("cpu")
        with pytest.raises(ValueError, match="batch_size: 512"):
            predictor.query(naslib_graph(CONNECTED), dataloader=bridge.FixedBatchLoader(*one_batch))
    finally:
        bridge.register_naslib_measures(**SPLIT, measures_module=REGISTRY)


# --- NASLib's own evaluator over a sample holding such cells ---------------------------------------

@pytest.fixture(scope="module")
def naslib_data(tmp_path_factory, data_root):
    """NASLib's data folder: the CIFAR-10 python layout written from the reference images."""
    from xigsnr_naslib.integrations.naslib.data import accept_written_layouts, reference_cifar10, write_cifar10_layout

    folder = tmp_path_factory.mktemp("naslib_data")
    write_cifar10_layout(folder, *reference_cifar10(data_root))
    accept_written_layouts()
    return folder


def nb201_dataset_api(data_root):
    """NASLib's in-memory NB201 benchmark layout, filled from the reference CSV (test accuracy)."""
    import pandas as pd

    table = pd.read_csv(data_root / "nb201" / "nb201_groundtruth_all15625.csv")
    return {"nb201_data": {arch: {"cifar10-valid": {"eval_acc1es": [acc] * 200, "cost_info": {"train_time": 1.0}}}
                           for arch, acc in zip(table["arch_str"], table["cifar10_ori_test"])}}


@pytest.mark.slow  # NASLib's training loader over the reference images, five NB201 networks
@pytest.mark.skipif(LAYOUT != "Develop", reason="only NASLib's Develop evaluator scores live (use_zc_api=False); "
                    "the zerocost branch's evaluator reads precomputed scores (tests/test_naslib_zc_table.py)")
def test_naslibs_evaluator_goes_through_a_sample_with_cells_without_a_path(naslib_data, data_root, tmp_path, caplog):
    from naslib.evaluators.zc_evaluator import ZeroCostPredictorEvaluator
    from naslib.predictors.zerocost import ZeroCost
    from naslib.search_spaces import get_search_space

    from xigsnr_naslib.integrations.naslib.bridge import _naslib_config

    archs = [CONNECTED, DISCONNECTED, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|"
             "skip_connect~1|skip_connect~2|", POOL_ONLY, "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    api = nb201_dataset_api(data_root)
    accuracy = {a: api["nb201_data"][a]["cifar10-valid"]["eval_acc1es"][-1] for a in archs}
    test_file = tmp_path / "test.json"
    test_file.write_text(json.dumps([{"arch": list(eval(to_naslib_key(a))), "accuracy": accuracy[a]} for a in archs]))
    config = {"search_space": "nasbench201", "dataset": "cifar10", "predictor": "xi_gsnr", "seed": 0,
              "test_size": len(archs), "batch_size": 32}
    cfg = _naslib_config(config, str(tmp_path / "save"), str(naslib_data))
    cfg.test_data_file = str(test_file)
    predictor = ZeroCost(method_type="xi_gsnr")
    predictions = []
    query = predictor.query
    predictor.query = lambda *args, **kwargs: predictions.append(query(*args, **kwargs)) or predictions[-1]
    evaluator = ZeroCostPredictorEvaluator(predictor, config=cfg, zc_api=None, use_zc_api=False, log_results=False)
    evaluator.adapt_search_space(get_search_space("nasbench201", "cifar10"), dataset_api=api, load_labeled=True)
    bridge.reset_measure_report()
    with caplog.at_level(logging.WARNING, logger=bridge.logger.name):
        evaluator.evaluate(None)  # NASLib's own loop: query() on each, nothing caught
    report = bridge.measure_report()["xi_gsnr"]
    assert report["calls"] == len(archs) and report["failed"] == 0
    undefined = {str(tuple(eval(to_naslib_key(a)))) for a in (DISCONNECTED,
                                                               "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|")}
    assert set(report["not_computable"]) == undefined
    # what NASLib's evaluator received (its own metrics are NaN with scikit-learn >= 1.6: a removed
    # argument inside a bare except), in the order of the test file
    assert [p == -1e8 for p in predictions] == [False, True, False, False, True]
    assert all(isinstance(p, float) and math.isfinite(p) for p in predictions)


# --- NASLib's own zero-cost runner script, through the launcher, over a sample holding such cells ---

@pytest.mark.slow  # NASLib's benchmark runner in a fresh interpreter, its loader on 15,000 real images
@pytest.mark.parametrize("name", ["xi_gsnr", "zico"])
def test_naslibs_runner_script_goes_through_cells_without_a_path(data_root, tmp_path, name):
    """``python -m xigsnr_naslib.naslib run`` on NASLib's zero-cost benchmark runner (NASLib's data folder
    written into a copy of the package: the NB201 benchmark pickle in NASLib's layout, CIFAR-10 from the
    reference images): every architecture of the sample gets a score, the ones without a path -1e8."""
    from test_naslib_integration import BENCHMARK_RUNNER, ZC_CONFIG, launch, naslib_package_copy

    root, _ = naslib_package_copy(tmp_path, data_root)
    archs = [CONNECTED, DISCONNECTED, POOL_ONLY, "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    keys = [to_naslib_key(a) for a in archs]
    (root / "naslib" / "data" / "archs" / "archs_nasbench201.json").write_text(
        json.dumps({str(i): k for i, k in enumerate(keys)}))
    config = tmp_path / "zc.yaml"
    config.write_text(ZC_CONFIG.format(predictor=name, test_size=4, out=tmp_path / "run").replace(
        "n_models: 3", "n_models: 4"))
    done = launch(root, BENCHMARK_RUNNER[LAYOUT], config)
    assert done.returncode == 0, done.stderr[-3000:]
    out = root / "naslib" / "data" / "zc_benchmarks" / name / "benchmark--nasbench201--cifar10--0.json"
    scores = {s["arch"]: s[name]["score"] for s in json.loads(out.read_text())}
    assert list(scores) == [str(eval(k)) for k in keys]  # none dropped by the runner's except
    assert [scores[str(eval(k))] == -1e8 for k in keys] == [False, True, False, True]
    assert all(math.isfinite(v) and v > 0 for v in scores.values() if v != -1e8)
    for key in (keys[1], keys[3]):
        assert sum(f"not computable on architecture {key}" in line for line in done.stderr.splitlines()) == 1
    assert f"measure {name!r} is not computable on 2 architecture(s)" in done.stderr


@pytest.mark.slow  # NASLib's benchmark runner in a fresh interpreter
def test_naslibs_runner_without_its_benchmark_file_is_one_line(data_root, tmp_path):
    from test_naslib_integration import BENCHMARK_RUNNER, ZC_CONFIG, launch, naslib_package_copy

    root, _ = naslib_package_copy(tmp_path, data_root)
    (root / "naslib" / "data" / "nb201_cifar10_full_training.pickle").unlink()
    config = tmp_path / "zc.yaml"
    config.write_text(ZC_CONFIG.format(predictor="xi_gsnr", test_size=3, out=tmp_path / "run"))
    done = launch(root, BENCHMARK_RUNNER[LAYOUT], config)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m xigsnr_naslib.naslib: error:") and "nb201_cifar10_full_training.pickle" in last
    assert "Traceback" not in done.stderr


# --- the few-shot predictor in NASLib's own predictor evaluator ----------------------------------------

@pytest.mark.slow  # NASLib builds 120 NB201 graphs
@pytest.mark.skipif(LAYOUT != "Develop", reason="NASLib's PredictorEvaluator is on the Develop branch only")
def test_naslibs_predictor_evaluator_runs_the_few_shot_predictor(data_root, tmp_path):
    """NASLib's ``PredictorEvaluator`` (as its predictor runner drives it) fits ``ZeroCostPredictor`` on
    NASLib graphs it samples and queries it on others: graph features read from NASLib's graphs rank
    the held-out cells (a predictor reading the wrong architecture would rank them at chance)."""
    from fvcore.common.config import CfgNode
    from naslib.defaults.predictor_evaluator import PredictorEvaluator
    from naslib.search_spaces import get_search_space
    from scipy.stats import kendalltau

    from xigsnr_naslib.analysis.predictor import ZeroCostPredictor

    config = CfgNode({"experiment_type": "single", "test_size": 40, "train_size_single": 80,
                      "train_size_list": [80], "fidelity_single": 200, "fidelity_list": [200], "max_hpo_time": 0,
                      "dataset": "cifar10", "search_space": "nasbench201", "uniform_random": True, "seed": 0,
                      "save": str(tmp_path)}, new_allowed=True)
    torch.manual_seed(0)
    import random

    random.seed(0)
    evaluator = PredictorEvaluator(ZeroCostPredictor(space="nb201", graph=True), config=config)
    evaluator.adapt_search_space(get_search_space("nasbench201", "cifar10"), load_labeled=False,
                                 dataset_api=nb201_dataset_api(data_root))
    compared = []
    original = evaluator.compare
    evaluator.compare = lambda ytest, pred: (compared.append((list(ytest), list(pred))), original(ytest, pred))[1]
    evaluator.evaluate()  # NASLib's own loop: load_dataset, fit(xtrain, ytrain, info), query(xtest, info)
    (ytest, pred), = compared
    assert len(pred) == 40 and all(math.isfinite(p) for p in pred)
    assert kendalltau(ytest, pred)[0] > 0.3
