"""SWAP (Peng et al., ICLR 2024): the number of distinct sample-wise activation patterns.

*SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS* (Peng, Song, Fayek,
Ciesielski, Chang; ICLR 2024). Released code followed: github.com/pym1024/SWAP,
``src/metrics/swap.py`` (``SWAP``, ``SampleWiseActivationPatterns``).

A batch of B images goes through the network; every ``nn.ReLU`` module whose input is a
4-D feature map contributes its output, flattened per image, so that all of them together
form a ``B x M`` matrix A (M post-activation neurons). Each neuron j has the binary pattern
``sign(A[:, j])`` in {0, 1}^B over the images (a ReLU output is 0 or positive). Then

    SWAP = #{ distinct patterns among the M neurons }

(``torch.unique`` of the columns of ``sign(A)`` in the released code; here each column is
packed into an integer, bit b = image b, and the integers are counted with ``torch.unique``:
the same count for B <= 62). It lies between 1 and min(M, 2^B).

Settings, as the released code: B = 16 images (its ``--input_samples``; here the first 16
of the protocol's batch 0), labels unused, the network in train mode (BatchNorm normalises
with those 16 images' statistics). The released evaluation script averages the score over
32 re-initialisations of each network (weights ~ N(0, 1)); this proxy scores the one
network the protocol built (its initialisation seed), as every other proxy here does.

The paper's regularised SWAP multiplies the score by ``exp(-(params_k - mu)^2 / sigma)``
(``cal_regular_factor``; params_k the parameter count in thousands, auxiliary heads left out)
with mu and sigma chosen per search space. No NAS-Bench-201 values of mu and sigma were found
in the released code, so no regularised proxy is registered; :func:`regularised_swap_proxy`
builds one for given values (its name and settings carry them).

Not computable (:class:`~xigsnr_naslib.passes.NotComputable`): a network with no ReLU module
applied to a 4-D feature map. Non-finite activations give a NaN score (recorded as such).

Registered: ``swap``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.passes import ImageActivations, NotComputable
from xigsnr_naslib.proxies import PassResults, Proxy, register_compute

__all__ = ["SWAP_IMAGES", "SWAP_PASS", "activation_patterns", "count_distinct_patterns", "swap_score",
           "regular_factor", "regularised_swap_proxy"]

#: images per score, as the released code (``--input_samples 16``)
SWAP_IMAGES = 16
#: SWAP's pass: the ReLU outputs for the first 16 images of batch 0
SWAP_PASS = ImageActivations(types=("ReLU",), images=SWAP_IMAGES, batch=0)


def activation_patterns(activations: Sequence[tuple[str, torch.Tensor]]) -> torch.Tensor:
    """The ``B x M`` matrix of every 4-D ReLU output flattened per image (in call order).

    Raises NotComputable when no activation is 4-D (``B x C x H x W``).
    """
    maps = [a for _, a in activations if a.dim() == 4]
    if not maps:
        raise NotComputable("no ReLU module is applied to a 4-D feature map")
    return torch.cat([a.reshape(a.shape[0], -1) for a in maps], dim=1)


def count_distinct_patterns(a: torch.Tensor) -> float:
    """The number of distinct columns of ``sign(a)`` (``a``: ``B x M``); NaN when ``a`` has a
    non-finite entry. Exact: columns are packed into 64-bit integers for B <= 62, compared
    whole otherwise."""
    if not bool(torch.isfinite(a).all()):
        return math.nan
    signs = torch.sign(a)
    if bool((signs < 0).any()) or a.shape[0] > 62:  # negative entries (not ReLU outputs) or many images
        return float(torch.unique(signs.T, dim=0).shape[0])
    weights = (2 ** torch.arange(a.shape[0], dtype=torch.int64)).to(a.device)
    codes = ((signs > 0).to(torch.int64) * weights[:, None]).sum(dim=0)
    return float(torch.unique(codes).numel())


def swap_score(activations: Sequence[tuple[str, torch.Tensor]]) -> float:
    """SWAP from ``(name, ReLU output)`` pairs of one batch."""
    return count_distinct_patterns(activation_patterns(activations))


@register_compute("swap", (SWAP_PASS,), settings={"images": SWAP_IMAGES, "batch": 0, "modules": "ReLU on 4-D maps"},
                  description="SWAP (Peng et al. 2024): distinct sample-wise activation patterns of the ReLU neurons")
def _swap(results: PassResults) -> float:
    return swap_score(results.moments[SWAP_PASS])


def regular_factor(n_params: float, mu: float, sigma: float) -> float:
    """``exp(-(n_params / 1000 - mu)^2 / sigma)``: SWAP's size regulariser (released
    ``cal_regular_factor``; parameters counted in thousands)."""
    return math.exp(-((n_params / 1e3 - mu) ** 2) / sigma)


class RegularisedSWAP:
    """``compute`` of a regularised SWAP proxy with fixed ``mu`` and ``sigma``."""

    def __init__(self, mu: float, sigma: float):
        self.mu, self.sigma = mu, sigma

    def __call__(self, results: PassResults) -> float:
        n_params = sum(p.numel() for n, p in results.model.named_parameters() if "auxiliary" not in n)
        return swap_score(results.moments[SWAP_PASS]) * regular_factor(n_params, self.mu, self.sigma)


def regularised_swap_proxy(mu: float, sigma: float) -> Proxy:
    """A ``swap_regularised_mu<mu>_sigma<sigma>`` proxy: SWAP x :func:`regular_factor` (not
    registered: pass it to a Study as an object, or register it)."""
    if sigma <= 0:
        raise UsageError(f"sigma must be positive, got {sigma}")
    return Proxy(f"swap_regularised_mu{mu:g}_sigma{sigma:g}", RegularisedSWAP(mu, sigma), (SWAP_PASS,),
                 {"images": SWAP_IMAGES, "batch": 0, "mu": mu, "sigma": sigma, "params_unit": 1000},
                 "SWAP times exp(-(params_k - mu)^2 / sigma)")

