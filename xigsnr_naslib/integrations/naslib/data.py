"""NASLib's data files: where NASLib looks for them, one-line errors when they are missing, and
the CIFAR-10 python layout written from the project's images.

NASLib reads two kinds of files from its data folder (``naslib/data`` of the checkout, the
``data`` key of its config):

* benchmark files, through ``naslib.utils.get_dataset_api`` (NAS-Bench-201:
  ``nb201_cifar10_full_training.pickle`` ...). NASLib asserts they exist; a missing one is
  turned here into :class:`~xigsnr_naslib.data.data_root.MissingDataError` naming the file, the
  folder NASLib expects it in and the standalone alternative (:func:`load_naslib_dataset_api`).
* images, through ``naslib.utils.get_train_val_loaders``: for CIFAR-10
  ``torchvision.datasets.CIFAR10(root=data, download=True)``, which reads
  ``data/cifar-10-batches-py/`` (below) and otherwise tries to download the archive, a long
  traceback without a network. :func:`check_naslib_images` checks first.

**The CIFAR-10 python layout** (https://www.cs.toronto.edu/~kriz/cifar.html, "python
version"; what torchvision's ``CIFAR10`` reads): a folder ``cifar-10-batches-py`` with
``data_batch_1`` ... ``data_batch_5`` (training) and ``test_batch``, each a pickled dict with
``data`` (uint8, N x 3072: each row the 1024 red, then green, then blue values of a 32 x 32
image in row-major order), ``labels`` (N ints in 0..9), ``batch_label`` and ``filenames``,
and ``batches.meta`` with ``label_names`` (10 class names), ``num_cases_per_batch`` and
``num_vis`` (3072). torchvision unpickles with ``encoding="latin1"``; the keys are written
as ``str``. :func:`write_cifar10_layout` writes it from any 32 x 32 images: the reference
images under the data root (``images/cifar10_jpeg_train5000_test10000.npz``: 5,000 training,
10,000 test images), or a folder in the ImageFolder layout (``train/<class>/*.png``,
``test/<class>/*.png``). The training images are split into five batches of (nearly) equal
size, in order.

torchvision checks each file against the MD5 of the official archive, which other images
cannot match. So the writer also writes ``xigsnr_layout.json`` (the source and each file's
MD5), and :func:`accept_written_layouts` makes torchvision verify a folder that has one
against those MD5s instead (a changed or truncated file still fails); other folders are
checked as before. ``naslib-run`` and ``python -m xigsnr_naslib.naslib run`` call it.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xigsnr_naslib.data.outputs import writing
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.data_root import MissingDataError
from xigsnr_naslib.data.image_set import ImageSet

__all__ = ["CIFAR10_FOLDER", "CIFAR10_FILES", "MANIFEST", "REFERENCE_CIFAR10", "naslib_data_folder",
           "load_naslib_dataset_api", "check_naslib_images", "write_cifar10_layout", "read_cifar10_folder",
           "reference_cifar10", "accept_written_layouts", "make_cifar10_layout", "WrittenLayout"]

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = CIFAR10_TRAIN_FILES + ("test_batch", "batches.meta")
MANIFEST = "xigsnr_layout.json"
#: the reference CIFAR-10 images under the data root
REFERENCE_CIFAR10 = "images/cifar10_jpeg_train5000_test10000.npz"
#: NASLib's image folder (under its data folder) and the file its loader opens first, per dataset
NASLIB_IMAGE_FILES = {
    "cifar10": (CIFAR10_FOLDER, CIFAR10_FILES),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
    "ImageNet16-120": ("ImageNet16-120", ("train_data_batch_1", "val_data")),
}
STANDALONE_HINT = ("or run with --engine standalone (the project's own images and ground truth under the data "
                   "root; no NASLib data needed)")


def naslib_data_folder(data: str | None = None) -> str:
    """NASLib's data folder: ``data`` when given, else ``naslib/data`` of the importable checkout."""
    if data is not None:
        return str(data)
    from naslib.utils.get_dataset_api import get_project_root

    return str(get_project_root() / "data")


def _missing_file(exc: BaseException) -> str:
    """The path NASLib's error names ("Could not find PATH."), else the error's first line."""
    filename = getattr(exc, "filename", None)
    if filename:
        return str(filename)
    text = str(exc)
    found = re.search(r"Could not find (\S+?)\.?(\s|$)", text)
    return found.group(1) if found else (text.splitlines()[0] if text else type(exc).__name__)


