"""Binary activation codes: NASWOT's kernel, accumulated while the forward pass runs
(:class:`CodeKernel`: only an N x N matrix is kept, never the activations)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from xigsnr_naslib.core.gradients import Batch, LossFn
from xigsnr_naslib.passes.protocol import PassRequest, check_batch_index, forward_with_hooks

__all__ = ["KernelOfCodes", "CodeKernel"]


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
        return check_batch_index(self.batch, n_batches)

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
        forward_with_hooks(model, x, handles)
        return KernelOfCodes(kernel.cpu().numpy(), units, tuple(called))
