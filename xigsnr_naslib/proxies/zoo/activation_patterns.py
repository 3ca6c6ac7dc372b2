"""Proxies from how a batch's images differ inside an untrained network: input Jacobians and
binary activation codes.

| name | score | pass it reads |
|:---|:---|:---|
| ``nwot`` | log \\|det K\\|, K_ij = units where images i, j have the same ReLU code, every module whose class name contains "ReLU" (the authors' final code) | ``CodeKernel("ReLU")`` |
| ``nwot_naslib`` | the same over leaf modules only (NASLib: each ReLU counted once) | ``CodeKernel("ReLU", leaves_only=True)`` |
| ``jacov`` | -sum_i [log(v_i + k) + 1/(v_i + k)], v the eigenvalues of the correlation matrix of the images' input Jacobians, k = 1e-5 (NASWOT's first version) | ``InputGradients(0)`` |
| ``epe_nas`` | sum_c \\|sum_ij log(\\|C^c_ij\\| + k)\\|, C^c the Jacobian correlations of the images of class c (EPE-NAS; over 100 classes the mean pairwise difference) | ``InputGradients(0)`` |

Sources. ``nwot``: Mellor et al., *Neural Architecture Search without Training* (ICML 2021),
Eq. 2 and the released ``score_networks.py`` (BayesWatch/nas-without-training): hooks on every
module with ``'ReLU' in str(type(module))``, the code of its input, ``K += c c^T + (1-c)(1-c)^T``,
the score ``np.linalg.slogdet(K)[1]``. That test matches NAS-Bench-201's ``ReLUConvBN``
wrappers as well as the ``nn.ReLU`` inside them, so every convolution's input code counts
twice there; NASLib (``measures/nwot.py``) skips its own wrapper classes, which is
``nwot_naslib``. The released code also counts only modules its Jacobian pass reached
backwards; here every matched module called in the forward pass counts (on NAS-Bench-201 every
ReLU reaches the output, so the two agree). ``jacov``: the first version of the same paper
(arXiv:2006.04647v1), as NASLib's ``measures/jacov.py`` computes it: rows are the gradients
of each image's summed logits w.r.t. its input (``y.backward(ones)``), ``np.corrcoef`` of the
rows, eigenvalues (``eigvalsh`` here: the matrix is symmetric; NASLib's ``eig`` gives the same
values up to rounding). ``epe_nas``: Lopes et al., *EPE-NAS* (ICANN 2021), as NASLib's
``measures/epe_nas.py`` computes it (from the authors' code): per class, ``np.corrcoef`` of the
Jacobians of its images, ``s_c = sum log(|corr| + 1e-5)``; up to 100 classes the score is
``sum_c |s_c|``, above 100 each ``s_c`` is divided by the class's image count and the score is
``sum_{c, c'} |s_c - s_c'| / (classes seen)`` (where a class with one image is skipped, as
the released code's exception handler does).

Inputs: batch 0 of the protocol (N images ``N x C x H x W``; labels only for ``epe_nas``).

Not computable (:class:`~xigsnr_naslib.passes.NotComputable`): ``nwot`` when no module
matches (a network without ReLU) or K is singular (log|K| = -inf: two images with the same
code everywhere); ``jacov`` / ``epe_nas`` when an image's Jacobian is constant (zero
variance: its correlations are undefined, e.g. a network whose output does not depend on the
input), or when an eigenvalue is at or below -k (log undefined).
"""
from __future__ import annotations

import numpy as np

from xigsnr_naslib.passes import CodeKernel, InputGradients, NotComputable
from xigsnr_naslib.proxies import PassResults, Proxy, register_compute, register_proxy

__all__ = ["nwot_score", "jacov_score", "epe_nas_score", "JACOBIANS", "RELU_CODES", "RELU_LEAF_CODES", "K_JACOV"]

#: the Jacobian pass jacov and epe_nas share
JACOBIANS = InputGradients(batch=0)
#: NASWOT's kernel as the authors' code builds it, and as NASLib does
RELU_CODES = CodeKernel("ReLU", leaves_only=False, batch=0)
RELU_LEAF_CODES = CodeKernel("ReLU", leaves_only=True, batch=0)
#: the regulariser of NASWOT's first version and EPE-NAS
K_JACOV = 1e-5


def nwot_score(kernel: np.ndarray) -> float:
    """log |det K| of NASWOT's kernel (``N x N``); ``NotComputable`` when K is singular."""
    sign, logdet = np.linalg.slogdet(np.asarray(kernel, dtype=np.float64))
    if sign <= 0 or not np.isfinite(logdet):
        raise NotComputable(f"the code kernel is singular (sign {sign:g}, log|K| {logdet}): "
                            "some images share their activation code on every unit")
    return float(logdet)


