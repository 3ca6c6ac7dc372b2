"""VKDNW (Tybl & Neumann, CVPR 2025): the entropy of the spectrum of the Fisher information
of a network's weights.

*Training-free Neural Architecture Search through Variance of Knowledge of Deep Network
Weights* (Ondřej Týbl, Lukáš Neumann; CVPR 2025). Released code followed:
github.com/ondratybl/VKDNW, ``NB201/ZeroShotProxy/compute_vkdnw_score.py``
(``compute_nas_score``, ``get_fisher``, ``cholesky_covariance``, ``get_jacobian_index``) as
called by its NB201 run (``tss_general_.py``: batch 64, ``params_grad_len=128``, one weight
per parameter tensor, Gaussian-noise input, Kaiming normal fan-in re-initialisation).

Weights: the first entry of each of the first 128 parameter tensors (``named_parameters()``
order; all of them when there are fewer), P weights theta. Input: B = 64 images of N(0, 1)
noise of the protocol's batch shape (seeded), the network re-initialised (seeded); see
:class:`~xigsnr_naslib.passes.LogitJacobians`, which gives per image n the ``K x P`` Jacobian
``J_n`` of the K logits w.r.t. theta (the network in eval mode with a fresh network's running
statistics, as the released code evaluates it: its BatchNorm layers only apply their affine
parameters) and the logits z_n.

With smoothed class probabilities ``p_n = (1 - alpha) softmax(z_n) + alpha / K`` (alpha = 0.05)
and the multinomial covariance ``Sigma_n = diag(p_n) - p_n p_n^T = L_n L_n^T``, where ``L_n`` is
its lower-triangular Cholesky factor in closed form (Tanabe & Sagae 1992: with
``q_j = 1 - sum_{k<=j} p_k``, ``L_jj = sqrt(p_j q_j / q_{j-1})`` and
``L_ij = -p_i sqrt(p_j / (q_{j-1} q_j))`` for i > j; the last column is zero):

* ``vkdnw`` (the released code): ``F = mean_n (L_n J_n)^T (L_n J_n) = mean_n J_n^T L_n^T L_n J_n``;
* ``vkdnw_fisher``: the Fisher information of the smoothed model,
  ``F = mean_n J_n^T Sigma_n J_n = mean_n (L_n^T J_n)^T (L_n^T J_n)``, what the paper describes.
  The released code multiplies by ``L_n`` where the Fisher information needs ``L_n^T``; the
  two matrices differ (their eigenvalues too) in general.

Then, with lambda the P eigenvalues of F (``eigvalsh`` in float64; the released code takes
the singular values of the PSD F, the same numbers), ``d_1..d_9`` its deciles
(``torch.quantile`` at 0.1, ..., 0.9, linear interpolation) and ``t = d / (sum_k |d_k| + 1e-10)``,

    VKDNW = -sum_{k=1..9} t_k log(t_k + 1e-10)

(at most log 9: a flat spectrum). The epsilons are absolute, as released: a spectrum whose deciles sum
to much less than 1e-10 gives t near 0 and a score near 0 (seen on NDS DARTS networks, whose
re-initialised Fisher spectrum lies near 1e-16).

What the paper's tables rank is not this entropy alone. Its ``VKDNW_single`` (Table 1: Kendall
tau 0.618 on all of NB201 CIFAR-10) is the dense rank of the pair (number of trainable
layers, VKDNW), i.e. architectures ordered by their parameter-tensor count ℵ and, within an
equal count, by VKDNW (``NB201/tss_utils.py``, ``vkdnw_rank``, at commit 19cad2f of the
released repository; ℵ is ``len(named_parameters())``, ``compute_vkdnw_score.py``). Here:

* ``vkdnw_single`` = ``trainable_layers + vkdnw / (2 log 9)``: since ℵ is a whole number and
  ``0 <= vkdnw <= log 9``, the second term lies in [0, 1/2] and only breaks ties of ℵ, so
  the order is exactly the lexicographic one, on any space. A derived proxy (members
  ``trainable_layers`` and ``vkdnw``, computed with the other proxies' passes); not
  computable where ``vkdnw`` is not (the released code scores such a network's entropy 0).
* ``VKDNW_agg`` (Table 1: tau 0.750) is AZ-NAS's rule, the sum of log-ranks, over five scores:
  VKDNW_single, AZ-NAS's expressivity and trainability, FLOPs and Jacov
  (``tss_utils.py``); a population rule, in
  :data:`xigsnr_naslib.proxies.ensemble.POPULATION_AGGREGATES` as ``vkdnw_agg``.

Not computable (:class:`~xigsnr_naslib.passes.NotComputable`): every decile zero (``d_9 = 0``:
about 90 % of the eigenvalues or more are zero, e.g. logits that do not depend on the selected
weights), where the normalised deciles are 0 / 0 (the released code's epsilons would give 0).
Non-finite Jacobians give NaN (recorded as such).

Registered: ``vkdnw``, ``vkdnw_fisher``, ``vkdnw_single``.
"""
from __future__ import annotations

