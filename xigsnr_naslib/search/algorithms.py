"""The search algorithms, registered once: :data:`ALGORITHMS` (name -> :class:`Algorithm`).

Each algorithm declares its settings class (the defaults of ``xigsnr-naslib search``), the
command-line name of each setting, the checks it makes before any work, the settings its run
header records, and its run. :func:`xigsnr_naslib.search.search` is the one door that runs them;
which of them a space offers is declared on its card (``BenchmarkCard.search_algorithms``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable, Mapping

from xigsnr_naslib.registry import choose
from xigsnr_naslib.search.evolution import EvolutionSettings
from xigsnr_naslib.search.settings import PruneSettings, SampleSettings

if TYPE_CHECKING:  # pragma: no cover
    from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard
    from xigsnr_naslib.search.door import SearchRun
    from xigsnr_naslib.search.evolution import EvolutionResult

__all__ = ["Algorithm", "Outcome", "ALGORITHMS", "get_algorithm", "repeat_init_seeds"]


@dataclass(frozen=True)
class Outcome:
    """What an algorithm's run found: the chosen architecture, the records it used (None:
    read back from the evolution's history when a report needs them), the entries it adds to
    the report of one architecture, and an evolution's result."""

    arch: Hashable
    records: list[dict] | None
    extra: dict = field(default_factory=dict)
    evolution: "EvolutionResult | None" = None


def _no_check(card: "BenchmarkCard", dataset: "DatasetCard", proxy, settings: Any) -> None:
    return None


@dataclass(frozen=True)
class Algorithm:
    """One search algorithm of :data:`ALGORITHMS`.

    Parameters
    ----------
    description : str
        One line for listings.
    settings : type
        Its frozen settings class; ``settings()`` holds the defaults.
    flags : mapping of str to str
        Each setting's ``xigsnr-naslib search`` option (its ``argparse`` destination), by field.
    run : callable
        ``run(search_run, settings) -> Outcome``.
    header : callable
        ``header(search_run, settings) -> dict``: the settings the run header records.
    check : callable
        ``check(card, dataset, proxy, settings)``: refusals before any work (``ValueError``).
    constrained : bool
        Whether it honours FLOPs and parameter bounds.
    keeps_checkpoint : bool
        Whether it writes its own state to the checkpoint file (else the door writes the run's
        header and result to it).
    population : bool
        Whether its outcome carries a population (the report of spaces whose
        ``BenchmarkCard.search_report`` is ``population``).
    """

    description: str
    settings: type
    flags: Mapping[str, str]
    run: Callable[["SearchRun", Any], Outcome]
    header: Callable[["SearchRun", Any], dict]
    check: Callable[..., None] = _no_check
    constrained: bool = False
    keeps_checkpoint: bool = False
    population: bool = False

    def defaults(self) -> dict[str, Any]:
        """Each command-line option's default, by option (from :attr:`settings`)."""
        default = self.settings()
        return {flag: getattr(default, name) for name, flag in self.flags.items()}


def repeat_init_seeds(protocol, repeats: int) -> list[int]:
    """The init seed of each pruning repeat: the protocol's + ``REPEAT_SEED_STRIDE * r``."""
    from xigsnr_naslib.search.pruning import REPEAT_SEED_STRIDE

    return [protocol.init_seed + r * REPEAT_SEED_STRIDE for r in range(repeats)]


# --- prune ------------------------------------------------------------------------------------------

def _check_prune(card, dataset, proxy, settings: PruneSettings) -> None:
    from xigsnr_naslib.search.zero_shot import check_supernet_proxy, supernet_card

    check_supernet_proxy(proxy)
    supernet_card(card, dataset).create_space(**settings.supernet_options)  # a bad option: refused now


def _prune_header(run: "SearchRun", settings: PruneSettings) -> dict:
    from xigsnr_naslib.search.zero_shot import supernet_card

    supernet = supernet_card(run.card, run.dataset).options(**settings.supernet_options)
    return {"repeats": settings.repeats, "supernet": supernet,
            "repeat_init_seeds": repeat_init_seeds(run.study.protocol, settings.repeats)}


