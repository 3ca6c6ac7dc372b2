"""score_architectures' execution strategies: joint passes, worker processes, Ray; same records, none lost or doubled."""
import json
import os
import pickle
import random
from collections import Counter

import pytest
import torch

from xigsnr_naslib import xi_gsnr
from xigsnr_naslib.gsnr import VARIANTS
from xigsnr_naslib.pipeline import ArchitectureScorer, build_model, execution, score_architectures, xi_gsnr_proxies
from xigsnr_naslib.protocol import Protocol
from xigsnr_naslib.proxies import Proxy, get_proxy
from xigsnr_naslib.results import ResultsStore, record_key
from xigsnr_naslib.spaces.nb201 import NB201Space

from test_strategies import _one_thread  # noqa: F401  (autouse: one intra-op thread)

SPACE = NB201Space(channels=4, cells_per_stage=1)  # tiny networks with the real cells
PROXIES = ["xi_gsnr", "xi_gsnr_paper", "gsnr_inv_var", "gsnr_sq_mean", "params"]


@pytest.fixture
def setting():
    rng = random.Random(4)
    archs = [(i, SPACE.sample(rng)) for i in range(5)]
    gen = torch.Generator().manual_seed(2)
    batches = [(torch.randn(4, 3, 16, 16, generator=gen), torch.randint(0, 10, (4,), generator=gen)) for _ in range(3)]
    common = dict(dataset="cifar10", batches=batches, proxies=[get_proxy(n) for n in PROXIES],
                  protocol=Protocol(3, 4, 1), num_classes=10, progress=False)
    return archs, common


def scores(records):
    return [(r["index"], r["proxy"], r["score"]) for r in records]


