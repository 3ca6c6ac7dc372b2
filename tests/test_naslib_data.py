"""NASLib's data: the CIFAR-10 python layout written from real images, and one-line errors for
missing NASLib files.

The layout is read back by ``torchvision.datasets.CIFAR10`` exactly as NASLib's loader calls it
(``download=True``, which must not try the network) when torchvision is installed, else by
:func:`read_documented_layout`, written from the format's documentation (cs.toronto.edu/~kriz/
cifar.html: pickled dicts, ``data`` rows of 1024 red, 1024 green, 1024 blue values, row-major;
``batches.meta`` with ``label_names``). Missing-file errors use a stand-in of NASLib's
``get_dataset_api`` that raises NASLib's own assertion ("Could not find PATH. Please download ...").
"""
import hashlib
import json
import pickle
import sys
import types

import numpy as np
import pytest
import yaml

from xigsnr_naslib.cli.app import main
from xigsnr_naslib.data.data_root import MissingDataError
from xigsnr_naslib.integrations.naslib.data import (CIFAR10_FILES, MANIFEST, accept_written_layouts, check_naslib_images,
                                       load_naslib_dataset_api, read_cifar10_folder, write_cifar10_layout)

from naslib_standin import install_fake_naslib

try:
    import torchvision  # noqa: F401
    HAVE_TORCHVISION = True
except ImportError:
    HAVE_TORCHVISION = False


def read_documented_layout(root, train=True):
    """The python version of CIFAR-10 as its documentation describes it: images N x 32 x 32 x 3."""
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        rows = np.asarray(batch["data"], dtype=np.uint8)
        assert rows.shape[1] == 3072
        red, green, blue = rows[:, :1024], rows[:, 1024:2048], rows[:, 2048:]
        images.append(np.stack([c.reshape(-1, 32, 32) for c in (red, green, blue)], axis=-1))
        labels += list(batch["labels"])
    with open(folder / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    return np.concatenate(images), np.asarray(labels), list(meta["label_names"])


def read_back(root, train=True):
    if not HAVE_TORCHVISION:
        return read_documented_layout(root, train)
    from torchvision.datasets import CIFAR10

    accept_written_layouts()
    data = CIFAR10(root=str(root), train=train, download=True)  # as NASLib's get_train_val_loaders calls it
    return data.data, np.asarray(data.targets), list(data.classes)


@pytest.mark.slow  # writes and reads 15,000 real images (about 50 MB of pickles)
def test_reference_images_round_trip_through_the_reader(data_root, tmp_path, capsys):
    assert main(["cifar10-layout", "--out", str(tmp_path), "--data-root", str(data_root)]) == 0
    assert "5000 training images" in capsys.readouterr().out
    folder = tmp_path / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(CIFAR10_FILES + (MANIFEST,))
    with np.load(data_root / "images" / "cifar10_jpeg_train5000_test10000.npz") as npz:
        for train, split in ((True, "train"), (False, "test")):
            images, labels, classes = read_back(tmp_path, train)
            assert np.array_equal(images, npz[f"{split}_x"]) and np.array_equal(labels, npz[f"{split}_y"])
        assert classes == [str(c) for c in npz["classes"]]
    manifest = json.loads((folder / MANIFEST).read_text())
    for name in CIFAR10_FILES:
        assert manifest["files"][name] == hashlib.md5((folder / name).read_bytes()).hexdigest()


def fake_images(n, seed):
    from xigsnr_naslib.data.image_set import ImageSet

    rng = np.random.default_rng(seed)
    return ImageSet(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10, 10, f"noise{seed}")


def test_layout_of_few_images_round_trips_and_the_batches_split_evenly(tmp_path):
    train, test = fake_images(23, 0), fake_images(7, 1)
    classes = [f"c{i}" for i in range(10)]
    write_cifar10_layout(tmp_path, train, test, classes, "noise")
    images, labels, got_classes = read_back(tmp_path, True)
    assert np.array_equal(images, train.images) and np.array_equal(labels, train.labels) and got_classes == classes
    sizes = [len(pickle.load(open(tmp_path / "cifar-10-batches-py" / f"data_batch_{i}", "rb"),
                             encoding="latin1")["labels"]) for i in range(1, 6)]
    assert sizes == [5, 5, 5, 4, 4]
    images, labels, _ = read_documented_layout(tmp_path, False)  # the documented reader agrees too
    assert np.array_equal(images, test.images) and np.array_equal(labels, test.labels)


@pytest.mark.skipif(not HAVE_TORCHVISION, reason="torchvision is not installed")
def test_torchvision_still_rejects_a_changed_file(tmp_path):
    from torchvision.datasets import CIFAR10

    write_cifar10_layout(tmp_path, fake_images(10, 0), fake_images(10, 1), [str(i) for i in range(10)], "noise")
    accept_written_layouts()
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "ab") as f:
        f.write(b"x")
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        CIFAR10(root=str(tmp_path), train=False, download=False)


