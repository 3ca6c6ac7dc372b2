"""correlate on NAS-Bench-101 (released per-sample protocol by default) and on NDS (ImageNet path)."""
import json

import numpy as np
import pytest

from xigsnr_naslib.cli.app import main
from xigsnr_naslib.benchmarks.card import get_card, list_cards
from xigsnr_naslib.data.protocol import PAPER_NB201, RELEASED_NB101


def test_each_card_states_its_released_defaults_and_refuses_what_it_lacks():
    # NB201 and NDS: the paper's 8 x 64 with the official mode; NB101: the released 1 x 8 per-sample run
    assert get_card("nb201").dataset().protocol == PAPER_NB201 == get_card("nds_pnas").dataset().protocol
    assert (get_card("nb201").dataset().proxy, get_card("nb101").dataset().proxy) == ("xi_gsnr", "xi_gsnr_per_sample")
    assert get_card("nb101").dataset().protocol == RELEASED_NB101
    assert (RELEASED_NB101.n_batches, RELEASED_NB101.batch_size) == (1, 8)
    assert get_card("nds_darts_in").dataset().name == "imagenet" and get_card("nds_pnas").dataset().name == "cifar10"
    assert get_card("nb201").dataset("ImageNet16-120").resolution == 16
    # nothing falls back to another space's defaults: ImageNet spaces offer ImageNet only
    for name in ("burgerformer", "proxylessnas_xigsnr", "nds_darts_in"):
        card = get_card(name)
        assert list(card.datasets) == ["imagenet"] and card.dataset().resolution == 224
        with pytest.raises(ValueError, match="unknown dataset 'cifar10' for space .*; choose one of: imagenet"):
            card.dataset("cifar10")
    with pytest.raises(ValueError, match="choose one of: cifar10, cifar100, ImageNet16-120"):
        get_card("nb201").dataset("imagenet")
    with pytest.raises(ValueError, match="accuracy definition 'valid' for cifar10; choose one of: released, naslib"):
        get_card("nb101").dataset().accuracy("valid")
    # one codec per space: NASLib's name maps back to the card
    assert {get_card(n).naslib.name for n in list_cards() if get_card(n).naslib} == {"nasbench201", "nasbench101"}


def test_burgerformer_is_scored_on_its_own_images_not_cifar(capsys):
    from xigsnr_naslib.cli.app import main

    assert main(["score", "--space", "burgerformer", "--dataset", "cifar10", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'cifar10' for space 'burgerformer'; choose one of: imagenet" in err and len(err.splitlines()) == 1


@pytest.mark.slow  # scores three NB101 cells through the command line (about 2 s)
def test_correlate_nb101_uses_the_released_protocol(data_root, tmp_path, capsys):
    results = tmp_path / "nb101.jsonl"
    assert main(["correlate", "--space", "nb101", "--archs", "0,1,2", "--results", str(results),
                 "--data-root", str(data_root), "--no-progress"]) == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 3 and all(r["status"] == "ok" and r["score"] > 0 for r in records)
    assert {r["proxy"] for r in records} == {"xi_gsnr_per_sample"}
    assert records[0]["protocol"]["n_batches"] == 1 and records[0]["protocol"]["batch_size"] == 8
    assert records[0]["settings"]["mode"] == "per_sample"
    assert "ONE seed" in capsys.readouterr().out


def test_correlate_nds_imagenet_on_synthetic_images(data_root, tmp_path, capsys):
    """The ImageNet code path: records -> 224x224 networks -> images from the data root."""
    raw = json.loads((data_root / "nds" / "PNAS_in.json").read_text())[:3]
    for rec in raw:  # the real genotypes, made small enough for a CPU test
        rec["net"].update(width=8, depth=3)
    root = tmp_path / "root"
    (root / "nds").mkdir(parents=True)
    (root / "nds" / "PNAS_in.json").write_text(json.dumps(raw))
    (root / "imagenet").mkdir()
    rng = np.random.default_rng(0)
    np.savez(root / "imagenet" / "imagenet_train.npz", train_x=rng.integers(0, 256, (4, 224, 224, 3), dtype=np.uint8),
             train_y=rng.integers(0, 1000, 4))
    results = tmp_path / "nds.jsonl"
    assert main(["correlate", "--space", "nds_pnas_in", "--results", str(results), "--n-batches", "2",
                 "--batch-size", "2", "--proxy", "xi_gsnr", "--proxy", "params", "--data-root", str(root),
                 "--no-progress"]) == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    assert all(r["dataset"] == "imagenet" for r in records)
    gsnr = [r for r in records if r["proxy"] == "xi_gsnr"]
    assert all(np.isfinite(r["score"]) and r["score"] > 0 for r in gsnr)
    assert "100 - test_ep_top1[-1]" in capsys.readouterr().out


def test_image_folder_reader(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from xigsnr_naslib.data.datasets import load_images

    for k, wnid in enumerate(["n01", "n02"]):
        d = tmp_path / "imagenet" / "train" / wnid
        d.mkdir(parents=True)
        for j in range(2):
            Image.fromarray(np.full((300, 260, 3), 40 * k + j, dtype=np.uint8)).save(d / f"{j}.png")
    images = load_images("imagenet", tmp_path)
    assert images.images.shape == (4, 224, 224, 3) and list(images.labels) == [0, 0, 1, 1]
    assert images.num_classes == 1000 and images.images[2].min() == 40 == images.images[2].max()
