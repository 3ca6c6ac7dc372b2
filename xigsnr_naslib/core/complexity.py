"""Network size: parameter count and FLOPs (multiply-adds) of a built model.

``count_flops`` counts multiply-adds (one multiply and one add count as one) of every
``nn.Conv2d`` and ``nn.Linear`` in one forward pass of a single image, through forward
hooks; other layers (BatchNorm, pooling, activations, additions) are not counted. This is
the convention of the FLOPs columns of NAS-Bench-201, NDS and the ProxylessNAS papers
(up to their treatment of pooling, which some count: see each space's documentation).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from xigsnr_naslib.core.gradients import scoring_state

__all__ = ["count_params", "count_flops"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> int:
    """Multiply-adds of Conv2d and Linear layers for one input of ``input_shape`` (C, H, W)."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
        total += output.numel() // output.shape[0] * kernel

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        nonlocal total
        total += output.numel() // output.shape[0] * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with scoring_state(model, "eval"), torch.no_grad():  # every module's mode given back as found
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
    return int(total)
