"""ZiCo, the zero-cost proxy of Li et al. (ICLR 2023): inverse coefficient of variation of gradients.

For independent per-batch gradients g_1..g_N (cleared between batches) of the weight of
every Conv2d and Linear layer l,

    ZiCo = sum_l log( sum_{j in l, sigma_j > 0} mean_b |g_j| / sigma_j )

where sigma_j is the population standard deviation of entry j over the N batches. As in
the authors' released code:

* entries whose standard deviation is zero are left out of a layer's sum;
* a layer whose sum is zero (every entry left out, or every mean |g| zero) contributes
  nothing (the logarithm of zero is never taken); when no layer contributes the score is
  undefined (:class:`~xigsnr_naslib.passes.NotComputable`; the released code returns 0);
* the gradients are those of the mean loss of each batch, the network in train mode
  (BatchNorm normalises with each batch's statistics): :func:`zico` and :func:`zico_moments`
  score a network in train mode whatever mode it is in, every parameter counted as trainable,
  and leave it exactly as found (:func:`~xigsnr_naslib.core.gradients.scoring_state`).

The released code draws 2 batches (its ``--maxbatch`` default); any N >= 2 works here.
Moments are streamed in float64 (:class:`~xigsnr_naslib.core.statistics.RunningMoments` with
``track_abs_mean``), so memory is O(parameters) whatever N. A non-finite gradient gives a
non-finite score and a warning, never an exception.

Registered as proxy ``zico``.
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable

import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.core.gradients import Batch, LossFn, batchnorm_running_stats_off, check_batches, independent_batch_gradients, \
    scoring_state
from xigsnr_naslib.core.gsnr import _only_these_require_grad, select_parameters
from xigsnr_naslib.passes import Moments, NotComputable
from xigsnr_naslib.proxies import PassResults, register_compute
from xigsnr_naslib.core.statistics import RunningMoments

__all__ = ["zico_moments", "score_zico", "zico", "ZICO_PASS"]


def zico_moments(model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = F.cross_entropy,
                 params: str = "conv_linear") -> RunningMoments:
    """Stream independent per-batch gradients into moments with the mean of |g| (float64);
    ``model`` in train mode, left as found."""
    batches = list(batches)
    check_batches(batches)
    with scoring_state(model, "train"):
        selected = select_parameters(model, params)
        moments = RunningMoments([n for n, _ in selected], track_abs_mean=True)
        tensors = [p for _, p in selected]
        with _only_these_require_grad(model, tensors), batchnorm_running_stats_off(model):
            for grads in independent_batch_gradients(model, batches, loss_fn, tensors):
                moments.update(grads)
    return moments


def score_zico(moments: RunningMoments) -> float:
    """ZiCo from streamed moments (needs ``track_abs_mean=True``), as a Python float."""
    if moments.count < 2:
        raise NotComputable(f"ZiCo from {moments.count} batch(es): a standard deviation needs at least 2")
    abs_means, variances = moments.abs_means(), moments.variances()
    total, counted = 0.0, 0
    for name, abs_mean in abs_means.items():
        std = variances[name].sqrt()
        kept = std != 0  # keeps NaN entries, so a NaN gradient still gives NaN
        layer_sum = float((abs_mean[kept] / std[kept]).sum())
        if layer_sum == 0.0:
            continue
        counted += 1
        total += math.log(layer_sum) if layer_sum > 0 else math.nan
    if not counted:
        raise NotComputable("no layer has a gradient entry that varies across batches (e.g. the network's output "
                            "does not depend on its input): ZiCo's sum is empty")
    if not math.isfinite(total):
        warnings.warn(f"non-finite ZiCo score ({total}): recorded as such", RuntimeWarning)
    return total


def zico(model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = F.cross_entropy, *,
         params: str = "conv_linear") -> float:
    """ZiCo of ``model`` on ``batches`` (an iterable of ``(inputs, targets)``, N >= 2).

    Put the model on its device; it is scored in train mode whatever mode it is in, and left
    exactly as found.
    """
    return score_zico(zico_moments(model, batches, loss_fn, params))


#: ZiCo's pass: independent per-batch gradients of the Conv2d/Linear weights, with mean |g|
#: (shared with xi-GSNR's passes in a study: the same N backward passes)
ZICO_PASS = Moments("independent", "conv_linear", abs_mean=True)


@register_compute("zico", (ZICO_PASS,), settings={"params": "conv_linear", "gradients": "independent"},
                  description="ZiCo (Li et al. 2023): sum over layers of log sum mean|g|/std(g)")
def _zico_compute(results: PassResults) -> float:
    return score_zico(results.moments[ZICO_PASS])
