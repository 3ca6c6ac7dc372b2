"""The NAS-Bench-101 card: CIFAR-10 at the released protocol, two accuracy definitions."""
from __future__ import annotations

from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard, NASLibCodec
from xigsnr_naslib.benchmarks.nb101.space import NB101Space
from xigsnr_naslib.data.protocol import RELEASED_NB101

__all__ = ["nb101_card"]


def _nb101_ground_truth(dataset: str, data_root, accuracy: str | None):
    from xigsnr_naslib.benchmarks.nb101.ground_truth import nb101_ground_truth

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
