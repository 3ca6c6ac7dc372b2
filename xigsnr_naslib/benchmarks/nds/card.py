"""The NDS cards (ten design spaces, CIFAR-10 and ImageNet) and the DARTS search card."""
from __future__ import annotations

from typing import Any

from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard
from xigsnr_naslib.benchmarks.darts import DartsSpace
from xigsnr_naslib.benchmarks.nds.space import NDS_SPACES, NDSNetwork, NDSSpace, count_nds_params
from xigsnr_naslib.benchmarks.supernet import DartsSupernet
from xigsnr_naslib.data.protocol import PAPER_NB201

__all__ = ["nds_cards", "darts_card"]


class _NDSFactory:
    """``NDSSpace(name, file_stem, stem, **options)`` for one design space (a card's factory)."""

    def __init__(self, name: str, file_stem: str, stem: str):
        self.args = (name, file_stem, stem)

    def __call__(self, **options: Any) -> NDSSpace:
        return NDSSpace(*self.args, **options)


class _NDSGroundTruth:
    def __init__(self, name: str):
        self.name = name

    def __call__(self, dataset: str, data_root, accuracy: str | None):
        from xigsnr_naslib.benchmarks.nds.ground_truth import nds_ground_truth

        return nds_ground_truth(self.name, dataset, data_root)


def nds_cards() -> list[BenchmarkCard]:
    """The ten NDS design spaces: ``nds_<space>`` on CIFAR-10 (32x32) and ``nds_<space>_in`` on
    ImageNet (224x224), each at the paper's protocol; accuracy ``test`` (last epoch)."""
    out = []
    for name, (file_stem, stem) in NDS_SPACES.items():
        if stem == "imagenet":
            dataset = DatasetCard("imagenet", 1000, 224, "imagenet", PAPER_NB201, "xi_gsnr", ("test",))
        else:
            dataset = DatasetCard("cifar10", 10, 32, "cifar10", PAPER_NB201, "xi_gsnr", ("test",))
        out.append(BenchmarkCard(name, _NDSFactory(name, file_stem, stem), {dataset.name: dataset},
                                 f"NDS {file_stem} design space ({dataset.name})", _NDSGroundTruth(name),
                                 space_options={"auxiliary": False}))
    out.append(darts_card())
    return out


def _darts_evaluation_network(space: DartsSpace, arch: Any, num_classes: int):
    """The DARTS paper's CIFAR-10 network of ``arch`` (36 channels, 20 cells) and its size.

    Errors: ``RuntimeError`` when the built network's parameter count differs from the NDS
    closed-form count of the same net (the builder and the count disagree)."""
    from xigsnr_naslib.core.complexity import count_params

    net = space.evaluation_net(arch)
    model = NDSNetwork(net, num_classes, "cifar")
    built, closed_form = count_params(model), count_nds_params(net, num_classes, "cifar")
    if built != closed_form:
        raise RuntimeError(f"DARTS evaluation network of {space.encode(arch)}: the built network has {built} "
                           f"parameters, the NDS count gives {closed_form}")
    return model, {"width": net.width, "depth": net.depth}


def darts_card() -> BenchmarkCard:
    """The DARTS cell space (:mod:`xigsnr_naslib.benchmarks.darts`) on CIFAR-10 at the paper's
    protocol (8 x 64, ``xi_gsnr``), for the pruning and sampling searches; no ground truth
    (found genotypes are trained by the user; the NDS ``DARTS`` records are the ``nds_darts`` card)."""
    dataset = DatasetCard("cifar10", 10, 32, "cifar10", PAPER_NB201, "xi_gsnr")
    return BenchmarkCard("darts", DartsSpace, {"cifar10": dataset},
                         "DARTS cells (normal + reduction, 4 nodes, 7 operations), built by the NDS builder",
                         space_options={"width": 16, "depth": 8}, search_algorithms=("prune", "sample"),
                         supernet=DartsSupernet, search_report="architecture",
                         evaluation_network=_darts_evaluation_network, genotype_json=True)
