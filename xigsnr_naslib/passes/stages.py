"""Stage features: the feature map after each stage (stem, cells) of a network, kept with
their autograd graph, optionally on a re-initialised copy and on Gaussian noise
(:class:`StageFeatures`: the AZ-NAS components)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from xigsnr_naslib.core.gradients import Batch, LossFn
from xigsnr_naslib.passes.protocol import PassRequest, check_batch_index, check_input_and_init, copy_for_pass, \
    first_tensor, forward_with_hooks, pass_input

__all__ = ["feature_stages", "StageFeatureMaps", "StageFeatures"]


def feature_stages(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """``model.feature_stages()``: the ``(name, module)`` pairs whose outputs are the network's
    successive feature maps (stem, then cells / blocks), or None when the network does not
    name them. The project's NB201, NB101 and NDS networks do; any network can, by defining
    the method."""
    method = getattr(model, "feature_stages", None)
    return list(method()) if callable(method) else None


@dataclass(frozen=True)
class StageFeatureMaps:
    """Result of :class:`StageFeatures`: ``features`` (one tensor per stage output, in call
    order, WITH its autograd graph: differentiate between them with ``retain_graph=True``,
    other proxies may read the same graph), their ``names``, and ``reason`` (why there are
    none, else None)."""

    features: list
    names: list
    reason: str | None = None


@dataclass(frozen=True)
class StageFeatures(PassRequest):
    """The feature map after each stage of the network (:func:`feature_stages`), from one
    forward of batch ``batch``'s images (or Gaussian noise of their shape), kept with their
    autograd graph so that a proxy can differentiate one stage's output w.r.t. the previous
    one's (AZ-NAS's trainability).

    The forward runs on a copy of the network, re-initialised with ``init`` from
    ``torch.Generator().manual_seed(seed)`` when ``init`` is set (AZ-NAS re-draws Kaiming
    normal fan-in weights before scoring), in train mode (BatchNorm normalises with the
    batch's statistics; the network given is left untouched). Shapes: each feature is
    ``N x C x H x W`` (N the batch's images).

    Parameters
    ----------
    batch : int
        Which batch of the protocol (its images, or its shape for the noise).
    source : {"gaussian", "images"}
        ``gaussian``: N(0, 1) noise of the batch's shape from the same seeded generator
        (the released AZ-NAS NB201 run's input); ``images``: the batch's images.
    init : str or None
        A scheme of :mod:`xigsnr_naslib.core.initialisation`, or None for the network's own weights.
    seed : int
        Seeds the re-initialisation and the noise (each its own generator).
    """

    batch: int = 0
    source: str = "gaussian"
    init: str | None = "kaiming_normal_fan_in"
    seed: int = 0

    def __post_init__(self) -> None:
        check_input_and_init(self.source, self.init)

    def problem(self, n_batches: int, batch_size: int) -> str | None:
        return check_batch_index(self.batch, n_batches)

    def run(self, model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, strategy: str = "loop") -> StageFeatureMaps:
        if feature_stages(model) is None:
            return StageFeatureMaps([], [], f"{type(model).__name__} does not name its feature stages "
                                            "(it has no feature_stages() method)")
        net = copy_for_pass(model, self.init, self.seed)
        x = pass_input(batches, self.batch, None, self.source, self.seed)
        features: list = []
        names: list = []
        handles = []
        for name, module in feature_stages(net):
            def hook(mod, inputs, output, name=name):
                tensor = first_tensor(output)
                if tensor is not None:
                    features.append(tensor)
                    names.append(name)
            handles.append(module.register_forward_hook(hook))
        forward_with_hooks(net, x, handles, grad=True)
        return StageFeatureMaps(features, names)
