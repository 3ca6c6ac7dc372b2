"""How gradient samples are produced from a model, a loss and batches.

Each generator yields, once per sample, the list of ``.grad`` tensors of the selected
parameters (views, not copies: the consumer must read them before asking for the next
sample). Three sampling schemes exist, matching the estimator's modes:

``independent_batch_gradients``
    One sample per batch; gradients are cleared before each batch, so sample *i* is the
    mean-loss gradient of batch *i* alone (the paper's Eq. 10).
``accumulated_batch_gradients``
    One sample per batch; gradients are never cleared, so sample *k* is the running sum of
    the first *k* batch gradients (what the released code records).
``per_sample_gradients``
    One sample per image of a single batch, each image passed through the network on its
    own (batch of one, BatchNorm in train mode), as the released NAS-Bench-101 run does.

The model is used as given (train mode, as in the released code). A model whose forward
returns a tuple or list is read through its first element, the logits.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn as nn

__all__ = [
    "LossFn",
    "logits_of",
    "independent_batch_gradients",
    "accumulated_batch_gradients",
    "per_sample_gradients",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


def logits_of(output) -> torch.Tensor:
    """The logits of a model output (first element of a tuple or list)."""
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def _clear(params: Sequence[nn.Parameter]) -> None:
    for p in params:
        p.grad = None


def _backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> None:
    loss = loss_fn(logits_of(model(x)), y)
    loss.backward()


def independent_batch_gradients(
    model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn, params: Sequence[nn.Parameter]
) -> Iterator[list[torch.Tensor | None]]:
    for x, y in batches:
        _clear(params)
        _backward(model, x, y, loss_fn)
        yield [p.grad for p in params]


def accumulated_batch_gradients(
    model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn, params: Sequence[nn.Parameter]
) -> Iterator[list[torch.Tensor | None]]:
    _clear(params)
    for x, y in batches:
        _backward(model, x, y, loss_fn)
        yield [p.grad for p in params]


def per_sample_gradients(
    model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn, params: Sequence[nn.Parameter]
) -> Iterator[list[torch.Tensor | None]]:
    for x, y in batches:
        for i in range(x.shape[0]):
            _clear(params)
            _backward(model, x[i : i + 1], y[i : i + 1], loss_fn)
            yield [p.grad for p in params]