def load_naslib_dataset_api(search_space: str, dataset: str):
    """NASLib's ``get_dataset_api(search_space, dataset)``; a missing benchmark file raises
    :class:`MissingDataError` in one line naming the file, NASLib's folder and the alternative."""
    from naslib.utils import get_dataset_api

    try:
        return get_dataset_api(search_space, dataset)
    except (AssertionError, FileNotFoundError) as exc:
        path = _missing_file(exc)
        raise MissingDataError(
            f"NASLib's benchmark file for {search_space}/{dataset} is missing: {path} (NASLib's get_dataset_api "
            f"reads it from {naslib_data_folder()}; get it as NASLib's README says), {STANDALONE_HINT}") from None


def check_naslib_images(dataset: str, data: str) -> None:
    """Raise :class:`MissingDataError` (one line) unless NASLib's loader will find ``dataset``'s
    images under ``data`` (its ``config.data``); unknown datasets are left to NASLib."""
    if dataset not in NASLIB_IMAGE_FILES:
        return
    folder, files = NASLIB_IMAGE_FILES[dataset]
    missing = [name for name in files if not (Path(data) / folder / name).is_file()]
    if not missing:
        return
    writer = (f"write it from the reference images with 'xigsnr-naslib cifar10-layout --out {data}', "
              if dataset == "cifar10" else "")
    raise MissingDataError(
        f"NASLib's {dataset} loader needs {Path(data) / folder / missing[0]} (and {len(missing) - 1} more file(s) "
        f"of {folder}/), which is missing: {writer}pass its folder with --naslib-data, {STANDALONE_HINT}")


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _rows(images: np.ndarray) -> np.ndarray:
    """N x 32 x 32 x 3 uint8 -> N x 3072 rows (red plane, green plane, blue plane, row-major)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3 * 32 * 32))


def write_cifar10_layout(out: str | Path, train: ImageSet, test: ImageSet, classes, source: str) -> Path:
    """Write ``out/cifar-10-batches-py`` (module documentation); returns that folder.

    ``train``/``test``: 32 x 32 images with labels in 0..9; ``classes``: the 10 label names.
    Raises ``ValueError`` naming what does not fit; existing files are replaced.
    """
    classes = [str(c) for c in classes]
    if len(classes) != 10:
        raise UsageError(f"CIFAR-10 has 10 classes, got {len(classes)}: {', '.join(classes)}")
    for name, images in (("training", train), ("test", test)):
        if images.images.shape[1:] != (32, 32, 3):
            raise UsageError(f"{images.source}: CIFAR-10 images are 32 x 32 x 3, got {images.images.shape[1:]} "
                             f"({name} images)")
        if len(images) == 0:
            raise UsageError(f"{images.source}: no {name} images")
        if images.labels.min() < 0 or images.labels.max() > 9:
            raise UsageError(f"{images.source}: labels must be in 0..9 ({name} images)")
    folder = Path(out) / CIFAR10_FOLDER
    with writing(folder, "CIFAR-10 layout"):
        folder.mkdir(parents=True, exist_ok=True)
        parts = np.array_split(np.arange(len(train)), len(CIFAR10_TRAIN_FILES))
        batches = [(name, train, index, f"training batch {i + 1} of 5")
                   for i, (name, index) in enumerate(zip(CIFAR10_TRAIN_FILES, parts))]
        batches.append(("test_batch", test, np.arange(len(test)), "testing batch 1 of 1"))
        for name, images, index, label in batches:
            entry = {"batch_label": label, "labels": [int(v) for v in images.labels[index]],
                     "data": _rows(images.images[index]),
                     "filenames": [f"{images.source}#{int(i)}" for i in index]}
            with open(folder / name, "wb") as f:
                pickle.dump(entry, f, protocol=2)
        with open(folder / "batches.meta", "wb") as f:
            pickle.dump({"label_names": classes, "num_cases_per_batch": int(max(len(p) for p in parts)),
                         "num_vis": 3072}, f, protocol=2)
        manifest = {"source": source, "n_train": len(train), "n_test": len(test), "classes": classes,
                    "files": {name: _md5(folder / name) for name in CIFAR10_FILES}}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return folder


def reference_cifar10(data_root=None) -> tuple[ImageSet, ImageSet, list[str], str]:
    """The reference CIFAR-10 images under the data root: (train, test, class names, source)."""
    from xigsnr_naslib.data.data_root import resolve_data_root
    from xigsnr_naslib.data.image_set import read_npz

    path = resolve_data_root(data_root) / REFERENCE_CIFAR10
    if not path.is_file():
        raise MissingDataError(f"the reference CIFAR-10 images {path} are missing; pass --image-folder DIR "
                               f"(DIR/train/<class>/*, DIR/test/<class>/*) instead")
    with np.load(path, allow_pickle=False) as data:
        classes = [str(c) for c in data["classes"]] if "classes" in data.files else [str(i) for i in range(10)]
    return read_npz(path, "train", 10), read_npz(path, "test", 10), classes, str(path)


def _read_split(folder: Path, classes: list[str] | None) -> tuple[ImageSet, list[str]]:
    from xigsnr_naslib.data.image_folder import IMAGE_EXTENSIONS

    if not folder.is_dir():
        raise MissingDataError(f"image folder {folder} does not exist (expected one sub-folder of images per class)")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not found:
        raise MissingDataError(f"{folder} has no class sub-folders (expected {folder}/<class>/*.png)")
    if classes is not None and found != classes:
        raise UsageError(f"{folder} has the classes {', '.join(found)}; the training folder has {', '.join(classes)}")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is in the [imagenet] and [test] extras
        raise ImportError("reading JPEG/PNG images needs Pillow: pip install 'xigsnr-naslib[imagenet]'") from None
    images, labels = [], []
    for label, name in enumerate(found):
        for path in sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
            with Image.open(path) as img:
                if img.size != (32, 32):
                    raise UsageError(f"{path}: CIFAR-10 images are 32 x 32, this one is {img.size[0]} x {img.size[1]}")
                images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            labels.append(label)
    if not images:
        raise MissingDataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
    n_classes = max(len(found), 1)
    return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), n_classes, str(folder)), found


def read_cifar10_folder(folder: str | Path) -> tuple[ImageSet, ImageSet, list[str], str]:
    """32 x 32 images from ``folder/train/<class>/*`` and ``folder/test/<class>/*`` (classes in
    sorted order, the same in both): (train, test, class names, source)."""
    folder = Path(folder)
    train, classes = _read_split(folder / "train", None)
    test, _ = _read_split(folder / "test", classes)
    return train, test, classes, str(folder)


def _manifest_of(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def accept_written_layouts() -> bool:
    """Make torchvision verify a CIFAR folder written here against its ``xigsnr_layout.json``.

    torchvision's CIFAR datasets check every file with ``check_integrity(path, md5)`` against
    the official MD5s. After this call, a file whose folder has a manifest listing it is
    checked against the manifest's MD5 instead; every other file as before. Returns False
    (and changes nothing) when torchvision is not installed. Idempotent.
    """
    try:
        import torchvision.datasets.cifar as tv_cifar
    except ImportError:
        return False
    original = tv_cifar.check_integrity
    if getattr(original, "_xigsnr", False):
        return True

    def check_integrity(fpath, md5=None):
        path = Path(fpath)
        manifest = _manifest_of(path.parent)
        if manifest is not None and path.name in manifest.get("files", {}):
            return path.is_file() and _md5(path) == manifest["files"][path.name]
        return original(fpath, md5)

    check_integrity._xigsnr = True
    tv_cifar.check_integrity = check_integrity
    return True


@dataclass(frozen=True)
class WrittenLayout:
    """What :func:`make_cifar10_layout` wrote: the folder, the image counts, the classes and their source."""

    folder: Path
    n_train: int
    n_test: int
    classes: tuple[str, ...]
    source: str


def make_cifar10_layout(out: str | Path, image_folder: str | Path | None = None, data_root=None) -> WrittenLayout:
    """Write ``out/cifar-10-batches-py`` from the images of ``image_folder``
    (:func:`read_cifar10_folder`) or, when None, from the reference images under the data root
    (:func:`reference_cifar10`); what ``xigsnr-naslib cifar10-layout`` runs.

    Raises :class:`MissingDataError` for missing images and ``ValueError`` when ``out`` is a
    file or the images do not fit (:func:`write_cifar10_layout`).
    """
    if image_folder is not None:
        train, test, classes, source = read_cifar10_folder(image_folder)
    else:
        train, test, classes, source = reference_cifar10(data_root)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    folder = write_cifar10_layout(out, train, test, classes, source)
    return WrittenLayout(folder, len(train), len(test), tuple(classes), source)
