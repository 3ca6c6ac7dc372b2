"""Pruning-at-initialisation saliencies summed into zero-cost proxies.

Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS* (ICLR 2021) turned the
per-weight saliencies of pruning-at-initialisation methods into architecture scores: sum the
saliency over the weights of every ``Conv2d`` and ``Linear`` layer. Their released code
(SamsungLabs/zero-cost-nas, ``foresight/pruners/measures/``) is what NASLib copies
(``naslib/predictors/utils/pruners/measures/``) and what NAS-Bench-Suite-Zero computed, so
the definitions here are those two codes' (they agree): for layer weights ``W_l`` (Conv2d
and Linear weights only, never biases or BatchNorm), ``g_l = dL/dW_l`` the gradient of the
mean cross-entropy of one batch, network in train mode (BatchNorm normalises with the batch's
statistics):

| name | score | pass it reads |
|:---|:---|:---|
| ``grad_norm`` | sum_l \\|\\|g_l\\|\\|_2 (Frobenius norm per layer) | ``BatchGradients(0)`` |
| ``snip`` | sum_l sum \\|W_l * g_l\\|  (Lee et al., ICLR 2019: \\|dL/dmask\\|) | ``BatchGradients(0)`` |
| ``plain`` | sum_l sum W_l * g_l  (signed; Mozer & Smolensky 1989 first order) | ``BatchGradients(0)`` |
| ``fisher`` | sum_l sum_k F_lk * \\|W_l[k]\\|_0 with F_lk = 1/2 mean_n (sum_xy a*da)^2 | one forward/backward of batch 0 |
| ``grasp`` | sum_l sum -W_l * (H g)_l  (Wang et al., ICLR 2020; H the Hessian) | one forward, two backward of batch 0 |
| ``synflow`` | sum_l sum \\|W_l * dR/dW_l\\|, R = 1^T f_\\|W\\|(1)  (Tanaka et al. 2020) | a copy of the network, data-free |
| ``l2_norm`` | sum_l \\|\\|W_l\\|\\|_2 | none (the weights) |

``fisher`` (Theis et al. 2018, channel pruning): ``a`` is the output of a layer (before
BatchNorm), ``da`` the gradient of the batch's mean loss w.r.t. it, summed over the spatial
positions of each image n and output channel k, squared, averaged over the images, halved; as
in the released code each channel's value counts once per weight of that channel
(``|W_l[k]|_0`` = ``W_l[k].numel()``, the code broadcasts it to the weight's shape before
summing). ``grasp``: ``H g`` is the Hessian-gradient product of the batch's mean loss w.r.t.
the Conv2d/Linear weights, by double backward; temperature 1, one batch (the released
zero-cost code's settings; the GraSP paper prunes with temperature 200 on ten images per
class). ``synflow``: every parameter and buffer replaced by its absolute value, BatchNorm
layers skipped (the released code's ``bn=False``: each BatchNorm's forward replaced by the
identity), float64, one all-ones input image; R is the sum of the outputs. NASLib's
``ZeroCost`` records ``log(synflow)``; the sum itself is returned here (the same ranking).

Inputs: batch 0 of the protocol, images ``N x C x H x W`` and labels ``N`` (the loss) for
``grad_norm``, ``snip``, ``plain``, ``fisher`` and ``grasp``; ``synflow`` reads only the shape
of one image (``C x H x W``) and ``l2_norm`` only the weights. Units: sums of gradient-weight
products of the loss (nats) for the gradient proxies; of the weights for ``l2_norm``.

A layer the loss does not reach (no gradient) contributes zero, as in the released code. A
network without any Conv2d or Linear weight is :class:`~xigsnr_naslib.passes.NotComputable`;
a non-finite gradient gives a non-finite score, recorded as such.
Single-batch proxies read batch 0 of the protocol (64 images under the NB201 protocol;
NAS-Bench-Suite-Zero used one random batch of NASLib's loader, see the README).
"""
from __future__ import annotations

