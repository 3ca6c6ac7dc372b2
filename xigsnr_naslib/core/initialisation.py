"""Weight initialisation schemes that some zero-cost proxies apply before scoring.

AZ-NAS (Lee & Ham, CVPR 2024) and VKDNW (Tybl & Neumann, CVPR 2025) re-initialise every
network before scoring it (``init_model(model, "kaiming_norm_fanin")`` in both released
``ZeroShotProxy/compute_*_score.py``): Conv2d and Linear weights from Kaiming's normal
distribution (fan-in, ReLU gain: std = sqrt(2 / fan_in)), their biases zero, affine
BatchNorm2d / GroupNorm weights one and biases zero; every other module is left alone.

:func:`reinitialise` applies such a scheme from a ``torch.Generator``, so that the weights
are a function of the scheme and the seed alone (never of the global random state).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from xigsnr_naslib.registry import choose

__all__ = ["INIT_SCHEMES", "reinitialise"]

#: the schemes :func:`reinitialise` knows (the released codes' name in brackets)
INIT_SCHEMES = ("kaiming_normal_fan_in",)  # ("kaiming_norm_fanin")


@torch.no_grad()
def reinitialise(model: nn.Module, scheme: str, generator: torch.Generator) -> nn.Module:
    """Re-draw ``model``'s weights in place with ``scheme``, from ``generator``; returns ``model``.

    ``"kaiming_normal_fan_in"``: every ``nn.Conv2d`` / ``nn.Linear`` weight ~ N(0, 2 / fan_in)
    (``nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")``), bias 0; every
    affine ``nn.BatchNorm2d`` / ``nn.GroupNorm``: weight 1, bias 0. Modules are visited in
    ``model.modules()`` order, so a seed gives the same weights on every run.

    Raises ``ValueError`` for an unknown scheme (naming the known ones).
    """
    choose(scheme, list(INIT_SCHEMES), "initialisation scheme")
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
