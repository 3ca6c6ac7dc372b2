"""The NAS-Bench-201 card: datasets, protocol, ground truth, NASLib codec, score tables, supernet."""
from __future__ import annotations

from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard, NASLibCodec, ScoreTableSpec
from xigsnr_naslib.benchmarks.nb201.space import NB201Space, from_naslib_key, to_naslib_key
from xigsnr_naslib.benchmarks.supernet import NB201Supernet
from xigsnr_naslib.data.protocol import PAPER_NB201

__all__ = ["nb201_card"]


def _nb201_ground_truth(dataset: str, data_root, accuracy: str | None):
    from xigsnr_naslib.benchmarks.nb201.ground_truth import nb201_ground_truth

    return nb201_ground_truth(dataset, data_root)


def _nb201_cifar10_validation(data_root):
    from xigsnr_naslib.benchmarks.nb201.ground_truth import nb201_cifar10_validation

    return nb201_cifar10_validation(data_root)


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
            "naslib_subset": subset(False)}, validation_ground_truth=_nb201_cifar10_validation),
        "cifar100": DatasetCard("cifar100", 100, 32, "cifar100", PAPER_NB201, "xi_gsnr", ("test",),
                                {"naslib_subset": subset(True)}),
        "ImageNet16-120": DatasetCard("ImageNet16-120", 120, 16, "ImageNet16-120", PAPER_NB201, "xi_gsnr", ("test",),
                                      {"suitezero": suitezero("imagenet16_120"), "naslib_subset": subset(False)}),
    }
    return BenchmarkCard("nb201", NB201Space, datasets, "NAS-Bench-201: 15,625 cells, 5 operations on 6 edges",
                         _nb201_ground_truth, NASLibCodec("nasbench201", to_naslib_key, from_naslib_key),
                         {"channels": 16, "cells_per_stage": 5},
                         search_algorithms=("prune", "sample", "evolution"), supernet=NB201Supernet,
                         search_report="architecture", size=15625)
