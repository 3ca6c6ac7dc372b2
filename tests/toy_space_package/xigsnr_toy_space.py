"""A toy search space in another package: a conv net whose only choice is its width.

Architectures are widths 1..8 (canonical string: the number). Its benchmark "accuracy" is a
made-up increasing function of the width, so a proxy that grows with the width ranks
perfectly. Nothing here is imported by xigsnr_naslib: it reaches the project through the
entry points in pyproject.toml.
"""
import pandas as pd
import torch.nn as nn

from xigsnr_naslib import BenchmarkCard, DatasetCard, Protocol, Proxy
from xigsnr_naslib.benchmarks import SearchSpace

WIDTHS = tuple(range(1, 9))


class ToySpace(SearchSpace):
    name = "toy"

    def encode(self, arch):
        return str(int(arch))

    def decode(self, code):
        width = int(code)
        if width not in WIDTHS:
            raise ValueError(f"toy width must be 1..8, got {code!r}")
        return width

    def build(self, arch, num_classes=10, **kwargs):
        w = self.decode(str(arch))
        return nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(w, num_classes))


def ground_truth(dataset, data_root, accuracy):
    frame = pd.DataFrame({"arch": [str(w) for w in WIDTHS], "accuracy": [50.0 + 5 * w for w in WIDTHS]},
                         index=pd.Index(range(len(WIDTHS)), name="index"))
    frame.attrs["definition"] = "toy accuracy: 50 + 5 x width"
    return frame


def card():
    tiny = Protocol(n_batches=2, batch_size=4)
    return BenchmarkCard("toy", ToySpace, {"cifar10": DatasetCard("cifar10", 10, 32, "cifar10", tiny, "xi_gsnr",
                                                                  ("toy",))},
                         "a toy space from another package", ground_truth)


def _width(results):
    return float(results.model[0].out_channels)


width_proxy = Proxy("toy_width", _width, description="the toy network's width", needs_data=False)
