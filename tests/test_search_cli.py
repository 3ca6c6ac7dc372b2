"""``xigsnr-naslib search``: a tiny run end to end, resume, rebuilt output, clear errors."""
import json
from collections import Counter

import pytest

from xigsnr_naslib.cli.app import main
from xigsnr_naslib.benchmarks import create_space
from xigsnr_naslib.scoring.study import ArchitectureScorer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _args(tmp_path, *extra):
    return ["search", "--checkpoint", str(tmp_path / "ckpt.json"), "--output", str(tmp_path / "best.json"),
            "--results", str(tmp_path / "scores.jsonl"), "--no-progress", "--population", "3", "--steps", "2",
            "--sample-size", "2", *extra]


def _stored(tmp_path):
    path = tmp_path / "scores.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


TINY_XI_GSNR = ["--space", "proxylessnas", "--space-option", "skeleton=mobile", "--resolution", "32",
                "--num-classes", "10", "--synthetic-images", "--n-batches", "2", "--batch-size", "4",
                "--max-flops", "330M"]


@pytest.mark.slow  # two runs of the command, scoring ProxylessNAS networks
def test_tiny_xi_gsnr_search_writes_rebuildable_architectures(tmp_path, capsys):
    extra = [*TINY_XI_GSNR, "--top-k", "3"]
    assert main(_args(tmp_path, *extra)) == 0
    report = json.loads((tmp_path / "best.json").read_text())
    assert report["space"] == "proxylessnas" and report["space_options"] == {"skeleton": "mobile", "resolution": 32}
    assert report["proxy"] == "xi_gsnr" and report["flops_unit"] == "multiply-adds"
    assert "synthetic" in report["images"] and report["evaluated"] == 5
    assert report["protocol"] == {"n_batches": 2, "batch_size": 4, "data_seed": 1, "init_seed": 1,
                                  "normalization": None, "bn_mode": "train"}
    # constraints hold at the deployment resolution (224), whatever resolution is scored
    assert report["settings"]["constraints"]["max_flops"] == 330e6 and report["flops_resolution"] == 224
    space = create_space(report["space"], **report["space_options"])
    for entry in report["best"]:
        arch = space.decode(entry["arch"])
        assert entry["flops"] == space.count_flops(arch, resolution=224, num_classes=10) <= 330e6
        assert entry["params"] == sum(p.numel() for p in space.build(arch, num_classes=10).parameters())
    scores = [e["fitness"] for e in report["best"]]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    # every scored architecture is in the results store, once, with the fitness the report gives it
    records = _stored(tmp_path)
    distinct = {c["arch"] for c in report["best"]}
    assert len(records) == len({r["arch"] for r in records}) >= len(distinct)
    fitness = {r["arch"]: r["score"] for r in records}
    assert all(fitness[e["arch"]] == e["fitness"] for e in report["best"])
    assert all(r["proxy"] == "xi_gsnr" and r["space_options"]["skeleton"] == "mobile" for r in records)
    # rerunning resumes the finished search: nothing new, the same answer
    out = capsys.readouterr().out
    assert main(_args(tmp_path, *extra)) == 0
    assert json.loads((tmp_path / "best.json").read_text())["best"] == report["best"]
    assert out.splitlines()[-5:] == capsys.readouterr().out.splitlines()[-5:]
    assert _stored(tmp_path) == records


def test_num_classes_defaults_to_the_datasets(tmp_path):
    extra = ["--space", "proxylessnas_xigsnr", "--proxy", "params", "--top-k", "1"]
    assert main(_args(tmp_path, *extra)) == 0
    report = json.loads((tmp_path / "best.json").read_text())
    assert report["settings"]["constraints"]["num_classes"] == 1000  # ImageNet's
    space = create_space("proxylessnas_xigsnr")
    best = report["best"][0]
    assert best["params"] == best["fitness"] == space.count_params(space.decode(best["arch"]), num_classes=1000)


