"""The four components of AZ-NAS (Lee & Ham, CVPR 2024): expressivity, progressivity,
trainability and complexity.

*AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search* (Junghyup Lee,
Bumsub Ham; CVPR 2024). Released code followed: github.com/cvlab-yonsei/AZ-NAS,
``NB201/ZeroShotProxy/compute_az_nas_score.py`` (``compute_nas_score``) with the feature
extraction of ``NB201/custom/tss_model.py`` (``extract_cell_features``) and the run of
``NB201/tss_general.ipynb`` (the published NAS-Bench-201 figures).

One forward pass gives the feature maps after each stage l = 0..L (the stem, then every
cell and reduction block: :meth:`feature_stages` of the network; 18 maps for NB201), each
``f_l`` of shape ``B x C x H x W``. The released NB201 run feeds B = 64 images of Gaussian
noise (AZ-NAS is not among the notebook's real-input proxies) to a network re-initialised
with Kaiming normal fan-in weights (:mod:`xigsnr_naslib.core.initialisation`), in train mode;
so do these proxies (:class:`~xigsnr_naslib.passes.StageFeatures`: noise of the shape of the
protocol's batch 0, drawn with ``seed``; the weights re-drawn with ``seed``; the protocol's own
initialisation is not used).

* Expressivity. Per stage, the C x C covariance of the channel vectors over the B H W
  positions, ``S_l = X^T X / (B H W)`` with X the centred ``(B H W) x C`` matrix, its
  eigenvalues s (``eigvalsh``), ``p = s / sum(s)`` and the entropy
  ``E_l = -sum_k p_k log(p_k + 1e-8)``::

      aznas_expressivity = sum_{l=0..L} E_l

* Progressivity: ``aznas_progressivity = min_{l=1..L} (E_l - E_{l-1})``.
* Trainability. For each stage l = L..1 (in that order, as the released code draws its
  random numbers), a random sign tensor ``g_out`` (+1/-1 with probability 1/2 each, the
  shape of ``f_l``) is back-propagated to the stage's input: ``g_in = d f_l / d f_{l-1}^T
  g_out`` (``torch.autograd.grad``; zeros where ``f_l`` does not depend on ``f_{l-1}``). When
  ``g_in`` equals ``g_out`` exactly (the stage is the identity) the stage's score is ``-inf``;
  otherwise, after ``PixelUnshuffle`` of ``g_in`` to ``g_out``'s resolution at a reduction,
  ``M = g_in^T g_out / (B H_l W_l)`` (rows ``C_{l-1} r^2``, columns ``C_l``, both flattened
  over the positions), ``sigma`` its largest singular value, and the stage scores
  ``-sigma - 1 / (sigma + 1e-6) + 2`` (0 at sigma = 1, negative otherwise)::

      aznas_trainability = mean over the L stages of the stage scores

* Complexity: the network's FLOPs (multiply-adds of its Conv2d and Linear layers for one
  image of the dataset's resolution, :func:`xigsnr_naslib.core.complexity.count_flops`; the
  released NB201 run reads the benchmark's FLOPs from its API: the same ranking up to the
  layers the benchmark also counts).

As in the released code, a NaN expressivity, progressivity or trainability (an entropy of a
feature map whose covariance is zero, e.g. the zeros of a cell whose edges into its output
are all ``none``) is reported as ``-inf``, the worst rank, and so is a trainability with an
identity stage; ``-inf`` is recorded as a non-finite score ("-inf") and ranks below every
finite score in the metrics.

Not computable (:class:`~xigsnr_naslib.passes.NotComputable`): a network that does not name
its feature stages (no ``feature_stages()``), or with fewer than two stages (progressivity and
trainability need one transition); a reduction whose input resolution is not a whole multiple
of its output's (trainability).

**The AZ-NAS score itself is not a proxy here**: it ranks a population. With n architectures
and ``rank_c`` the ascending rank (1 = lowest, ``scipy.stats.rankdata``) of each architecture
by component c of :data:`AZNAS_COMPONENTS`, the published aggregate is

    AZ-NAS = sum_c log( rank_c / n )

(the sum of the logarithms of the normalised ranks; ``NB201/tss_general.ipynb``), the
architecture with the largest sum being the best.

Registered: ``aznas_expressivity``, ``aznas_progressivity``, ``aznas_trainability``,
``aznas_complexity``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from xigsnr_naslib.core.complexity import count_flops
from xigsnr_naslib.passes import NotComputable, StageFeatureMaps, StageFeatures
from xigsnr_naslib.proxies import PassResults, register_compute

__all__ = ["AZNAS_COMPONENTS", "AZNAS_AGGREGATION", "AZNAS_PASS", "stage_entropies", "expressivity",
           "progressivity", "stage_trainabilities", "trainability"]

#: the components of the AZ-NAS aggregate (each: higher is better)
AZNAS_COMPONENTS = ("aznas_expressivity", "aznas_progressivity", "aznas_trainability", "aznas_complexity")
#: the published aggregation over a population: sum over the components of log(rank / n)
AZNAS_AGGREGATION = "sum of log(rank / n) over the components, ranks ascending (1 = lowest score)"

#: the pass the three feature-based components share: Gaussian noise of batch 0's shape,
#: Kaiming-normal fan-in re-initialisation, both from seed 0
AZNAS_PASS = StageFeatures(batch=0, source="gaussian", init="kaiming_normal_fan_in", seed=0)

#: the epsilons of the released code (inside the entropy's logarithm; in the trainability)
ENTROPY_EPS = 1e-8
SIGMA_EPS = 1e-6


def _positions_by_channels(feature: torch.Tensor) -> torch.Tensor:
    """``B x C x H x W`` (or ``B x C``) as ``(B H W) x C`` float64."""
    f = feature.detach().to(torch.float64)
    if f.dim() == 2:
        return f
    return f.movedim(1, -1).reshape(-1, f.shape[1])


def stage_entropies(features: Sequence[torch.Tensor]) -> list[float]:
    """``E_l`` per feature map: the entropy of the normalised eigenvalues of its channel
    covariance over positions (NaN when the covariance is zero)."""
    out = []
    for feature in features:
        x = _positions_by_channels(feature)
        x = x - x.mean(dim=0, keepdim=True)
        sigma = x.T @ x / x.shape[0]
        s = torch.linalg.eigvalsh(sigma)
        p = s / s.sum()
        out.append(float(-(p * torch.log(p + ENTROPY_EPS)).sum()))
    return out


def _nan_to_worst(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def _maps(results: PassResults) -> StageFeatureMaps:
    maps = results.moments[AZNAS_PASS]
    if maps.reason is not None:
        raise NotComputable(maps.reason)
    if len(maps.features) < 2:
        raise NotComputable(f"{len(maps.features)} feature stage(s): AZ-NAS needs at least two")
    return maps


def expressivity(entropies: Sequence[float]) -> float:
    """``sum_l E_l`` (``-inf`` when any is NaN, as released)."""
    return _nan_to_worst(float(sum(entropies)))


def progressivity(entropies: Sequence[float]) -> float:
    """``min_l (E_l - E_{l-1})`` (``-inf`` when any is NaN, as released)."""
    diffs = [b - a for a, b in zip(entropies[:-1], entropies[1:])]
    return _nan_to_worst(math.nan if any(math.isnan(d) for d in diffs) else min(diffs))


def stage_trainabilities(features: Sequence[torch.Tensor], generator: torch.Generator) -> list[float]:
    """The trainability score of each stage transition, from the last stage to the first
    (the released order); ``-inf`` for an identity stage.

    ``features`` must carry their autograd graph (:class:`~xigsnr_naslib.passes.StageFeatures`);
    the graph is kept (``retain_graph=True``). ``generator`` (CPU) draws the random signs.
    """
    scores = []
    for i in reversed(range(1, len(features))):
        f_out, f_in = features[i], features[i - 1]
        g_out = (torch.bernoulli(torch.full(f_out.shape, 0.5), generator=generator) - 0.5) * 2
        g_out = g_out.to(device=f_out.device, dtype=f_out.dtype)
        g_in = None
        if f_out.requires_grad and f_in.requires_grad:
            g_in = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=True, allow_unused=True)[0]
        if g_in is None:
            g_in = torch.zeros_like(f_in)
        g_in = g_in.detach()
        if g_out.shape == g_in.shape and bool(torch.equal(g_in, g_out)):
            scores.append(-math.inf)
            continue
        if g_in.dim() == 4 and g_out.shape[2:] != g_in.shape[2:]:
            (hi, wi), (ho, wo) = g_in.shape[2:], g_out.shape[2:]
            if hi % ho or wi % wo or hi // ho != wi // wo:
                raise NotComputable(f"stage {i}: input resolution {hi}x{wi} is not a whole multiple of the "
                                    f"output's {ho}x{wo}")
            g_in = F.pixel_unshuffle(g_in, hi // ho)
        a = _positions_by_channels(g_in)
        b = _positions_by_channels(g_out)
        mat = a.T @ b / b.shape[0]
        sigma = float(torch.linalg.matrix_norm(mat, ord=2))
        scores.append(-sigma - 1.0 / (sigma + SIGMA_EPS) + 2.0)
    return scores


def trainability(scores: Sequence[float]) -> float:
    """The mean stage score (``-inf`` when any is ``-inf`` or NaN, as released)."""
    return _nan_to_worst(float(sum(scores) / len(scores)))


_SETTINGS = {"input": "gaussian", "batch": 0, "init": "kaiming_normal_fan_in", "seed": AZNAS_PASS.seed,
             "stages": "feature_stages()"}


@register_compute("aznas_expressivity", (AZNAS_PASS,), settings=_SETTINGS,
                  description="AZ-NAS expressivity: sum over stages of the eigenvalue entropy of the feature covariance")
def _expressivity(results: PassResults) -> float:
    return expressivity(stage_entropies(_maps(results).features))


@register_compute("aznas_progressivity", (AZNAS_PASS,), settings=_SETTINGS,
                  description="AZ-NAS progressivity: least increase of that entropy from one stage to the next")
def _progressivity(results: PassResults) -> float:
    return progressivity(stage_entropies(_maps(results).features))


@register_compute("aznas_trainability", (AZNAS_PASS,), settings=dict(_SETTINGS, signs_seed=AZNAS_PASS.seed),
                  description="AZ-NAS trainability: mean over stages of -s - 1/s + 2, s the top singular value of "
                              "the stage Jacobian's random projection")
def _trainability(results: PassResults) -> float:
    maps = _maps(results)
    return trainability(stage_trainabilities(maps.features, torch.Generator().manual_seed(AZNAS_PASS.seed)))


@register_compute("aznas_complexity", settings={"flops": "Conv2d/Linear multiply-adds"},
                  description="AZ-NAS complexity: FLOPs of one image", needs_data=False)
def _complexity(results: PassResults) -> float:
    return float(count_flops(results.model, results.input_shape))

