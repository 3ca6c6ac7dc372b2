"""A NASLib-style graph around one architecture of any of the project's search spaces.

NASLib's zero-cost predictor, ``ZeroCost(method_type).query(graph, dataloader)``, treats the
graph as an ``nn.Module`` it can copy, move between devices, put in train mode and call on a
batch, and asks it for ``graph.num_classes`` and ``graph.get_loss_fn()``. NASLib's evaluators
and optimizers also ``clone()`` a search-space graph, ``sample_random_architecture()``,
``mutate(parent)``, read ``get_hash()`` and later rebuild it with ``set_spec(hash)`` and
``parse()``. :class:`NASLibGraph` offers exactly that, so a ProxylessNAS or BurgerFormer
architecture can be scored by NASLib's proxies (and NASLib's searches can run in these
spaces) without this package importing NASLib::

    from xigsnr_naslib.benchmarks import create_space
    from naslib.predictors import ZeroCost                       # NASLib, installed by the user

    space = create_space("proxylessnas_xigsnr", resolution=64)
    graph = space.naslib_graph(num_classes=1000)
    graph.sample_random_architecture()
    score = ZeroCost("synflow").query(graph, dataloader=train_loader)

The hash is the architecture's canonical encoding, so ``set_spec(graph.get_hash())``
rebuilds the same network. There are no benchmark accuracies in these spaces:
:meth:`NASLibGraph.query` says so.
"""
from __future__ import annotations

import copy
import random
from typing import Hashable

import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.space import SearchSpace

__all__ = ["NASLibGraph"]


class NASLibGraph(nn.Module):
    """One architecture of ``space`` with the interface NASLib's zero-cost code expects of a graph."""

    QUERYABLE = False
    OPTIMIZER_SCOPE = ["all"]

    def __init__(self, space: SearchSpace, arch: Hashable | str | None = None, num_classes: int = 1000,
                 seed: int | None = None):
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self.seed = seed
        self.instantiate_model = True
        self.arch = None
        self.model: nn.Module | None = None
        if arch is not None:
            self.set_spec(arch)

    # -- the architecture -----------------------------------------------------------------------------
    def set_spec(self, spec: Hashable | str, dataset_api=None) -> None:
        """Use architecture ``spec`` (an architecture or its encoding) and build its network.

        The network is built at once when ``instantiate_model`` is True (as NASLib's measures
        read the parameters before the first forward pass), else on :meth:`parse` or first use.
        """
        self.arch = self.space.decode(spec) if isinstance(spec, str) else self.space.decode(self.space.encode(spec))
        self.model = None
        if self.instantiate_model:
            self.parse()

    def get_spec(self) -> Hashable:
        return self.arch

    def get_hash(self) -> str:
        """The canonical encoding (what ``set_spec`` accepts back)."""
        self._need_arch()
        return self.space.encode(self.arch)

    def get_type(self) -> str:
        return self.space.name

    def sample_random_architecture(self, dataset_api=None, load_labeled: bool = False,
                                   rng: random.Random | None = None) -> None:
        self.set_spec(self.space.sample(rng or random.Random()))

    def mutate(self, parent: "NASLibGraph", dataset_api=None, rng: random.Random | None = None) -> None:
        """Become a mutation of ``parent``'s architecture."""
        parent._need_arch()
        self.set_spec(self.space.mutate(parent.arch, rng or random.Random()))

    def clone(self) -> "NASLibGraph":
        return copy.deepcopy(self)

    # -- the network ------------------------------------------------------------------------------
    def parse(self) -> None:
        """Build the network (seeded by ``seed`` when given)."""
        self._need_arch()
        if self.seed is not None:
            torch.manual_seed(self.seed)
        self.model = self.space.build(self.arch, num_classes=self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.model is None:
            self.parse()
            self.model.to(x.device).train(self.training)
        return self.model(x)

    def get_loss_fn(self):
        return F.cross_entropy

    def query(self, metric=None, dataset=None, path=None, epoch=-1, full_lc=False, dataset_api=None):
        raise NotImplementedError(f"{self.space.name} has no benchmark of trained accuracies to query; "
                                  "use it with zero-cost predictors (ZeroCost.query) or train the network")

    def _need_arch(self) -> None:
        if self.arch is None:
            raise UsageError("the graph holds no architecture yet: call set_spec or sample_random_architecture")

    def extra_repr(self) -> str:
        return f"space={self.space.name}, arch={self.get_hash() if self.arch is not None else None}"
