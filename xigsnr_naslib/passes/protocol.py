"""The pass protocol: what every pass request is, and the helpers the kinds share.

A :class:`PassRequest` is a frozen, hashable value (a frozen dataclass): two equal requests
are one pass. The scoring path (:func:`xigsnr_naslib.proxies.run_passes`) checks each
request's :meth:`~PassRequest.problem` once, before anything is scored, then calls its
:meth:`~PassRequest.run` once per architecture and hands the result to every proxy that
asked. A proxy's ``compute`` raises :class:`NotComputable` when its score is undefined for
an architecture.

Define a new kind by subclassing :class:`PassRequest` as a frozen dataclass with
:meth:`~PassRequest.run` (and :meth:`~PassRequest.problem` when some protocols cannot give it).
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.core.gradients import Batch, LossFn, batchnorm_running_stats_off
from xigsnr_naslib.core.initialisation import INIT_SCHEMES, reinitialise
from xigsnr_naslib.registry import choose

__all__ = ["NotComputable", "PassRequest", "forward_with_hooks", "INPUTS", "check_batch_index", "check_images", "check_input_and_init",
           "pass_input", "first_tensor", "copy_for_pass"]


class NotComputable(Exception):
    """The proxy's score is undefined for this architecture (or this input); the message
    says why. The scoring path records it with status ``"not computable"`` and the reason,
    never as a number, and goes on with the next architecture."""


class PassRequest:
    """Base of pass requests (subclasses are frozen dataclasses)."""

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        """Why a protocol of ``n_batches`` x ``batch_size`` images cannot give this pass
        (``None`` when it can). Checked once, before anything is scored."""
        return None

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> Any:
        """The pass's result for ``model`` (in train mode) on ``batches``."""
        raise NotImplementedError


#: where a pass's input comes from: the protocol's images, or Gaussian noise of their shape
INPUTS = ("images", "gaussian")


def check_batch_index(batch: int, n_batches: int) -> str | None:
    """Why a pass reading batch ``batch`` (0-based) cannot run on ``n_batches`` batches, or None."""
    if batch >= n_batches:
        return f"it reads batch {batch} (0-based) but the protocol draws {n_batches} batch(es)"
    return None


def check_images(images: int | None, batch_size: int) -> str | None:
    """Why a pass reading the first ``images`` images of a batch cannot run on batches of
    ``batch_size``, or None."""
    if images is not None and images > batch_size:
        return f"it reads {images} images of a batch but the protocol's batches hold {batch_size}"
    return None


def check_input_and_init(source: str, init: str | None) -> None:
    """Validate a pass's input ``source`` (:data:`INPUTS`) and re-initialisation scheme
    (a name of :data:`~xigsnr_naslib.core.initialisation.INIT_SCHEMES`, or None)."""
    choose(source, list(INPUTS), "pass input")
    if init is not None:
        choose(init, list(INIT_SCHEMES), "initialisation scheme")


def pass_input(batches: Sequence[Batch], batch: int, images: int | None, source: str, seed: int) -> torch.Tensor:
    """The first ``images`` images of batch ``batch`` (all when None), or, for ``source="gaussian"``,
    standard normal noise of their shape and dtype drawn on the CPU from ``torch.Generator`` seeded
    with ``seed`` (the same noise on every device), moved to their device."""
    x, _ = batches[batch]
    if images is not None:
        x = x[:images]
    if source == "gaussian":
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return x


def first_tensor(output):
    """``output`` when it is a tensor, the first item of a tuple or list starting with a
    tensor, else None."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def copy_for_pass(model: nn.Module, init: str | None, seed: int) -> nn.Module:
    """A deep copy of ``model`` in train mode, re-initialised with ``init`` from
    ``torch.Generator().manual_seed(seed)`` when ``init`` is set."""
    net = copy.deepcopy(model)
    if init is not None:
        reinitialise(net, init, torch.Generator().manual_seed(seed))
    return net.train()


def forward_with_hooks(model: nn.Module, x: torch.Tensor, handles: Sequence, grad: bool = False) -> None:
    """One forward pass of ``model`` on ``x`` for the hooks behind ``handles`` to read (with
    gradients only if ``grad``), leaving BatchNorm's running statistics alone; the hooks are
    removed afterwards, on an error too."""
    try:
        with (torch.enable_grad() if grad else torch.no_grad()), batchnorm_running_stats_off(model):
            model(x)
    finally:
        for h in handles:
            h.remove()
