"""The one door of every search: :func:`search` (space, algorithm, settings) -> report.

:func:`search` validates everything before any work (space, algorithm the card offers,
dataset, proxy, space and supernet options, constraints, the space's operations, images),
then runs the algorithm of :data:`~xigsnr_naslib.search.algorithms.ALGORITHMS` through the one
scoring path and writes the report the card declares (``BenchmarkCard.search_report``):

* ``architecture`` (``nb201``, ``darts``): the one architecture chosen, with its proxy score,
  ground truth and rank on every dataset of the card, size, CPU seconds and networks scored,
  under the run header of :func:`~xigsnr_naslib.search.zero_shot.run_header` (a changed
  header is refused on resume);
* ``population`` (every other space): the ``top_k`` best architectures of an evolution, with
  the space and its options, FLOPs and parameters, proxy, protocol and images.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Hashable

from xigsnr_naslib.data.outputs import check_output, writing
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard, get_card
from xigsnr_naslib.search.algorithms import Algorithm, Outcome, get_algorithm
from xigsnr_naslib.search.settings import SearchSettings

__all__ = ["search", "prepare", "SearchRun", "study_records"]


def _silent(message: str) -> None:
    return None


@dataclass
class SearchRun:
    """A prepared search: every input validated, nothing scored yet (:func:`prepare`).

    ``space_options`` are the options as given (the card fills in the others); ``echo``
    receives each line a run prints (the command line's ``print``; silent by default).
    """

    card: BenchmarkCard
    algorithm: str
    dataset: DatasetCard
    study: Any
    constraints: Any
    settings: SearchSettings
    space_options: dict
    paths: tuple[Path, Path, str]
    echo: Callable[[str], None] = _silent

    @property
    def checkpoint(self) -> Path:
        return self.paths[0]

    @property
    def output(self) -> Path:
        return self.paths[1]

    @property
    def store(self) -> str:
        return self.paths[2]


def search(space: str | BenchmarkCard, algorithm: str = "evolution", settings: SearchSettings | None = None,
           algorithm_settings: Any = None, *, echo: Callable[[str], None] | None = None) -> dict:
    """Search ``space`` with ``algorithm``; write and return the report.

    Parameters
    ----------
    space : str or BenchmarkCard
        A registered space (``xigsnr-naslib spaces``) or its card.
    algorithm : str
        One of :data:`~xigsnr_naslib.search.algorithms.ALGORITHMS` that the card offers
        (``BenchmarkCard.search_algorithms``): ``prune``, ``sample``, ``evolution``.
    settings : SearchSettings or None
        Dataset, proxy, protocol, execution, images, constraints and files (default:
        ``SearchSettings()``).
    algorithm_settings : settings of the algorithm, or None
        An instance of the algorithm's settings class (``PruneSettings``, ``SampleSettings``,
        ``EvolutionSettings``); None: its defaults.
    echo : callable or None
        Receives each line the run prints (header, progress, report); None: silent.

    Returns
    -------
    dict
        The report, as written to the output file (``SearchSettings.outputs``).

    Raises
    ------
    ValueError
        One line naming a bad value and the choices (an unknown space, algorithm, dataset,
        proxy or option; an algorithm the space does not offer; a changed run header).
    TypeError
        ``algorithm_settings`` of another algorithm's class.
    MissingDataError
        Images or ground truth the run needs are not under the data root.
    """
    run, entry, algorithm_settings = prepare(space, algorithm, settings, algorithm_settings, echo)
    if run.card.search_report == "architecture":
        return _architecture_search(run, entry, algorithm_settings)
    return _population_search(run, entry, algorithm_settings)


def prepare(space: str | BenchmarkCard, algorithm: str, settings: SearchSettings | None = None,
            algorithm_settings: Any = None, echo: Callable[[str], None] | None = None
            ) -> tuple[SearchRun, Algorithm, Any]:
    """The run :func:`search` makes, validated and ready (images read, nothing scored): the
    :class:`SearchRun`, the algorithm and its settings. Errors: as :func:`search`."""
    from xigsnr_naslib.proxies import get_proxy
    from xigsnr_naslib.scoring.study import Study
    from xigsnr_naslib.search.zero_shot import check_space_operations

    card = space if isinstance(space, BenchmarkCard) else get_card(space)
    entry = get_algorithm(algorithm, card)
    algorithm_settings = _algorithm_settings(algorithm, entry, algorithm_settings)
    if card.search_report == "population" and not entry.population:
        raise UsageError(f"space {card.name!r} reports a population, which search algorithm {algorithm!r} "
                         f"does not make; it offers: {', '.join(card.search_algorithms)}")
    settings = SearchSettings() if settings is None else settings
    if not isinstance(settings, SearchSettings):
        raise TypeError(f"settings must be SearchSettings, got {type(settings).__name__}")
    dataset, options, bounds_resolution = _dataset_and_options(card, settings)
    names = list(settings.proxies) or [dataset.proxy]
    if card.search_report == "architecture" and len(names) > 1:
        raise UsageError(f"a zero-shot search takes one --proxy (its indicator), got {len(names)}: {', '.join(names)}")
    proxies = [get_proxy(name) for name in names]
    entry.check(card, dataset, proxies[0], algorithm_settings)
    paths = _paths(card, algorithm, settings)
    check_output(paths[0], "checkpoint")  # refused now, not after the scoring
    check_output(paths[1], "report")
    study = Study(card, dataset, proxies, dataset.protocol.replace(**settings.protocol_changes()), settings.execution,
                  paths[2], settings.data_root, space_options=options)
    check_space_operations(study.space, algorithm)
    constraints = _constraints(study, algorithm, settings, bounds_resolution)
    run = SearchRun(card, algorithm, dataset, study, constraints, settings, options, paths, echo or _silent)
    _attach_images(run)
    return run, entry, algorithm_settings


def _algorithm_settings(name: str, entry: Algorithm, given: Any) -> Any:
    if given is None:
        return entry.settings()
    if not isinstance(given, entry.settings):
        raise TypeError(f"search algorithm {name!r} takes {entry.settings.__name__}, got {type(given).__name__}")
    return given


def _dataset_and_options(card: BenchmarkCard, settings: SearchSettings) -> tuple[DatasetCard, dict, int]:
    """The dataset with the run's class count and resolution, the space options, and the
    resolution constraints are counted at by default.

    A space built for a resolution (a ``resolution`` option: the ImageNet spaces) takes
    ``settings.resolution`` as that option and bounds at its default resolution (224, the
    deployment's); on the others it is the dataset's resolution, and bounds are counted there.
    """
    dataset = card.dataset(settings.dataset)
    options = dict(settings.space_options)
    if "resolution" in card.space_options:
        if settings.resolution is not None:
            options["resolution"] = settings.resolution
        space = card.create_space(**options)
        resolution = space.resolution or space.default_resolution
        dataset = replace(dataset, num_classes=settings.num_classes or dataset.num_classes, resolution=resolution)
        return dataset, options, space.default_resolution
    changes = {k: v for k, v in (("num_classes", settings.num_classes), ("resolution", settings.resolution)) if v}
    dataset = replace(dataset, **changes)
    return dataset, options, dataset.resolution


def _constraints(study, algorithm: str, settings: SearchSettings, default_resolution: int):
    """The bounds of the run (the paper's for the space where asked, then the given ones)."""
    from xigsnr_naslib.search.algorithms import ALGORITHMS
    from xigsnr_naslib.search.evolution import Constraints

    wanted = settings.constraints
    bounds: dict[str, float] = {}
    if wanted.paper:
        bounds = dict(study.card.paper_constraints)
        if not bounds:
            raise UsageError(f"the paper gives no constraints for space {study.card.name!r}")
    bounds.update(wanted.bounds())
    if bounds and not ALGORITHMS[algorithm].constrained:
        flag = "--" + next(iter(wanted.bounds()), "paper_constraints").replace("_", "-")
        honour = " or ".join(name for name, a in ALGORITHMS.items() if a.constrained)
        raise UsageError(f"{flag} bounds --algorithm {honour} only, not {algorithm}")
    return Constraints(resolution=wanted.resolution or default_resolution, num_classes=study.dataset_card.num_classes,
                       **bounds)


def _paths(card: BenchmarkCard, algorithm: str, settings: SearchSettings) -> tuple[Path, Path, str]:
    """Checkpoint, report and results store (defaults under ``results/``, after the space; a
    report of one architecture per algorithm)."""
    outputs = settings.outputs
    stem = f"results/search_{card.name}" + (f"_{algorithm}" if card.search_report == "architecture" else "")
    store = outputs.results or f"results/search_{card.name}.scores.jsonl"
    return Path(outputs.checkpoint or f"{stem}.checkpoint.json"), Path(outputs.output or f"{stem}.best.json"), store


def _attach_images(run: SearchRun) -> None:
    """The images the study draws its batches from, where a proxy reads images."""
    from xigsnr_naslib.search.zero_shot import search_images

    study, wanted = run.study, run.settings.images
    if not study.needs_data:
        return
    images = search_images(run.dataset, study.protocol, wanted.source, wanted.synthetic, run.settings.data_root,
                           wanted.max_images)
    classes = run.dataset.num_classes
    if images.num_classes > classes:
        said = (f"--num-classes is {classes}" if run.settings.num_classes is not None
                else f"the dataset has {classes}; give --num-classes")
        raise UsageError(f"{images.source} has {images.num_classes} classes but {said}")
    study.images = images
    if run.card.search_report == "population":
        shape = images.images.shape
        run.echo(f"images: {images.source} ({len(images)} at {shape[2]}x{shape[1]})")


# --- the report of one architecture --------------------------------------------------------------

def _architecture_search(run: SearchRun, entry: Algorithm, settings: Any) -> dict:
    from xigsnr_naslib.search.zero_shot import cpu_seconds, open_run, run_header, write_run_file

    header = run_header(run.algorithm, entry.header(run, settings), run.study)
    _print_header(header, run.echo)
    state = {"header": header} if entry.keeps_checkpoint else open_run(run.checkpoint, header)
    began = (cpu_seconds(), time.perf_counter())
    stored_before = _stored_keys(run.study)
    outcome = entry.run(run, settings)
    report = _architecture_report(run, outcome, header, stored_before, began)
    state["result"] = report
    if not entry.keeps_checkpoint:
        write_run_file(run.checkpoint, state)
    with writing(run.output, "report"):
        run.output.parent.mkdir(parents=True, exist_ok=True)
        run.output.write_text(json.dumps(report, indent=1, allow_nan=True))
    _print_report(report, run.echo)
    run.echo(f"report: {run.output}\ncheckpoint: {run.checkpoint}\nscores: {run.store}")
    return report


def _architecture_report(run: SearchRun, outcome: Outcome, header: dict, stored_before: set,
                         began: tuple[float, float]) -> dict:
    from xigsnr_naslib.scoring.results import record_key
    from xigsnr_naslib.search.zero_shot import cpu_seconds, describe_architecture

    study, arch = run.study, outcome.arch
    used = outcome.records
    if used is None:  # an evolution: every distinct architecture of its history
        codes = dict.fromkeys(c.arch for c in outcome.evolution.history)
        used = study_records(study, [study.space.decode(c) for c in codes])
    final = study_records(study, [arch])[0]
    used = list({record_key(r): r for r in used}.values())  # a data-free proxy's repeats are one network
    report = {"header": header, "algorithm": run.algorithm, "space": run.card.name, "dataset": run.dataset.name,
              "proxy": study.proxies[0].name, "proxy_score": final.get("score"), "networks_scored": len(used),
              "networks_scored_now": sum(1 for r in used if record_key(r) not in stored_before),
              "cpu_seconds": round(cpu_seconds() - began[0], 2),
              "wall_seconds": round(time.perf_counter() - began[1], 2),
              "scoring_seconds": round(sum(r.get("seconds") or 0.0 for r in used), 2)}
    report.update(describe_architecture(run.card, run.dataset, study.space, arch, run.settings.data_root))
    if run.card.genotype_json:  # DARTS: the genotype as an NDS record's net (NDS builder)
        report["genotype"] = json.loads(study.space.encode(arch))
    report.update(outcome.extra)
    return report


def _stored_keys(study) -> set:
    """The keys of the records the study's store holds now (none without a store), each under
    its architecture's canonical string, as the study serves it (a record stored under an
    earlier encoding is not scored again, so it is not counted as scored now)."""
    from xigsnr_naslib.benchmarks.space import canonical_record
    from xigsnr_naslib.scoring.results import record_key

    if study.store is None:
        return set()
    codes: dict = {}
    return {record_key(canonical_record(study.space, r, codes) if r.get("space") == study.card.name else r)
            for r in study.store}


def study_records(study, archs: list[Hashable]) -> list[dict]:
    """The study's records of ``archs`` by its first proxy (scored now where the store lacks them)."""
    name = study.proxies[0].name
    return [r for r in study.score([(None, a) for a in archs]) if r["proxy"] == name]


def _print_header(header: dict, echo: Callable[[str], None]) -> None:
    protocol = header.get("protocol") or {}
    echo(f"search {header['space']} / {header['dataset']}: {header['algorithm']} {header['algorithm_settings']}")
    echo(f"proxy: {', '.join(f'{k} {v}' for k, v in header['proxies'].items())}")
    if protocol:
        echo(f"protocol: {protocol.get('n_batches')} x {protocol.get('batch_size')}, data seed {protocol.get('data_seed')}, "
             f"init seed {protocol.get('init_seed')}, BN {protocol.get('bn_mode')}; images {header.get('images')}")


def _print_report(report: dict, echo: Callable[[str], None]) -> None:
    echo(f"chosen: {report['arch']}")
    echo(f"proxy score ({report['proxy']}): {report['proxy_score']}")
    extra = f" (evaluation network {report['evaluation_network']})" if "evaluation_network" in report else ""
    echo(f"params: {report['params']:,}{extra}; FLOPs: {report['flops']:,} multiply-adds")
    for name, t in (report.get("ground_truth") or {}).items():
        for split, v in (("test", t), ("valid", t.get("valid"))):
            if not v:
                continue
            if "missing" in v:
                echo(f"{name} {split}: no ground truth ({v['missing']})")
            else:
                echo(f"{name} {split}: {v['accuracy']:.2f} (rank {v['rank']} of {v['of']}, top {v['top_percent']:.2f}%; "
                     f"best {v['space_best']:.2f})")
    stored = report["networks_scored"] - report["networks_scored_now"]
    echo(f"networks scored: {report['networks_scored']} ({report['networks_scored_now']} in this invocation"
         f"{f', {stored} read from the store' if stored else ''}); CPU seconds (this invocation): {report['cpu_seconds']}; "
         f"scoring seconds (every network used, this invocation or before): {report['scoring_seconds']}")


# --- the report of a population ------------------------------------------------------------------

def _population_search(run: SearchRun, entry: Algorithm, settings: Any) -> dict:
    from xigsnr_naslib.search.evolution import arch_size

    study, top_k = run.study, run.settings.outputs.top_k
    result = entry.run(run, settings).evolution
    constraints = run.constraints

    def sizes(code: str) -> tuple[int, int]:  # of the reported ones, where no bound made the search measure them
        return arch_size(study.space, study.space.decode(code), constraints.resolution, constraints.num_classes)

    proxy = study.proxies[0]
    report = result.to_dict(top_k, sizes)
    report.update({"space_options": run.space_options, "proxy": proxy.name, "proxy_settings": proxy.settings,
                   "protocol": study.protocol.settings() if proxy.needs_data else {},
                   "images": study.images.source if study.images is not None else None,
                   "flops_unit": "multiply-adds", "flops_resolution": run.constraints.resolution})
    with writing(run.output, "report"):
        run.output.parent.mkdir(parents=True, exist_ok=True)
        run.output.write_text(json.dumps(report, indent=2, allow_nan=True))
    run.echo(f"{'rank':>4} {'fitness':>14} {'MFLOPs':>9} {'Mparams':>8}  architecture")
    for rank, c in enumerate(result.best(top_k, sizes), 1):
        fit = "nan" if c.fitness is None else f"{c.fitness:.6g}"
        run.echo(f"{rank:>4} {fit:>14} {c.flops / 1e6:>9.1f} {c.params / 1e6:>8.2f}  {c.arch}")
    run.echo(f"best architectures: {run.output}\ncheckpoint: {run.checkpoint}")
    return report