def test_an_image_folder_becomes_the_layout(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    source = tmp_path / "images"
    pixels = {}
    for split in ("train", "test"):
        for c in range(10):
            (source / split / f"class{c}").mkdir(parents=True)
            array = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(array).save(source / split / f"class{c}" / "a.png")
            pixels[split, c] = array
    out = tmp_path / "naslib_data"
    assert main(["cifar10-layout", "--out", str(out), "--image-folder", str(source)]) == 0
    images, labels, classes = read_back(out, True)
    assert classes == [f"class{c}" for c in range(10)] and list(labels) == list(range(10))
    assert all(np.array_equal(images[c], pixels["train", c]) for c in range(10))
    Image.fromarray(np.zeros((40, 32, 3), dtype=np.uint8)).save(source / "test" / "class3" / "big.png")
    with pytest.raises(ValueError, match=r"big.png: CIFAR-10 images are 32 x 32, this one is 32 x 40"):
        read_cifar10_folder(source)


def test_bad_sources_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "few" / "train" / "a").mkdir(parents=True)
    (tmp_path / "few" / "test" / "a").mkdir(parents=True)
    from PIL import Image

    for split in ("train", "test"):
        Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "few" / split / "a" / "x.png")
    assert main(["cifar10-layout", "--out", str(tmp_path / "o"), "--image-folder", str(tmp_path / "few")]) == 2
    assert "CIFAR-10 has 10 classes, got 1: a" in capsys.readouterr().err
    assert main(["cifar10-layout", "--out", str(tmp_path / "o"), "--image-folder", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert main(["cifar10-layout", "--out", str(tmp_path / "o"), "--data-root", str(tmp_path)]) == 1
    assert "cifar10_jpeg_train5000_test10000.npz are missing; pass --image-folder" in capsys.readouterr().err


def test_missing_cifar10_for_naslibs_loader_is_named(tmp_path):
    with pytest.raises(MissingDataError) as exc:
        check_naslib_images("cifar10", str(tmp_path))
    message = str(exc.value)
    assert "\n" not in message and str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert f"xigsnr-naslib cifar10-layout --out {tmp_path}" in message and "--engine standalone" in message
    write_cifar10_layout(tmp_path, fake_images(10, 0), fake_images(10, 1), [str(i) for i in range(10)], "noise")
    check_naslib_images("cifar10", str(tmp_path))  # now complete


def fake_get_dataset_api(monkeypatch, data_folder):
    """NASLib's get_dataset_api for NAS-Bench-201 with its file absent: NASLib's own assertion."""
    utils = types.ModuleType("naslib.utils")
    api = types.ModuleType("naslib.utils.get_dataset_api")

    def get_dataset_api(search_space=None, dataset=None):
        path = data_folder / "nb201_cifar10_full_training.pickle"
        assert path.exists(), (f"Could not find {path}. Please download nb201_cifar10_full_training.pickle from "
                               f"https://drive.google.com/drive/folders/1rwmkqyij3I24zn5GSO6fGv2mzdEfPIEa")

    utils.get_dataset_api = get_dataset_api
    api.get_project_root = lambda: data_folder.parent
    monkeypatch.setitem(sys.modules, "naslib.utils", utils)
    monkeypatch.setitem(sys.modules, "naslib.utils.get_dataset_api", api)


def test_missing_benchmark_file_is_one_line(monkeypatch, tmp_path):
    install_fake_naslib(monkeypatch, "Develop")
    fake_get_dataset_api(monkeypatch, tmp_path / "data")
    with pytest.raises(MissingDataError) as exc:
        load_naslib_dataset_api("nasbench201", "cifar10")
    message = str(exc.value)
    assert "\n" not in message and str(tmp_path / "data" / "nb201_cifar10_full_training.pickle") in message
    assert "--engine standalone" in message and str(tmp_path / "data") in message


def naslib_config(tmp_path, batches):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"search_space": "nasbench201", "dataset": "cifar10", "predictor": "xi_gsnr",
                                    "seed": 0, "test_size": 2, "batch_size": 8, "out_dir": str(tmp_path / "run"),
                                    "xigsnr": {"n_batches": 2, "batch_size": 4, "batches": batches}}))
    return path


@pytest.mark.parametrize("batches,missing", [("naslib", "cifar-10-batches-py/data_batch_1"),
                                             ("project", "nb201_cifar10_full_training.pickle")])
def test_naslib_run_without_naslibs_data_is_one_line_exit_1(monkeypatch, tmp_path, capsys, data_root, batches,
                                                            missing):
    install_fake_naslib(monkeypatch, "Develop")
    fake_get_dataset_api(monkeypatch, tmp_path / "data")
    status = main(["naslib-run", "--config", str(naslib_config(tmp_path, batches)), "--engine", "naslib",
                   "--naslib-data", str(tmp_path / "data"), "--data-root", str(data_root)])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and missing in err and "--engine standalone" in err
