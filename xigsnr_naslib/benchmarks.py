"""The benchmark cards of the project's own search spaces: NAS-Bench-201, NAS-Bench-101, NDS.

Each function returns the card(s) that ``setup.cfg`` registers through the entry-point group
``xigsnr_naslib.spaces``, exactly as another package registers its spaces. A card ties a
space (:mod:`xigsnr_naslib.spaces`) to its datasets, default protocols, ground-truth readers
(:mod:`xigsnr_naslib.ground_truth`, :mod:`~xigsnr_naslib.nb101_ground_truth`,
:mod:`~xigsnr_naslib.nds_ground_truth`), NASLib codec and precomputed score tables.
"""
from __future__ import annotations

from typing import Any

from .card import BenchmarkCard, DatasetCard, NASLibCodec, ScoreTableSpec
from .protocol import PAPER_NB201, RELEASED_NB101
from .spaces.nb101 import NB101Space
from .spaces.nb201 import NB201Space, from_naslib_key, to_naslib_key
from .spaces.darts import DartsSpace
from .spaces.nds import NDS_SPACES, NDSSpace
from .spaces.supernet import DartsSupernet, NB201Supernet

__all__ = ["nb201_card", "nb101_card", "nds_cards", "darts_card"]


# --- NAS-Bench-201 -------------------------------------------------------------------------------

def _nb201_ground_truth(dataset: str, data_root, accuracy: str | None):
    from .ground_truth import nb201_ground_truth

    return nb201_ground_truth(dataset, data_root)


def nb201_card() -> BenchmarkCard:
    """NAS-Bench-201: CIFAR-10, CIFAR-100 and ImageNet16-120 at the paper's protocol (8 x 64,
    ``xi_gsnr``); accuracy ``test`` (200 epochs, mean over seeds, as the paper)."""
    def suitezero(name: str) -> ScoreTableSpec:
        return ScoreTableSpec(f"nb201/suitezero_{name}_9445.csv", "suitezero")

    def subset(default: bool) -> ScoreTableSpec:
        return ScoreTableSpec("nb201/naslib_zc_subset_725x3.csv", "naslib_subset", default)

    datasets = {
        # naslib_subset shares only about 446 architectures with Suite-Zero on CIFAR-10, so there
        # it is read only on request; it is the only table for CIFAR-100
        "cifar10": DatasetCard("cifar10", 10, 32, "cifar10", PAPER_NB201, "xi_gsnr", ("test",), {
            "suitezero": suitezero("cifar10"),
            "naswot": ScoreTableSpec("nb201/naswot_scores_all15625.csv", "naswot"),
            "naslib_subset": subset(False)}),
        "cifar100": DatasetCard("cifar100", 100, 32, "cifar100", PAPER_NB201, "xi_gsnr", ("test",),
                                {"naslib_subset": subset(True)}),
        "ImageNet16-120": DatasetCard("ImageNet16-120", 120, 16, "ImageNet16-120", PAPER_NB201, "xi_gsnr", ("test",),
                                      {"suitezero": suitezero("imagenet16_120"), "naslib_subset": subset(False)}),
    }
    return BenchmarkCard("nb201", NB201Space, datasets, "NAS-Bench-201: 15,625 cells, 5 operations on 6 edges",
                         _nb201_ground_truth, NASLibCodec("nasbench201", to_naslib_key, from_naslib_key),
                         {"channels": 16, "cells_per_stage": 5},
                         search_algorithms=("prune", "sample", "evolution"), supernet=NB201Supernet)


# --- NAS-Bench-101 -------------------------------------------------------------------------------

def _nb101_ground_truth(dataset: str, data_root, accuracy: str | None):
    from .nb101_ground_truth import nb101_ground_truth

    return nb101_ground_truth(dataset, data_root, accuracy=accuracy)


def nb101_card() -> BenchmarkCard:
    """NAS-Bench-101: CIFAR-10 at the released protocol (per-image gradients of one batch of 8,
    16 stem channels); accuracies ``released`` (max over seeds of the test accuracy, as the
    released run) or ``naslib`` (one seed's validation accuracy)."""
    datasets = {"cifar10": DatasetCard("cifar10", 10, 32, "cifar10", RELEASED_NB101, "xi_gsnr_per_sample",
                                       ("released", "naslib"))}
    return BenchmarkCard("nb101", NB101Space, datasets, "NAS-Bench-101: 423k cells of up to 7 vertices",
                         _nb101_ground_truth, NASLibCodec("nasbench101"),
                         {"stem_channels": 16, "num_stacks": 3, "modules_per_stack": 3})


# --- NDS -----------------------------------------------------------------------------------------

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
        from .nds_ground_truth import nds_ground_truth

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


def darts_card() -> BenchmarkCard:
    """The DARTS cell space (:mod:`xigsnr_naslib.spaces.darts`) on CIFAR-10 at the paper's
    protocol (8 x 64, ``xi_gsnr``), for the pruning and sampling searches; no ground truth
    (found genotypes are trained by the user; the NDS ``DARTS`` records are the ``nds_darts`` card)."""
    dataset = DatasetCard("cifar10", 10, 32, "cifar10", PAPER_NB201, "xi_gsnr")
    return BenchmarkCard("darts", DartsSpace, {"cifar10": dataset},
                         "DARTS cells (normal + reduction, 4 nodes, 7 operations), built by the NDS builder",
                         space_options={"width": 16, "depth": 8}, search_algorithms=("prune", "sample"),
                         supernet=DartsSupernet)
