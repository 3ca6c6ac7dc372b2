"""Pass requests: what a proxy asks the scoring path to compute on a network, once.

A proxy declares the passes it consumes (:attr:`xigsnr_naslib.proxies.Proxy.needs`); the
scoring path (:func:`xigsnr_naslib.proxies.run_passes`) runs each distinct request once
per architecture and hands its result to every proxy that asked, so proxies that read the
same gradients or activations cost one pass between them. A request is a frozen,
hashable value: two equal requests are one pass.

Kinds:

* :class:`~xigsnr_naslib.proxies.Moments`: streamed per-parameter moments of gradient
  samples over every batch (xi-GSNR, ZiCo).
* :class:`BatchGradients`: the gradient of the mean loss of one batch, per parameter
  (GradNorm, SNIP, Fisher-style proxies).
* :class:`Activations`: the outputs (or inputs) of chosen module types on one batch,
  without gradients (SWAP, MeCo-style proxies).
* :class:`InputGradients`: the gradient of the summed logits w.r.t. the input images of one
  batch (Jacobian-covariance proxies: NASWOT's first version, EPE-NAS).
* :class:`CodeKernel`: NASWOT's kernel of binary activation codes on one batch, accumulated
  while the forward pass runs (only an N x N matrix is kept).

Every pass leaves the network as it found it: weights, ``.grad`` and BatchNorm running
statistics. A proxy whose computation changes the network (SynFlow's ``|w|``) declares
``fresh_model=True`` instead and gets a network of its own.

Define a new kind by subclassing :class:`PassRequest` as a frozen dataclass with
:meth:`~PassRequest.run` (and :meth:`~PassRequest.problem` when some protocols cannot give it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from .gradients import Batch, LossFn, batchnorm_running_stats_off, logits_of

__all__ = ["PassRequest", "BatchGradients", "Activations", "InputGradients", "InputGradientsOfBatch", "CodeKernel",
           "KernelOfCodes", "NotComputable", "GradientsOfBatch"]


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


def _check_batch_index(batch: int, n_batches: int) -> str | None:
    if batch >= n_batches:
        return f"it reads batch {batch} (0-based) but the protocol draws {n_batches} batch(es)"
    return None


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
        return _check_batch_index(self.batch, n_batches)

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
class Activations(PassRequest):
    """The outputs (or inputs) of every module of the named types on batch ``batch``,
    computed without gradients, the network in train mode (BatchNorm running statistics left
    as found). Result: a list of ``(module name, tensor)`` in call order (a module called
    twice appears twice); each tensor is ``N x ...`` with N the batch's images.

    Parameters
    ----------
    types : tuple of str
        Module class names, e.g. ``("ReLU",)``; a module matches when its class or a base
        class has one of these names.
    where : {"output", "input"}
        Keep the module's output or its first input.
    batch : int
        Which batch of the protocol.
    """

    types: tuple = ("ReLU",)
    where: str = "output"
    batch: int = 0

    def __post_init__(self) -> None:
        if self.where not in ("output", "input"):
            raise ValueError(f"unknown activation side {self.where!r}; choose one of output, input")
        object.__setattr__(self, "types", tuple(self.types))

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return _check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> list:
        x, _ = batches[self.batch]
        captured: list = []
        handles = []
        for name, module in model.named_modules():
            if any(c.__name__ in self.types for c in type(module).__mro__):
                # copies: an in-place module (ReLU(inplace=True)) or a later in-place op would
                # change a kept view; an input is taken before the module runs
                if self.where == "output":
                    def hook(mod, inputs, output, name=name):
                        captured.append((name, output.detach().clone()))
                    handles.append(module.register_forward_hook(hook))
                else:
                    def pre_hook(mod, inputs, name=name):
                        captured.append((name, inputs[0].detach().clone()))
                    handles.append(module.register_forward_pre_hook(pre_hook))
        try:
            with torch.no_grad(), batchnorm_running_stats_off(model):
                model(x)
        finally:
            for h in handles:
                h.remove()
        return captured


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
        return _check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn,
            strategy: str = "loop") -> InputGradientsOfBatch:
        x = batches[self.batch][0].detach().clone().requires_grad_(True)
        with torch.enable_grad(), batchnorm_running_stats_off(model):
            logits = logits_of(model(x))
            (grads,) = torch.autograd.grad(logits.sum(), x, allow_unused=True) if logits.requires_grad else (None,)
        if grads is None:  # the output does not depend on the input
            grads = torch.zeros_like(x)
        return InputGradientsOfBatch(grads.detach(), int(logits.shape[-1]))


@dataclass(frozen=True)
class KernelOfCodes:
    """Result of :class:`CodeKernel`: ``kernel`` (``N x N`` float64 NumPy array; entry (i, j)
    counts the units on which images i and j have the same binary code, summed over every
    matched module call), ``units`` (units per image summed over those calls) and
    ``modules`` (the names of the matched module calls, in call order)."""

    kernel: np.ndarray
    units: int
    modules: tuple


@dataclass(frozen=True)
class CodeKernel(PassRequest):
    """NASWOT's kernel (Mellor et al., ICML 2021, Eq. 2 and the released ``score_networks.py``)
    of batch ``batch``: for every call of a matched module, the binary code ``c = [input > 0]``
    of each image (flattened), and ``K += c c^T + (1 - c)(1 - c)^T`` (N x N, float64: the
    number of units on which two images agree). One forward pass without gradients, train
    mode, BatchNorm running statistics left as found; only K is kept, never the activations.

    Parameters
    ----------
    name_contains : str
        A module matches when its class name contains this text (the released code tests
        ``'ReLU' in str(type(module))``: ``nn.ReLU``, ``ReLU6``, ``LeakyReLU`` and wrappers
        such as NAS-Bench-201's ``ReLUConvBN``, whose input is the code of its first ReLU).
    leaves_only : bool
        Match only modules without children (NASLib's ``nwot`` skips its own wrapper
        classes, so each ReLU's code is counted once).
    batch : int
        Which batch of the protocol.
    """

    name_contains: str = "ReLU"
    leaves_only: bool = False
    batch: int = 0

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return _check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> KernelOfCodes:
        x = batches[self.batch][0]
        n = x.shape[0]
        kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)
        units, called = 0, []

        def hook(module, inputs, name):
            nonlocal kernel, units
            flat = inputs[0].detach().reshape(n, -1)
            codes = (flat > 0).to(torch.float32 if flat.shape[1] < 2 ** 24 else torch.float64)
            # agreements c c^T + (1-c)(1-c)^T = D - |c_i| - |c_j| + 2 c_i.c_j (D units): one
            # product; every partial sum is a whole number below 2^24, so float32 is exact
            # (float64 beyond)
            ones = codes.sum(1, dtype=torch.float64)
            shared = (codes @ codes.T).to(torch.float64)
            kernel += codes.shape[1] - ones[:, None] - ones[None, :] + 2.0 * shared
            units += codes.shape[1]
            called.append(name)

        handles = [module.register_forward_pre_hook(lambda m, i, name=name: hook(m, i, name))
                   for name, module in model.named_modules()
                   if self.name_contains in type(module).__name__
                   and (not self.leaves_only or next(module.children(), None) is None)]
        try:
            with torch.no_grad(), batchnorm_running_stats_off(model):
                model(x)
        finally:
            for h in handles:
                h.remove()
        return KernelOfCodes(kernel.cpu().numpy(), units, tuple(called))
