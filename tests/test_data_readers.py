"""Image readers, tested on small files written in each real layout."""
import pickle

import numpy as np
import pytest
import torch

from xigsnr_naslib.data.data_root import ENV_VAR, DataFileError, MissingDataError, resolve_data_root
from xigsnr_naslib.data.datasets import NORMALIZATION, load_images, read_cifar_pickle, read_imagenet16, read_npz
from xigsnr_naslib.data.protocol import Protocol, draw_batches, normalize


def _rows(images_nhwc):
    return images_nhwc.transpose(0, 3, 1, 2).reshape(len(images_nhwc), -1)


def _dump(path, obj, bytes_keys=True):
    if bytes_keys:
        obj = {k.encode(): v for k, v in obj.items()}
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)


def test_cifar10_python_layout(tmp_path, images):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", {"data": _rows(images), "labels": [i % 10] * 6})
    _dump(folder / "test_batch", {"data": _rows(images[:2]), "labels": [3, 4]})
    train = read_cifar_pickle(folder)
    assert train.images.shape == (30, 32, 32, 3) and train.num_classes == 10
    np.testing.assert_array_equal(train.images[:6], images)  # CHW rows decoded to NHWC
    assert list(train.labels[::6]) == [1, 2, 3, 4, 5]
    assert len(read_cifar_pickle(folder, "test")) == 2
    via_root = load_images("cifar10", tmp_path)
    assert via_root.source == str(folder)


def test_cifar100_python_layout(tmp_path, images):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _dump(folder / "train", {"data": _rows(images), "fine_labels": [99, 0, 5, 6, 7, 8], "coarse_labels": [0] * 6})
    got = load_images("cifar100", tmp_path)
    assert got.num_classes == 100 and list(got.labels) == [99, 0, 5, 6, 7, 8]
    np.testing.assert_array_equal(got.images, images)


def test_imagenet16_keeps_first_120_classes(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "ImageNet16"
    folder.mkdir()
    small = rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)
    for i in range(1, 11):
        _dump(folder / f"train_data_batch_{i}", {"data": _rows(small), "labels": [1, 120, 121, 1000], "mean": None},
              bytes_keys=False)
    got = read_imagenet16(folder)
    assert len(got) == 20 and set(got.labels) == {0, 119}
    np.testing.assert_array_equal(got.images[:2], small[:2])
    assert load_images("ImageNet16-120", tmp_path).num_classes == 120


def test_npz_layouts(tmp_path, images):
    np.savez(tmp_path / "a.npz", train_x=images, train_y=np.arange(6))
    np.savez(tmp_path / "b.npz", x=images, y=np.arange(6))
    assert len(read_npz(tmp_path / "a.npz", num_classes=10)) == 6
    assert read_npz(tmp_path / "b.npz").num_classes == 6
    np.savez(tmp_path / "c.npz", other=images)
    with pytest.raises(DataFileError, match="c.npz.*no 'train_x'"):
        read_npz(tmp_path / "c.npz")


def test_missing_images_name_the_files_and_how_to_get_them(tmp_path):
    with pytest.raises(MissingDataError, match=r"cifar-100-python.*Download CIFAR-100"):
        load_images("cifar100", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_images("mnist", tmp_path)


def test_data_root_from_flag_or_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(MissingDataError, match=ENV_VAR):
        resolve_data_root(None)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert resolve_data_root(None) == tmp_path
    with pytest.raises(MissingDataError, match="not a folder"):
        resolve_data_root(tmp_path / "nope")


def test_reference_cifar10_images(data_root):
    got = load_images("cifar10", data_root)
    assert len(got) == 5000 and np.bincount(got.labels).tolist() == [500] * 10


def test_normalisation_and_seeded_batches(images):
    from xigsnr_naslib.data.datasets import ImageSet

    x = normalize(images, "cifar10")
    mean, std = NORMALIZATION["cifar10"]
    assert x.shape == (6, 3, 32, 32)
    expected = (images[0, 0, 0, 1] / 255 - mean[1]) / std[1]
    assert x[0, 1, 0, 0].item() == pytest.approx(expected, abs=1e-5)
    data = ImageSet(np.repeat(images, 10, axis=0), np.arange(60) % 10, 10, "mem")
    a = draw_batches(data, Protocol(n_batches=3, batch_size=20, data_seed=5), "cifar10")
    b = draw_batches(data, Protocol(n_batches=3, batch_size=20, data_seed=5), "cifar10")
    c = draw_batches(data, Protocol(n_batches=3, batch_size=20, data_seed=6), "cifar10")
    assert len(a) == 3 and all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    assert not torch.equal(a[0][1], a[1][1])  # every batch is a fresh draw
    with pytest.raises(ValueError, match="needs at least"):
        draw_batches(data, Protocol(batch_size=61), "cifar10")
