"""``xigsnr-naslib search``: a tiny run end to end, resume, rebuilt output, clear errors."""
import json

import pytest

from xigsnr_naslib.cli import main
from xigsnr_naslib.spaces import create_space


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _args(tmp_path, *extra):
    return ["search", "--checkpoint", str(tmp_path / "ckpt.json"), "--output", str(tmp_path / "best.json"),
            "--no-progress", "--population", "3", "--steps", "2", "--sample-size", "2", *extra]


@pytest.mark.slow  # two runs of the command, scoring ProxylessNAS networks
def test_tiny_xi_gsnr_search_writes_rebuildable_architectures(tmp_path, capsys):
    extra = ["--space", "proxylessnas", "--space-option", "skeleton=mobile", "--resolution", "32",
             "--num-classes", "10", "--synthetic-images", "--n-batches", "2", "--batch-size", "4",
             "--max-flops", "330M", "--top-k", "3"]
    assert main(_args(tmp_path, *extra)) == 0
    report = json.loads((tmp_path / "best.json").read_text())
    assert report["space"] == "proxylessnas" and report["space_options"] == {"skeleton": "mobile", "resolution": 32}
    assert report["proxy"] == "xi_gsnr" and report["flops_unit"] == "multiply-adds"
    assert "synthetic" in report["images"] and report["evaluated"] == 5
    # constraints hold at the deployment resolution (224), whatever resolution is scored
    assert report["settings"]["constraints"]["max_flops"] == 330e6 and report["flops_resolution"] == 224
    space = create_space(report["space"], **report["space_options"])
    for entry in report["best"]:
        arch = space.decode(entry["arch"])
        assert entry["flops"] == space.count_flops(arch, resolution=224, num_classes=10) <= 330e6
        assert entry["params"] == sum(p.numel() for p in space.build(arch, num_classes=10).parameters())
    scores = [e["fitness"] for e in report["best"]]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    # rerunning resumes the finished search: nothing new, the same answer
    out = capsys.readouterr().out
    assert main(_args(tmp_path, *extra)) == 0
    assert json.loads((tmp_path / "best.json").read_text())["best"] == report["best"]
    assert out.splitlines()[-5:] == capsys.readouterr().out.splitlines()[-5:]


def test_paper_constraints_of_burgerformer(tmp_path):
    extra = ["--space", "burgerformer", "--paper-constraints", "--proxy", "params", "--top-k", "2"]
    assert main(_args(tmp_path, *extra)) == 0
    report = json.loads((tmp_path / "best.json").read_text())
    bounds = report["settings"]["constraints"]
    assert (bounds["max_params"], bounds["max_flops"], bounds["resolution"]) == (30e6, 5e9, 224)
    assert report["images"] is None  # the params proxy needs no images
    assert all(e["params"] <= 30e6 and e["flops"] <= 5e9 for e in report["best"])


def test_missing_images_fail_clearly(tmp_path, capsys):
    extra = ["--space", "proxylessnas_xigsnr", "--data-root", str(tmp_path)]
    assert main(_args(tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert "imagenet/train" in err and "--synthetic-images" in err
    assert main(_args(tmp_path, "--space", "nb201", "--paper-constraints", "--proxy", "params")) == 2
    assert "no constraints" in capsys.readouterr().err
