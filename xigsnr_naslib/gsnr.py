"""The xi-GSNR estimator: gradient samples -> streamed moments -> score.

For gradient samples g_1..g_N of every selected parameter entry theta_j,

    xi-GSNR = sum_j mean(g_j)^2 / (var(g_j) + xi)          (population variance)

Modes (how the samples are produced; see :mod:`xigsnr_naslib.gradients`):

``"official"`` (default)
    What the authors' released code computes, and where the published numbers come from:
    gradients are accumulated across the N batches without zeroing, so the samples are the
    cumulative sums G_k = g_1 + ... + g_k.
``"paper"``
    The paper's Eq. 10: independent per-batch gradients.
``"per_sample"``
    The released NAS-Bench-101 protocol: per-image gradients of one batch.

Parameter selection: ``"conv_linear"`` (the weights of Conv2d and Linear layers, as
released) or ``"all"`` (every trainable parameter).

Variants (the paper's Table 9): ``"sq_mean"`` sum mean^2; ``"inv_var"`` sum 1/var;
``"inv_var_xi"`` sum 1/(var + xi); ``"gsnr"`` sum mean^2/var (no xi); ``"xi_gsnr"``.
Entries whose variance is exactly zero make 1/var and mean^2/var undefined: the two
variants without xi leave those entries out of the sum.

Layer skip (the released rule): a selected tensor whose variances are all zero contributes
0. On by default in ``official`` and ``per_sample`` modes, off in ``paper`` mode (Eq. 10
has no such rule); set ``skip_zero_variance_layers`` to choose.

Non-finite gradients give a non-finite score (NaN or inf) and a warning, never an
exception, so that a batch run records it and goes on.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from .gradients import (
    Batch,
    LossFn,
    accumulated_batch_gradients,
    independent_batch_gradients,
    per_sample_gradients,
)
from .statistics import RunningMoments

__all__ = [
    "MODES",
    "VARIANTS",
    "PARAMETER_SELECTIONS",
    "select_parameters",
    "gradient_moments",
    "score_moments",
    "xi_gsnr",
    "XiGSNR",
]

MODES = ("official", "paper", "per_sample")
VARIANTS = ("xi_gsnr", "gsnr", "sq_mean", "inv_var", "inv_var_xi")
PARAMETER_SELECTIONS = ("conv_linear", "all")

_SAMPLERS = {
    "official": accumulated_batch_gradients,
    "paper": independent_batch_gradients,
    "per_sample": per_sample_gradients,
}


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def select_parameters(model: nn.Module, params: str = "conv_linear") -> list[tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs the score sums over.

    ``"conv_linear"``: the ``weight`` of every ``nn.Conv2d`` and ``nn.Linear`` (the released
    code's choice); ``"all"``: every parameter with ``requires_grad``.
    """
    _check_choice(params, PARAMETER_SELECTIONS, "parameter selection")
    if params == "all":
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    selected, seen = [], set()
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight is not None:
            if id(module.weight) not in seen and module.weight.requires_grad:
                seen.add(id(module.weight))
                selected.append((f"{name}.weight" if name else "weight", module.weight))
    return selected


@contextlib.contextmanager
def _only_these_require_grad(model: nn.Module, keep: list[nn.Parameter]) -> Iterator[None]:
    """Skip the gradients nobody reads (BatchNorm and bias parameters) and restore after."""
    keep_ids = {id(p) for p in keep}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in keep_ids]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def gradient_moments(
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn = F.cross_entropy,
    mode: str = "official",
    params: str = "conv_linear",
) -> RunningMoments:
    """Stream the gradient samples of ``mode`` into per-parameter moments (float64)."""
    _check_choice(mode, MODES, "mode")
    selected = select_parameters(model, params)
    moments = RunningMoments([n for n, _ in selected])
    tensors = [p for _, p in selected]
    with _only_these_require_grad(model, tensors):
        for grads in _SAMPLERS[mode](model, batches, loss_fn, tensors):
            moments.update(grads)
    for p in tensors:
        p.grad = None
    if moments.count < 2:
        warnings.warn(f"xi-GSNR from {moments.count} gradient sample(s): the variance is zero", RuntimeWarning)
    return moments


