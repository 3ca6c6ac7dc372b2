"""The settings of a search: frozen dataclasses, validated when made, with the defaults of
``xigsnr-naslib search`` (the command line takes its defaults from these classes).

* :class:`SearchSettings`: what every search reads besides its space and algorithm (dataset,
  proxy, protocol, execution, images, constraints, output files);
* one class per algorithm of :data:`xigsnr_naslib.search.algorithms.ALGORITHMS`:
  :class:`PruneSettings`, :class:`SampleSettings` and
  :class:`~xigsnr_naslib.search.evolution.EvolutionSettings`.

A bad value is a ``ValueError`` of one line naming the field, the value and what is allowed.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from xigsnr_naslib.errors import UsageError

__all__ = ["SearchSettings", "ImageSettings", "ConstraintSettings", "OutputSettings", "PruneSettings",
           "SampleSettings", "check_whole", "check_fraction"]


def check_whole(owner: str, name: str, value: Any, minimum: int, optional: bool = False) -> None:
    """Refuse ``value`` unless it is a whole number >= ``minimum`` (or None when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"a whole number >= {minimum}" + (" or None" if optional else "")
        raise UsageError(f"{owner}: {name} must be {allowed}, got {value!r}")


def check_fraction(owner: str, name: str, value: Any, optional: bool = False) -> None:
    """Refuse ``value`` unless it is a number from 0 to 1 (or None when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        allowed = "a number from 0 to 1" + (" or None" if optional else "")
        raise UsageError(f"{owner}: {name} must be {allowed}, got {value!r}")


def _frozen_mapping(owner: str, name: str, value: Any) -> Mapping[str, Any]:
    """A read-only copy of ``value`` (a mapping, or pairs), so that the caller's stays untouched."""
    try:
        items = dict(value)
    except (TypeError, ValueError):
        raise UsageError(f"{owner}: {name} must be a mapping of option names to values, got {value!r}") from None
    bad = [k for k in items if not isinstance(k, str) or not k]
    if bad:
        raise UsageError(f"{owner}: {name} must have option names (non-empty text) as keys, got {bad[0]!r}")
    return MappingProxyType(items)


def _amount(owner: str, name: str, value: Any) -> float | None:
    """``"400M"``, ``5e9``, None -> float or None; a negative or unreadable amount is refused."""
    from xigsnr_naslib.search.evolution import parse_amount

    if isinstance(value, bool):
        raise UsageError(f"{owner}: {name} must be an amount (examples: 400M, 5G, 3e7) or None, got {value!r}")
    amount = parse_amount(value)
    if amount is not None and not (math.isfinite(amount) and amount >= 0):
        raise UsageError(f"{owner}: {name} must be a finite amount >= 0 (examples: 400M, 5G, 3e7), got {value!r}")
    return amount


@dataclass(frozen=True)
class PruneSettings:
    """TE-NAS pruning of the space's supernet (:mod:`xigsnr_naslib.search.pruning`).

    Parameters
    ----------
    repeats : int
        Initialisations each removal is scored at, the costs averaged (default 3, TE-NAS's);
        repeat ``r`` uses the protocol's init seed + 1000 ``r``.
    supernet_options : mapping
        Options of the supernet (NAS-Bench-201: ``channels``, ``cells_per_stage``; DARTS:
        ``width``, ``depth``, ``operations``); default: the supernet's own.
    """

    repeats: int = 3
    supernet_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_whole("prune settings", "repeats", self.repeats, 1)
        object.__setattr__(self, "supernet_options",
                           _frozen_mapping("prune settings", "supernet_options", self.supernet_options))


@dataclass(frozen=True)
class SampleSettings:
    """The proxy's best of ``samples`` distinct architectures drawn uniformly.

    Parameters
    ----------
    samples : int
        Architectures drawn (default 100).
    seed : int
        Seeds the draw (default 0).
    """

    samples: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        check_whole("sample settings", "samples", self.samples, 1)
        check_whole("sample settings", "seed", self.seed, 0)


@dataclass(frozen=True)
class ImageSettings:
    """Where a search's images come from.

    Parameters
    ----------
    source : path or None
        A folder of images or an ``.npz``, absolute or under the data root; None (default):
        the images the space's card names for the dataset (``DatasetCard.images``).
    synthetic : bool
        Random-noise images instead (tests and timing only): ``n_batches x batch_size`` of
        them, seeded by the protocol's data seed. Default False.
    max_images : int
        Images read from a folder (default 1024), drawn with the protocol's data seed.
    """

    source: str | os.PathLike | None = None
    synthetic: bool = False
    max_images: int = 1024

    def __post_init__(self) -> None:
        if self.source is not None and not isinstance(self.source, (str, os.PathLike)):
            raise UsageError(f"image settings: source must be a path or None, got {self.source!r}")
        if not isinstance(self.synthetic, bool):
            raise UsageError(f"image settings: synthetic must be True or False, got {self.synthetic!r}")
        check_whole("image settings", "max_images", self.max_images, 1)


@dataclass(frozen=True)
class ConstraintSettings:
    """Hard bounds of an evolution, on FLOPs (multiply-adds) and parameters.

    Parameters
    ----------
    max_flops, min_flops, max_params, min_params : float, str or None
        Bounds; text such as ``"400M"``, ``"5G"``, ``"3e7"`` is read as a number. None
        (default): no bound.
    resolution : int or None
        Resolution the bounds are counted at (default: the space's default, 224 for the
        ImageNet spaces, also when scoring at a lower resolution; the dataset's on the spaces
        without a resolution option).
    paper : bool
        Add the xi-GSNR paper's bounds for the space, its card's ``paper_constraints``
        (``proxylessnas_xigsnr``: 400M FLOPs; ``burgerformer``: 30M params, 5G FLOPs); a space
        the paper gives none for is refused.
    """

    max_flops: float | str | None = None
    min_flops: float | str | None = None
    max_params: float | str | None = None
    min_params: float | str | None = None
    resolution: int | None = None
    paper: bool = False

    def __post_init__(self) -> None:
        for name in self.bound_names():
            object.__setattr__(self, name, _amount("constraint settings", name, getattr(self, name)))
        check_whole("constraint settings", "resolution", self.resolution, 8, optional=True)
        if not isinstance(self.paper, bool):
            raise UsageError(f"constraint settings: paper must be True or False, got {self.paper!r}")

    @staticmethod
    def bound_names() -> tuple[str, ...]:
        from xigsnr_naslib.benchmarks.card import SIZE_BOUNDS

        return SIZE_BOUNDS

    def bounds(self) -> dict[str, float]:
        """The bounds that are set, by name (in :meth:`bound_names` order)."""
        return {name: getattr(self, name) for name in self.bound_names() if getattr(self, name) is not None}


@dataclass(frozen=True)
class OutputSettings:
    """The files of a search (defaults under ``results/``, named after the space).

    Parameters
    ----------
    results : path or None
        Results store of every scored network, so a resumed search never scores one twice
        (default ``results/search_<space>.scores.jsonl``).
    checkpoint : path or None
        The run's checkpoint, resumed if present (default
        ``results/search_<space>.checkpoint.json``; on the spaces whose report is one
        architecture, ``results/search_<space>_<algorithm>.checkpoint.json``).
    output : path or None
        The report (default ``results/search_<space>.best.json``, or
        ``results/search_<space>_<algorithm>.best.json`` as for ``checkpoint``).
    top_k : int
        Architectures an evolution's population report lists (default 10).
    """

    results: str | os.PathLike | None = None
    checkpoint: str | os.PathLike | None = None
    output: str | os.PathLike | None = None
    top_k: int = 10

    def __post_init__(self) -> None:
        for name in ("results", "checkpoint", "output"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise UsageError(f"output settings: {name} must be a path or None, got {value!r}")
        check_whole("output settings", "top_k", self.top_k, 1)


def _default_execution():
    from xigsnr_naslib.scoring.study import Execution

    return Execution()


@dataclass(frozen=True)
class SearchSettings:
    """What a search reads besides its space and algorithm.

    Parameters
    ----------
    dataset : str or None
        One of the card's datasets (default: its first).
    proxies : tuple of str
        Registered proxies; the first is the fitness (indicator). Empty (default): the
        dataset's default proxy. A space whose report is one architecture takes one proxy.
    n_batches, batch_size, data_seed, init_seed : int or None
        Changes to the dataset's default protocol (None: the card's value).
    execution : Execution
        Device, workers, threads, strategy, backend, progress
        (:class:`~xigsnr_naslib.scoring.study.Execution`).
    data_root : path or None
        Folder with the benchmark files and images (default ``$XIGSNR_DATA_ROOT``).
    space_options : mapping
        Options of the space (validated by its card).
    resolution : int or None
        Input resolution: a space option where the space has one (ImageNet spaces), else the
        dataset's resolution (default: the space's or dataset's own).
    num_classes : int or None
        Classifier outputs (default: the dataset's).
    images : ImageSettings
        Where the images come from.
    constraints : ConstraintSettings
        Bounds on FLOPs and parameters (evolution only).
    outputs : OutputSettings
        Results store, checkpoint, report, ``top_k``.
    """

    dataset: str | None = None
    proxies: tuple[str, ...] = ()
    n_batches: int | None = None
    batch_size: int | None = None
    data_seed: int | None = None
    init_seed: int | None = None
    execution: Any = field(default_factory=_default_execution)
    data_root: str | os.PathLike | None = None
    space_options: Mapping[str, Any] = field(default_factory=dict)
    resolution: int | None = None
    num_classes: int | None = None
    images: ImageSettings = field(default_factory=ImageSettings)
    constraints: ConstraintSettings = field(default_factory=ConstraintSettings)
    outputs: OutputSettings = field(default_factory=OutputSettings)

    def __post_init__(self) -> None:
        owner = "search settings"
        proxies = (self.proxies,) if isinstance(self.proxies, str) else tuple(self.proxies or ())
        bad = [p for p in proxies if not isinstance(p, str) or not p]
        if bad:
            raise UsageError(f"{owner}: proxies must be proxy names, got {bad[0]!r}")
        object.__setattr__(self, "proxies", proxies)
        for name, minimum in (("n_batches", 1), ("batch_size", 1), ("data_seed", 0), ("init_seed", 0),
                              ("resolution", 8), ("num_classes", 1)):
            check_whole(owner, name, getattr(self, name), minimum, optional=True)
        object.__setattr__(self, "space_options", _frozen_mapping(owner, "space_options", self.space_options))
        for name, kind in (("images", ImageSettings), ("constraints", ConstraintSettings),
                           ("outputs", OutputSettings)):
            if not isinstance(getattr(self, name), kind):
                raise UsageError(f"{owner}: {name} must be {kind.__name__}, got {getattr(self, name)!r}")
        from xigsnr_naslib.scoring.study import Execution

        if not isinstance(self.execution, Execution):
            raise UsageError(f"{owner}: execution must be Execution, got {self.execution!r}")

    def protocol_changes(self) -> dict[str, int | None]:
        """The protocol fields this search changes (None: the card's)."""
        return {"n_batches": self.n_batches, "batch_size": self.batch_size, "data_seed": self.data_seed,
                "init_seed": self.init_seed}
