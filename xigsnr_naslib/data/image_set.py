"""In-memory image sets (:class:`ImageSet`) and the npz image format.

Every image reader of the project (:mod:`xigsnr_naslib.data.datasets`,
:mod:`xigsnr_naslib.data.image_folder`) returns an :class:`ImageSet`: uint8 images in NHWC order,
int64 labels, the number of classes and where they came from. Its :meth:`ImageSet.fingerprint`
is what results records carry to name the images a score was computed on.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.data_root import reads_data_file

__all__ = ["ImageSet", "read_npz"]


@dataclass
class ImageSet:
    """Images (uint8, N x H x W x C), labels (int64), class count and origin."""

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    source: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise UsageError(f"{self.source}: expected uint8 images of shape N x H x W x 3, got "
                             f"{self.images.dtype} {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise UsageError(f"{self.source}: {len(self.images)} images but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise UsageError(f"{self.source}: labels outside 0..{self.num_classes - 1}")

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """A content hash of the images and labels (16 hex digits of SHA-256): two image
        sets with the same fingerprint hold the same pixels and labels in the same order.
        Computed once (about 0.1 s per 100 MB)."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            h = hashlib.sha256()
            h.update(f"{self.images.shape}|{self.num_classes}|".encode())
            h.update(np.ascontiguousarray(self.images).data)
            h.update(np.ascontiguousarray(self.labels, dtype="<i8").data)
            cached = self.__dict__["_fingerprint"] = h.hexdigest()[:16]
        return cached



@reads_data_file('an image archive (.npz with <split>_x, <split>_y)')
def read_npz(path: str | Path, split: str = "train", num_classes: int | None = None) -> ImageSet:
    """An npz holding ``{split}_x``/``{split}_y`` (or ``x``/``y``), uint8 NHWC."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        if f"{split}_x" in data.files:
            x, y = data[f"{split}_x"], data[f"{split}_y"]
        elif "x" in data.files:
            x, y = data["x"], data["y"]
        else:
            raise UsageError(f"{path}: no '{split}_x' or 'x' array (has {', '.join(data.files)})")
    y = np.asarray(y, dtype=np.int64)
    return ImageSet(np.ascontiguousarray(x), y, num_classes or int(y.max()) + 1, str(path))
