"""Gradient moments: streamed per-parameter moments of gradient samples over every batch
(:class:`Moments`: xi-GSNR, ZiCo).

Requests of one parameter selection share their backward passes
(:func:`run_shared_moments`): ``independent`` (the gradient g_k of each batch) and
``cumulative`` (their running sums G_k) come from the same N backward passes,
``per_sample`` from passes of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch.nn as nn

from xigsnr_naslib.core.gradients import Batch, LossFn
from xigsnr_naslib.passes.protocol import PassRequest
from xigsnr_naslib.registry import choose

__all__ = ["Moments", "SAMPLES", "MIN_SAMPLES", "run_shared_moments"]

#: kinds of gradient samples a pass produces, and the xi-GSNR mode that reads each
SAMPLES = {"cumulative": "official", "independent": "paper", "per_sample": "per_sample"}

#: a variance needs two samples: with fewer every moments-based score is undefined
MIN_SAMPLES = 2


@dataclass(frozen=True)
class Moments(PassRequest):
    """A pass request: streamed float64 moments of gradient samples of the selected parameters.

    Parameters
    ----------
    samples : {"cumulative", "independent", "per_sample"}
        ``independent``: the gradient g_k of each batch's mean loss (Eq. 10 of the paper,
        ZiCo); ``cumulative``: their running sums G_k (the released xi-GSNR code); both come
        from the same N backward passes. ``per_sample``: one backward per image.
    params : {"conv_linear", "all"}
        Which parameters (:func:`xigsnr_naslib.core.gsnr.select_parameters`).
    abs_mean : bool
        Also track the mean of ``|g|`` (ZiCo).
    """

    samples: str
    params: str = "conv_linear"
    abs_mean: bool = False

    def __post_init__(self) -> None:
        from xigsnr_naslib.core.gsnr import PARAMETER_SELECTIONS  # the estimator imports the pass protocol

        choose(self.samples, list(SAMPLES), "gradient samples")
        choose(self.params, list(PARAMETER_SELECTIONS), "parameter selection")

    def n_samples(self, n_batches: int, batch_size: int) -> int:
        """How many gradient samples the pass gives for ``n_batches`` batches of ``batch_size``."""
        return n_batches * batch_size if self.samples == "per_sample" else n_batches

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        n = self.n_samples(n_batches, batch_size)
        if n >= MIN_SAMPLES:
            return None
        what = "--batch-size (images per batch)" if self.samples == "per_sample" else "--n-batches"
        return (f"{n} gradient sample(s) ({n_batches} x {batch_size} images, {self.samples} gradients) give no "
                f"variance: it needs at least {MIN_SAMPLES}; raise {what}")

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop"):
        """This request's moments alone (:func:`run_shared_moments` of it)."""
        return run_shared_moments(model, batches, loss_fn, [self], strategy)[self]


def run_shared_moments(model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, needs: Sequence[Moments],
                       strategy: str = "loop") -> dict:
    """``{request: moments}`` for every :class:`Moments` request of ``needs``: the requests of
    one ``params`` share their passes (one call of
    :func:`~xigsnr_naslib.core.gsnr.joint_gradient_moments` per selection; BatchNorm running
    statistics left as found). Each result is bit for bit what the request alone gives."""
    from xigsnr_naslib.core.gsnr import joint_gradient_moments

    needs = list(dict.fromkeys(needs))
    out: dict = {}
    for params in dict.fromkeys(n.params for n in needs):
        group = [n for n in needs if n.params == params]
        modes = list(dict.fromkeys(SAMPLES[n.samples] for n in group))
        abs_modes = [SAMPLES[n.samples] for n in group if n.abs_mean]
        moments = joint_gradient_moments(model, batches, loss_fn, modes, params, strategy,
                                         update_batchnorm_stats=False, abs_mean_modes=abs_modes)
        for n in group:
            out[n] = moments[SAMPLES[n.samples]]
    return out
