"""The study's execution: shared passes, worker processes, Ray; same records, none lost or doubled."""
import json
import os
import pickle
import random
from collections import Counter

import pytest
import torch

from xigsnr_naslib import xi_gsnr
from xigsnr_naslib.core.gsnr import VARIANTS
from xigsnr_naslib.data.image_folder import synthetic_images
from xigsnr_naslib.data.protocol import Protocol, draw_batches
from xigsnr_naslib.proxies import Proxy, get_proxy, xi_gsnr_proxies
from xigsnr_naslib.scoring.results import ResultsStore, record_key
from xigsnr_naslib.benchmarks import create_space
from xigsnr_naslib.scoring.study import ArchitectureScorer, Execution, Study, build_model

from test_strategies import _one_thread  # noqa: F401  (autouse: one intra-op thread)

SPACE_OPTIONS = {"channels": 4, "cells_per_stage": 1}  # tiny networks with the real cells
SPACE = create_space("nb201", **SPACE_OPTIONS)
PROXIES = ["xi_gsnr", "xi_gsnr_paper", "gsnr_inv_var", "gsnr_sq_mean", "params"]
PROTOCOL = Protocol(n_batches=3, batch_size=4, data_seed=1, init_seed=1)
IMAGES = synthetic_images(32, 16, num_classes=10, seed=2)  # 16 x 16 noise: cheap, and no data root needed


def study(proxies=PROXIES, store=None, **execution):
    """The study of these tests: tiny NAS-Bench-201 networks, the synthetic images."""
    return Study("nb201", "cifar10", proxies, PROTOCOL, Execution(**execution), store, images=IMAGES,
                 space_options=SPACE_OPTIONS)


@pytest.fixture
def archs():
    rng = random.Random(4)
    return [(i, SPACE.sample(rng)) for i in range(5)]


@pytest.fixture(scope="module")
def batches():
    return draw_batches(IMAGES, PROTOCOL, "cifar10")


def scores(records):
    return [(r["index"], r["proxy"], r["score"]) for r in records]


