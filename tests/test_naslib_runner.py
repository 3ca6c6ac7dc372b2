"""The naslib-run runner without NASLib: configs, NASLib's keys, metrics, zc json merge, standalone engine."""
import json

import xigsnr_naslib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xigsnr_naslib.cli.app import main
from xigsnr_naslib.integrations.naslib import runner as naslib_runner
from xigsnr_naslib.integrations.naslib.metrics import compute_scores
from xigsnr_naslib.integrations.naslib.runner import (RunSettings, _naslib_available, load_config, merge_zc_json,
                                                      plan_run, run_config, save_dir)
from xigsnr_naslib.benchmarks.nb201.space import to_naslib_key as nb201_naslib_key

CONFIGS = Path(xigsnr_naslib.__file__).parent / "integrations" / "naslib" / "configs"


def test_nb201_keys_match_naslib_op_indices_on_real_data(data_root):
    table = pd.read_csv(data_root / "nb201" / "naslib_zc_subset_725x3.csv")
    assert len(table) > 2000
    for arch, key in zip(table["arch_str"], table["op_indices"]):
        assert nb201_naslib_key(arch) == key


@pytest.mark.parametrize("name,space,dataset", [
    ("nb201_cifar10.yaml", "nasbench201", "cifar10"), ("nb201_cifar100.yaml", "nasbench201", "cifar100"),
    ("nb201_imagenet16_120.yaml", "nasbench201", "ImageNet16-120"), ("nb101_cifar10.yaml", "nasbench101", "cifar10"),
    ("nb301_cifar10.yaml", "nasbench301", "cifar10")])
def test_shipped_configs_name_xi_gsnr_with_the_paper_split(name, space, dataset):
    config = load_config(CONFIGS / name)
    assert (config["search_space"], config["dataset"], config["predictor"]) == (space, dataset, "xi_gsnr")
    assert config["batch_size"] == 512 and config["xigsnr"]["n_batches"] * config["xigsnr"]["batch_size"] == 512
    assert save_dir(config) == Path("run/zc_example") / space / dataset / "xi_gsnr" / "0"


def write_yaml(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_config_errors_are_named(tmp_path):
    with pytest.raises(ValueError, match="missing NASLib config key.*test_size"):
        load_config(write_yaml(tmp_path, "search_space: nasbench201\ndataset: cifar10\npredictor: xi_gsnr\n"
                                         "seed: 0\nbatch_size: 512\n"))
    base = "search_space: nasbench201\ndataset: cifar10\npredictor: xi_gsnr\nseed: 0\ntest_size: 5\n"
    with pytest.raises(ValueError, match=r"batch_size 500 does not split.*8 x 64 = 512"):
        load_config(write_yaml(tmp_path, base + "batch_size: 500\n"))
    with pytest.raises(ValueError, match="unknown key.*nbatch"):
        load_config(write_yaml(tmp_path, base + "batch_size: 512\nxigsnr: {nbatch: 3}\n"))
    with pytest.raises(ValueError, match="'project' or 'naslib'"):
        load_config(write_yaml(tmp_path, base + "batch_size: 512\nxigsnr: {batches: mine}\n"))
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.yaml")


def test_zc_json_merge_keeps_everything_else(tmp_path):
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps({
        "cifar10": {"(0, 1, 2, 3, 4, 0)": {"id": "7", "val_accuracy": 88.0, "snip": {"score": 1.5, "time": 0.1}}},
        "cifar100": {"(0, 1, 2, 3, 4, 0)": {"val_accuracy": 60.0, "snip": {"score": 2.5, "time": 0.1}}}}))
    records = [{"arch_key": "(0, 1, 2, 3, 4, 0)", "score": 3.0, "seconds": 2.0, "accuracy": 91.0, "accuracy_kind": "val"},
               {"arch_key": "(1, 1, 1, 1, 1, 1)", "score": -1e8, "seconds": 1.0, "accuracy": 10.0, "accuracy_kind": "val"}]
    assert merge_zc_json(path, "cifar10", "xi_gsnr", records) == 2
    data = json.loads(path.read_text())
    known = data["cifar10"]["(0, 1, 2, 3, 4, 0)"]
    assert known == {"id": "7", "val_accuracy": 88.0, "snip": {"score": 1.5, "time": 0.1},
                     "xi_gsnr": {"score": 3.0, "time": 2.0}}
    assert data["cifar10"]["(1, 1, 1, 1, 1, 1)"] == {"xi_gsnr": {"score": -1e8, "time": 1.0}, "val_accuracy": 10.0}
    assert data["cifar100"] == {"(0, 1, 2, 3, 4, 0)": {"val_accuracy": 60.0, "snip": {"score": 2.5, "time": 0.1}}}
    assert [p.name for p in tmp_path.iterdir()] == ["zc_nasbench201.json"]  # no temporary file left
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a zc_<space>.json"):
        merge_zc_json(bad, "cifar10", "xi_gsnr", records)


