"""The scoring protocol: which images, how many batches of what size, which seeds.

:data:`PAPER_NB201` is the paper's protocol for NAS-Bench-201 and NDS: 8 batches of 64
training images, no augmentation, normalised as NAS-Bench-201 trained; each batch is a
fresh random draw from the training images (without repeats inside a batch), as the
released code draws it by restarting a shuffling loader for every batch.
:data:`RELEASED_NB101` is the released NAS-Bench-101 protocol: one batch of 8, scored with
per-image gradients.

The batches are drawn once, from a generator seeded with ``data_seed``, and every
architecture sees the same ones. Each architecture's weights are initialised after
``torch.manual_seed(init_seed)``, so a score depends on the architecture and the protocol only,
not on the order in which architectures are scored (the released code seeds after building
each network, so its initialisation depends on that order).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.datasets import NORMALIZATION, ImageSet

__all__ = ["Protocol", "BN_MODES", "PAPER_NB201", "RELEASED_NB101", "draw_batches", "normalize"]


#: BatchNorm modes: ``train`` normalises with each batch's statistics (the released code's
#: ``net.train()``); running statistics are never read by a score.
BN_MODES = ("train",)


@dataclass(frozen=True)
class Protocol:
    """How images become batches, and how each network is initialised.

    Parameters
    ----------
    n_batches, batch_size : int
        N batches of |B| images (paper: 8 x 64; released NAS-Bench-101 run: 1 x 8).
    data_seed : int
        Seeds the batch draw (which images form each batch).
    init_seed : int
        Seeds every architecture's weight initialisation (``torch.manual_seed`` right
        before the network is built).
    normalization : str or None
        Which dataset's mean/std to normalise with (``None``: the dataset's own).
    bn_mode : str
        BatchNorm mode while scoring (:data:`BN_MODES`).

    Raises
    ------
    ValueError
        Naming the bad value (fewer than one batch or image, unknown BatchNorm mode, a
        negative seed).
    """

    n_batches: int = 8
    batch_size: int = 64
    data_seed: int = 1
    init_seed: int = 1
    normalization: str | None = None
    bn_mode: str = "train"

    def __post_init__(self) -> None:
        if self.n_batches < 1 or self.batch_size < 1:
            raise UsageError(f"need at least one batch of one image, got {self.n_batches} x {self.batch_size}")
        if self.bn_mode not in BN_MODES:
            raise UsageError(f"unknown BatchNorm mode {self.bn_mode!r}; choose one of: {', '.join(BN_MODES)}")
        for name in ("data_seed", "init_seed"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")

    def replace(self, **changes) -> "Protocol":
        """A copy with ``changes`` (``None`` values leave a field as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def settings(self) -> dict:
        """The protocol as plain data (recorded with every score that reads images)."""
        return asdict(self)

    @classmethod
    def from_settings(cls, settings: dict) -> "Protocol":
        """Inverse of :meth:`settings`; also reads records written before the seeds were
        named apart (one ``seed`` that seeded both the batch draw and the initialisation)."""
        settings = dict(settings)
        if "seed" in settings:
            seed = settings.pop("seed")
            settings.setdefault("data_seed", seed)
            settings.setdefault("init_seed", seed)
        return cls(**settings)


#: the paper's protocol for NAS-Bench-201 and NDS: 8 batches of 64 images
PAPER_NB201 = Protocol(n_batches=8, batch_size=64)
#: the released NAS-Bench-101 protocol: per-image gradients of one batch of 8
RELEASED_NB101 = Protocol(n_batches=1, batch_size=8)


def normalize(images: np.ndarray, dataset: str) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW, normalised with ``dataset``'s statistics."""
    mean, std = NORMALIZATION[dataset]
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub_(mean_t).div_(std_t).contiguous()


def draw_batches(images: ImageSet, protocol: Protocol, dataset: str, device: str | torch.device = "cpu"
                 ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The protocol's batches from ``images``, on ``device``."""
    if protocol.batch_size > len(images):
        raise UsageError(f"a batch of {protocol.batch_size} needs at least that many images; "
                         f"{images.source} has {len(images)}")
    generator = torch.Generator().manual_seed(protocol.data_seed)
    norm = protocol.normalization or dataset
    batches = []
    for _ in range(protocol.n_batches):
        index = torch.randperm(len(images), generator=generator)[: protocol.batch_size].numpy()
        x = normalize(images.images[index], norm).to(device)
        y = torch.from_numpy(images.labels[index]).to(device)
        batches.append((x, y))
    return batches
