"""With a real NASLib checkout importable: its NB201 graphs, ZeroCost.query, and the runner end to end.

Skipped (with the reason shown by ``pytest -rs``) when NASLib cannot be imported; see the
README section 'NASLib' for how to put a checkout next to this package.
"""
import copy
import json
import math

import pandas as pd
import pytest
import torch

from xigsnr_naslib import XiGSNR
from xigsnr_naslib import naslib_bridge as bridge
from xigsnr_naslib.zico import zico

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
    from xigsnr_naslib.naslib_runner import load_config, run_config
    from xigsnr_naslib.spaces.nb201 import to_naslib_key as nb201_naslib_key

    path = tmp_path / "c.yaml"
    path.write_text("search_space: nasbench201\ndataset: cifar10\npredictor: xi_gsnr\nseed: 1\ntest_size: 3\n"
                    f"batch_size: 8\nout_dir: {tmp_path / 'run'}\nxigsnr: {{n_batches: 2, batch_size: 4}}\n")
    api = nb201_dataset_api(data_root)
    zc = tmp_path / "zc_nasbench201.json"
    result = run_config(load_config(path), engine="naslib", data_root=data_root, dataset_api=api, zc_json=zc)
    assert result.engine == "naslib" and result.extra["layout"] == LAYOUT
    scores = json.loads(result.scores_json.read_text())
    assert len(scores) == 2 and scores[0]["predictor"] == "xi_gsnr"
    metrics = scores[1]
    assert len(metrics["full_testpred"]) == 3 and math.isfinite(metrics["kendalltau"])
    assert all(math.isfinite(v) and v > 0 for v in metrics["full_testpred"])
    assert len({r["arch_key"] for r in result.records}) == 3  # drawn without repeats
    table = pd.read_csv(data_root / "nb201" / "nb201_groundtruth_all15625.csv")
    by_key = {nb201_naslib_key(a): acc for a, acc in zip(table["arch_str"], table["cifar10_ori_test"])}
    for record in result.records:
        assert record["accuracy"] == pytest.approx(by_key[record["arch_key"]])
    assert set(json.loads(zc.read_text())["cifar10"]) == {r["arch_key"] for r in result.records}
