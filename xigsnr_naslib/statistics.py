"""Streamed per-parameter moments of gradient samples.

One :class:`RunningMoments` holds, for a list of tensors (the selected parameters), the
count, the running mean and the running sum of squared deviations (Welford's update) in
float64 on the tensors' own device. Memory is three float64 numbers per parameter entry,
whatever the number of samples: O(parameters), never O(samples x parameters), and no
sample is copied to the host.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["RunningMoments"]


class RunningMoments:
    """Running mean and population variance of a stream of same-shaped tensor lists.

    Parameters
    ----------
    names:
        One name per tracked tensor (for example ``"cells.3.conv.weight"``); the names key
        the per-tensor results.
    dtype:
        Accumulation dtype (float64 by default, as the estimator requires).

    track_abs_mean:
        Also keep the running mean of the absolute values (ZiCo needs mean |g|); one more
        float64 number per entry.

    ``update`` takes one sample: a list of tensors in the order of ``names`` (``None`` for
    a tensor that received no gradient in this sample). A tensor that is ``None`` in every
    sample is absent from the results, as in the released code, which only records layers
    whose ``.grad`` exists.
    """

    def __init__(self, names: Sequence[str], dtype: torch.dtype = torch.float64, track_abs_mean: bool = False):
        self.names = list(names)
        self.dtype = dtype
        self.count = 0
        self._mean: list[torch.Tensor | None] = [None] * len(self.names)
        self._m2: list[torch.Tensor | None] = [None] * len(self.names)
        self._seen = [0] * len(self.names)
        self.track_abs_mean = track_abs_mean
        self._abs_mean: list[torch.Tensor | None] = [None] * len(self.names)

    def update(self, samples: Sequence[torch.Tensor | None]) -> None:
        if len(samples) != len(self.names):
            raise ValueError(f"expected {len(self.names)} tensors, got {len(samples)}")
        self.count += 1
        for i, sample in enumerate(samples):
            if sample is None:
                if self._seen[i]:
                    # A tensor that had gradients before and none now: its sample is zero.
                    sample = torch.zeros_like(self._mean[i])
                else:
                    continue
            x = sample.detach().to(self.dtype)
            if not self._seen[i]:
                # Earlier samples in which this tensor had no gradient count as zeros.
                self._mean[i] = torch.zeros_like(x)
                self._m2[i] = torch.zeros_like(x)
                if self.track_abs_mean:
                    self._abs_mean[i] = torch.zeros_like(x)
                for _ in range(self.count - 1):
                    self._welford(i, torch.zeros_like(x), self._seen[i] + 1)
                    self._seen[i] += 1
            self._seen[i] += 1
            self._welford(i, x, self._seen[i])

    def _welford(self, i: int, x: torch.Tensor, n: int) -> None:
        mean, m2 = self._mean[i], self._m2[i]
        delta = x - mean
        mean.add_(delta, alpha=1.0 / n)
        m2.add_(delta * (x - mean))
        if self.track_abs_mean:
            abs_mean = self._abs_mean[i]
            abs_mean.add_(x.abs() - abs_mean, alpha=1.0 / n)

    def means(self) -> dict[str, torch.Tensor]:
        """Per-tensor mean over the samples (float64)."""
        return {n: m for n, m in zip(self.names, self._mean) if m is not None}

    def variances(self) -> dict[str, torch.Tensor]:
        """Per-tensor population variance (divided by the count, as ``np.var``)."""
        return {n: m2 / self.count for n, m2 in zip(self.names, self._m2) if m2 is not None}

    def abs_means(self) -> dict[str, torch.Tensor]:
        """Per-tensor mean of the absolute values (only with ``track_abs_mean=True``)."""
        if not self.track_abs_mean:
            raise ValueError("abs_means() needs RunningMoments(..., track_abs_mean=True)")
        return {n: m for n, m in zip(self.names, self._abs_mean) if m is not None}

    def nbytes(self) -> int:
        """Bytes held by the statistics (for memory reports)."""
        return sum(t.numel() * t.element_size() for t in self._mean + self._m2 + self._abs_mean if t is not None)
