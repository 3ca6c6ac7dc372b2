"""Average pooling bit for bit PyTorch's, several times faster on a CPU.

PyTorch's CPU kernel for ``avg_pool2d`` on NCHW tensors is a scalar loop: on the
NAS-Bench-201 networks an ``avg_pool_3x3`` edge costs more than a 3x3 convolution, forward
and backward. :class:`ExactAvgPool2d` computes the same sums in the same order: each output
adds its window's in-image elements in row-major order starting from zero and divides by
their count; the backward adds each output's share to its inputs with the outputs taken in
row-major order. Floating-point addition is not associative, so the order is what makes the
results identical, not merely close: scores computed with it equal those of
``nn.AvgPool2d`` exactly (``tests/test_pooling.py``).

Two implementations:

``torch``   k*k shifted views of the zero-padded planes added in PyTorch, a block of planes
            at a time so that the passes stay in cache: stride 1 only (2.1-3.9x
            ``nn.AvgPool2d`` at the NAS-Bench-201 sizes, forward and backward, one thread).
            Also the path inside ``torch.func`` transforms (vmap, grad), in a functional form.
``native``  ``nn.AvgPool2d`` itself: CUDA (whose kernel is fast already), strides other than
            1, half precision, ``ceil_mode``, ``divisor_override``, padding counted in the
            divisor, anything else.

``XIGSNR_POOLING`` chooses: ``auto`` (default: ``torch`` wherever it applies), ``torch`` or
``native``. :func:`pooling_backend` says which is in use; :func:`use_native_pooling` swaps
the modules back, for comparisons with the stock network.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.errors import UsageError

__all__ = ["ExactAvgPool2d", "avg_pool_exact", "avg_pool_stride1", "pooling_backend", "pooling_backend_note",
           "use_native_pooling"]

_EXACT_DTYPES = (torch.float32, torch.float64)
_BACKENDS = ("auto", "torch", "native")
_divisor_cache: dict[tuple, torch.Tensor] = {}


# ------------------------------------------------------------------ which implementation


def _requested_backend() -> str:
    value = os.environ.get("XIGSNR_POOLING", "auto").strip().lower() or "auto"
    if value not in _BACKENDS:
        raise UsageError(f"XIGSNR_POOLING={value!r}: expected one of {_BACKENDS}")
    return value


def pooling_backend() -> str:
    """The implementation that CPU float pooling uses now: ``"torch"`` or ``"native"``."""
    return "native" if _requested_backend() == "native" else "torch"


def pooling_backend_note() -> str:
    """One line for reports: the implementation in use."""
    return pooling_backend()


# ------------------------------------------------------------------ shared pieces


def _divisors(height: int, width: int, kernel: int, stride: int, padding: int, dtype: torch.dtype) -> torch.Tensor:
    """Number of in-image elements under each output window (the kernel's divisor), [OH, OW]."""
    key = (height, width, kernel, stride, padding, dtype)
    divisors = _divisor_cache.get(key)
    if divisors is None:
        ones = torch.ones(1, 1, height, width, dtype=dtype)
        divisors = F.avg_pool2d(ones, kernel, stride, padding, count_include_pad=False,
                                divisor_override=1)[0, 0].contiguous()
        _divisor_cache[key] = divisors
    return divisors


def _native_forward(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)


def _is_plain(x: torch.Tensor) -> bool:
    """Not a tensor wrapped by a ``torch.func`` transform (vmap, grad)."""
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)


# ------------------------------------------------------------------ the torch path (stride 1)


def _ordered_window_sum(padded: torch.Tensor, kernel: int, out_h: int, out_w: int) -> torch.Tensor:
    """sum over (a, b) in row-major order of padded[..., a:a+out_h, b:b+out_w], from zero.

    Starting from zero, as the kernel does, also gives +0.0 where the kernel gives +0.0.
    Functional (no ``out=``), so that it also runs under ``torch.func`` transforms.
    """
    total = None
    for a in range(kernel):
        rows = padded.narrow(-2, a, out_h)
        for b in range(kernel):
            window = rows.narrow(-1, b, out_w)
            total = window.add(0.0) if total is None else total.add_(window)
    return total


#: bytes of padded planes processed at a time by :func:`_blocked_pool`: the block, its
#: window sums and the output stay in a core's L2 cache through the k*k passes over them
BLOCK_BYTES = 512 * 1024