import copy
import types

import torch
import torch.nn as nn

from xigsnr_naslib.core.gradients import batchnorm_running_stats_off, logits_of
from xigsnr_naslib.passes import BatchGradients, NotComputable
from xigsnr_naslib.core.pooling import use_native_pooling
from xigsnr_naslib.proxies import PassResults, register_compute

__all__ = ["weighted_layers", "grad_norm", "snip", "plain", "fisher", "grasp", "synflow", "l2_norm",
           "ONE_BATCH_GRADIENTS"]

#: the pass grad_norm, snip and plain share: one backward of batch 0
ONE_BATCH_GRADIENTS = BatchGradients(batch=0)
#: the layers every proxy of this module sums over (the released code's ``get_layer_metric_array``)
LAYERS = "conv2d_linear_weights"


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every Conv2d and Linear layer, in ``model.modules()`` order.

    Raises :class:`NotComputable` when there is none.
    """
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise NotComputable("the network has no Conv2d or Linear weight")
    return layers


def _weight_and_gradient(results: PassResults):
    """(W, g) per Conv2d/Linear layer from the shared batch gradients (g None: not reached)."""
    grads = results.moments[ONE_BATCH_GRADIENTS].grads
    return [(m.weight.detach(), grads.get(f"{name}.weight" if name else "weight"))
            for name, m in weighted_layers(results.model)]


@register_compute("grad_norm", (ONE_BATCH_GRADIENTS,), settings={"layers": LAYERS, "batch": 0},
                  description="sum over Conv2d/Linear layers of ||dL/dW||")
def grad_norm(results: PassResults) -> float:
    """GradNorm: sum over Conv2d/Linear layers of the Frobenius norm of the weight's gradient
    (``BatchGradients(0)``: the mean cross-entropy of batch 0). Unit: loss per weight unit."""
    return float(sum(float(g.norm()) for _, g in _weight_and_gradient(results) if g is not None))


@register_compute("snip", (ONE_BATCH_GRADIENTS,), settings={"layers": LAYERS, "batch": 0},
                  description="SNIP: sum |W * dL/dW|")
def snip(results: PassResults) -> float:
    """SNIP (Lee et al., ICLR 2019) summed: sum |W * dL/dW| over Conv2d/Linear weights
    (= sum |dL/d mask| at mask 1, as the released code computes it)."""
    return float(sum(float((w * g).abs().sum()) for w, g in _weight_and_gradient(results) if g is not None))


@register_compute("plain", (ONE_BATCH_GRADIENTS,), settings={"layers": LAYERS, "batch": 0},
                  description="sum W * dL/dW")
def plain(results: PassResults) -> float:
    """Plain: sum W * dL/dW over Conv2d/Linear weights (signed)."""
    return float(sum(float((w * g).sum()) for w, g in _weight_and_gradient(results) if g is not None))


@register_compute("l2_norm", settings={"layers": LAYERS}, description="sum over Conv2d/Linear layers of ||W||")
def l2_norm(results: PassResults) -> float:
    """Sum over Conv2d/Linear layers of the Frobenius norm of the weight (data-free)."""
    return float(sum(float(m.weight.detach().norm()) for _, m in weighted_layers(results.model)))


@register_compute("fisher", settings={"layers": LAYERS, "batch": 0, "per": "channel, counted per weight"},
                  description="Fisher channel saliency 1/2 mean_n (sum a*da)^2, summed")
def fisher(results: PassResults) -> float:
    """Fisher channel saliency (Theis et al. 2018) as the zero-cost code sums it.

    Batch 0 (``x``: N x C x H x W, labels N): one forward with hooks that keep each
    Conv2d/Linear output ``a`` (N x K [x H x W]) and one ``torch.autograd.grad`` of the mean
    loss w.r.t. those outputs; per call ``F_k = 1/2 mean_n (sum_xy a * da)^2``, weighted by the
    weights per channel. The network's ``.grad`` and BatchNorm running statistics are left
    as found; hooks are removed.
    """
    model = results.model
    layers = weighted_layers(model)
    x, y = results.batches[0]
    outputs: list = []
    handles = [m.register_forward_hook(lambda mod, i, out, m=m: outputs.append((m, out))) for _, m in layers]
    try:
        with torch.enable_grad(), batchnorm_running_stats_off(model):
            loss = results.loss_fn(logits_of(model(x)), y)
            grads = torch.autograd.grad(loss, [out for _, out in outputs], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for (m, out), da in zip(outputs, grads):
        if da is None:
            continue
        per_image = out.detach() * da
        if per_image.dim() > 2:
            per_image = per_image.sum(dim=tuple(range(2, per_image.dim())))
        saliency = per_image.pow(2).mean(0).mul(0.5)  # K channels
        total += float(saliency.sum()) * (m.weight[0].numel())
    return total


@register_compute("grasp", settings={"layers": LAYERS, "batch": 0, "temperature": 1}, description="GraSP: sum -W * Hg")
def grasp(results: PassResults) -> float:
    """GraSP (Wang et al., ICLR 2020) as the zero-cost code sums it: sum -W * (H g) over
    Conv2d/Linear weights, ``g`` the gradient of batch 0's mean loss and ``H g`` its
    Hessian-gradient product (double backward, temperature 1). The released code runs a
    second forward for ``g``; that forward gives the same ``g`` (same weights, batch and
    train-mode BatchNorm), so one forward serves both. The network is left as found; the
    Hessian product runs on a copy whose :class:`~xigsnr_naslib.core.pooling.ExactAvgPool2d`
    layers are the ``nn.AvgPool2d`` they stand for (the same values; only the native layer
    has a second derivative).
    """
    model = use_native_pooling(copy.deepcopy(results.model))
    weights = [m.weight for _, m in weighted_layers(model)]
    x, y = results.batches[0]
    with torch.enable_grad(), batchnorm_running_stats_off(model):
        loss = results.loss_fn(logits_of(model(x)), y)
        g = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        z = sum((gi.detach() * gi).sum() for gi in g if gi is not None)
        if not torch.is_tensor(z) or not z.requires_grad:  # no weight reaches the loss: H g = 0
            return 0.0
        hg = torch.autograd.grad(z, weights, allow_unused=True)
    return float(sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg) if h is not None))


def _identity(self, x):
    return x


# synflow and l2_norm read no image, but their scores depend on the initialisation: they are
# recorded with the protocol (whose init seed is part of a record's key), as data proxies
@register_compute("synflow", settings={"layers": LAYERS, "input": "ones, batch of 1", "dtype": "float64",
                                       "batchnorm": "skipped"},
                  description="SynFlow: sum |W * dR/dW| on |W|, all-ones input (data-free)")
def synflow(results: PassResults) -> float:
    """SynFlow (Tanaka et al., NeurIPS 2020) as the zero-cost code computes it, data-free.

    On a copy of the network (the network itself is untouched): float64, every parameter
    and buffer replaced by its absolute value, every BatchNorm layer's forward replaced by
    the identity; one all-ones input of ``results.input_shape`` (batch of 1); R = sum of the
    outputs; score = sum |W * dR/dW| over Conv2d/Linear weights. Overflow gives inf, recorded
    as not finite.
    """
    model = copy.deepcopy(results.model).double()
    layers = weighted_layers(model)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.forward = types.MethodType(_identity, m)
    for p in model.parameters():
        p.grad = None
    device = next(model.parameters()).device
    ones = torch.ones((1, *results.input_shape), dtype=torch.float64, device=device)
    with torch.enable_grad():
        logits_of(model(ones)).sum().backward()
    return float(sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for _, m in layers
                     if m.weight.grad is not None))