def _term(mean: torch.Tensor, var: torch.Tensor, variant: str, xi: float) -> torch.Tensor:
    if variant == "xi_gsnr":
        return (mean * mean / (var + xi)).sum()
    if variant == "sq_mean":
        return (mean * mean).sum()
    if variant == "inv_var_xi":
        return (1.0 / (var + xi)).sum()
    positive = var != 0  # keeps NaN entries, so a NaN gradient still gives NaN
    if variant == "gsnr":
        return (mean[positive] ** 2 / var[positive]).sum()
    if variant == "inv_var":
        return (1.0 / var[positive]).sum()
    raise AssertionError(variant)


def score_moments(
    moments: RunningMoments,
    variant: str = "xi_gsnr",
    xi: float = 1e-8,
    skip_zero_variance_layers: bool = True,
) -> float:
    """The score of one variant from streamed moments, as a Python float."""
    _check_choice(variant, VARIANTS, "variant")
    means, variances = moments.means(), moments.variances()
    total = None
    for name, mean in means.items():
        var = variances[name]
        if skip_zero_variance_layers and not bool((var != 0).any()):
            continue
        term = _term(mean, var, variant, xi)
        total = term if total is None else total + term
    score = 0.0 if total is None else float(total)
    if not math.isfinite(score):
        warnings.warn(f"non-finite {variant} score ({score}): recorded as such", RuntimeWarning)
    return score


def xi_gsnr(
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn = F.cross_entropy,
    *,
    mode: str = "official",
    xi: float = 1e-8,
    variant: str = "xi_gsnr",
    params: str = "conv_linear",
    skip_zero_variance_layers: bool | None = None,
) -> float:
    """xi-GSNR of ``model`` on ``batches`` (an iterable of ``(inputs, targets)``).

    See the module documentation for ``mode``, ``variant``, ``params`` and the layer-skip
    rule (``None`` picks the mode's default). The model is used as given: put it on its
    device and in train mode (as the released code does) before calling.
    """
    return XiGSNR(mode=mode, xi=xi, variant=variant, params=params,
                  skip_zero_variance_layers=skip_zero_variance_layers).score(model, batches, loss_fn)


@dataclass
class XiGSNR:
    """The estimator with its settings, in scikit-learn style: parameters in, no state.

    Parameters
    ----------
    mode : {"official", "paper", "per_sample"}
        How gradient samples are produced (module documentation).
    xi : float
        The smoothing term added to the variance (paper: 1e-8).
    variant : {"xi_gsnr", "gsnr", "sq_mean", "inv_var", "inv_var_xi"}
        Which Table 9 quantity is summed.
    params : {"conv_linear", "all"}
        Which parameters the sum runs over.
    skip_zero_variance_layers : bool or None
        The released layer-skip rule; ``None`` means on for ``official``/``per_sample``
        and off for ``paper``.
    """

    mode: str = "official"
    xi: float = 1e-8
    variant: str = "xi_gsnr"
    params: str = "conv_linear"
    skip_zero_variance_layers: bool | None = None

    def __post_init__(self) -> None:
        _check_choice(self.mode, MODES, "mode")
        _check_choice(self.variant, VARIANTS, "variant")
        _check_choice(self.params, PARAMETER_SELECTIONS, "parameter selection")
        if not (self.xi >= 0):
            raise ValueError(f"xi must be >= 0, got {self.xi}")

    @property
    def layer_skip(self) -> bool:
        if self.skip_zero_variance_layers is None:
            return self.mode != "paper"
        return self.skip_zero_variance_layers

    def moments(self, model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = F.cross_entropy) -> RunningMoments:
        return gradient_moments(model, batches, loss_fn, self.mode, self.params)

    def score_from_moments(self, moments: RunningMoments, variant: str | None = None) -> float:
        return score_moments(moments, variant or self.variant, self.xi, self.layer_skip)

    def score(self, model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = F.cross_entropy) -> float:
        return self.score_from_moments(self.moments(model, batches, loss_fn))

    def settings(self) -> dict:
        """The settings as plain data (recorded with every score)."""
        return {"mode": self.mode, "xi": self.xi, "variant": self.variant, "params": self.params,
                "layer_skip": self.layer_skip}
