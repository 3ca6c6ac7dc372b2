"""The xi-GSNR estimator: gradient samples -> streamed moments -> score.

For gradient samples g_1..g_N of every selected parameter entry theta_j,

    xi-GSNR = sum_j mean(g_j)^2 / (var(g_j) + xi)          (population variance)

Modes (how the samples are produced; see :mod:`xigsnr_naslib.core.gradients`):

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
has no such rule); set ``layer_skip`` to choose.

Non-finite gradients give a non-finite score (NaN or inf) and a warning, never an
exception, so that a batch run records it and goes on.

Several scores from one set of passes: :func:`joint_gradient_moments` streams the
``official`` and ``paper`` samples of the same N backward passes (the batch gradient g_k
and its running sum G_k) into one moments object per mode, and :func:`score_jointly` /
:func:`xi_gsnr_all` score any number of (mode, variant, xi) estimators from them. Each
score equals the single estimator's bit for bit (same samples, same arithmetic).

Execution strategies (``strategy``):

``"loop"`` (default)
    One backward per batch, samples streamed into float64 Welford moments
    (:class:`~xigsnr_naslib.core.statistics.RunningMoments`): memory O(parameters).
``"vmap"``
    All N per-batch gradients in one ``torch.func.vmap`` call with per-group BatchNorm
    statistics, moments and scores computed on the device in flat vectors with no host
    sync until the final scores are read (:class:`~xigsnr_naslib.core.statistics.StackedMoments`).
    For GPUs, where one pass over 8 x 64 images leaves the device idle. Agrees with the
    loop to float32 rounding, not bit for bit: 1e-8 to 1e-6 relative for xi-GSNR in the
    tests (variants without xi, such as 1/var, magnify rounding more). Needs batches
    of one shape; a parameter the loss does not reach counts as zero gradients instead of
    being left out (this changes only sums over such parameters that keep zero-variance
    entries: ``inv_var_xi`` without the layer skip).

The network's state (:func:`~xigsnr_naslib.core.gradients.scoring_state`): every function here that
receives a network scores it in train mode (BatchNorm normalises with each batch's statistics,
the protocol's and the released code's ``net.train()``), whatever mode the caller left it or its
submodules in, with every parameter counted as trainable (``requires_grad=False`` set by the
caller does not enter the score), and gives it back exactly as found: module modes,
parameters, buffers (BatchNorm running statistics), ``requires_grad`` flags and ``.grad``.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.core.gradients import (
    Batch,
    LossFn,
    accumulated_batch_gradients,
    batchnorm_running_stats_off,
    check_batches,
    independent_batch_gradients,
    paired_batch_gradients,
    per_sample_gradients,
    scoring_state,
    stacked_batch_gradients,
)
from xigsnr_naslib.passes.protocol import NotComputable
from xigsnr_naslib.core.statistics import RunningMoments, StackedMoments

__all__ = [
    "MODES",
    "VARIANTS",
    "PARAMETER_SELECTIONS",
    "STRATEGIES",
    "JOINT_MODES",
    "select_parameters",
    "gradient_moments",
    "joint_gradient_moments",
    "score_moments",
    "check_variation",
    "score_tensor",
    "score_jointly",
    "xi_gsnr",
    "xi_gsnr_all",
    "XiGSNR",
]

MODES = ("official", "paper", "per_sample")
VARIANTS = ("xi_gsnr", "gsnr", "sq_mean", "inv_var", "inv_var_xi")
PARAMETER_SELECTIONS = ("conv_linear", "all")
STRATEGIES = ("loop", "vmap")
#: the modes that share one set of passes (per_sample needs passes of its own)
JOINT_MODES = ("official", "paper")

_SAMPLERS = {
    "official": accumulated_batch_gradients,
    "paper": independent_batch_gradients,
    "per_sample": per_sample_gradients,
}


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def select_parameters(model: nn.Module, params: str = "conv_linear") -> list[tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs the score sums over.

    ``"conv_linear"``: the ``weight`` of every ``nn.Conv2d`` and ``nn.Linear`` (the released
    code's choice); ``"all"``: every parameter; both leave out parameters with
    ``requires_grad=False`` (inside a scoring function every parameter requires gradients:
    what a caller froze is scored like the rest).
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
    strategy: str = "loop",
) -> RunningMoments | StackedMoments:
    """Stream the gradient samples of ``mode`` into per-parameter moments (float64)."""
    _check_choice(mode, MODES, "mode")
    return joint_gradient_moments(model, batches, loss_fn, (mode,), params, strategy)[mode]


def joint_gradient_moments(
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn = F.cross_entropy,
    modes: Sequence[str] = JOINT_MODES,
    params: str = "conv_linear",
    strategy: str = "loop",
    update_batchnorm_stats: bool = False,
    abs_mean_modes: Sequence[str] = (),
) -> dict[str, RunningMoments | StackedMoments]:
    """The moments of several modes, ``official`` and ``paper`` from ONE set of passes.

    Returns ``{mode: moments}``. ``per_sample`` runs passes of its own. The network is used
    in train mode and left as found (module documentation). ``update_batchnorm_stats=True``
    lets the BatchNorm layers' running statistics move with every batch, as a training step
    would, and keeps them so (the only change to the network a caller can ask for; the
    moments are the same either way). The moments of ``abs_mean_modes`` also track the mean of ``|g|`` (ZiCo reads it); they
    are streamed (``loop``) whatever ``strategy`` says, since stacked moments have no |g|.
    """
    modes = list(dict.fromkeys(modes))
    for mode in modes:
        _check_choice(mode, MODES, "mode")
    _check_choice(strategy, STRATEGIES, "strategy")
    batches = list(batches)
    check_batches(batches)
    with scoring_state(model, "train", restore_buffers=not update_batchnorm_stats):
        selected = select_parameters(model, params)
        names = [n for n, _ in selected]
        tensors = [p for _, p in selected]
        bn = contextlib.nullcontext() if update_batchnorm_stats else batchnorm_running_stats_off(model)
        abs_modes = [m for m in modes if m in abs_mean_modes]
        with _only_these_require_grad(model, tensors), bn:
            if strategy == "vmap":
                stacked = [m for m in modes if m not in abs_modes]
                moments = _stacked_moments(model, batches, loss_fn, stacked, names, tensors) if stacked else {}
                if abs_modes:
                    moments.update(_streamed_moments(model, batches, loss_fn, abs_modes, names, tensors, abs_modes))
            else:
                moments = _streamed_moments(model, batches, loss_fn, modes, names, tensors, abs_modes)
    return {mode: moments[mode] for mode in modes}


def _streamed_moments(model, batches, loss_fn, modes, names, tensors, abs_mean_modes=()) -> dict[str, RunningMoments]:
    moments = {mode: RunningMoments(names, track_abs_mean=mode in abs_mean_modes) for mode in modes}
    if len(modes) > 1:
        batches = list(batches)  # read more than once
    separate = list(modes)
    if "official" in moments and "paper" in moments:
        for g, running in paired_batch_gradients(model, batches, loss_fn, tensors):
            moments["paper"].update(g)
            moments["official"].update(running)
        separate = [m for m in modes if m not in JOINT_MODES]
    for mode in separate:
        for grads in _SAMPLERS[mode](model, batches, loss_fn, tensors):
            moments[mode].update(grads)
    return moments


def _stacked_moments(model, batches, loss_fn, modes, names, tensors) -> dict[str, StackedMoments]:
    moments: dict[str, StackedMoments] = {}
    if any(m in JOINT_MODES for m in modes):
        grads = stacked_batch_gradients(model, batches, loss_fn, tensors)
        if "paper" in modes:
            moments["paper"] = StackedMoments(names, grads)
        if "official" in modes:
            moments["official"] = StackedMoments(names, grads, cumulative=True)
        del grads
    if "per_sample" in modes:
        images = [(x[i:i + 1], y[i:i + 1]) for x, y in batches for i in range(x.shape[0])]
        moments["per_sample"] = StackedMoments(names, stacked_batch_gradients(model, images, loss_fn, tensors))
    return moments


#: variants undefined where the variance is zero: those entries are left out of the sum
_NEED_POSITIVE_VARIANCE = ("gsnr", "inv_var")


def _term(mean: torch.Tensor, var: torch.Tensor, variant: str, xi: float) -> torch.Tensor:
    """The variant's sum over one tensor's entries (entries with zero variance left out
    where the variant is undefined there): the per-entry terms of :func:`_entry_terms`."""
    terms = _entry_terms(mean, var, variant, xi)
    return terms[var != 0].sum() if variant in _NEED_POSITIVE_VARIANCE else terms.sum()


def check_variation(moments: RunningMoments | StackedMoments) -> None:
    """Raise :class:`~xigsnr_naslib.passes.NotComputable` when no gradient entry varies
    across the samples (or no parameter got a gradient).

    Then every layer's variance is zero: the released code skips every layer and the ratio
    is undefined (mean^2/(0 + xi) of a zero mean). With two or more samples this happens
    when every gradient is zero, e.g. a network whose output does not depend on its input
    (NAS-Bench-201 cells with no path from input to output: 341 of the 15,625). Costs one
    host sync for moments on an accelerator.
    """
    if moments.count < 2:
        raise NotComputable(f"{moments.count} gradient sample(s): a variance needs at least 2")
    _, _, var, _ = moments.flat()
    if var.numel() == 0:
        raise NotComputable("no selected parameter received a gradient")
    if not bool((var != 0).any()):
        raise NotComputable("no gradient varies across the samples (every layer's variance is zero; e.g. the "
                            "network's output does not depend on its input)")


def score_moments(
    moments: RunningMoments,
    variant: str = "xi_gsnr",
    xi: float = 1e-8,
    layer_skip: bool = True,
) -> float:
    """The score of one variant from streamed moments, as a Python float.

    Raises :class:`~xigsnr_naslib.passes.NotComputable` when no gradient varies
    (:func:`check_variation`): the score is undefined, not 0.
    """
    _check_choice(variant, VARIANTS, "variant")
    check_variation(moments)
    means, variances = moments.means(), moments.variances()
    total = None
    for name, mean in means.items():
        var = variances[name]
        if layer_skip and not bool((var != 0).any()):
            continue
        term = _term(mean, var, variant, xi)
        total = term if total is None else total + term
    score = 0.0 if total is None else float(total)
    if not math.isfinite(score):
        warnings.warn(f"non-finite {variant} score ({score}): recorded as such", RuntimeWarning)
    return score


def _entry_terms(mean: torch.Tensor, var: torch.Tensor, variant: str, xi: float) -> torch.Tensor:
    """Per-entry terms of ``variant`` (the paper's Table 9), without boolean indexing (no host
    sync): 0 where the variant is undefined (zero variance without xi)."""
    if variant == "xi_gsnr":
        return mean * mean / (var + xi)
    if variant == "sq_mean":
        return mean * mean
    if variant == "inv_var_xi":
        return 1.0 / (var + xi)
    positive = var != 0  # True for NaN: a NaN gradient still gives NaN
    safe = torch.where(positive, var, torch.ones_like(var))
    if variant == "gsnr":
        return torch.where(positive, mean * mean / safe, torch.zeros_like(var))
    if variant == "inv_var":
        return torch.where(positive, 1.0 / safe, torch.zeros_like(var))
    raise AssertionError(variant)


def score_tensor(
    moments: RunningMoments | StackedMoments,
    variant: str = "xi_gsnr",
    xi: float = 1e-8,
    layer_skip: bool = True,
) -> torch.Tensor:
    """:func:`score_moments` as a 0-dim float64 tensor on the moments' device, with no host sync.

    The same sums in another order (flat per-entry terms, per-layer sums by ``index_add``):
    equal to :func:`score_moments` to float64 rounding.
    """
    _check_choice(variant, VARIANTS, "variant")
    names, mean, var, layer = moments.flat()
    terms = _entry_terms(mean, var, variant, xi)
    per_layer = torch.zeros(len(names), dtype=terms.dtype, device=terms.device).index_add_(0, layer, terms)
    if layer_skip:
        varying = torch.zeros(len(names), dtype=terms.dtype, device=terms.device).index_add_(
            0, layer, (var != 0).to(terms.dtype))
        per_layer = torch.where(varying > 0, per_layer, torch.zeros_like(per_layer))
    return per_layer.sum()


def score_jointly(
    estimators: Sequence["XiGSNR"],
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn = F.cross_entropy,
    strategy: str | None = None,
    update_batchnorm_stats: bool = False,
) -> list[float]:
    """The scores of several estimators from as few passes as possible, in their order.

    Estimators with the same ``params`` share their passes: ``official`` and ``paper`` one
    set, ``per_sample`` another. ``strategy`` (default: the first estimator's) picks the
    execution strategy; with ``"loop"`` each score equals ``estimator.score(...)`` bit for bit.
    The network is scored in train mode and left as found (``update_batchnorm_stats``: as
    :func:`joint_gradient_moments`).
    """
    estimators = list(estimators)
    if not estimators:
        return []
    strategy = strategy or estimators[0].strategy
    _check_choice(strategy, STRATEGIES, "strategy")
    batches = list(batches)
    scores: list = [None] * len(estimators)
    with scoring_state(model, "train", restore_buffers=not update_batchnorm_stats):  # one snapshot for all
        for params in dict.fromkeys(e.params for e in estimators):
            members = [i for i, e in enumerate(estimators) if e.params == params]
            modes = [estimators[i].mode for i in members]
            moments = joint_gradient_moments(model, batches, loss_fn, modes, params, strategy, update_batchnorm_stats)
            for i in members:
                e = estimators[i]
                if strategy == "loop":
                    scores[i] = score_moments(moments[e.mode], e.variant, e.xi, e.layer_skip)
                else:
                    check_variation(moments[e.mode])
                    scores[i] = score_tensor(moments[e.mode], e.variant, e.xi, e.layer_skip)
    if strategy != "loop":  # one host sync for all of them
        device_scores = [i for i, s in enumerate(scores) if isinstance(s, torch.Tensor)]
        values = torch.stack([scores[i] for i in device_scores]).tolist()
        for i, value in zip(device_scores, values):
            scores[i] = value
            if not math.isfinite(value):
                warnings.warn(f"non-finite {estimators[i].variant} score ({value}): recorded as such", RuntimeWarning)
    return [float(s) for s in scores]


def xi_gsnr_all(
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn = F.cross_entropy,
    *,
    modes: Sequence[str] = JOINT_MODES,
    variants: Sequence[str] = VARIANTS,
    xi: float = 1e-8,
    params: str = "conv_linear",
    strategy: str = "loop",
) -> dict[tuple[str, str], float]:
    """Every (mode, variant) score from one set of passes: ``{(mode, variant): score}``.

    The layer-skip rule is each mode's default. ``official`` and ``paper`` share their N
    passes; each result equals ``xi_gsnr(model, batches, mode=..., variant=...)``.
    """
    estimators = [XiGSNR(mode=m, xi=xi, variant=v, params=params, strategy=strategy) for m in modes for v in variants]
    scores = score_jointly(estimators, model, batches, loss_fn, strategy)
    return {(e.mode, e.variant): s for e, s in zip(estimators, scores)}


def xi_gsnr(
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn = F.cross_entropy,
    *,
    mode: str = "official",
    xi: float = 1e-8,
    variant: str = "xi_gsnr",
    params: str = "conv_linear",
    **options,
) -> float:
    """xi-GSNR of ``model`` on ``batches`` (an iterable of ``(inputs, targets)``).

    Parameters
    ----------
    model : nn.Module
        On its device; scored in train mode whatever mode it is in, and left as found.
    batches : iterable of (inputs, targets)
    loss_fn : callable
        ``loss_fn(logits, targets)``, the mean over the batch.
    mode, xi, variant, params
        As :class:`XiGSNR` (module documentation).
    **options
        The rarely set ones, as :class:`XiGSNR`: ``layer_skip`` (bool, or ``None`` for the
        mode's default) and ``strategy`` (``"loop"`` or ``"vmap"``). Another name is a
        ``TypeError`` naming it and these.
    """
    for name in options:
        if name not in XI_GSNR_OPTIONS:
            raise TypeError(f"xi_gsnr() got an unknown option {name!r}; choose from: {', '.join(XI_GSNR_OPTIONS)} "
                            "(or mode, xi, variant, params)")
    return XiGSNR(mode=mode, xi=xi, variant=variant, params=params, **options).score(model, batches, loss_fn)


#: the keyword options of :func:`xi_gsnr` besides mode, xi, variant and params
XI_GSNR_OPTIONS = ("layer_skip", "strategy")


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
    layer_skip : bool or None
        The released layer-skip rule; ``None`` means on for ``official``/``per_sample``
        and off for ``paper`` (resolved when the estimator is made, so
        ``XiGSNR(**estimator.settings())`` is the same estimator).
    strategy : {"loop", "vmap"}
        How the passes are executed (module documentation); not part of :meth:`settings`,
        since the strategies give the same scores.
    """

    mode: str = "official"
    xi: float = 1e-8
    variant: str = "xi_gsnr"
    params: str = "conv_linear"
    layer_skip: bool | None = None
    strategy: str = "loop"

    def __post_init__(self) -> None:
        if self.layer_skip is None:
            self.layer_skip = self.mode != "paper"
        _check_choice(self.mode, MODES, "mode")
        _check_choice(self.strategy, STRATEGIES, "strategy")
        _check_choice(self.variant, VARIANTS, "variant")
        _check_choice(self.params, PARAMETER_SELECTIONS, "parameter selection")
        if not (self.xi >= 0):
            raise UsageError(f"xi must be >= 0, got {self.xi}")

    def moments(self, model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = F.cross_entropy) -> RunningMoments:
        """The moments of ``model``'s gradient samples (scored in train mode, left as found)."""
        return gradient_moments(model, batches, loss_fn, self.mode, self.params, self.strategy)

    def score_from_moments(self, moments: RunningMoments, variant: str | None = None) -> float:
        return score_moments(moments, variant or self.variant, self.xi, self.layer_skip)

    def score(self, model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = F.cross_entropy) -> float:
        """The score of ``model`` on ``batches``: in train mode (BatchNorm normalises with each
        batch's statistics) whatever mode ``model`` is in, every parameter counted as trainable;
        ``model`` is left exactly as found (module modes, parameters, buffers, ``requires_grad``,
        ``.grad``)."""
        return self.score_from_moments(self.moments(model, batches, loss_fn))

    def settings(self) -> dict:
        """The settings as plain data (recorded with every score)."""
        return {"mode": self.mode, "xi": self.xi, "variant": self.variant, "params": self.params,
                "layer_skip": self.layer_skip}
