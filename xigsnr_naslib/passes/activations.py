"""Activation passes: the outputs (or inputs) of chosen modules, without gradients, on one
batch (:class:`Activations`) or on its first few images forwarded on their own
(:class:`ImageActivations`: MeCo, one image through every module; SWAP, 16 images through
the ReLUs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.core.gradients import Batch, LossFn
from xigsnr_naslib.passes.protocol import PassRequest, forward_with_hooks, check_batch_index, check_images, first_tensor, pass_input

__all__ = ["Activations", "ImageActivations", "forward_capturing"]


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
            raise UsageError(f"unknown activation side {self.where!r}; choose one of output, input")
        object.__setattr__(self, "types", tuple(self.types))

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> list:
        x, _ = batches[self.batch]
        return forward_capturing(model, x, self.types, self.where)


def forward_capturing(model: nn.Module, x: torch.Tensor, types: Sequence[str], where: str = "output",
                      read=lambda value: value) -> list:
    """One forward of ``x`` without gradients, BatchNorm running statistics left as found,
    capturing ``(module name, copy of read(output))`` (or of the module's first input, for
    ``where="input"``) of every module whose class or a base class is named in ``types``, in
    call order; a ``read`` returning None leaves that call out. Copies: an in-place module
    (``ReLU(inplace=True)``) or a later in-place operation must not change a kept tensor, and
    an input is taken before the module runs."""
    captured: list = []
    handles = []
    for name, module in model.named_modules():
        if any(c.__name__ in types for c in type(module).__mro__):
            if where == "output":
                def hook(mod, inputs, output, name=name):
                    tensor = read(output)
                    if tensor is not None:
                        captured.append((name, tensor.detach().clone()))
                handles.append(module.register_forward_hook(hook))
            else:
                def pre_hook(mod, inputs, name=name):
                    tensor = read(inputs[0])
                    if tensor is not None:
                        captured.append((name, tensor.detach().clone()))
                handles.append(module.register_forward_pre_hook(pre_hook))
    forward_with_hooks(model, x, handles)
    return captured


@dataclass(frozen=True)
class ImageActivations(PassRequest):
    """The outputs of every module of the named types when the first ``images`` images of
    batch ``batch`` go through the network on their own (a forward of ``images`` images:
    train-mode BatchNorm normalises with those images' statistics), without gradients.
    Result: a list of ``(module name, tensor images x ...)`` in call order (a module called
    twice appears twice; the network itself is ``""``); a module returning a tuple is read
    through its first tensor, one returning no tensor is left out.

    Parameters
    ----------
    types : tuple of str
        Module class names; a module matches when its class or a base class has one of
        them (``("Module",)``: every module, the network included).
    images : int
        How many images, from the start of the batch (at most the protocol's batch size).
    batch : int
        Which batch of the protocol.
    """

    types: tuple = ("Module",)
    images: int = 1
    batch: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(self.types))
        if self.images < 1:
            raise UsageError(f"images must be at least 1, got {self.images}")

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return check_batch_index(self.batch, n_batches) or check_images(self.images, batch_size)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> list:
        x = pass_input(batches, self.batch, self.images, "images", 0)
        # a module returning a tuple is read through its first tensor, one returning none is left out
        return forward_capturing(model, x, self.types, "output", first_tensor)