def _correlations(rows: np.ndarray) -> np.ndarray:
    """``np.corrcoef`` of the rows, refusing rows of zero variance (their correlation is undefined)."""
    flat = rows.std(axis=1) == 0
    if flat.any():
        raise NotComputable(f"{int(flat.sum())} image(s) have a constant input Jacobian: their correlations "
                            "are undefined (the output does not depend on those inputs)")
    return np.corrcoef(rows)


def jacov_score(jacobians: np.ndarray, k: float = K_JACOV) -> float:
    """NASWOT v1: ``-sum(log(v + k) + 1/(v + k))`` over the eigenvalues v of the correlation
    matrix of the rows of ``jacobians`` (``N x D``, one flattened input Jacobian per image)."""
    corr = _correlations(np.asarray(jacobians, dtype=np.float64))
    v = np.linalg.eigvalsh(corr)
    if (v + k <= 0).any():
        raise NotComputable(f"an eigenvalue of the Jacobian correlations is {v.min():.3g} <= -{k:g}")
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def epe_nas_score(jacobians: np.ndarray, labels: np.ndarray, n_classes: int, k: float = K_JACOV) -> float:
    """EPE-NAS from ``jacobians`` (``N x D``), ``labels`` (N class indices) and the number of
    classes of the network's output."""
    jacobians = np.asarray(jacobians, dtype=np.float64)
    labels = np.asarray(labels)
    per_class = []
    for c in dict.fromkeys(labels.tolist()):  # classes in order of first appearance, as the released code
        rows = jacobians[labels == c]
        if len(rows) == 1:
            if n_classes > 100:  # the released code's len() of a 0-d array raises; the class is skipped
                continue
            corr = np.ones((1, 1))
        else:
            corr = _correlations(rows)
        s = float(np.sum(np.log(np.abs(corr) + k)))
        per_class.append(s / len(corr) if n_classes > 100 else s)
    s = np.array(per_class)
    if n_classes <= 100:
        return float(np.sum(np.abs(s)))
    if len(s) == 0:
        raise NotComputable("no class has two images in the batch")
    return float(np.sum(np.abs(s[:, None] - s[None, :])) / len(s))


def _jacobian_rows(results: PassResults) -> np.ndarray:
    grads = results.moments[JACOBIANS].grads
    return grads.reshape(grads.shape[0], -1).cpu().double().numpy()


_JACOBIAN_SETTINGS = {"k": K_JACOV, "batch": 0, "jacobian": "d sum(logits) / d input"}


@register_compute("jacov", (JACOBIANS,), settings=_JACOBIAN_SETTINGS, description="NASWOT v1: Jacobian covariance score")
def _jacov(results: PassResults) -> float:
    return jacov_score(_jacobian_rows(results))


@register_compute("epe_nas", (JACOBIANS,), settings=_JACOBIAN_SETTINGS,
                  description="EPE-NAS (Lopes et al. 2021): per-class Jacobian correlations")
def _epe_nas(results: PassResults) -> float:
    labels = results.batches[JACOBIANS.batch][1]
    if labels.dim() == 2:  # one-hot / soft targets: their class
        labels = labels.argmax(1)
    return epe_nas_score(_jacobian_rows(results), labels.cpu().numpy(), results.moments[JACOBIANS].n_outputs)


class NWOT:
    """``compute`` of NASWOT from one kernel pass (picklable)."""

    def __init__(self, need: CodeKernel):
        self.need = need

    def __call__(self, results: PassResults) -> float:
        result = results.moments[self.need]
        if not result.modules:
            raise NotComputable(f"no module whose class name contains {self.need.name_contains!r}"
                                f"{' (leaf modules only)' if self.need.leaves_only else ''}: no activation codes")
        return nwot_score(result.kernel)

    def __eq__(self, other) -> bool:
        return isinstance(other, NWOT) and other.need == self.need

    def __hash__(self) -> int:
        return hash(self.need)


register_proxy(Proxy("nwot", NWOT(RELU_CODES), (RELU_CODES,),
                     {"modules": "class name contains ReLU", "code": "input > 0", "batch": 0},
                     "NASWOT (Mellor et al. 2021): log|K| of ReLU codes, as the authors' code"))
register_proxy(Proxy("nwot_naslib", NWOT(RELU_LEAF_CODES), (RELU_LEAF_CODES,),
                     {"modules": "leaf modules whose class name contains ReLU", "code": "input > 0", "batch": 0},
                     "NASWOT as NASLib computes it: each ReLU counted once"))