import math

import torch

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.passes import JacobiansOfLogits, LogitJacobians, NotComputable
from xigsnr_naslib.proxies import PassResults, Proxy, register_compute, register_proxy

__all__ = ["VKDNW_PASS", "ALPHA", "smoothed_probabilities", "multinomial_cholesky", "fisher_matrices",
           "decile_entropy", "vkdnw_score", "LexicographicSize"]

#: the Jacobians both proxies read: batch 0's shape of Gaussian noise, Kaiming normal fan-in, seed 0
VKDNW_PASS = LogitJacobians(batch=0, source="gaussian", init="kaiming_normal_fan_in", seed=0, max_tensors=128)
#: label smoothing of the class probabilities (released ``alpha = 0.05``)
ALPHA = 0.05
#: the released code's epsilon (normalisation and logarithm)
EPS = 1e-10
DECILES = tuple(k / 10 for k in range(1, 10))


def smoothed_probabilities(logits: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """``(1 - alpha) softmax(logits) + alpha / K`` row-wise (``N x K`` float64)."""
    k = logits.shape[-1]
    return torch.softmax(logits.to(torch.float64), dim=-1) * (1 - alpha) + alpha / k


def multinomial_cholesky(p: torch.Tensor) -> torch.Tensor:
    """Lower-triangular ``L`` (``N x K x K``) with ``L L^T = diag(p) - p p^T`` for each row of
    ``p`` (``N x K``, positive, rows summing to 1), in closed form; its last column is zero."""
    n, k = p.shape
    q = 1 - torch.cumsum(p, dim=1)                       # q_j = 1 - sum_{i<=j} p_i
    q[:, -1] = 0.0
    q_prev = torch.cat([torch.ones(n, 1, dtype=p.dtype, device=p.device), q[:, :-1]], dim=1)  # q_{j-1}
    diag = torch.sqrt(torch.clamp(p * q / q_prev, min=0.0))
    safe_q = torch.where(q > 0, q, torch.ones_like(q))
    below = -p[:, :, None] * torch.sqrt(p[:, None, :] / (q_prev[:, None, :] * safe_q[:, None, :]))
    below = below * (q > 0)[:, None, :]                   # column K (q_K = 0) is zero
    lower = torch.tril(below, diagonal=-1)
    return lower + torch.diag_embed(diag)


def fisher_matrices(result: JacobiansOfLogits, alpha: float = ALPHA) -> tuple[torch.Tensor, torch.Tensor]:
    """``(released, fisher)``: ``mean_n J^T L^T L J`` and ``mean_n J^T Sigma J`` (``P x P``, float64)."""
    j = result.jacobians.to(torch.float64)                # N x K x P
    lower = multinomial_cholesky(smoothed_probabilities(result.logits, alpha))
    lj = lower @ j                                        # N x K x P
    ltj = lower.transpose(1, 2) @ j
    released = (lj.transpose(1, 2) @ lj).mean(dim=0)
    fisher = (ltj.transpose(1, 2) @ ltj).mean(dim=0)
    return released, fisher


def decile_entropy(matrix: torch.Tensor) -> float:
    """``-sum t log(t + 1e-10)`` of the normalised deciles t of the eigenvalues of the
    symmetric ``matrix``; NaN for a non-finite matrix.

    Raises NotComputable when every decile is zero.
    """
    if not bool(torch.isfinite(matrix).all()):
        return math.nan
    eigenvalues = torch.linalg.eigvalsh(matrix.to(torch.float64)).abs()  # = the singular values (released)
    deciles = torch.quantile(eigenvalues, torch.tensor(DECILES, dtype=torch.float64))
    norm = float(deciles.abs().sum())
    if norm == 0.0:
        raise NotComputable("every decile of the Fisher spectrum is zero: the normalised deciles are undefined")
    t = deciles / (norm + EPS)
    return float(-(t * torch.log(t + EPS)).sum())


def vkdnw_score(result: JacobiansOfLogits, form: str = "released") -> float:
    """VKDNW from the pass's Jacobians; ``form`` "released" (``vkdnw``) or "fisher" (``vkdnw_fisher``)."""
    released, fisher = fisher_matrices(result)
    if form not in ("released", "fisher"):
        raise UsageError(f"unknown VKDNW form {form!r}; choose one of: released, fisher")
    return decile_entropy(released if form == "released" else fisher)


_SETTINGS = {"input": "gaussian", "batch": 0, "init": "kaiming_normal_fan_in", "seed": VKDNW_PASS.seed,
             "weights": "first entry of each of the first 128 parameter tensors", "alpha": ALPHA,
             "bn": "eval, running statistics of a fresh network (mean 0, variance 1)"}


@register_compute("vkdnw", (VKDNW_PASS,), settings=dict(_SETTINGS, matrix="mean J^T L^T L J (released)"),
                  description="VKDNW (Tybl & Neumann 2025): entropy of the deciles of the Fisher spectrum, as released")
def _vkdnw(results: PassResults) -> float:
    return vkdnw_score(results.moments[VKDNW_PASS], "released")


@register_compute("vkdnw_fisher", (VKDNW_PASS,), settings=dict(_SETTINGS, matrix="mean J^T Sigma J (Fisher)"),
                  description="VKDNW on the Fisher information J^T Sigma J (the paper's definition)")
def _vkdnw_fisher(results: PassResults) -> float:
    return vkdnw_score(results.moments[VKDNW_PASS], "fisher")



class LexicographicSize:
    """``compute`` of ``vkdnw_single``: ``values[count] + values[score] / (2 * bound)`` for a
    whole-number ``count`` and a ``score`` in ``[0, bound]``: orders by the count, then by
    the score within an equal count."""

    def __init__(self, count: str = "trainable_layers", score: str = "vkdnw", bound: float = math.log(9)):
        self.count, self.score, self.bound = count, score, bound

    def __call__(self, values) -> float:
        count, score = float(values[self.count]), float(values[self.score])
        if count != int(count) or not 0.0 <= score <= self.bound + 1e-12:
            raise NotComputable(f"{self.count} = {count!r} must be a whole number and {self.score} = {score!r} "
                                f"in [0, {self.bound:.4f}] for the lexicographic order")
        return count + score / (2.0 * self.bound)

    def __eq__(self, other) -> bool:
        return isinstance(other, LexicographicSize) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((self.count, self.score, self.bound))


register_proxy(Proxy("vkdnw_single", LexicographicSize(), (), {"order": "trainable_layers, then vkdnw"},
                     "VKDNW_single (Tybl & Neumann 2025, Table 1): the number of trainable layers, ties broken "
                     "by VKDNW", needs_data=True, members=("trainable_layers", "vkdnw")))
