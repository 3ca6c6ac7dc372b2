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
  without gradients.
* :class:`InputGradients`: the gradient of the summed logits w.r.t. the input images of one
  batch (Jacobian-covariance proxies: NASWOT's first version, EPE-NAS).
* :class:`CodeKernel`: NASWOT's kernel of binary activation codes on one batch, accumulated
  while the forward pass runs (only an N x N matrix is kept).
* :class:`ImageActivations`: the same on the first few images of a batch, forwarded on
  their own (MeCo: one image, every module; SWAP: 16 images, the ReLUs).
* :class:`StageFeatures`: the feature map after each stage (stem, cells) of a network,
  kept with their autograd graph, optionally on a re-initialised copy and on Gaussian noise
  (the AZ-NAS components).
* :class:`LogitJacobians`: per-image Jacobians of the logits w.r.t. one entry of each of
  the first parameter tensors (VKDNW's Fisher information).

Every pass leaves the network as it found it: weights, ``.grad`` and BatchNorm running
statistics. :func:`~xigsnr_naslib.proxies.run_passes` runs them on the network in train mode
(the protocol's state, whatever mode a caller left it in) and gives back every module's mode,
``requires_grad``, ``.grad`` and buffer as found (:func:`~xigsnr_naslib.core.gradients.scoring_state`).
A proxy whose computation changes the network declares ``fresh_model=True`` and gets a network
of its own; the built-in ones that change one (SynFlow's ``|w|``, GraSP's pooling, Zen's and
AZ-NAS's re-initialisation, VKDNW's eval mode) change a copy.

Define a new kind by subclassing :class:`PassRequest` as a frozen dataclass with
:meth:`~PassRequest.run` (and :meth:`~PassRequest.problem` when some protocols cannot give it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import copy

import numpy as np
import torch
import torch.nn as nn

from xigsnr_naslib.core.gradients import Batch, LossFn, batchnorm_running_stats_off, logits_of
from xigsnr_naslib.core.initialisation import INIT_SCHEMES, reinitialise
from xigsnr_naslib.registry import choose

__all__ = ["PassRequest", "BatchGradients", "Activations", "InputGradients", "InputGradientsOfBatch", "CodeKernel",
           "KernelOfCodes", "NotComputable", "GradientsOfBatch", "ImageActivations", "StageFeatures",
           "StageFeatureMaps", "LogitJacobians", "JacobiansOfLogits", "INPUTS", "feature_stages"]


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


#: where a pass's input comes from: the protocol's images, or Gaussian noise of their shape
INPUTS = ("images", "gaussian")


def _check_images(images: int | None, batch_size: int) -> str | None:
    if images is not None and images > batch_size:
        return f"it reads {images} images of a batch but the protocol's batches hold {batch_size}"
    return None


def _pass_input(batches: Sequence[Batch], batch: int, images: int | None, source: str, seed: int) -> torch.Tensor:
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


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


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
            raise ValueError(f"images must be at least 1, got {self.images}")

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return _check_batch_index(self.batch, n_batches) or _check_images(self.images, batch_size)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> list:
        x = _pass_input(batches, self.batch, self.images, "images", 0)
        # a module returning a tuple is read through its first tensor, one returning none is left out
        return forward_capturing(model, x, self.types, "output", _first_tensor)


def feature_stages(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """``model.feature_stages()``: the ``(name, module)`` pairs whose outputs are the network's
    successive feature maps (stem, then cells / blocks), or None when the network does not
    name them. The project's NB201, NB101 and NDS networks do; any network can, by defining
    the method."""
    method = getattr(model, "feature_stages", None)
    return list(method()) if callable(method) else None


@dataclass(frozen=True)
class StageFeatureMaps:
    """Result of :class:`StageFeatures`: ``features`` (one tensor per stage output, in call
    order, WITH its autograd graph: differentiate between them with ``retain_graph=True``,
    other proxies may read the same graph), their ``names``, and ``reason`` (why there are
    none, else None)."""

    features: list
    names: list
    reason: str | None = None


def _copy_for_pass(model: nn.Module, init: str | None, seed: int) -> nn.Module:
    net = copy.deepcopy(model)
    if init is not None:
        reinitialise(net, init, torch.Generator().manual_seed(seed))
    return net.train()


@dataclass(frozen=True)
class StageFeatures(PassRequest):
    """The feature map after each stage of the network (:func:`feature_stages`), from one
    forward of batch ``batch``'s images (or Gaussian noise of their shape), kept with their
    autograd graph so that a proxy can differentiate one stage's output w.r.t. the previous
    one's (AZ-NAS's trainability).

    The forward runs on a copy of the network, re-initialised with ``init`` from
    ``torch.Generator().manual_seed(seed)`` when ``init`` is set (AZ-NAS re-draws Kaiming
    normal fan-in weights before scoring), in train mode (BatchNorm normalises with the
    batch's statistics; the network given is left untouched). Shapes: each feature is
    ``N x C x H x W`` (N the batch's images).

    Parameters
    ----------
    batch : int
        Which batch of the protocol (its images, or its shape for the noise).
    source : {"gaussian", "images"}
        ``gaussian``: N(0, 1) noise of the batch's shape from the same seeded generator
        (the released AZ-NAS NB201 run's input); ``images``: the batch's images.
    init : str or None
        A scheme of :mod:`xigsnr_naslib.core.initialisation`, or None for the network's own weights.
    seed : int
        Seeds the re-initialisation and the noise (each its own generator).
    """

    batch: int = 0
    source: str = "gaussian"
    init: str | None = "kaiming_normal_fan_in"
    seed: int = 0

    def __post_init__(self) -> None:
        choose(self.source, list(INPUTS), "pass input")
        if self.init is not None:
            choose(self.init, list(INIT_SCHEMES), "initialisation scheme")

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return _check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> StageFeatureMaps:
        if feature_stages(model) is None:
            return StageFeatureMaps([], [], f"{type(model).__name__} does not name its feature stages "
                                            "(it has no feature_stages() method)")
        net = _copy_for_pass(model, self.init, self.seed)
        x = _pass_input(batches, self.batch, None, self.source, self.seed)
        features: list = []
        names: list = []
        handles = []
        for name, module in feature_stages(net):
            def hook(mod, inputs, output, name=name):
                tensor = _first_tensor(output)
                if tensor is not None:
                    features.append(tensor)
                    names.append(name)
            handles.append(module.register_forward_hook(hook))
        try:
            with torch.enable_grad(), batchnorm_running_stats_off(net):
                net(x)
        finally:
            for h in handles:
                h.remove()
        return StageFeatureMaps(features, names)


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
    :class:`StageFeatures`, in EVAL mode with the running statistics of a freshly built
    network (every BatchNorm's running mean 0 and variance 1, so that it only applies its
    affine parameters, divided by sqrt(1 + eps)): the released ``get_fisher`` calls
    ``model.eval()`` on a NAS-Bench-201 network that has not run a training-mode forward yet.
    Each image's logits then depend on that image alone, so the Jacobians come from one
    forward of the whole batch and one backward per logit, the derivative w.r.t. a tensor's
    first entry read per image from the layer's input and output gradient
    (:func:`_first_entry_jacobians_batched`; a per-image autograd loop where a layer is of
    another kind). The logits come from the same eval-mode network. The network given is left
    untouched.

    Parameters
    ----------
    batch, source, init, seed
        As :class:`StageFeatures` (VKDNW's released NB201 run: Gaussian noise, Kaiming normal
        fan-in).
    max_tensors : int
        How many parameter tensors contribute a weight (their first entry).
    """

    batch: int = 0
    source: str = "gaussian"
    init: str | None = "kaiming_normal_fan_in"
    seed: int = 0
    max_tensors: int = 128

    def __post_init__(self) -> None:
        choose(self.source, list(INPUTS), "pass input")
        if self.init is not None:
            choose(self.init, list(INIT_SCHEMES), "initialisation scheme")
        if self.max_tensors < 1:
            raise ValueError(f"max_tensors must be at least 1, got {self.max_tensors}")

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return _check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> JacobiansOfLogits:
        net = _copy_for_pass(model, self.init, self.seed)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.reset_running_stats()  # a freshly built network's: mean 0, variance 1
        net.eval()
        x = _pass_input(batches, self.batch, None, self.source, self.seed)
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


_FIRST_ENTRY_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def _first_entry_jacobians_batched(net: nn.Module, x: torch.Tensor, tensors: Sequence[torch.Tensor]):
    """What :func:`first_entry_jacobians_loop` computes, from ONE forward of the whole batch
    and one backward per logit: every train-mode BatchNorm2d normalises each image with its own
    statistics (``F.instance_norm`` with the layer's affine parameters: train-mode BatchNorm on a
    batch of one; an eval-mode one uses its running statistics), and the derivative w.r.t. a weight tensor's first entry is read per image from the
    layer's input and the gradient of its output (Conv2d weight [0, 0, 0, 0]: the sum over
    output positions of grad_out[n, 0] times the padded input's channel 0 at the kernel's
    corner; bias [0]: the sum of grad_out[n, 0]; BatchNorm2d weight / bias [0]: sum of
    grad_out[n, 0] times the normalised input / times 1; Linear weight [0, 0]: grad_out[n, 0]
    x[n, 0]). None when a tensor belongs to another kind of module, a module is called more
    than once, or a convolution pads other than with zeros: then the loop is used."""
    import torch.nn.functional as F

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
    by_module: dict = {}
    for j, (module, pname) in enumerate(selected):
        by_module.setdefault(module, []).append((j, pname))
    n = x.shape[0]
    columns: list = [None] * len(tensors)
    calls: dict = {}

    def contributions(module, inp, grad):
        out = {}
        g0 = grad[:, 0]
        for j, pname in by_module[module]:
            if pname == "bias":
                out[j] = g0.reshape(n, -1).sum(dim=1)
            elif isinstance(module, nn.Conv2d):
                ph, pw = module.padding
                sh, sw = module.stride
                padded = F.pad(inp[:, 0], (pw, pw, ph, ph))
                ho, wo = grad.shape[2:]
                corner = padded[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]
                out[j] = (g0 * corner).reshape(n, -1).sum(dim=1)
            elif isinstance(module, nn.BatchNorm2d):
                c0 = inp[:, 0]
                if module.training or module.running_mean is None:  # each image's own statistics
                    mean = c0.mean(dim=(1, 2), keepdim=True)
                    var = c0.var(dim=(1, 2), unbiased=False, keepdim=True)
                else:
                    mean, var = module.running_mean[0], module.running_var[0]
                out[j] = (g0 * (c0 - mean) / torch.sqrt(var + module.eps)).reshape(n, -1).sum(dim=1)
            else:  # Linear
                out[j] = (g0 * inp[..., 0]).reshape(n, -1).sum(dim=1)
        return out

    def forward_hook(module, inputs, output):
        calls[module] = calls.get(module, 0) + 1
        inp = inputs[0].detach()
        if output.requires_grad:
            def grad_hook(grad, module=module, inp=inp):
                for j, value in contributions(module, inp, grad).items():
                    columns[j] = value if columns[j] is None else columns[j] + value
            output.register_hook(grad_hook)

    def instance_norm_forward(module):
        def forward(inp):
            return F.instance_norm(inp, None, None, module.weight, module.bias, True, 0.0, module.eps)
        return forward

    handles = [m.register_forward_hook(forward_hook) for m in by_module]
    patched = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d) and m.training]
    for m in patched:
        m.forward = instance_norm_forward(m)
    try:
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            out = logits_of(net(xg))
            if any(c > 1 for c in calls.values()):
                return None
            rows = []
            for k in range(out.shape[1]):
                for j in range(len(columns)):
                    columns[j] = None
                if out.requires_grad:
                    torch.autograd.grad(out[:, k].sum(), xg, retain_graph=True, allow_unused=True)
                rows.append(torch.stack([c if c is not None else out.new_zeros(n) for c in columns], dim=1))
    finally:
        for h in handles:
            h.remove()
        for m in patched:
            del m.forward
    return torch.stack(rows, dim=1).detach()
