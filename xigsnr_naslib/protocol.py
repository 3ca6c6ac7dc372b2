"""The scoring protocol: which images, how many batches of what size, which seeds.

:data:`PAPER_NB201` is the paper's protocol for NAS-Bench-201 and NDS: 8 batches of 64
training images, no augmentation, normalised as NAS-Bench-201 trained; each batch is a
fresh random draw from the training images (without repeats inside a batch), as the
released code draws it by restarting a shuffling loader for every batch.
:data:`RELEASED_NB101` is the released NAS-Bench-101 protocol: one batch of 8, scored with
per-image gradients.

The batches are drawn once, from a generator seeded with ``seed``, and every architecture
sees the same ones. Each architecture's weights are initialised after
``torch.manual_seed(seed)``, so a score depends on the architecture and the protocol only,
not on the order in which architectures are scored (the released code seeds after building
each network, so its initialisation depends on that order).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .datasets import NORMALIZATION, ImageSet

__all__ = ["Protocol", "PAPER_NB201", "RELEASED_NB101", "SpaceDefaults", "SPACE_DEFAULTS", "space_defaults",
           "draw_batches", "normalize"]


@dataclass(frozen=True)
class Protocol:
    """How images become batches.

    Parameters
    ----------
    n_batches, batch_size : int
        N batches of |B| images (paper: 8 x 64).
    seed : int
        Seeds both the batch draw and every architecture's initialisation.
    normalization : str or None
        Which dataset's mean/std to normalise with (``None``: the dataset's own).
    """

    n_batches: int = 8
    batch_size: int = 64
    seed: int = 1
    normalization: str | None = None

    def __post_init__(self) -> None:
        if self.n_batches < 1 or self.batch_size < 1:
            raise ValueError(f"need at least one batch of one image, got {self.n_batches} x {self.batch_size}")

    def settings(self) -> dict:
        return asdict(self)


PAPER_NB201 = Protocol(n_batches=8, batch_size=64, seed=1)
RELEASED_NB101 = Protocol(n_batches=1, batch_size=8, seed=1)


@dataclass(frozen=True)
class SpaceDefaults:
    """What a run on a search space uses unless told otherwise."""

    protocol: Protocol
    proxy: str
    dataset: str


#: per-space defaults: NAS-Bench-201 and NDS as the paper scores them (8 x 64, official mode);
#: NAS-Bench-101 as the released run scores it (per-image gradients of one batch of 8)
SPACE_DEFAULTS: dict[str, SpaceDefaults] = {
    "nb201": SpaceDefaults(PAPER_NB201, "xi_gsnr", "cifar10"),
    "nb101": SpaceDefaults(RELEASED_NB101, "xi_gsnr_per_sample", "cifar10"),
}
for _nds in ("amoeba", "darts", "enas", "nasnet", "pnas"):
    SPACE_DEFAULTS[f"nds_{_nds}"] = SpaceDefaults(PAPER_NB201, "xi_gsnr", "cifar10")
    SPACE_DEFAULTS[f"nds_{_nds}_in"] = SpaceDefaults(PAPER_NB201, "xi_gsnr", "imagenet")


def space_defaults(space: str) -> SpaceDefaults:
    """The defaults of ``space`` (the NAS-Bench-201 ones for spaces not in the table)."""
    return SPACE_DEFAULTS.get(space, SPACE_DEFAULTS["nb201"])


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
        raise ValueError(f"a batch of {protocol.batch_size} needs at least that many images; "
                         f"{images.source} has {len(images)}")
    generator = torch.Generator().manual_seed(protocol.seed)
    norm = protocol.normalization or dataset
    batches = []
    for _ in range(protocol.n_batches):
        index = torch.randperm(len(images), generator=generator)[: protocol.batch_size].numpy()
        x = normalize(images.images[index], norm).to(device)
        y = torch.from_numpy(images.labels[index]).to(device)
        batches.append((x, y))
    return batches