def test_paper_constraints_of_burgerformer(tmp_path):
    extra = ["--space", "burgerformer", "--paper-constraints", "--proxy", "params", "--top-k", "2"]
    assert main(_args(tmp_path, *extra)) == 0
    report = json.loads((tmp_path / "best.json").read_text())
    bounds = report["settings"]["constraints"]
    assert (bounds["max_params"], bounds["max_flops"], bounds["resolution"]) == (30e6, 5e9, 224)
    assert report["images"] is None  # the params proxy needs no images
    assert all(e["params"] <= 30e6 and e["flops"] <= 5e9 for e in report["best"])


def test_paper_constraints_of_a_space_the_paper_gives_none_for_are_refused(tmp_path, capsys):
    assert main(_args(tmp_path, "--space", "proxylessnas", "--paper-constraints", "--proxy", "params")) == 2
    assert "the paper gives no constraints for space 'proxylessnas'" in capsys.readouterr().err
    assert not (tmp_path / "best.json").exists() and not _stored(tmp_path)


def test_a_resumed_search_with_another_protocol_is_refused(tmp_path, capsys):
    assert main(_args(tmp_path, *TINY_XI_GSNR)) == 0
    records = _stored(tmp_path)
    capsys.readouterr()
    for changed, field in [(["--n-batches", "3"], "fitness.protocol.n_batches"),
                           (["--init-seed", "2"], "fitness.protocol.init_seed"),
                           (["--proxy", "xi_gsnr_paper"], "fitness.proxies")]:
        assert main(_args(tmp_path, *TINY_XI_GSNR, *changed)) == 2
        err = capsys.readouterr().err
        assert "was written with other" in err and field in err, err
        assert "use another checkpoint file or the same settings" in err
    assert _stored(tmp_path) == records  # nothing was scored under the refused settings


@pytest.mark.slow  # two searches through the command line (about 3 s); test_evolution has the fast one
def test_a_resumed_search_scores_no_architecture_twice(tmp_path, monkeypatch):
    """Interrupted between checkpoints, a search redoes the steps after the last one: the
    results store gives their scores back, so no architecture is scored twice."""
    scored = []
    real = ArchitectureScorer.records
    interrupt_after = [None]

    def counting(self, index, arch, proxy_names=None):
        if len(scored) == interrupt_after[0]:
            raise KeyboardInterrupt
        scored.append(self.space.encode(arch))
        return real(self, index, arch, proxy_names)

    monkeypatch.setattr(ArchitectureScorer, "records", counting)
    extra = [*TINY_XI_GSNR, "--steps", "4"]  # 7 architectures, fewer than a checkpoint's 20
    reference = tmp_path / "reference"
    assert main(_args(reference, *extra)) == 0
    expected = json.loads((reference / "best.json").read_text())
    n_distinct = len(set(scored))
    assert len(scored) == n_distinct > 3
    scored.clear()
    interrupt_after[0] = 3
    assert main(_args(tmp_path, *extra)) == 130  # interrupted: no checkpoint yet, 3 architectures stored
    assert not (tmp_path / "ckpt.json").exists() and len(_stored(tmp_path)) == 3
    interrupt_after[0] = None
    assert main(_args(tmp_path, *extra)) == 0
    assert len(scored) == len(set(scored)) == n_distinct  # each architecture scored once, all told
    records = _stored(tmp_path)
    assert max(Counter(r["arch"] for r in records).values()) == 1 and len(records) == n_distinct
    assert json.loads((tmp_path / "best.json").read_text())["best"] == expected["best"]


def test_missing_images_fail_clearly(tmp_path, capsys):
    extra = ["--space", "proxylessnas_xigsnr", "--data-root", str(tmp_path)]
    assert main(_args(tmp_path, *extra)) == 1  # a data error
    err = capsys.readouterr().err
    assert "imagenet/train" in err and "--synthetic-images" in err
    assert main(_args(tmp_path, "--space", "nb201", "--paper-constraints", "--proxy", "params")) == 2
    assert "no constraints" in capsys.readouterr().err
    assert main(_args(tmp_path, "--space", "nope")) == 2
    assert "unknown search space 'nope'; choose one of:" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the single --seed is gone: --data-seed, --init-seed, --search-seed
        main(_args(tmp_path, "--space", "proxylessnas", "--seed", "1"))