def _run_prune(run: "SearchRun", settings: PruneSettings) -> Outcome:
    from xigsnr_naslib.scoring.study import Study
    from xigsnr_naslib.search.door import study_records
    from xigsnr_naslib.search.pruning import prune, study_scorer
    from xigsnr_naslib.search.zero_shot import supernet_card

    study, card = run.study, supernet_card(run.card, run.dataset)
    studies = [Study(card, run.dataset, [study.proxies[0]], study.protocol.replace(init_seed=seed), study.execution,
                     study.store, run.settings.data_root, images=study.images,
                     space_options=dict(settings.supernet_options))
               for seed in repeat_init_seeds(study.protocol, settings.repeats)]
    scorers = [study_scorer(s) for s in studies]
    result = prune(studies[0].space, scorers, progress=run.echo if study.execution.progress else None)
    used = [r for sc in scorers for r in sc.records.values()] + study_records(study, [result.arch])
    extra = {"steps": [dataclasses.asdict(s) for s in result.steps],
             "supernet_state": studies[0].space.encode(result.state)}
    return Outcome(result.arch, used, extra)


# --- sample -----------------------------------------------------------------------------------------

def _check_sample(card, dataset, proxy, settings: SampleSettings) -> None:
    from xigsnr_naslib.search.zero_shot import check_samples

    check_samples(card, settings.samples)


def _sample_header(run: "SearchRun", settings: SampleSettings) -> dict:
    return {"samples": settings.samples, "seed": settings.seed}


def _run_sample(run: "SearchRun", settings: SampleSettings) -> Outcome:
    from xigsnr_naslib.search.zero_shot import sample_search

    arch, _, used = sample_search(run.study, settings.samples, settings.seed)
    return Outcome(arch, used, {"scores": {r["arch"]: r.get("score") for r in used}})


# --- evolution --------------------------------------------------------------------------------------

def _evolution_header(run: "SearchRun", settings: EvolutionSettings) -> dict:
    return {"population": settings.population_size, "steps": settings.steps, "sample_size": settings.sample_size,
            "seed": settings.seed, "constraints": run.constraints.settings()}


def _run_evolution(run: "SearchRun", settings: EvolutionSettings) -> Outcome:
    from xigsnr_naslib.search.evolution import RegularizedEvolution

    study = run.study
    result = RegularizedEvolution(study.space, study, settings, constraints=run.constraints,
                                  checkpoint=run.checkpoint, progress=study.execution.progress).run()
    best = max(result.history, key=lambda c: (c.rank_value, -c.step))
    return Outcome(study.space.decode(best.arch), None, {"scores": {c.arch: c.fitness for c in result.history}},
                   result)


#: every search algorithm, by name (the order of listings and messages)
ALGORITHMS: dict[str, Algorithm] = {
    "prune": Algorithm("TE-NAS pruning of the space's supernet, the proxy as indicator", PruneSettings,
                       {"repeats": "repeats", "supernet_options": "supernet_option"}, _run_prune, _prune_header,
                       _check_prune),
    "sample": Algorithm("N architectures drawn uniformly with a seed, the proxy's best kept", SampleSettings,
                        {"samples": "samples", "seed": "search_seed"}, _run_sample, _sample_header, _check_sample),
    "evolution": Algorithm("regularized (aging) evolution, the proxy as fitness", EvolutionSettings,
                           {"population_size": "population", "steps": "steps", "sample_size": "sample_size",
                            "mutation_rate": "mutation_rate", "crossover_rate": "crossover_rate",
                            "seed": "search_seed"},
                           _run_evolution, _evolution_header, constrained=True, keeps_checkpoint=True,
                           population=True),
}


def get_algorithm(name: str, card: "BenchmarkCard | None" = None) -> Algorithm:
    """The algorithm ``name``; with ``card``, only one the card offers.

    Errors: :class:`~xigsnr_naslib.registry.UnknownChoiceError` (a ``ValueError``) of one line:
    ``unknown search algorithm 'anneal'; choose one of: prune, sample, evolution``, or
    ``space 'nb101' does not offer search algorithm 'prune'; it offers: evolution``.
    """
    from xigsnr_naslib.registry import UnknownChoiceError

    choose(name, list(ALGORITHMS), "search algorithm")
    if card is not None and name not in card.search_algorithms:
        raise UnknownChoiceError(f"space {card.name!r} does not offer search algorithm {name!r}; "
                                 f"it offers: {', '.join(card.search_algorithms)}")
    return ALGORITHMS[name]
