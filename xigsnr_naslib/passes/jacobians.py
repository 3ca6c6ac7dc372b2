"""Logit Jacobians: per-image derivatives of the logits w.r.t. one entry of each of the
first parameter tensors (:class:`LogitJacobians`: VKDNW's Fisher information).

Two ways to the same ``N x K x P`` array: :func:`first_entry_jacobians_loop` forwards each
image alone and runs one backward per logit (any network); the batched path forwards the
whole batch once and reads, during one backward per logit, each tensor's first-entry
derivative per image from its layer's input and output gradient (Conv2d, Linear and
BatchNorm2d layers called once; each train-mode BatchNorm2d normalises every image with its
own statistics, as a batch of one would).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.core.gradients import Batch, LossFn, logits_of
from xigsnr_naslib.passes.protocol import PassRequest, check_batch_index, check_input_and_init, copy_for_pass, \
    pass_input

__all__ = ["JacobiansOfLogits", "LogitJacobians", "first_entry_jacobians_loop"]


@dataclass(frozen=True)
class JacobiansOfLogits:
    """Result of :class:`LogitJacobians`: ``jacobians`` (``N x K x P``: per image, the
    derivative of each of the K logits w.r.t. each of the P selected weights), ``logits``
    (``N x K``, from one forward of the whole batch), ``names`` (the parameter tensor of
    each selected weight, in column order)."""

    jacobians: torch.Tensor
    logits: torch.Tensor
    names: list


@dataclass(frozen=True)
class LogitJacobians(PassRequest):
    """Per-image Jacobians of the logits w.r.t. ONE entry (the first) of each of the first
    ``max_tensors`` parameter tensors (``model.named_parameters()`` order), as VKDNW's
    released code selects them (``params_grad_len=128``, one index per tensor).

    The network is evaluated as the released code evaluates it: a copy, re-initialised as in
    :class:`~xigsnr_naslib.passes.stages.StageFeatures`, in EVAL mode with the running
    statistics of a freshly built network (every BatchNorm's running mean 0 and variance 1,
    so that it only applies its affine parameters, divided by sqrt(1 + eps)): the released
    ``get_fisher`` calls ``model.eval()`` on a NAS-Bench-201 network that has not run a
    training-mode forward yet. Each image's logits then depend on that image alone, so the
    Jacobians come from one forward of the whole batch and one backward per logit, the
    derivative w.r.t. a tensor's first entry read per image from the layer's input and output
    gradient (:func:`_first_entry_jacobians_batched`; a per-image autograd loop where a layer
    is of another kind). The logits come from the same eval-mode network. The network given
    is left untouched.

    Parameters
    ----------
    batch, source, init, seed
        As :class:`~xigsnr_naslib.passes.stages.StageFeatures` (VKDNW's released NB201 run:
        Gaussian noise, Kaiming normal fan-in).
    max_tensors : int
        How many parameter tensors contribute a weight (their first entry).
    """

    batch: int = 0
    source: str = "gaussian"
    init: str | None = "kaiming_normal_fan_in"
    seed: int = 0
    max_tensors: int = 128

    def __post_init__(self) -> None:
        check_input_and_init(self.source, self.init)
        if self.max_tensors < 1:
            raise UsageError(f"max_tensors must be at least 1, got {self.max_tensors}")

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> JacobiansOfLogits:
        net = copy_for_pass(model, self.init, self.seed)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.reset_running_stats()  # a freshly built network's: mean 0, variance 1
        net.eval()
        x = pass_input(batches, self.batch, None, self.source, self.seed)
        named = list(net.named_parameters())
        selected = named[: self.max_tensors]
        with torch.no_grad():
            logits = logits_of(net(x)).detach()
        for _, p in named:
            p.requires_grad_(False)
        jacobians = _first_entry_jacobians_batched(net, x, [p for _, p in selected])
        if jacobians is None:
            for i, (_, p) in enumerate(named):
                p.requires_grad_(i < self.max_tensors)
            jacobians = first_entry_jacobians_loop(net, x, [p for _, p in selected])
        return JacobiansOfLogits(jacobians.detach(), logits, [n for n, _ in selected])


def first_entry_jacobians_loop(net: nn.Module, x: torch.Tensor, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``N x K x P``: per image (forwarded alone), the derivative of each logit w.r.t. the
    first entry of each tensor (which must require gradients); one backward per logit."""
    rows = []
    for i in range(x.shape[0]):
        out = logits_of(net(x[i : i + 1]))[0]
        jacobian = []
        for k in range(out.shape[0]):
            grads = torch.autograd.grad(out[k], list(tensors), retain_graph=k + 1 < out.shape[0], allow_unused=True)
            jacobian.append(torch.stack([g.reshape(-1)[0] if g is not None else out.new_zeros(()) for g in grads]))
        rows.append(torch.stack(jacobian))
    return torch.stack(rows)


# --- the batched path -----------------------------------------------------------------------------

_FIRST_ENTRY_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def _first_entry_owners(net: nn.Module, tensors: Sequence[torch.Tensor]) -> list | None:
    """``(module, "weight" or "bias")`` owning each tensor, in order; None when one belongs to
    a module the batched path cannot read (not a Conv2d, Linear or BatchNorm2d, or a
    convolution padding other than with zeros)."""
    owners = {}
    for module in net.modules():
        for pname, p in module.named_parameters(recurse=False):
            owners[id(p)] = (module, pname)
    selected = []
    for t in tensors:
        module, pname = owners.get(id(t), (None, None))
        if not isinstance(module, _FIRST_ENTRY_MODULES) or pname not in ("weight", "bias"):
            return None
        if isinstance(module, nn.Conv2d) and (module.padding_mode != "zeros" or isinstance(module.padding, str)):
            return None
        selected.append((module, pname))
    return selected


