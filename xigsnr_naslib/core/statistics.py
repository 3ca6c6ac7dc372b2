"""Streamed per-parameter moments of gradient samples.

One :class:`RunningMoments` holds, for a list of tensors (the selected parameters), the
count, the running mean and the running sum of squared deviations (Welford's update) in
float64 on the tensors' own device. Memory is three float64 numbers per parameter entry,
whatever the number of samples: O(parameters), never O(samples x parameters), and no
sample is copied to the host.

:class:`StackedMoments` is the same interface for N samples computed at once (the vmap
strategy): all entries of all tensors in one flat float64 vector on the device, the
moments in two passes over the N samples, no Python loop over layers and no host sync.
Its memory is the N samples themselves (N x parameters) while it is built, then two
numbers per entry.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from xigsnr_naslib.errors import UsageError

__all__ = ["RunningMoments", "StackedMoments", "cumulative_sums"]


def _flatten(means: Sequence[torch.Tensor], variances: Sequence[torch.Tensor]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not means:
        empty = torch.zeros(0, dtype=torch.float64)
        return empty, empty, torch.zeros(0, dtype=torch.long)
    layer = _layer_index([m.numel() for m in means], means[0].device)
    return torch.cat([m.reshape(-1) for m in means]), torch.cat([v.reshape(-1) for v in variances]), layer


def _layer_index(sizes: Sequence[int], device: torch.device) -> torch.Tensor:
    """``[0]*sizes[0] + [1]*sizes[1] + ...`` built on the device by fills (a tensor made from
    a host list, or repeat_interleave of unknown length, would make the host wait)."""
    return torch.cat([torch.full((n,), i, dtype=torch.long, device=device) for i, n in enumerate(sizes)])


def cumulative_sums(samples: torch.Tensor) -> torch.Tensor:
    """Running sums along dim 0, in place, one add per step in the samples' dtype.

    ``out[k] = out[k-1] + samples[k]`` in order, exactly as autograd accumulates ``.grad``
    over successive backward passes (a parallel scan could round differently).
    """
    for k in range(1, samples.shape[0]):
        samples[k].add_(samples[k - 1])
    return samples


class StackedMoments:
    """Mean and population variance per entry of N samples given at once.

    Parameters
    ----------
    names:
        One name per tensor.
    samples:
        One ``[N, *shape]`` tensor per name (same N, same device).
    cumulative:
        Take the running sums of the samples first (:func:`cumulative_sums`): the
        ``official`` mode's samples from the per-batch gradients.
    dtype:
        Statistics dtype (float64).

    Notes
    -----
    The interface of :class:`RunningMoments` (``count``, ``means``, ``variances``,
    ``nbytes``, ``flat``); every result stays on the samples' device.
    """

    def __init__(self, names: Sequence[str], samples: Sequence[torch.Tensor], cumulative: bool = False,
                 dtype: torch.dtype = torch.float64):
        if len(names) != len(samples):
            raise UsageError(f"expected {len(names)} sample tensors, got {len(samples)}")
        counts = {s.shape[0] for s in samples}
        if len(counts) > 1:
            raise UsageError(f"every tensor needs the same number of samples, got {sorted(counts)}")
        self.names = list(names)
        self.dtype = dtype
        self.count = counts.pop() if counts else 0
        self._shapes = [tuple(s.shape[1:]) for s in samples]
        if not samples:
            self.mean, self.var = torch.zeros(0, dtype=dtype), torch.zeros(0, dtype=dtype)
            self.layer = torch.zeros(0, dtype=torch.long)
            return
        flat = torch.cat([s.detach().reshape(self.count, -1) for s in samples], dim=1)  # a fresh copy
        if cumulative:
            cumulative_sums(flat)
        x = flat.to(dtype)
        del flat
        self.mean = x.mean(dim=0)
        self.var = x.sub_(self.mean).square_().mean(dim=0)
        del x
        self.layer = _layer_index([math.prod(shape) for shape in self._shapes], self.mean.device)

    def _split(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = flat.split([math.prod(shape) for shape in self._shapes])
        return {n: part.view(shape) for n, part, shape in zip(self.names, parts, self._shapes)}

    def means(self) -> dict[str, torch.Tensor]:
        """Per-tensor mean over the samples (views into the flat vector)."""
        return self._split(self.mean)

    def variances(self) -> dict[str, torch.Tensor]:
        """Per-tensor population variance (divided by the count)."""
        return self._split(self.var)

    def nbytes(self) -> int:
        """Bytes held by the statistics once built (mean, variance)."""
        return (self.mean.numel() + self.var.numel()) * self.mean.element_size()

    def flat(self) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(names, mean, variance, layer)`` without a copy."""
        return list(self.names), self.mean, self.var, self.layer


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

    Notes
    -----
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
            raise UsageError(f"expected {len(self.names)} tensors, got {len(samples)}")
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

    def flat(self) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(names, mean, variance, layer)``: every entry in one vector, ``layer[i]`` the
        position in ``names`` of entry i's tensor (for sync-free per-layer sums)."""
        means, variances = self.means(), self.variances()
        names = list(means)
        return names, *_flatten([means[n] for n in names], [variances[n] for n in names])


    def variances(self) -> dict[str, torch.Tensor]:
        """Per-tensor population variance (divided by the count, as ``np.var``)."""
        return {n: m2 / self.count for n, m2 in zip(self.names, self._m2) if m2 is not None}

    def abs_means(self) -> dict[str, torch.Tensor]:
        """Per-tensor mean of the absolute values (only with ``track_abs_mean=True``)."""
        if not self.track_abs_mean:
            raise UsageError("abs_means() needs RunningMoments(..., track_abs_mean=True)")
        return {n: m for n, m in zip(self.names, self._abs_mean) if m is not None}

    def nbytes(self) -> int:
        """Bytes held by the statistics (for memory reports)."""
        return sum(t.numel() * t.element_size() for t in self._mean + self._m2 + self._abs_mean if t is not None)