def stored(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_shared_passes_give_the_scores_of_each_proxy_alone(archs, batches):
    records = study().score(archs)
    assert [(r["index"], r["proxy"]) for r in records] == [(i, p) for i, _ in archs for p in PROXIES]
    assert all(r["status"] == "ok" for r in records)
    for r in records:  # bit for bit what the proxy gives on its own network and its own passes
        model = build_model(SPACE, SPACE.decode(r["arch"]), 10, PROTOCOL.init_seed)
        assert r["score"] == get_proxy(r["proxy"])(model, batches), (r["index"], r["proxy"])
    by_proxy = {r["proxy"]: r for r in records if r["index"] == 0}
    assert by_proxy["xi_gsnr"]["shared_by"] == by_proxy["gsnr_sq_mean"]["shared_by"] >= 4
    # the record's key holds what changes its value; params reads no image
    assert by_proxy["xi_gsnr"]["protocol"] == PROTOCOL.settings()
    assert by_proxy["xi_gsnr"]["images"] == IMAGES.fingerprint()
    assert by_proxy["xi_gsnr"]["space_options"] == SPACE_OPTIONS
    assert by_proxy["params"]["protocol"] == {} and by_proxy["params"]["images"] is None


def test_proxies_without_passes_are_not_timed_with_the_shared_passes(archs):
    by_proxy = {r["proxy"]: r for r in study().score(archs[:1])}
    assert by_proxy["xi_gsnr"]["shared_by"] == 4 and "shared_by" not in by_proxy["params"]


def _own_passes(model, batches, loss_fn):
    """A function proxy (register_function style): runs passes of its own."""
    return xi_gsnr(model, batches, loss_fn)


def test_function_proxies_get_a_network_of_their_own(archs, batches):
    from xigsnr_naslib.proxies import function_proxy
    from xigsnr_naslib.registry import registered

    with registered(function_proxy("own_xi_gsnr", _own_passes, description="xi-GSNR through a plain function")):
        assert get_proxy("own_xi_gsnr").fresh_model
        records = study(["xi_gsnr", "own_xi_gsnr", "params"]).score(archs[:2])
    by_key = {(r["index"], r["proxy"]): r for r in records}
    for index, _ in archs[:2]:
        own = by_key[(index, "own_xi_gsnr")]
        # own_xi_gsnr runs its own passes; xi_gsnr is then the only proxy reading the shared ones
        assert "shared_by" not in own and "shared_by" not in by_key[(index, "xi_gsnr")]
        assert own["score"] == by_key[(index, "xi_gsnr")]["score"]  # same network, same batches, separate passes
    with pytest.raises(ValueError, match="unknown proxy 'nope'; choose one of: .*xi_gsnr"):
        study(["nope"])


@pytest.mark.slow  # vmap on the CPU; its agreement with the loop is tested in test_strategies
def test_vmap_strategy_in_the_study(archs):
    loop = study().score(archs[:2])
    vmapped = study(strategy="vmap").score(archs[:2])
    assert len(loop) == len(vmapped) == 2 * len(PROXIES)
    for a, b in zip(loop, vmapped):
        assert a["proxy"] == b["proxy"]
        # the plumbing: the vmap strategy runs through the study and gives the loop's
        # scores; the agreement itself (a rounding bound) is tested in test_strategies. Batches of 4 tiny
        # images make variances small and sensitive, and 1/var (no xi) magnifies that most.
        tolerance = 1e-3 if a["proxy"] == "gsnr_inv_var" else 1e-5
        assert abs(a["score"] - b["score"]) <= tolerance * abs(a["score"]), a["proxy"]


def test_worker_processes_resume_and_write_each_record_once(archs, tmp_path, monkeypatch):
    serial = study().score(archs)
    path = tmp_path / "r.jsonl"
    study(store=path).score(archs[:2])  # an interrupted earlier run
    before = stored(path)
    assert len(before) == 2 * len(PROXIES)
    records = study(store=path, workers=2, threads=1).score(archs)
    assert scores(records) == scores(serial)  # same order, same numbers
    lines = stored(path)
    assert lines[: len(before)] == before
    assert len(lines) == len(archs) * len(PROXIES)
    assert max(Counter(record_key(r) for r in lines).values()) == 1
    # nothing left to do: nothing appended, no worker given an architecture
    from xigsnr_naslib.scoring import parallel

    given = []
    real = parallel.run_processes

    def spy(scorer, tasks, *args, **kwargs):
        given.extend(tasks)
        return real(scorer, tasks, *args, **kwargs)

    monkeypatch.setattr(parallel, "run_processes", spy)
    again = study(store=path, workers=2).score(archs)
    assert given == [] and scores(again) == scores(serial)
    assert len(stored(path)) == len(lines)


def _die_on_first_arch(results):
    if all(type(edge).__name__ == "Zero" for edge in results.model.cells[0].edges):  # the all-"none" cell
        os._exit(3)  # a crash no exception handler sees (as an out-of-memory kill)
    return 1.0


def test_a_dying_worker_costs_one_error_record(archs, tmp_path):
    archs = [(0, ("none",) * 6)] + archs[:3]
    path = tmp_path / "r.jsonl"
    records = study([Proxy("crash_probe", _die_on_first_arch), get_proxy("xi_gsnr")], store=path,
                    workers=2).score(archs)
    assert len(records) == 2 * len(archs) == len(stored(path))
    dead = [r for r in records if r["status"] == "error"]
    assert [(r["index"], r["proxy"]) for r in dead] == [(0, "crash_probe"), (0, "xi_gsnr")]
    assert "worker process died (exit code 3)" in dead[0]["error"]
    assert all(r["status"] == "ok" for r in records if r["index"] != 0)


def test_scorer_sends_registered_proxies_by_name(batches):
    proxies = [get_proxy(n) for n in PROXIES]
    context = {"space": "nb201", "space_options": SPACE_OPTIONS, "dataset": "cifar10", "images": IMAGES.fingerprint()}
    scorer = ArchitectureScorer(SPACE, context, batches, proxies, PROTOCOL, 10, (3, 16, 16))
    copy = pickle.loads(pickle.dumps(scorer))
    assert all(a is b for a, b in zip(copy.proxies, scorer.proxies))  # the registry's own objects
    a = [r["score"] for r in copy.records(0, ("nor_conv_3x3",) * 6)]
    b = [r["score"] for r in scorer.records(0, ("nor_conv_3x3",) * 6)]
    assert a == b and len(a) == len(PROXIES)
    unregistered = ArchitectureScorer(SPACE, context, [], [Proxy("local", lambda results: 0.0)], Protocol(), 10,
                                      (3, 16, 16))
    with pytest.raises(Exception):  # a lambda cannot be pickled by name or value (Ray's pickler can)
        pickle.dumps(unregistered)


def test_bad_execution_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown backend 'dask'; choose one of: processes, ray"):
        Execution(backend="dask")
    with pytest.raises(ValueError, match="workers must be a whole number >= 0 or 'auto', got -1"):
        Execution(workers=-1)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        Execution(threads=0)
    with pytest.raises(ValueError, match="unknown strategy 'fast'"):
        Execution(strategy="fast")
    with pytest.raises(TypeError, match="worker"):  # a misspelt setting is an error, not ignored
        Execution(worker=2)


@pytest.mark.slow  # starting a Ray cluster takes about 8 s
def test_ray_cluster_of_two_workers(archs, tmp_path):
    pytest.importorskip("ray", reason='Ray is not installed (pip install "xigsnr-naslib[ray]")')
    serial = study().score(archs)
    path = tmp_path / "r.jsonl"
    study(store=path).score(archs[:1])
    records = study(store=path, workers=2, threads=1, backend="ray").score(archs)
    assert scores(records) == scores(serial)
    lines = stored(path)
    assert len(lines) == len(archs) * len(PROXIES)
    assert max(Counter(record_key(r) for r in lines).values()) == 1


def test_every_mode_and_variant_from_one_pass_through_worker_processes(archs, batches):
    proxies = xi_gsnr_proxies()
    assert len(proxies) == 2 * len(VARIANTS) == len({p.name for p in proxies})
    assert {"xi_gsnr", "xi_gsnr_paper", "gsnr", "gsnr_sq_mean"} <= {p.name for p in proxies}
    records = study(proxies, workers=2).score(archs[:2])
    assert len(records) == 2 * len(proxies) and all(r["shared_by"] == len(proxies) for r in records)
    for r in records:
        s = r["settings"]
        model = build_model(SPACE, SPACE.decode(r["arch"]), 10, PROTOCOL.init_seed)
        assert r["score"] == xi_gsnr(model, batches, mode=s["mode"], variant=s["variant"], xi=s["xi"],
                                     params=s["params"], layer_skip=s["layer_skip"]), r["proxy"]
    # unregistered ones travel by value to spawned processes too
    assert proxies[-1].name == "xi_gsnr_paper_inv_var_xi"
    assert pickle.loads(pickle.dumps(proxies[-1])).compute.estimator == proxies[-1].compute.estimator


def _process_id(results):
    return float(os.getpid())


def test_execution_decides_where_architectures_are_scored(archs):
    pid = [Proxy("pid", _process_id, needs_data=False)]
    here = float(os.getpid())
    assert {r["score"] for r in study(pid).score(archs)} == {here}
    elsewhere = {r["score"] for r in study(pid, workers=2, threads=1).score(archs)}
    assert here not in elsewhere and 1 <= len(elsewhere) <= 2
    assert {r["score"] for r in study(pid, workers=0).score(archs)} == {here}
    # "auto": one process per core for several CPU architectures, this process for one
    cores = os.cpu_count() or 1
    assert Execution(workers="auto").n_workers(len(archs)) == (min(cores, len(archs)) if cores > 1 else 0)
    assert Execution(workers="auto").n_workers(1) == 0
    assert Execution(workers="auto", backend="ray").n_workers(len(archs)) == 0
