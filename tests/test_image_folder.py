"""Search images: ImageFolder trees, flat folders and npz files, resized; clear errors; no silent noise."""
import numpy as np
import pytest
from PIL import Image

from xigsnr_naslib.data.data_root import MissingDataError
from xigsnr_naslib.data.image_folder import read_image_folder, read_images, synthetic_images


def _write(path, size, color, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imagenet" / "train"
    _write(root / "n02" / "a.JPEG", (40, 30), (255, 0, 0), "JPEG")
    _write(root / "n02" / "b.png", (30, 60), (0, 255, 0), "PNG")
    _write(root / "n01" / "c.jpg", (50, 50), (0, 0, 255), "JPEG")
    (root / "n01" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_labels_by_sorted_class_and_crops_to_resolution(folder):
    images = read_image_folder(folder, resolution=16, max_images=None)
    assert images.images.shape == (3, 16, 16, 3) and images.images.dtype == np.uint8
    assert images.num_classes == 2
    # n01 (blue) is class 0, n02 (red, green) class 1
    by_label = {int(lbl): img.reshape(-1, 3).mean(0) for img, lbl in zip(images.images, images.labels)}
    assert sorted(images.labels.tolist()) == [0, 1, 1]
    assert by_label[0][2] > 200 and by_label[0][0] < 50


def test_max_images_draws_a_seeded_subset(folder):
    a = read_image_folder(folder, 8, max_images=2, seed=0)
    b = read_image_folder(folder, 8, max_images=2, seed=0)
    assert len(a) == 2 and np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)


def test_default_location_under_the_data_root_and_flat_folders(folder, tmp_path):
    images = read_images(data_root=tmp_path, resolution=12, max_images=None)
    assert len(images) == 3 and images.source == str(folder)
    flat = read_images(str(folder / "n02"), resolution=12, max_images=None)  # absolute path, no data root
    assert len(flat) == 2 and flat.num_classes == 1 and set(flat.labels.tolist()) == {0}


def test_npz_images_are_resized(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "few.npz", x=x, y=np.arange(5))
    images = read_images("few.npz", data_root=tmp_path, resolution=16, max_images=4)
    assert images.images.shape == (4, 16, 16, 3)
    same = read_images("few.npz", data_root=tmp_path, resolution=32, max_images=None)
    assert np.array_equal(same.images, x)


def test_unreadable_images_are_skipped_and_reported(folder):
    (folder / "n01" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        images = read_image_folder(folder, 8, max_images=None)
    assert len(images) == 3


def test_missing_images_are_an_error_never_noise(tmp_path):
    with pytest.raises(MissingDataError, match="imagenet/train.*--synthetic-images"):
        read_images(data_root=tmp_path, resolution=16)
    with pytest.raises(MissingDataError, match="does not exist"):
        read_image_folder(tmp_path / "nowhere", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingDataError, match="no images"):
        read_image_folder(tmp_path / "empty", 16)


def test_synthetic_images_are_seeded_noise():
    a, b = synthetic_images(4, 8, 10, seed=3), synthetic_images(4, 8, 10, seed=3)
    assert np.array_equal(a.images, b.images) and a.images.shape == (4, 8, 8, 3)
    assert "synthetic" in a.source and a.labels.max() < 10
