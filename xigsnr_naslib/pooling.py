"""Average pooling with stride 1, bit for bit PyTorch's, about twice as fast on a CPU.

PyTorch's CPU kernel for ``avg_pool2d`` on NCHW tensors is a scalar loop: on the
NAS-Bench-201 networks an ``avg_pool_3x3`` edge costs more than a 3x3 convolution, forward
and backward. :class:`ExactAvgPool2d` computes the same window sums as k x k shifted views
added in the kernel's order (window rows, then columns, starting from zero), divided by the
same count of valid elements; its backward adds each output's share to its inputs in the
kernel's order (outputs in row-major order). Floating-point addition is not associative,
so the order is what makes the result identical, not merely close: scores computed with it
equal those of ``nn.AvgPool2d`` exactly (``tests/test_pooling.py``).

It is used where the exact rewrite applies: stride 1, ``count_include_pad=False``, no
``ceil_mode`` or ``divisor_override``, float32/float64 tensors on the CPU. Anything else
(CUDA, whose kernel is fast already, strides > 1, half precision) runs ``nn.AvgPool2d``.
:func:`use_native_pooling` swaps the modules back, for comparisons with the stock network.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ExactAvgPool2d", "avg_pool_stride1", "use_native_pooling"]

_EXACT_DTYPES = (torch.float32, torch.float64)
_counts_cache: dict[tuple, torch.Tensor] = {}


def _valid_counts(height: int, width: int, kernel: int, padding: int, dtype: torch.dtype) -> torch.Tensor:
    """Number of in-image elements under each output window (the kernel's divisor)."""
    key = (height, width, kernel, padding, dtype)
    counts = _counts_cache.get(key)
    if counts is None:
        ones = torch.ones(1, 1, height, width, dtype=dtype)
        counts = F.avg_pool2d(ones, kernel, 1, padding, count_include_pad=False, divisor_override=1)
        _counts_cache[key] = counts
    return counts


def _ordered_window_sum(padded: torch.Tensor, kernel: int, out_h: int, out_w: int) -> torch.Tensor:
    """sum over (a, b) in row-major order of padded[..., a:a+out_h, b:b+out_w], from zero.

    Starting from zero, as the kernel does, also gives +0.0 where the kernel gives +0.0.
    """
    total = None
    for a in range(kernel):
        rows = padded.narrow(-2, a, out_h)
        for b in range(kernel):
            window = rows.narrow(-1, b, out_w)
            total = window.add(0.0) if total is None else total.add_(window)
    return total


class _AvgPoolStride1(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, kernel: int, padding: int) -> torch.Tensor:
        height, width = x.shape[-2:]
        out_h, out_w = height + 2 * padding - kernel + 1, width + 2 * padding - kernel + 1
        padded = F.pad(x, (padding, padding, padding, padding))
        # adding the padding's zeros changes no sum: the kernel skips those elements instead
        return _ordered_window_sum(padded, kernel, out_h, out_w).div_(
            _valid_counts(height, width, kernel, padding, x.dtype))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, kernel, padding = inputs
        ctx.kernel, ctx.padding, ctx.input_hw = kernel, padding, tuple(x.shape[-2:])

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        kernel, padding = ctx.kernel, ctx.padding
        height, width = ctx.input_hw
        share = grad_out / _valid_counts(height, width, kernel, padding, grad_out.dtype)
        # input i lies under outputs i+padding-kernel+1 .. i+padding; the kernel visits them
        # in ascending (row-major) order, and so does the shifted sum over this padding
        border = kernel - 1 - padding
        padded = F.pad(share, (border, border, border, border))
        return _ordered_window_sum(padded, kernel, height, width), None, None


def avg_pool_stride1(x: torch.Tensor, kernel: int, padding: int) -> torch.Tensor:
    """``F.avg_pool2d(x, kernel, 1, padding, count_include_pad=False)``, bit for bit, on CPU float."""
    return _AvgPoolStride1.apply(x, kernel, padding)


def _as_int(value) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, (tuple, list)) and len(set(value)) == 1:
        return int(value[0])
    return None


class ExactAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` that takes the exact fast path where it applies (see the module)."""

    def _fast_settings(self) -> tuple[int, int] | None:
        kernel, stride, padding = _as_int(self.kernel_size), _as_int(self.stride), _as_int(self.padding)
        if None in (kernel, stride, padding) or stride != 1 or self.count_include_pad or self.ceil_mode:
            return None
        if self.divisor_override is not None:
            return None
        return kernel, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        settings = self._fast_settings()
        if settings is None or x.device.type != "cpu" or x.dtype not in _EXACT_DTYPES or x.dim() != 4:
            return super().forward(x)
        return avg_pool_stride1(x, *settings)


def use_native_pooling(model: nn.Module) -> nn.Module:
    """Replace every :class:`ExactAvgPool2d` in ``model`` by the ``nn.AvgPool2d`` it stands for."""
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, ExactAvgPool2d):
                native = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode,
                                      child.count_include_pad, child.divisor_override)
                native.train(child.training)
                setattr(parent, name, native)
    return model