def _first_weight_entry(module: nn.Module, inp: torch.Tensor, grad: torch.Tensor, n: int) -> torch.Tensor:
    """Per image (``n`` of them), the derivative w.r.t. the first entry of ``module``'s weight,
    from the layer's input ``inp`` and the gradient ``grad`` of its output."""
    g0 = grad[:, 0]
    if isinstance(module, nn.Conv2d):  # sum over output positions of grad_out[n, 0] x the kernel's corner
        ph, pw = module.padding
        sh, sw = module.stride
        padded = F.pad(inp[:, 0], (pw, pw, ph, ph))
        ho, wo = grad.shape[2:]
        corner = padded[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]
        return (g0 * corner).reshape(n, -1).sum(dim=1)
    if isinstance(module, nn.BatchNorm2d):  # sum of grad_out[n, 0] x the normalised input
        c0 = inp[:, 0]
        if module.training or module.running_mean is None:  # each image's own statistics
            mean = c0.mean(dim=(1, 2), keepdim=True)
            var = c0.var(dim=(1, 2), unbiased=False, keepdim=True)
        else:
            mean, var = module.running_mean[0], module.running_var[0]
        return (g0 * (c0 - mean) / torch.sqrt(var + module.eps)).reshape(n, -1).sum(dim=1)
    return (g0 * inp[..., 0]).reshape(n, -1).sum(dim=1)  # Linear: grad_out[n, 0] x[n, 0]


class _FirstEntryColumns:
    """Forward hooks that count each layer's calls and put a hook on its output; during a
    backward, those add each selected tensor's first-entry derivative per image to its column
    (``columns[j]``: ``n`` values, None until a layer contributes)."""

    def __init__(self, by_module: dict, n: int, n_columns: int):
        self.by_module, self.n = by_module, n
        self.columns: list = [None] * n_columns
        self.calls: dict = {}

    def reset(self) -> None:
        for j in range(len(self.columns)):
            self.columns[j] = None

    def forward_hook(self, module, inputs, output) -> None:
        self.calls[module] = self.calls.get(module, 0) + 1
        inp = inputs[0].detach()
        if output.requires_grad:
            def grad_hook(grad, module=module, inp=inp):
                for j, value in self._contributions(module, inp, grad).items():
                    self.columns[j] = value if self.columns[j] is None else self.columns[j] + value
            output.register_hook(grad_hook)

    def _contributions(self, module, inp, grad) -> dict:
        out = {}
        for j, pname in self.by_module[module]:
            if pname == "bias":  # sum of grad_out[n, 0]
                out[j] = grad[:, 0].reshape(self.n, -1).sum(dim=1)
            else:
                out[j] = _first_weight_entry(module, inp, grad, self.n)
        return out

    def row(self, out: torch.Tensor) -> torch.Tensor:
        """``n x P``: the columns of one logit's backward (zeros where no layer contributed)."""
        return torch.stack([c if c is not None else out.new_zeros(self.n) for c in self.columns], dim=1)


def _instance_norm_forward(module: nn.BatchNorm2d):
    """A forward normalising each image with its own statistics (train-mode BatchNorm on a
    batch of one) with the layer's affine parameters."""
    def forward(inp):
        return F.instance_norm(inp, None, None, module.weight, module.bias, True, 0.0, module.eps)
    return forward


def _first_entry_jacobians_batched(net: nn.Module, x: torch.Tensor, tensors: Sequence[torch.Tensor]):
    """What :func:`first_entry_jacobians_loop` computes, from ONE forward of the whole batch
    and one backward per logit: every train-mode BatchNorm2d normalises each image with its own
    statistics (``F.instance_norm`` with the layer's affine parameters: train-mode BatchNorm on a
    batch of one; an eval-mode one uses its running statistics), and the derivative w.r.t. a
    weight tensor's first entry is read per image from the layer's input and the gradient of
    its output (Conv2d weight [0, 0, 0, 0]: the sum over output positions of grad_out[n, 0]
    times the padded input's channel 0 at the kernel's corner; bias [0]: the sum of
    grad_out[n, 0]; BatchNorm2d weight / bias [0]: sum of grad_out[n, 0] times the normalised
    input / times 1; Linear weight [0, 0]: grad_out[n, 0] x[n, 0]). None when a tensor belongs
    to another kind of module, a module is called more than once, or a convolution pads other
    than with zeros: then the loop is used."""
    selected = _first_entry_owners(net, tensors)
    if selected is None:
        return None
    by_module: dict = {}
    for j, (module, pname) in enumerate(selected):
        by_module.setdefault(module, []).append((j, pname))
    recorder = _FirstEntryColumns(by_module, x.shape[0], len(tensors))
    handles = [m.register_forward_hook(recorder.forward_hook) for m in by_module]
    patched = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d) and m.training]
    for m in patched:
        m.forward = _instance_norm_forward(m)
    try:
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            out = logits_of(net(xg))
            if any(c > 1 for c in recorder.calls.values()):
                return None
            rows = []
            for k in range(out.shape[1]):
                recorder.reset()
                if out.requires_grad:
                    torch.autograd.grad(out[:, k].sum(), xg, retain_graph=True, allow_unused=True)
                rows.append(recorder.row(out))
    finally:
        for h in handles:
            h.remove()
        for m in patched:
            del m.forward
    return torch.stack(rows, dim=1).detach()
