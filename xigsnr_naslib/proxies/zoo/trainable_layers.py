"""The number of trainable layers: a size baseline that ranks NAS-Bench-201 as well as many
zero-cost proxies.

Reported as "No. of trainable layers (ℵ)" in Table 1 of Týbl & Neumann, *Training-free
Neural Architecture Search through Variance of Knowledge of Deep Network Weights* (CVPR
2025): on the whole NAS-Bench-201 space, Kendall tau 0.626 / 0.646 / 0.623 and Spearman rho
0.767 / 0.787 / 0.764 on CIFAR-10 / CIFAR-100 / ImageNet16-120, above NASWOT, ZiCo, SynFlow
and Jacov on ImageNet16-120 (the VKDNW repository's ``table1.png``). Their code computes it as
``len(list(model.named_parameters()))`` (``vkdnw_dim`` in
``NB201/ZeroShotProxy/compute_vkdnw_score.py``), i.e. the number of parameter TENSORS; this
count is also the size term of their ranking aggregate ``vkdnw_agg``.

* ``trainable_layers`` (as released): the number of parameter tensors of the network that
  require gradients (``model.named_parameters()``: a tensor shared by two modules counts once).
  An NB201 convolution edge adds 3 (convolution weight, BatchNorm weight and bias).
* ``trainable_weight_layers``: the number of modules that own at least one trainable
  parameter themselves (``named_parameters(recurse=False)``): each Conv2d, Linear and affine
  BatchNorm counts once, whatever its number of tensors. On NB201 both counts rank the
  architectures identically (each trainable edge is one convolution and one BatchNorm); on
  other spaces a Linear layer with a bias, or a convolution without BatchNorm, weighs
  differently.

No data and no pass: both read the network only. A network without trainable parameters
scores 0 (a count, defined). As proxies (``get_proxy(name)(model, batches)``, a study) they
count the network's tensors as the protocol builds it, every parameter trainable: a parameter a
caller froze (``requires_grad=False``) counts too, as in the released
``len(named_parameters())`` (:func:`~xigsnr_naslib.core.gradients.scoring_state`); the functions
:func:`count_trainable_tensors` and :func:`count_trainable_modules` read the flags as given.

Registered: ``trainable_layers``, ``trainable_weight_layers``.
"""
from __future__ import annotations

import torch.nn as nn

from xigsnr_naslib.proxies import PassResults, register_compute

__all__ = ["count_trainable_tensors", "count_trainable_modules"]


def count_trainable_tensors(model: nn.Module) -> int:
    """Parameter tensors of ``model`` that require gradients (shared tensors once)."""
    return sum(1 for _, p in model.named_parameters() if p.requires_grad)


def count_trainable_modules(model: nn.Module) -> int:
    """Modules of ``model`` owning at least one parameter that requires gradients."""
    return sum(1 for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False)))


@register_compute("trainable_layers", settings={"counts": "parameter tensors requiring grad"},
                  description="number of trainable layers as VKDNW's code counts them (parameter tensors)",
                  needs_data=False)
def _trainable_layers(results: PassResults) -> float:
    return float(count_trainable_tensors(results.model))


@register_compute("trainable_weight_layers", settings={"counts": "modules owning a parameter requiring grad"},
                  description="number of modules with trainable weights of their own", needs_data=False)
def _trainable_weight_layers(results: PassResults) -> float:
    return float(count_trainable_modules(results.model))

