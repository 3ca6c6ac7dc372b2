"""Image readers: CIFAR-10/100 (python-pickle layout and npz), ImageNet16-120 (pickled batches).

Every reader returns an :class:`ImageSet`: uint8 images in NHWC order, int64 labels, the
number of classes and the file it came from. Normalisation happens later, when batches are
drawn (:mod:`xigsnr_naslib.data.protocol`), with the statistics NAS-Bench-201 trained with.

Layouts read (each under the data root):

* ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch`` (what torchvision writes);
* ``cifar-100-python/train`` and ``test`` (fine labels);
* ``ImageNet16/train_data_batch_1..10`` and ``val_data`` (the downsampled-ImageNet batches
  NAS-Bench-201 uses; labels 1..1000, the first 120 classes kept and shifted to 0..119);
* ``imagenet/train/<class folder>/<image>`` (ImageNet's training folder layout): up to 1,024
  images drawn with a fixed seed, resized and centre-cropped to 224x224 by
  :mod:`xigsnr_naslib.data.image_folder` (Pillow, extra ``[imagenet]``);
* an ``.npz`` with ``train_x``/``train_y`` (and ``test_x``/``test_y``), or ``x``/``y``, such
  as the reference file ``images/cifar10_jpeg_train5000_test10000.npz``.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.data_root import MissingDataError, resolve_data_root, reads_data_file
from xigsnr_naslib.data.image_folder import read_image_folder
from xigsnr_naslib.data.image_set import ImageSet, read_npz

__all__ = [
    "ImageSet",
    "NORMALIZATION",
    "DATASET_CLASSES",
    "read_cifar_pickle",
    "read_imagenet16",
    "read_npz",
    "load_images",
]

#: per-channel mean and std (0..1 scale) NAS-Bench-201 normalised each dataset with
NORMALIZATION = {
    "cifar10": ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)),
    "cifar100": ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255)),
    "ImageNet16-120": ((122.68 / 255, 116.66 / 255, 104.01 / 255), (63.22 / 255, 61.26 / 255, 65.09 / 255)),
    # full-resolution ImageNet (torchvision's statistics), for searches at 224x224
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120, "imagenet": 1000}
DATASET_ALIASES = {"imagenet16-120": "ImageNet16-120", "imagenet16_120": "ImageNet16-120", "ImageNet16_120": "ImageNet16-120",
            "cifar-10": "cifar10", "cifar-100": "cifar100", "ImageNet": "imagenet", "imagenet-1k": "imagenet"}


def canonical_dataset(name: str) -> str:
    """``cifar10``, ``cifar100``, ``ImageNet16-120`` or ``imagenet`` (accepts common spellings)."""
    name = DATASET_ALIASES.get(name, name)
    if name not in DATASET_CLASSES:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASET_CLASSES)}")
    return name


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        data = pickle.load(f, encoding="latin1")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _chw_rows_to_nhwc(rows: np.ndarray, size: int) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(rows, dtype=np.uint8).reshape(-1, 3, size, size).transpose(0, 2, 3, 1))


@reads_data_file('a CIFAR python-pickle folder (cifar-10-batches-py)')
def read_cifar_pickle(folder: str | Path, split: str = "train") -> ImageSet:
    """CIFAR-10 (``cifar-10-batches-py``) or CIFAR-100 (``cifar-100-python``) folder."""
    folder = Path(folder)
    if (folder / "data_batch_1").exists() or (folder / "test_batch").exists():
        files = [folder / f"data_batch_{i}" for i in range(1, 6)] if split == "train" else [folder / "test_batch"]
        label_key, classes = "labels", 10
    elif (folder / "train").exists() or (folder / "test").exists():
        files = [folder / split]
        label_key, classes = "fine_labels", 100
    else:
        raise MissingDataError(f"{folder} holds neither CIFAR-10 (data_batch_1..5) nor CIFAR-100 (train, test) batches")
    images, labels = [], []
    for path in files:
        if not path.exists():
            raise MissingDataError(f"CIFAR batch file {path} is missing")
        batch = _unpickle(path)
        images.append(_chw_rows_to_nhwc(batch["data"], 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return ImageSet(np.concatenate(images), np.concatenate(labels), classes, str(folder))


@reads_data_file('an ImageNet16 folder (train_data_batch_*, val_data)')
def read_imagenet16(folder: str | Path, split: str = "train", num_classes: int = 120) -> ImageSet:
    """ImageNet16 pickled batches, keeping classes 1..num_classes (relabelled from 0)."""
    folder = Path(folder)
    files = [folder / f"train_data_batch_{i}" for i in range(1, 11)] if split == "train" else [folder / "val_data"]
    images, labels = [], []
    for path in files:
        if not path.exists():
            raise MissingDataError(f"ImageNet16 batch file {path} is missing (the full set has "
                                   "train_data_batch_1..10 and val_data)")
        batch = _unpickle(path)
        y = np.asarray(batch["labels"], dtype=np.int64)
        keep = (y >= 1) & (y <= num_classes)
        images.append(_chw_rows_to_nhwc(np.asarray(batch["data"])[keep], 16))
        labels.append(y[keep] - 1)
    return ImageSet(np.concatenate(images), np.concatenate(labels), num_classes, str(folder))


def _read_imagenet_folder(folder: str | Path, split: str = "train") -> ImageSet:
    """ImageNet's training folder through :mod:`xigsnr_naslib.data.image_folder` (1,000 classes)."""
    images = read_image_folder(folder, resolution=224)
    return ImageSet(images.images, images.labels, DATASET_CLASSES["imagenet"], images.source)