# --- each space searches on the images its card names ------------------------------------------------
def _files(tmp_path):
    return ["search", "--checkpoint", str(tmp_path / "ckpt.json"), "--output", str(tmp_path / "best.json"),
            "--results", str(tmp_path / "scores.jsonl"), "--no-progress", "--workers", "0", "--n-batches", "2",
            "--batch-size", "2"]


@pytest.mark.parametrize("space,algorithm", [("nb101", "evolution"), ("nb201", "sample"), ("darts", "sample")])
def test_a_cifar_space_without_cifar_images_names_the_files_and_the_choices(space, algorithm, tmp_path, capsys):
    """The CIFAR-10 spaces read CIFAR-10 (never ImageNet): with none under the data root, one
    line names the CIFAR-10 files looked for and the choices, before any scoring."""
    sizes = ["--samples", "2"] if algorithm == "sample" else ["--population", "2", "--steps", "1"]
    code = main([*_files(tmp_path), "--space", space, "--algorithm", algorithm, "--data-root", str(tmp_path), *sizes])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "imagenet" not in err.lower()
    assert str(tmp_path / "cifar-10-batches-py") in err and "--images PATH" in err and "--synthetic-images" in err
    assert not (tmp_path / "scores.jsonl").exists()


@pytest.mark.slow  # a search of three NAS-Bench-101 cells on real CIFAR-10 images (seconds)
def test_nb101_searches_on_the_cifar10_images_of_its_card(data_root, tmp_path, capsys):
    from xigsnr_naslib.data.datasets import load_images

    assert main([*_files(tmp_path), "--space", "nb101", "--data-root", str(data_root), "--population", "2",
                 "--steps", "1", "--sample-size", "1"]) == 0
    assert "images: " + str(data_root / "images" / "cifar10_jpeg_train5000_test10000.npz") in capsys.readouterr().out
    fingerprint = load_images("cifar10", data_root).fingerprint()
    assert {r["images"] for r in _stored(tmp_path)} == {fingerprint}


def test_a_failed_candidate_of_a_resumed_search_is_scored_again(tmp_path):
    """An error record (out of memory, a worker that died) is the run's failure: resuming the
    search asks the store again, which scores that architecture anew; the checkpoint's
    candidate gets its fitness back. Not-computable candidates would be served from the store."""
    args = ["search", "--space", "burgerformer", "--proxy", "params", "--population", "2", "--steps", "1",
            "--checkpoint", str(tmp_path / "ckpt.json"), "--output", str(tmp_path / "best.json"),
            "--results", str(tmp_path / "scores.jsonl"), "--no-progress", "--workers", "0"]
    assert main(args) == 0
    records = _stored(tmp_path)
    checkpoint = json.loads((tmp_path / "ckpt.json").read_text())
    victim = checkpoint["history"][0]
    # as if the first candidate had run out of memory: an error record, no fitness
    failed = [dict(r, score=None, status="error", error="RuntimeError: out of memory") if r["arch"] == victim["arch"]
              else r for r in records]
    (tmp_path / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in failed))
    checkpoint["history"][0] = dict(victim, fitness=None)
    (tmp_path / "ckpt.json").write_text(json.dumps(checkpoint))
    assert main(args) == 0
    resumed = json.loads((tmp_path / "ckpt.json").read_text())["history"][0]
    assert resumed["fitness"] == victim["fitness"] > 0
    assert [r["status"] for r in _stored(tmp_path) if r["arch"] == victim["arch"]] == ["error", "ok"]


@pytest.mark.parametrize("space", ["nds_darts", "nds_darts_in", "nds_amoeba"])
def test_a_space_that_cannot_sample_is_refused_by_name_before_any_work(space, tmp_path, capsys):
    """The NDS spaces are the benchmark's records: they neither sample nor mutate, so an
    evolution there is refused in one line (exit status 2), not ended by a traceback."""
    code = main([*_files(tmp_path), "--space", space, "--data-root", str(tmp_path), "--population", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"space {space!r} cannot run --algorithm evolution: it has no sample, mutate, crossover operation" in err
    assert not (tmp_path / "scores.jsonl").exists()