def _blocked_pool(src: torch.Tensor, kernel: int, padding: int, divisors: torch.Tensor,
                  divide_first: bool) -> torch.Tensor:
    """Window sums of every zero-padded ``[h, w]`` plane of ``src``, a block of planes at a time.

    Each plane is padded into a scratch buffer and flattened, so that the window at offset
    (a, b) is the contiguous run starting at ``a * padded_width + b``: the k*k shifted
    additions run over long contiguous rows (the last ``kernel - 1`` columns of each output
    row are junk and dropped). The additions are those of :func:`_ordered_window_sum`, in the
    same order, element by element, so the result is the same bit for bit. ``divide_first``
    divides ``src`` by ``divisors`` before summing (the backward's shares); otherwise the
    sums are divided (the forward's means).
    """
    n, c, h, w = src.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    oh, ow = hp - kernel + 1, wp - kernel + 1
    planes = n * c
    src3 = src.reshape(planes, h, w)
    out = src.new_empty((n, c, oh, ow))
    out3 = out.view(planes, oh, ow)
    step = max(1, min(planes, BLOCK_BYTES // (hp * wp * src.element_size())))
    scratch = src.new_zeros((step, hp, wp))  # borders stay zero; the interior is overwritten
    sums = src.new_empty((step, oh * wp))
    length = (oh - 1) * wp + ow
    shifts = [a * wp + b for a in range(kernel) for b in range(kernel)]
    for first in range(0, planes, step):
        m = min(step, planes - first)
        block = scratch[:m]
        interior = block[:, padding:padding + h, padding:padding + w]
        if divide_first:
            torch.div(src3[first:first + m], divisors, out=interior)
        else:
            interior.copy_(src3[first:first + m])
        flat = block.view(m, hp * wp)
        total = sums[:m, :length]
        torch.add(flat[:, :length], 0.0, out=total)  # from zero, as the kernel starts
        for shift in shifts[1:]:
            total.add_(flat[:, shift:shift + length])
        window_sums = sums[:m].view(m, oh, wp)[..., :ow]
        if divide_first:
            out3[first:first + m].copy_(window_sums)
        else:
            torch.div(window_sums, divisors, out=out3[first:first + m])
    return out


def _torch_forward(x: torch.Tensor, kernel: int, padding: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    divisors = _divisors(height, width, kernel, 1, padding, x.dtype)
    if _is_plain(x):
        return _blocked_pool(x, kernel, padding, divisors, divide_first=False)
    out_h, out_w = divisors.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    # adding the padding's zeros changes no sum: the kernel skips those elements instead
    return _ordered_window_sum(padded, kernel, out_h, out_w).div_(divisors)


def _torch_backward(grad_out: torch.Tensor, input_shape, kernel: int, padding: int) -> torch.Tensor:
    height, width = input_shape[-2:]
    divisors = _divisors(height, width, kernel, 1, padding, grad_out.dtype)
    # input i lies under outputs i+padding-kernel+1 .. i+padding; the kernel visits them
    # in ascending (row-major) order, and so does the shifted sum over this padding
    border = kernel - 1 - padding
    if _is_plain(grad_out):
        return _blocked_pool(grad_out, kernel, border, divisors, divide_first=True)
    padded = F.pad(grad_out / divisors, (border, border, border, border))
    return _ordered_window_sum(padded, kernel, height, width)


# ------------------------------------------------------------------ the operation


class _ExactAvgPool(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, kernel: int, padding: int) -> torch.Tensor:
        return _torch_forward(x, kernel, padding)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, kernel, padding = inputs
        ctx.settings, ctx.input_shape = (kernel, padding), tuple(x.shape)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        kernel, padding = ctx.settings
        return _torch_backward(grad_out, ctx.input_shape, kernel, padding), None, None


def avg_pool_exact(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """``F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)``, bit for bit.

    ``x``: a 4-d float32/float64 CPU tensor. Stride 1 takes the PyTorch path (see the module
    documentation), other strides PyTorch's own kernel.
    """
    if _requested_backend() == "native" or stride != 1:
        return _native_forward(x, kernel, stride, padding)
    return _ExactAvgPool.apply(x, kernel, padding)


def avg_pool_stride1(x: torch.Tensor, kernel: int, padding: int) -> torch.Tensor:
    """``F.avg_pool2d(x, kernel, 1, padding, count_include_pad=False)``, bit for bit, on CPU float."""
    return avg_pool_exact(x, kernel, 1, padding)


def _as_int(value) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, (tuple, list)) and len(set(value)) == 1:
        return int(value[0])
    return None


class ExactAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` that takes the exact fast path where it applies (see the module)."""

    def _fast_settings(self) -> tuple[int, int, int] | None:
        """(kernel, stride, padding) when the exact paths apply to these settings, else None."""
        kernel, padding = _as_int(self.kernel_size), _as_int(self.padding)
        stride = _as_int(self.stride if self.stride is not None else self.kernel_size)
        if None in (kernel, stride, padding) or self.ceil_mode or self.divisor_override is not None:
            return None
        if self.count_include_pad and padding != 0:  # without padding both divisors agree
            return None
        return kernel, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        settings = self._fast_settings()
        if settings is None or x.device.type != "cpu" or x.dtype not in _EXACT_DTYPES or x.dim() != 4:
            return super().forward(x)
        return avg_pool_exact(x, *settings)


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