#: where each dataset's training images are looked for under the data root, in order
_LAYOUTS = {
    "cifar10": [("cifar-10-batches-py", read_cifar_pickle), ("cifar10/cifar-10-batches-py", read_cifar_pickle),
                ("images/cifar10_jpeg_train5000_test10000.npz", read_npz)],
    "cifar100": [("cifar-100-python", read_cifar_pickle), ("cifar100/cifar-100-python", read_cifar_pickle)],
    "ImageNet16-120": [("ImageNet16", read_imagenet16), ("imagenet16/ImageNet16", read_imagenet16)],
    "imagenet": [("imagenet/imagenet_train.npz", read_npz), ("imagenet/train", _read_imagenet_folder),
                 ("ILSVRC2012/train", _read_imagenet_folder)],
}
_HOW_TO_GET = {
    "cifar10": "Download CIFAR-10 (python version) from https://www.cs.toronto.edu/~kriz/cifar.html "
               "or with torchvision.datasets.CIFAR10(root=DATA_ROOT, download=True).",
    "cifar100": "Download CIFAR-100 (python version) from https://www.cs.toronto.edu/~kriz/cifar.html "
                "or with torchvision.datasets.CIFAR100(root=DATA_ROOT, download=True).",
    "ImageNet16-120": "Get ImageNet16 (Chrabaszcz et al. 2017, downsampled ImageNet 16x16) as linked from "
                      "the NAS-Bench-201 README and unpack it as DATA_ROOT/ImageNet16/.",
    "imagenet": "Put ImageNet's training folder (one sub-folder per class) at DATA_ROOT/imagenet/train/, or a "
                "uint8 NHWC 224x224 sample as DATA_ROOT/imagenet/imagenet_train.npz (train_x, train_y).",
}


def load_images(dataset: str, data_root: str | Path | None = None, split: str = "train") -> ImageSet:
    """The ``split`` images of ``dataset`` from the first layout found under the data root."""
    dataset = canonical_dataset(dataset)
    root = resolve_data_root(data_root)
    for rel, reader in _LAYOUTS[dataset]:
        path = root / rel
        if not path.exists():
            continue
        if reader is read_npz:
            return read_npz(path, split, DATASET_CLASSES[dataset])
        if reader is read_imagenet16:
            return read_imagenet16(path, split, DATASET_CLASSES[dataset])
        return reader(path, split)
    looked = ", ".join(str(root / rel) for rel, _ in _LAYOUTS[dataset])
    raise MissingDataError(f"no {dataset} images under the data root; looked for: {looked}. {_HOW_TO_GET[dataset]}")
