"""Gradient passes of one batch: w.r.t. the parameters (:class:`BatchGradients`: GradNorm,
SNIP, Fisher-style proxies) and w.r.t. the input images (:class:`InputGradients`: the
Jacobian-covariance proxies, NASWOT's first version and EPE-NAS)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.core.gradients import Batch, LossFn, batchnorm_running_stats_off, logits_of
from xigsnr_naslib.passes.protocol import PassRequest, check_batch_index

__all__ = ["GradientsOfBatch", "BatchGradients", "InputGradientsOfBatch", "InputGradients"]


@dataclass(frozen=True)
class GradientsOfBatch:
    """Result of :class:`BatchGradients`: ``grads`` maps parameter names to gradient tensors
    (float32, the parameter's shape; a parameter the loss does not reach has no entry),
    ``loss`` is the batch's mean loss (a float)."""

    grads: dict
    loss: float


@dataclass(frozen=True)
class BatchGradients(PassRequest):
    """The gradient of the mean loss of batch ``batch`` w.r.t. every parameter that requires
    one, the network in train mode (BatchNorm normalises with the batch's statistics; its
    running statistics are left as found). ``.grad`` is left as found.

    Parameters
    ----------
    batch : int
        Which batch of the protocol (0: the first).
    """

    batch: int = 0

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> GradientsOfBatch:
        x, y = batches[self.batch]
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        saved = [p.grad for _, p in named]
        try:
            for _, p in named:
                p.grad = None
            with batchnorm_running_stats_off(model):
                loss = loss_fn(logits_of(model(x)), y)
                if loss.requires_grad:  # else no parameter reaches the loss: no gradient at all
                    loss.backward()
            grads = {n: p.grad.detach() for n, p in named if p.grad is not None}
        finally:
            for (_, p), g in zip(named, saved):
                p.grad = g
        return GradientsOfBatch(grads, float(loss.detach()))


@dataclass(frozen=True)
class InputGradientsOfBatch:
    """Result of :class:`InputGradients`: ``grads`` is ``N x C x H x W`` (float32, the input's
    shape), ``d(sum of the logits over images and classes) / d input``; ``n_outputs`` the
    number of logits per image (classes)."""

    grads: torch.Tensor
    n_outputs: int


@dataclass(frozen=True)
class InputGradients(PassRequest):
    """The gradient of the sum of the logits (over every image and class) w.r.t. the input
    images of batch ``batch``, the network in train mode: one forward and one backward. Row
    ``n`` is the Jacobian of image ``n``'s summed logits (plus, in train-mode BatchNorm, the
    terms through the other images' batch statistics), as NASWOT's first version and EPE-NAS
    compute it (``y.backward(torch.ones_like(y))`` on ``x.requires_grad_(True)``). Labels
    are not read. The parameters' ``.grad`` and BatchNorm running statistics are left as
    found.
    """

    batch: int = 0

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn,
            strategy: str = "loop") -> InputGradientsOfBatch:
        x = batches[self.batch][0].detach().clone().requires_grad_(True)
        with torch.enable_grad(), batchnorm_running_stats_off(model):
            logits = logits_of(model(x))
            (grads,) = torch.autograd.grad(logits.sum(), x, allow_unused=True) if logits.requires_grad else (None,)
        if grads is None:  # the output does not depend on the input
            grads = torch.zeros_like(x)
        return InputGradientsOfBatch(grads.detach(), int(logits.shape[-1]))
