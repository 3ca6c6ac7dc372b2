"""Benchmark cards: everything the project knows about one search space, behind one registry.

A :class:`BenchmarkCard` owns, for one search space:

* the space itself (a factory of :class:`~xigsnr_naslib.benchmarks.space.SearchSpace`) and the
  options it accepts (e.g. NAS-Bench-101's stem channels);
* its datasets (:class:`DatasetCard`): image source, resolution, class count, the default
  protocol and proxy (the released defaults), the ground-truth accuracy definitions offered
  and the precomputed score tables known for it;
* the ground-truth reader;
* NASLib's name for the space and its op-index codec (:class:`NASLibCodec`);
* parameter and FLOP counting (of the built network).

Every command, the leaderboard, search and the NASLib bridge read cards; no other table of
space names exists. Cards are registered like timm's models: ``register_card(card)``, then
``get_card("nb201")``; ``list_cards()`` names them. Cards of other packages are found through
the entry-point group ``xigsnr_naslib.spaces`` (:data:`ENTRY_POINT_GROUP`): an entry point's
object is a card, or a function returning a card or a list of cards. The project's own
spaces are registered the same way (see ``setup.cfg`` and the plugins' ``pyproject.toml``).

An unknown space, a dataset a card does not offer or an unknown accuracy definition raises
:class:`UnknownChoiceError` (a ``ValueError``) whose message names the bad value and the
valid choices; nothing falls back to another space's defaults.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Hashable, Mapping

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.protocol import Protocol
from xigsnr_naslib.registry import Registry, UnknownChoiceError, choose

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from xigsnr_naslib.benchmarks.space import SearchSpace

__all__ = ["create_space", "list_spaces", "DatasetCard", "ScoreTableSpec", "NASLibCodec", "BenchmarkCard", "UnknownChoiceError", "register_card",
           "get_card", "list_cards", "card_for_naslib", "ENTRY_POINT_GROUP", "SEARCH_REPORTS", "SIZE_BOUNDS"]

ENTRY_POINT_GROUP = "xigsnr_naslib.spaces"

#: what ``xigsnr-naslib search`` reports on a space (``BenchmarkCard.search_report``)
SEARCH_REPORTS = {
    "population": "the --top-k best architectures of an evolution, with FLOPs and parameters",
    "architecture": "the chosen architecture with its proxy score, ground truth, rank, size and CPU seconds",
}

#: the size bounds a search takes (multiply-adds of one image, parameters), and a card's
#: ``paper_constraints`` may give
SIZE_BOUNDS = ("max_flops", "min_flops", "max_params", "min_params")


@dataclass(frozen=True)
class ScoreTableSpec:
    """A precomputed table of proxy scores known for one (space, dataset).

    ``path`` is relative to the data root; ``format`` names its reader in
    :data:`xigsnr_naslib.analysis.score_tables.TABLE_FORMATS`; ``default`` says whether the leaderboard
    reads it unless told otherwise.
    """

    path: str
    format: str
    default: bool = True


@dataclass(frozen=True)
class DatasetCard:
    """One dataset of a search space.

    Parameters
    ----------
    name : str
        Canonical dataset name (``cifar10``, ``cifar100``, ``ImageNet16-120``, ``imagenet``).
    num_classes : int
        Classes of the network's classifier.
    resolution : int
        Input images are ``resolution x resolution`` pixels.
    images : str
        The image source (a name :func:`xigsnr_naslib.data.datasets.load_images` reads).
    protocol : Protocol
        The default protocol (the paper's or the released code's for this space).
    proxy : str
        The default proxy (the published numbers' proxy for this space).
    accuracies : tuple of str
        Ground-truth accuracy definitions the card offers; the first is the default. Empty:
        no ground truth.
    score_tables : mapping
        Precomputed score tables by name (:class:`ScoreTableSpec`).
    validation_ground_truth : callable or None
        ``validation_ground_truth(data_root) -> DataFrame`` (columns ``arch`` and ``accuracy``,
        as :meth:`BenchmarkCard.load_ground_truth`): a second accuracy that search reports give
        beside the test accuracy, as ``valid`` (NAS-Bench-201 CIFAR-10: the ``cifar10-valid``
        validation accuracy); ``None``: none.
    """

    name: str
    num_classes: int
    resolution: int
    images: str
    protocol: Protocol
    proxy: str = "xi_gsnr"
    accuracies: tuple[str, ...] = ()
    score_tables: Mapping[str, ScoreTableSpec] = field(default_factory=dict)
    validation_ground_truth: Callable[[Any], "pd.DataFrame"] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(3, resolution, resolution)``: one image, channels first."""
        return (3, self.resolution, self.resolution)

    def accuracy(self, name: str | None = None) -> str:
        """The accuracy definition ``name`` (default: the card's first), validated."""
        if not self.accuracies:
            raise UnknownChoiceError(f"no ground truth for dataset {self.name!r} on this space")
        return choose(name, self.accuracies, "accuracy definition", f"for {self.name}") if name else self.accuracies[0]


@dataclass(frozen=True)
class NASLibCodec:
    """NASLib's name for a space and the conversion of its architecture keys.

    ``to_naslib(code)`` turns the project's canonical architecture string into NASLib's key
    (e.g. NAS-Bench-201's op-index tuple ``"(4, 0, 3, 1, 4, 3)"``); ``from_naslib(key)`` is
    its inverse. Both are the identity where NASLib keys the space by the same string.
    """

    name: str
    to_naslib: Callable[[str], str] = str
    from_naslib: Callable[[Any], str] = str


GroundTruthReader = Callable[..., "pd.DataFrame"]


@dataclass(frozen=True)
class BenchmarkCard:
    """Everything the project knows about one search space (module documentation).

    Parameters
    ----------
    name : str
        The registry name (``nb201``, ``nb101``, ``nds_darts``, ...).
    space : callable
        ``space(**options) -> SearchSpace``.
    datasets : mapping of str to DatasetCard
        The datasets the space is scored on; the first is the default.
    description : str
        One line for listings.
    ground_truth : callable or None
        ``ground_truth(dataset, data_root, accuracy or None) -> DataFrame`` indexed by benchmark
        index with columns ``arch`` and ``accuracy`` (percent); ``None``: no benchmark.
    naslib : NASLibCodec or None
        NASLib's name and key codec, where NASLib knows the space.
    space_options : mapping
        Options of ``space`` with their defaults (recorded with every score).
    search_algorithms : tuple of str
        The ``xigsnr-naslib search`` algorithms the space offers (names of
        :data:`xigsnr_naslib.search.zero_shot.SEARCH_ALGORITHMS`); default: evolution only.
    supernet : callable or None
        ``supernet(**options) -> SupernetSpace`` (:mod:`xigsnr_naslib.benchmarks.supernet`): the
        space's supernet for the pruning search; ``None``: the space has none.
    search_report : {"population", "architecture"}
        What ``xigsnr-naslib search`` reports (:data:`SEARCH_REPORTS`): ``population`` (default),
        the ``--top-k`` best architectures of an evolution with their FLOPs and parameters;
        ``architecture`` (the benchmark spaces ``nb201``, ``darts``), the one architecture
        chosen, with its proxy score, ground truth and rank on every dataset of the card,
        parameters, FLOPs and CPU seconds, under a run header that refuses changed settings.
    evaluation_network : callable or None
        ``evaluation_network(space, arch, num_classes) -> (model, description)``: the network
        the space's paper trains from a found architecture when it is not the scored one (DARTS:
        36 channels, 20 cells); search reports give its size and ``description`` (plain data).
        ``None``: the scored network is the one reported.
    genotype_json : bool
        The canonical encodings are JSON genotypes (DARTS: an NDS record's ``net.genotype``):
        search reports carry the chosen one parsed, as ``genotype``.
    size : int or None
        How many architectures the space holds when it is a finite list (NAS-Bench-201:
        15,625); a ``sample`` search asking for more is refused. ``None``: not listed.
    paper_constraints : mapping of str to float
        The size bounds of the xi-GSNR paper's search in this space (names of
        :data:`SIZE_BOUNDS`; ProxylessNAS: ``{"max_flops": 400e6}``), which
        ``xigsnr-naslib search --paper-constraints`` applies; empty (default): the paper gives none.
    """

    name: str
    space: Callable[..., "SearchSpace"]
    datasets: Mapping[str, DatasetCard]
    description: str = ""
    ground_truth: GroundTruthReader | None = None
    naslib: NASLibCodec | None = None
    space_options: Mapping[str, Any] = field(default_factory=dict)
    search_algorithms: tuple[str, ...] = ("evolution",)
    supernet: Callable[..., Any] | None = None
    search_report: str = "population"
    evaluation_network: Callable[..., tuple[Any, dict]] | None = None
    genotype_json: bool = False
    size: int | None = None
    paper_constraints: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.datasets:
            raise UsageError(f"card {self.name!r} offers no dataset")
        choose(self.search_report, list(SEARCH_REPORTS), "search report", f"of card {self.name!r}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1):
            raise UsageError(f"card {self.name!r}: size must be a whole number >= 1 or None, got {self.size!r}")
        try:
            bounds = dict(self.paper_constraints)
        except (TypeError, ValueError):
            raise UsageError(f"card {self.name!r}: paper_constraints must be a mapping of size bounds "
                             f"({', '.join(SIZE_BOUNDS)}) to numbers, got {self.paper_constraints!r}") from None
        for name, value in bounds.items():
            choose(name, list(SIZE_BOUNDS), "size bound", f"in paper_constraints of card {self.name!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(f"card {self.name!r}: paper_constraints[{name!r}] must be a finite number >= 0, "
                                 f"got {value!r}")
        object.__setattr__(self, "paper_constraints", MappingProxyType(bounds))  # the caller's dict untouched

    @property
    def default_dataset(self) -> str:
        return next(iter(self.datasets))

    def dataset(self, name: str | None = None) -> DatasetCard:
        """The dataset ``name`` (default: the card's first); aliases such as ``cifar-10`` work."""
        if name is None:
            return self.datasets[self.default_dataset]
        from xigsnr_naslib.data.datasets import DATASET_ALIASES

        canonical = DATASET_ALIASES.get(name, name)
        return self.datasets[choose(canonical, list(self.datasets), "dataset", f"for space {self.name!r}")]

    def options(self, **options: Any) -> dict[str, Any]:
        """The space options with the card's defaults filled in; an unknown option is an error."""
        for key in options:
            choose(key, list(self.space_options), "option", f"of space {self.name!r}")
        return {**self.space_options, **options}

    def create_space(self, **options: Any) -> "SearchSpace":
        """The search space, built with ``options`` (validated against :attr:`space_options`)."""
        return self.space(**self.options(**options))

    def load_ground_truth(self, dataset: str | None = None, data_root=None, accuracy: str | None = None
                          ) -> "pd.DataFrame":
        """The benchmark's accuracies on ``dataset`` under the accuracy definition ``accuracy``:
        a frame indexed by benchmark index with ``arch`` and ``accuracy`` (``attrs``:
        ``definition``, ``source``). A file that holds no architecture is a
        :class:`~xigsnr_naslib.data.data_root.DataFileError`."""
        spec = self.dataset(dataset)
        if self.ground_truth is None:
            raise UnknownChoiceError(f"space {self.name!r} has no benchmark ground truth; spaces with one: "
                                     f"{', '.join(n for n in list_cards() if get_card(n).ground_truth)}")
        # no definition asked for: the reader's best available (e.g. NAS-Bench-101's reference
        # sample has one definition only)
        truth = self.ground_truth(spec.name, data_root, spec.accuracy(accuracy) if accuracy else None)
        if getattr(truth, "empty", False):
            from xigsnr_naslib.data.data_root import DataFileError

            raise DataFileError(f"{truth.attrs.get('source', self.name + ' ground truth')}: holds no {self.name} "
                                f"architecture with an accuracy on {spec.name}")
        return truth

    def count_params(self, arch: Hashable, dataset: str | None = None, **options: Any) -> int:
        """Parameters of the built network (all of them, as benchmarks count)."""
        from xigsnr_naslib.core.complexity import count_params

        return count_params(self.create_space(**options).build(arch, num_classes=self.dataset(dataset).num_classes))

    def count_flops(self, arch: Hashable, dataset: str | None = None, **options: Any) -> int:
        """Multiply-adds of Conv2d/Linear layers for one image of the dataset's resolution."""
        from xigsnr_naslib.core.complexity import count_flops

        spec = self.dataset(dataset)
        model = self.create_space(**options).build(arch, num_classes=spec.num_classes)
        return count_flops(model, spec.input_shape)


# --- the registry ---------------------------------------------------------------------------------

_CARDS = Registry(BenchmarkCard, ENTRY_POINT_GROUP, "search space")


#: ``register_card(card)``, ``get_card(name)``, ``list_cards()``: the one door to every space
register_card, get_card, list_cards = _CARDS.register, _CARDS.get, _CARDS.names


def create_space(name: str, **options: Any) -> "SearchSpace":
    """The search space of the card registered as ``name``, built with ``options``.

    Errors: :class:`UnknownChoiceError` (a ``ValueError``) naming an unknown space or option
    and the valid choices.
    """
    return get_card(name).create_space(**options)


def list_spaces() -> list[str]:
    """Every registered search space (card) name, sorted: the same as :func:`list_cards`."""
    return list_cards()


def card_for_naslib(naslib_name: str) -> BenchmarkCard:
    """The card whose NASLib name is ``naslib_name`` (e.g. ``nasbench201``)."""
    known = {get_card(n).naslib.name: get_card(n) for n in list_cards() if get_card(n).naslib is not None}
    return known[choose(naslib_name, sorted(known), "NASLib search space")]