def stored(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_joint_passes_give_the_records_of_separate_passes(setting):
    archs, common = setting
    separate = score_architectures(SPACE, archs, joint=False, **common)
    joint = score_architectures(SPACE, archs, **common)
    assert scores(joint) == scores(separate)  # bit for bit
    assert all(r["status"] == "ok" for r in joint)
    by_proxy = {r["proxy"]: r for r in joint if r["index"] == 0}
    assert by_proxy["xi_gsnr"]["shared_by"] == 4 and "shared_by" not in by_proxy["params"]
    assert "shared_by" not in next(r for r in separate if r["proxy"] == "xi_gsnr")


@pytest.mark.slow  # vmap on the CPU; its agreement with the loop is tested in test_strategies
def test_vmap_strategy_in_the_pipeline(setting):
    archs, common = setting
    loop = score_architectures(SPACE, archs[:2], **common)
    vmapped = score_architectures(SPACE, archs[:2], strategy="vmap", **common)
    for a, b in zip(loop, vmapped):
        assert a["proxy"] == b["proxy"]
        # the plumbing: the vmap strategy runs through the pipeline and gives the loop's
        # scores; the agreement itself (a rounding bound) is tested in test_strategies. Batches of 4 tiny
        # images make variances small and sensitive, and 1/var (no xi) magnifies that most.
        tolerance = 1e-3 if a["proxy"] == "gsnr_inv_var" else 1e-5
        assert abs(a["score"] - b["score"]) <= tolerance * abs(a["score"]), a["proxy"]


def test_worker_processes_resume_and_write_each_record_once(setting, tmp_path):
    archs, common = setting
    serial = score_architectures(SPACE, archs, **common)
    path = tmp_path / "r.jsonl"
    store = ResultsStore(path)
    score_architectures(SPACE, archs[:2], store=store, **common)  # an interrupted earlier run
    before = stored(path)
    records = score_architectures(SPACE, archs, store=store, workers=2, threads=1, **common)
    assert scores(records) == scores(serial)  # same order, same numbers
    lines = stored(path)
    assert lines[: len(before)] == before
    assert len(lines) == len(archs) * len(PROXIES)
    assert max(Counter(record_key(r) for r in lines).values()) == 1
    # nothing left to do: nothing appended, no worker started
    score_architectures(SPACE, archs, store=store, workers=2, **common)
    assert len(stored(path)) == len(lines)


def _die_on_first_arch(model, batches, loss_fn):
    if all(type(edge).__name__ == "Zero" for edge in model.cells[0].edges):  # the all-"none" cell
        os._exit(3)  # a crash no exception handler sees (as an out-of-memory kill)
    return 1.0


def test_a_dying_worker_costs_one_error_record(setting, tmp_path):
    archs, common = setting
    archs = [(0, ("none",) * 6)] + archs[:3]
    common["proxies"] = [Proxy("crash_probe", _die_on_first_arch), get_proxy("xi_gsnr")]
    store = ResultsStore(tmp_path / "r.jsonl")
    records = score_architectures(SPACE, archs, store=store, workers=2, **common)
    assert len(records) == 2 * len(archs) == len(stored(tmp_path / "r.jsonl"))
    dead = [r for r in records if r["status"] == "error"]
    assert [(r["index"], r["proxy"]) for r in dead] == [(0, "crash_probe"), (0, "xi_gsnr")]
    assert "worker process died (exit code 3)" in dead[0]["error"]
    assert all(r["status"] == "ok" for r in records if r["index"] != 0)


def test_scorer_sends_registered_proxies_by_name(setting):
    _, common = setting
    scorer = ArchitectureScorer(SPACE, common["dataset"], common["batches"], common["proxies"],
                                common["protocol"], common["num_classes"])
    copy = pickle.loads(pickle.dumps(scorer))
    assert all(a is b for a, b in zip(copy.proxies, scorer.proxies))  # the registry's own objects
    a = [r["score"] for r in copy.records(0, ("nor_conv_3x3",) * 6)]
    b = [r["score"] for r in scorer.records(0, ("nor_conv_3x3",) * 6)]
    assert a == b and len(a) == len(PROXIES)
    unregistered = ArchitectureScorer(SPACE, "cifar10", [], [Proxy("local", lambda m, b, l: 0.0)], Protocol(), 10)
    with pytest.raises(Exception):  # a lambda cannot be pickled by name or value (Ray's pickler can)
        pickle.dumps(unregistered)


def test_bad_execution_settings_are_clear_errors(setting):
    archs, common = setting
    with pytest.raises(ValueError, match="unknown backend 'dask'"):
        score_architectures(SPACE, archs, backend="dask", **common)
    with pytest.raises(ValueError, match="workers must be >= 0"):
        score_architectures(SPACE, archs, workers=-1, **common)


@pytest.mark.slow  # starting a Ray cluster takes about 8 s
def test_ray_cluster_of_two_workers(setting, tmp_path):
    pytest.importorskip("ray", reason='Ray is not installed (pip install "xigsnr-naslib[ray]")')
    archs, common = setting
    serial = score_architectures(SPACE, archs, **common)
    store = ResultsStore(tmp_path / "r.jsonl")
    score_architectures(SPACE, archs[:1], store=store, **common)
    records = score_architectures(SPACE, archs, store=store, workers=2, threads=1, backend="ray", **common)
    assert scores(records) == scores(serial)
    lines = stored(tmp_path / "r.jsonl")
    assert len(lines) == len(archs) * len(PROXIES)
    assert max(Counter(record_key(r) for r in lines).values()) == 1


def test_every_mode_and_variant_from_one_pass_through_worker_processes(setting):
    archs, common = setting
    proxies = xi_gsnr_proxies()
    assert len(proxies) == 2 * len(VARIANTS) == len({p.name for p in proxies})
    assert {"xi_gsnr", "xi_gsnr_paper", "gsnr", "gsnr_sq_mean"} <= {p.name for p in proxies}
    common["proxies"] = proxies
    records = score_architectures(SPACE, archs[:2], workers=2, **common)
    assert len(records) == 2 * len(proxies) and all(r["shared_by"] == len(proxies) for r in records)
    for r in records:
        s = r["settings"]
        model = build_model(SPACE, SPACE.decode(r["arch"]), 10, common["protocol"].seed)
        assert r["score"] == xi_gsnr(model, common["batches"], mode=s["mode"], variant=s["variant"]), r["proxy"]
    # unregistered ones travel by value to spawned processes too
    assert proxies[-1].name == "xi_gsnr_paper_inv_var_xi"
    assert pickle.loads(pickle.dumps(proxies[-1])).fn.estimator == proxies[-1].fn.estimator


def _process_id(model, batches, loss_fn):
    return float(os.getpid())


def test_execution_block_sets_the_defaults_of_every_call(setting):
    archs, common = setting
    common["proxies"] = [Proxy("pid", _process_id, needs_data=False)]
    here = float(os.getpid())
    assert {r["score"] for r in score_architectures(SPACE, archs, **common)} == {here}
    with execution(workers=2, threads=1):
        elsewhere = {r["score"] for r in score_architectures(SPACE, archs, **common)}
        assert {r["score"] for r in score_architectures(SPACE, archs, workers=0, **common)} == {here}  # the call wins
    assert here not in elsewhere and 1 <= len(elsewhere) <= 2
    assert {r["score"] for r in score_architectures(SPACE, archs, **common)} == {here}  # restored
    with pytest.raises(ValueError, match="unknown execution settings"):
        with execution(worker=2):
            pass
