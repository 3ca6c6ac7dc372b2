"""Images for ImageNet-style searches: a folder of JPEG/PNG files or an npz, at one resolution.

A search at 224x224 needs only a few hundred training images (8 batches of 64 by default),
so :func:`read_images` picks ``max_images`` files at random (seeded) instead of reading the
whole set. Sources, absolute or relative to the data root:

* a folder in the ImageFolder layout (``train/n01440764/*.JPEG``, one sub-folder per class,
  classes numbered in sorted order), such as ImageNet's ``train`` folder;
* a flat folder of images (all labelled 0);
* an ``.npz`` with uint8 N x H x W x 3 images (``train_x``/``train_y`` or ``x``/``y``).

With no source given, ``imagenet/train``, ``ILSVRC2012/train`` and ``imagenet`` under the data
root are tried in turn. Each image is resized so that its shorter side is
``resolution / 0.875`` and centre-cropped to ``resolution`` (the usual ImageNet evaluation
transform); an npz is resized to ``resolution`` directly. Decoding JPEG/PNG needs Pillow
(``pip install xigsnr-naslib[imagenet]``).

:func:`synthetic_images` makes random-noise images. It exists for tests and for sizing a
search on a machine without images, and is used only when asked for explicitly: a missing
folder is an error, never a silent switch to noise.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from xigsnr_naslib.data.data_root import MissingDataError, reading, resolve_data_root
from xigsnr_naslib.data.image_set import ImageSet, read_npz

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_LOCATIONS", "read_images", "read_image_folder", "synthetic_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: where ImageNet-style training images are looked for under the data root when no source is given
DEFAULT_LOCATIONS = ("imagenet/train", "ILSVRC2012/train", "imagenet")
CROP_FRACTION = 0.875
HOW_TO_GET = ("Put ImageNet's training folder (one sub-folder of JPEGs per class) at DATA_ROOT/imagenet/train, "
              "or pass --images PATH (a folder of images or an .npz); for a test without images, "
              "pass --synthetic-images explicitly.")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _list_folder(folder: Path) -> tuple[list[tuple[Path, int]], int]:
    """(file, label) pairs of an ImageFolder tree or a flat folder, and the number of classes."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if classes:
        files = [(f, label) for label, d in enumerate(classes) for f in sorted(d.iterdir()) if _is_image(f)]
        return files, len(classes)
    return [(f, 0) for f in sorted(folder.iterdir()) if _is_image(f)], 1


def _load_resized(path: Path, resolution: int) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is in the [imagenet] and [test] extras
        raise ImportError("reading JPEG/PNG images needs Pillow: pip install 'xigsnr-naslib[imagenet]'") from None
    with reading(path, "an image (JPEG/PNG)"), Image.open(path) as img:
        img = img.convert("RGB")
        scale = resolution / CROP_FRACTION / min(img.size)
        size = (max(resolution, round(img.size[0] * scale)), max(resolution, round(img.size[1] * scale)))
        img = img.resize(size, Image.BILINEAR)
        left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
        return np.asarray(img.crop((left, top, left + resolution, top + resolution)), dtype=np.uint8)


def read_image_folder(folder: str | Path, resolution: int = 224, max_images: int | None = 1024, seed: int = 0
                      ) -> ImageSet:
    """Up to ``max_images`` images of ``folder`` (drawn at random with ``seed``), resized and cropped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingDataError(f"image folder {folder} does not exist. {HOW_TO_GET}")
    files, num_classes = _list_folder(folder)
    if not files:
        raise MissingDataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}. {HOW_TO_GET}")
    if max_images is not None and len(files) > max_images:
        files = random.Random(seed).sample(files, max_images)
    images, labels, bad = [], [], []
    for path, label in files:
        try:
            images.append(_load_resized(path, resolution))
            labels.append(label)
        except (OSError, ValueError) as exc:  # an unreadable file is skipped and reported
            bad.append(f"{path}: {exc}")
    if bad:
        import warnings

        warnings.warn(f"skipped {len(bad)} unreadable image(s) in {folder}: " + "; ".join(bad[:5]))
    if not images:
        raise MissingDataError(f"none of the images in {folder} could be read")
    return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), num_classes, str(folder))


def _resize_array(images: np.ndarray, resolution: int) -> np.ndarray:
    if images.shape[1] == resolution and images.shape[2] == resolution:
        return images
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True,
                                        align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def read_images(source: str | Path | None = None, data_root: str | Path | None = None, resolution: int = 224,
                max_images: int | None = 1024, seed: int = 0) -> ImageSet:
    """Training images for a search, from ``source`` or the default locations under the data root."""
    if source is not None and Path(source).is_absolute():
        path = Path(source)
    else:
        root = resolve_data_root(data_root)
        candidates = [source] if source is not None else list(DEFAULT_LOCATIONS)
        path = next((root / c for c in candidates if (root / c).exists()), None)
        if path is None:
            looked = ", ".join(str(root / c) for c in candidates)
            raise MissingDataError(f"no search images found; looked for: {looked}. {HOW_TO_GET}")
    if path.suffix == ".npz":
        if not path.exists():
            raise MissingDataError(f"image file {path} does not exist. {HOW_TO_GET}")
        images = read_npz(path)
        if max_images is not None and len(images) > max_images:
            index = np.sort(np.random.default_rng(seed).choice(len(images), max_images, replace=False))
            images = ImageSet(images.images[index], images.labels[index], images.num_classes, images.source)
        return ImageSet(_resize_array(images.images, resolution), images.labels, images.num_classes, images.source)
    return read_image_folder(path, resolution, max_images, seed)


def synthetic_images(n: int, resolution: int, num_classes: int = 1000, seed: int = 0) -> ImageSet:
    """``n`` uniform-noise images with random labels: for tests and sizing only, never real data."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, resolution, resolution, 3), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=n, dtype=np.int64)
    return ImageSet(images, labels, num_classes, f"synthetic noise ({n} images, seed {seed})")