TINY = ("search_space: nasbench201\ndataset: cifar10\npredictor: {predictor}\nseed: 3\ntest_size: 3\n"
        "batch_size: 8\nout_dir: {out}\nxigsnr: {{n_batches: 2, batch_size: 4}}\n")


def test_standalone_engine_writes_naslib_layout_and_resumes(data_root, tmp_path):
    config = write_yaml(tmp_path, TINY.format(predictor="xi_gsnr", out=tmp_path / "run"))
    zc = tmp_path / "zc_nasbench201.json"
    result = run_config(config, RunSettings(engine="standalone", data_root=data_root, zc_json=zc, progress=False))
    assert result.engine == "standalone"
    scores = json.loads(result.scores_json.read_text())
    assert result.scores_json == tmp_path / "run/zc_example/nasbench201/cifar10/xi_gsnr/3/scores.json"
    assert isinstance(scores, list) and len(scores) == 2
    assert scores[0]["predictor"] == "xi_gsnr" and scores[0]["test_size"] == 3
    metrics = scores[1]
    # xi-GSNR is >= 0; a cell whose output is cut off from its input scores exactly 0
    assert len(metrics["full_testpred"]) == 3 and all(math.isfinite(v) and v >= 0 for v in metrics["full_testpred"])
    # NASLib's keys hold NASLib's definitions, computed on the records' accuracies and scores
    expected = compute_scores([r["accuracy"] for r in result.records], [r["score"] for r in result.records])
    for key, value in expected.items():  # through JSON and back: floats round-trip exactly
        assert metrics[key] == value or (value != value and metrics[key] != metrics[key]), key
    assert -1 <= metrics["kendalltau"] <= 1 and metrics["query_time"] > 0
    assert metrics["xigsnr"]["engine"] == "standalone" and metrics["xigsnr"]["report_on_raw_scores"]["n"] == 3
    assert "ori-test" in metrics["xigsnr"]["accuracy_definition"]
    # the scores are the project's pipeline's, under NASLib's keys
    truth = pd.read_csv(data_root / "nb201" / "nb201_groundtruth_all15625.csv").set_index("nb201_index")
    for record in result.records:
        assert record["arch_key"] == nb201_naslib_key(truth.at[record["index"], "arch_str"])
        assert record["accuracy"] == pytest.approx(truth.at[record["index"], "cifar10_ori_test"])
    zc_data = json.loads(zc.read_text())["cifar10"]
    assert {r["arch_key"] for r in result.records} == set(zc_data)
    # every key written holds what NASLib's format defines: the standalone engine knows the
    # benchmark's test accuracy, not NASLib's validation accuracy, so it writes no val_accuracy
    assert all(set(entry) == {"xi_gsnr"} for entry in zc_data.values())
    # a second run reuses the records file: nothing is scored again
    lines = (result.save_dir / "xigsnr_records.jsonl").read_text().count("\n")
    again = run_config(config, RunSettings(engine="standalone", data_root=data_root, progress=False))
    assert (result.save_dir / "xigsnr_records.jsonl").read_text().count("\n") == lines == 3
    assert again.results["full_testpred"] == metrics["full_testpred"]


def test_written_zc_keys_hold_naslibs_values(data_root, tmp_path):
    """Against NASLib's own table: a written val_accuracy is NASLib's, or absent."""
    subset = pd.read_csv(data_root / "nb201" / "naslib_zc_subset_725x3.csv")
    subset = subset[subset["dataset"] == "cifar10"].head(3)
    zc = tmp_path / "zc_nasbench201.json"
    naslib_like = [{"arch_key": key, "score": 1.0, "accuracy": val, "accuracy_kind": "val"}
                   for key, val in zip(subset["op_indices"], subset["val_accuracy"])]
    standalone_like = [{"arch_key": key, "score": 1.0, "accuracy": test, "accuracy_kind": "test"}
                       for key, test in zip(subset["op_indices"], subset["test_accuracy"])]
    merge_zc_json(zc, "cifar10", "a", standalone_like)
    assert all("val_accuracy" not in e for e in json.loads(zc.read_text())["cifar10"].values())
    merge_zc_json(zc, "cifar10", "b", naslib_like)
    written = json.loads(zc.read_text())["cifar10"]
    for key, val in zip(subset["op_indices"], subset["val_accuracy"]):
        assert written[key]["val_accuracy"] == pytest.approx(val)


