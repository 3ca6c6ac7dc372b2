"""MeCo (Jiang et al., NeurIPS 2023): the minimum eigenvalue of the Pearson correlation matrix
of feature maps, summed over layers.

*Zero-Shot Neural Architecture Search with One Data and Single Forward Pass via Minimum
Eigenvalue of Correlation* (Jiang, Wang, Bie; NeurIPS 2023). Released code followed:
github.com/HamsterMimi/MeCo, ``correlation/NAS_Bench_201.py`` (``get_score``, the run behind
the published NAS-Bench-201 figures; the same measure is ``foresight/pruners/measures/meco.py``).

For ONE input image X (the first image of the protocol's batch 0; the released NB201 run
uses a data loader of batch size 1) and every module call i of one forward pass, let
``F_i`` be the module's output for that image reshaped to ``C_i x (H_i W_i)`` (one row per
channel; a logits vector of K classes is ``K x 1``). With ``P(F)`` the C x C Pearson
correlation matrix between its rows (``torch.corrcoef``),

    MeCo = sum_i lambda_min( P(F_i) )

where, as in the released code, entries of P that are NaN or infinite (a channel that is
constant over the positions, e.g. a ``none`` edge's zeros or a 1 x 1 map) are set to 0 before
the eigenvalues are taken, and a module whose minimum eigenvalue is NaN or infinite is left
out of the sum. Correlation matrices are positive semi-definite, so each term is in [0, 1]
up to rounding; a term is 0 whenever C > H W (rank at most H W - 1) or a channel is constant.

What the released code does and this module keeps:

* every module of the network is hooked (``net.named_modules()``, the network itself
  included), so a feature map produced by a container and by its last child counts twice;
  the sum therefore depends on how a network is split into modules (this project's NB201
  network is split as the benchmark's code, not as the MeCo repository's re-implementation,
  e.g. its ``ReLUConvBN`` is one ``nn.Sequential`` where the MeCo copy nests two modules);
* the network is in train mode: BatchNorm normalises the single image with its own
  statistics; the weights are the network's own initialisation (the released run's
  ``init_w_type='none'``).

Differences, for numerical robustness only: correlations and eigenvalues in float64, with
``torch.linalg.eigvalsh`` (the matrix is symmetric) where the released code calls the
general ``torch.linalg.eig`` in float32; terms that are 0 in exact arithmetic come out near
1e-16 instead of near 1e-7.

``meco_opt`` (the released ``--measure meco_opt``): per module, 8 channels are drawn at
random without replacement, the term is ``lambda_min`` of their 8 x 8 correlation matrix
times ``C / 8``. The released code draws with Python's unseeded global ``random``; here from
``random.Random(seed)`` (``seed`` in the proxy's settings), one generator per architecture,
modules in call order. A module of fewer than 8 channels (the released code raises there)
uses all its channels, factor 1.

Inputs: one image (labels unused), ``C x H x W``. Never "not computable" on a network with
at least one module output that has a non-constant channel; a network none of whose module
outputs has a non-constant channel (an output that ignores its input through and through)
raises :class:`~xigsnr_naslib.passes.NotComputable`.

Registered: ``meco``, ``meco_opt``.
"""
from __future__ import annotations

import math
import random
from typing import Sequence

import torch

from xigsnr_naslib.passes import ImageActivations, NotComputable
from xigsnr_naslib.proxies import PassResults, Proxy, register_proxy

__all__ = ["MECO_PASS", "min_correlation_eigenvalue", "meco_terms", "meco_score", "MeCo"]

#: MeCo's pass: every module's output for the first image of batch 0, forwarded alone
MECO_PASS = ImageActivations(types=("Module",), images=1, batch=0)


def _rows(feature: torch.Tensor) -> torch.Tensor:
    """One image's feature map ``C x ...`` as ``C x (rest)`` in float64."""
    return feature.reshape(feature.shape[0], -1).to(torch.float64)


def min_correlation_eigenvalue(rows: torch.Tensor) -> float:
    """lambda_min of the Pearson correlation matrix of the rows of ``rows`` (``C x M``: C
    variables observed at M positions), undefined entries (a constant row) set to 0, as
    MeCo's released code does. NaN when the result is not finite."""
    if rows.shape[0] == 0:
        return math.nan
    if rows.shape[1] < 2:  # one position: every correlation undefined, the zeroed matrix has eigenvalue 0
        return 0.0
    corr = torch.corrcoef(rows) if rows.shape[0] > 1 else torch.ones(1, 1, dtype=rows.dtype)
    if rows.shape[0] == 1 and not bool((rows != rows[:, :1]).any()):
        corr = torch.zeros(1, 1, dtype=rows.dtype)  # a constant single channel: undefined -> 0
    corr = torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))
    value = float(torch.linalg.eigvalsh(corr)[0])
    return value if math.isfinite(value) else math.nan


def _check_any_defined(features: Sequence[tuple[str, torch.Tensor]]) -> None:
    for _, feature in features:
        rows = _rows(feature[0])
        if rows.shape[1] > 1 and bool((rows != rows[:, :1]).any()):
            return
    raise NotComputable("no module output has a channel that varies over its positions: every correlation "
                        "is undefined (the released code would sum zeros)")


def meco_terms(features: Sequence[tuple[str, torch.Tensor]], channels: int | None = None,
               rng: random.Random | None = None) -> list[float]:
    """MeCo's per-module terms (NaN for a left-out module), from ``(name, tensor)`` module
    outputs of one image (``1 x C x ...``, the first image is used).

    ``channels``: None for ``meco`` (all channels); 8 for ``meco_opt`` (that many drawn from
    ``rng``, the term scaled by C / 8; all channels, factor 1, below 8).
    """
    terms = []
    for _, feature in features:
        rows = _rows(feature[0])
        n = rows.shape[0]
        factor = 1.0
        if channels is not None and n > channels:
            rows = rows[sorted(rng.sample(range(n), channels))]
            factor = n / channels
        terms.append(min_correlation_eigenvalue(rows) * factor)
    return terms


def meco_score(features: Sequence[tuple[str, torch.Tensor]], channels: int | None = None,
               rng: random.Random | None = None) -> float:
    """The sum of :func:`meco_terms` over the modules whose term is finite."""
    _check_any_defined(features)
    return float(sum(t for t in meco_terms(features, channels, rng) if math.isfinite(t)))


class MeCo:
    """``compute`` of ``meco`` (``channels=None``) and ``meco_opt`` (``channels=8``, ``seed``)."""

    def __init__(self, channels: int | None = None, seed: int = 0):
        self.channels, self.seed = channels, seed

    def __call__(self, results: PassResults) -> float:
        rng = random.Random(self.seed) if self.channels is not None else None
        return meco_score(results.moments[MECO_PASS], self.channels, rng)

    def __eq__(self, other) -> bool:
        return isinstance(other, MeCo) and (other.channels, other.seed) == (self.channels, self.seed)

    def __hash__(self) -> int:
        return hash((MeCo, self.channels, self.seed))


_SETTINGS = {"images": 1, "batch": 0, "modules": "all", "bn": "train, the image's own statistics"}
register_proxy(Proxy("meco", MeCo(), (MECO_PASS,), dict(_SETTINGS, channels="all"),
                     "MeCo (Jiang et al. 2023): sum over modules of the min eigenvalue of the channel correlation "
                     "matrix of one image's feature map"))
register_proxy(Proxy("meco_opt", MeCo(8, 0), (MECO_PASS,), dict(_SETTINGS, channels=8, channel_seed=0),
                     "MeCo_opt (released variant): 8 random channels per module, term scaled by C/8"))