def test_standalone_zico_and_the_cli(data_root, tmp_path, capsys):
    config = write_yaml(tmp_path, TINY.format(predictor="zico", out=tmp_path / "run"))
    assert main(["naslib-run", "--config", str(config), "--engine", "standalone", "--data-root", str(data_root),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "engine: standalone" in out and "kendalltau" in out
    scores = json.loads((tmp_path / "run/zc_example/nasbench201/cifar10/zico/3/scores.json").read_text())
    assert all(math.isfinite(v) for v in scores[1]["full_testpred"])


def test_runner_errors(data_root, tmp_path, capsys):
    assert main(["naslib-run", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    nb301 = write_yaml(tmp_path, TINY.format(predictor="xi_gsnr", out=tmp_path).replace("nasbench201", "nasbench301"))
    assert main(["naslib-run", "--config", str(nb301), "--engine", "standalone", "--data-root", str(data_root)]) == 2
    assert "runs only through NASLib" in capsys.readouterr().err
    nb101 = write_yaml(tmp_path, TINY.format(predictor="xi_gsnr", out=tmp_path).replace("nasbench201", "nasbench101"))
    assert main(["naslib-run", "--config", str(nb101), "--engine", "standalone", "--data-root", str(data_root),
                 "--zc-json", str(tmp_path / "zc_nasbench101.json")]) == 2
    assert "nasbench201 only" in capsys.readouterr().err
    # NASLib's own predictors the project computes natively (snip) run standalone; unknown ones are named
    snip = write_yaml(tmp_path, TINY.format(predictor="snip", out=tmp_path))
    assert main(["naslib-run", "--config", str(snip), "--engine", "standalone", "--data-root", str(data_root)]) == 0
    capsys.readouterr()
    nope = write_yaml(tmp_path, TINY.format(predictor="nope", out=tmp_path))
    assert main(["naslib-run", "--config", str(nope), "--engine", "standalone", "--data-root", str(data_root)]) == 2
    assert "unknown proxy 'nope'" in capsys.readouterr().err
    if not _naslib_available():
        config = write_yaml(tmp_path, TINY.format(predictor="xi_gsnr", out=tmp_path))
        assert main(["naslib-run", "--config", str(config), "--engine", "naslib", "--data-root", str(data_root)]) == 2
        assert "NASLib is not importable" in capsys.readouterr().err


# --- which architectures: NASLib's zc-runner draw, for both engines -------------------------------

def naslib_zc_runner_draw(pool, size, seed):
    """What NASLib's zc runner does (runners/zc/runner.py + ZeroCostPredictorEvaluator.load_dataset):
    utils.set_seed(seed) seeds the global `random`; get_search_space("nasbench201") builds 17
    Graph objects, each calling random.random() for its id (core/graph.py); then one
    random.choice(labeled_archs) per architecture (NB201's sample_random_labeled_architecture),
    with replacement. test_naslib_integration.py checks this sequence against NASLib itself."""
    import random

    random.seed(seed)
    for _ in range(17):
        random.random()
    return [random.choice(pool) for _ in range(size)]


def test_plan_draws_what_naslibs_zc_runner_draws(tmp_path):
    import itertools

    every_cell = [str(t) for t in itertools.product(range(5), repeat=6)]  # NASLib's get_arch_iterator order
    for seed, size in [(0, 12), (3, 40), (11, 200)]:
        config = {"search_space": "nasbench201", "dataset": "cifar10", "predictor": "xi_gsnr", "seed": seed,
                  "test_size": size}
        plan = plan_run(config)
        naslib = naslib_zc_runner_draw(every_cell, 3 * size, seed)
        assert plan.test == list(dict.fromkeys(naslib))[:size]  # NASLib's sequence, repeats skipped
        if len(set(naslib[:size])) == size:
            assert plan.test == naslib[:size]
    # with a zc file, its architectures in file order are the pool (NASLib's labeled_archs)
    keys = [str(t) for t in itertools.product(range(5), repeat=6)][::-997][:10]
    zc = tmp_path / "zc_nasbench201.json"
    zc.write_text(json.dumps({"cifar10": {k: {"xi_gsnr": {"score": 1.0, "time": 0.0}} for k in keys}}))
    config = {"search_space": "nasbench201", "dataset": "cifar10", "predictor": "xi_gsnr", "seed": 5, "test_size": 4}
    assert plan_run(config, zc).test == list(dict.fromkeys(naslib_zc_runner_draw(keys, 40, 5)))[:4]


def test_a_zc_file_is_never_left_half_filled(tmp_path):
    zc = tmp_path / "zc_nasbench201.json"
    keys = ["(0, 1, 2, 3, 4, 0)", "(1, 1, 1, 1, 1, 1)", "(2, 2, 2, 2, 2, 2)", "(3, 3, 3, 3, 3, 3)"]
    zc.write_text(json.dumps({"cifar10": {k: {"snip": {"score": 1.0, "time": 0.1}, "val_accuracy": 80.0}
                                          for k in keys}}))
    config = {"search_space": "nasbench201", "dataset": "cifar10", "predictor": "xi_gsnr", "seed": 0, "test_size": 2}
    with pytest.raises(ValueError, match=r"2 of its 4 cifar10 architectures would still lack 'xi_gsnr'.*--zc-fill"):
        plan_run(config, zc)
    plan = plan_run(config, zc, zc_fill=True)
    assert plan.test == keys and plan.to_score == keys and plan.reused == {}
    with pytest.raises(ValueError, match="no architectures of 'cifar100'"):
        plan_run({**config, "dataset": "cifar100"}, zc, zc_fill=True)
    with pytest.raises(ValueError, match="needs --zc-json"):
        plan_run(config, None, zc_fill=True)
    # another dataset of the same file, or a new file: the drawn architectures only
    assert len(plan_run({**config, "dataset": "cifar100"}, zc).test) == 2
    assert len(plan_run(config, tmp_path / "new.json").test) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        plan_run(config, bad)


@pytest.mark.slow  # scores four full-size NB201 networks on real CIFAR-10 images
def test_zc_fill_scores_every_architecture_of_the_file_and_resumes(data_root, tmp_path, monkeypatch):
    zc = tmp_path / "zc_nasbench201.json"
    keys = ["(2, 3, 0, 2, 4, 1)", "(4, 0, 3, 1, 4, 3)", "(3, 3, 2, 0, 1, 2)", "(2, 2, 2, 3, 0, 4)"]
    data = {"cifar10": {k: {"snip": {"score": float(i), "time": 0.1}} for i, k in enumerate(keys)}}
    data["cifar10"][keys[1]]["xi_gsnr"] = {"score": 123.0, "time": 1.0}  # scored before: reused, not rescored
    zc.write_text(json.dumps(data))
    config = write_yaml(tmp_path, TINY.format(predictor="xi_gsnr", out=tmp_path / "run"))
    monkeypatch.setattr(naslib_runner, "CHUNK", 2)
    real_merge, calls = naslib_runner.merge_zc_json, []

    def interrupted_merge(*args, **kwargs):  # the run dies after writing its first chunk
        calls.append(len(args[3]))
        real_merge(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(naslib_runner, "merge_zc_json", interrupted_merge)
    with pytest.raises(KeyboardInterrupt):
        run_config(config, RunSettings(engine="standalone", data_root=data_root, zc_json=zc, zc_fill=True,
                                       progress=False))
    written = json.loads(zc.read_text())["cifar10"]
    assert calls == [2] and sum("xi_gsnr" in e for e in written.values()) == 3
    monkeypatch.setattr(naslib_runner, "merge_zc_json", real_merge)
    result = run_config(config, RunSettings(engine="standalone", data_root=data_root, zc_json=zc, zc_fill=True,
                                            progress=False))
    x = result.results["xigsnr"]
    assert x["archs"] == keys and x["n_scored"] == 1 and x["n_reused"] == 3
    written = json.loads(zc.read_text())["cifar10"]
    assert all("xi_gsnr" in e and "snip" in e for e in written.values())  # everything else kept
    assert written[keys[1]]["xi_gsnr"]["score"] == 123.0
    assert result.results["full_testpred"][1] == 123.0


@pytest.mark.slow  # three full-size NB201 networks run their backward passes before the score fails
def test_every_architecture_failing_fails_the_run_with_the_errors_logged(data_root, tmp_path, monkeypatch, caplog):
    from xigsnr_naslib.proxies import zico as zico_module

    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(zico_module, "score_zico", broken)  # what the registered zico proxy calls
    config = write_yaml(tmp_path, TINY.format(predictor="zico", out=tmp_path / "run"))
    with caplog.at_level("ERROR", logger="xigsnr_naslib.integrations.naslib.runner"):
        with pytest.raises(naslib_runner.RunFailed, match=r"zico failed on every one of the 3 architectures"):
            run_config(config, RunSettings(engine="standalone", data_root=data_root, progress=False))
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 3 and all("zico failed on architecture (" in r.getMessage() for r in logged)
