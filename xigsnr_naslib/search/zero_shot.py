"""Zero-shot architecture search on benchmark spaces (NAS-Bench-201, DARTS): prune, sample, evolution.

The xi-GSNR paper's search results (Tables 4 and 5) use the proxy as the indicator of
TE-NAS's training-free pruning search. Three algorithms, each driven by one registered proxy
through the one scoring path (:class:`~xigsnr_naslib.scoring.study.Study`: results store, workers,
resume):

* ``prune`` (:mod:`xigsnr_naslib.search.pruning`): TE-NAS's procedure on the space's supernet
  (:attr:`BenchmarkCard.supernet <xigsnr_naslib.benchmarks.card.BenchmarkCard>`).
* ``sample``: draw ``n`` distinct architectures uniformly with a seed, keep the proxy's best.
* ``evolution``: the regularized evolution of :mod:`xigsnr_naslib.search.evolution`.

Which algorithms a space offers is declared once, on its card
(``BenchmarkCard.search_algorithms``); :func:`check_algorithm` refuses the others by name.

A run is described by its **header** (:func:`run_header`: algorithm and its settings,
space, dataset, proxy and settings, protocol with both seeds, image fingerprint). The header
is written to the run's checkpoint file; rerunning with the same file resumes (every network
already scored is read from the store, so none is scored twice), and a changed header is
refused with the names of the fields that changed. The report of a run
(:func:`describe_architecture`) gives the chosen architecture, its proxy score, its
ground-truth accuracies on every dataset of the card (test, and CIFAR-10 validation for
NAS-Bench-201), its rank in the space, its parameters and FLOPs, the CPU seconds and the
number of networks scored.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Hashable

from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard, UnknownChoiceError
from xigsnr_naslib.search.pruning import REPEAT_SEED_STRIDE
from xigsnr_naslib.registry import choose

__all__ = ["SEARCH_ALGORITHMS", "check_algorithm", "check_supernet_proxy", "supernet_card", "run_header",
           "open_run", "draw_architectures", "sample_search", "describe_architecture", "cpu_seconds",
           "search_images", "check_space_operations", "SPACE_OPERATIONS", "run_zero_shot"]

#: every search algorithm of ``xigsnr-naslib search``, with one line each; a card lists those it offers
SEARCH_ALGORITHMS = {
    "prune": "TE-NAS pruning of the space's supernet, the proxy as indicator",
    "sample": "N architectures drawn uniformly with a seed, the proxy's best kept",
    "evolution": "regularized (aging) evolution, the proxy as fitness",
}


def check_algorithm(card: BenchmarkCard, algorithm: str) -> str:
    """``algorithm`` if ``card`` offers it; ``UnknownChoiceError`` (a ``ValueError``) naming the
    offered ones otherwise."""
    choose(algorithm, list(SEARCH_ALGORITHMS), "search algorithm")
    if algorithm not in card.search_algorithms:
        raise UnknownChoiceError(f"space {card.name!r} does not offer search algorithm {algorithm!r}; "
                                 f"it offers: {', '.join(card.search_algorithms)}")
    return algorithm


#: the space operations each algorithm calls (``prune`` works on the card's supernet)
SPACE_OPERATIONS = {"evolution": ("sample", "mutate", "crossover"), "sample": ("sample",), "prune": ()}


def check_space_operations(space, algorithm: str) -> None:
    """Refuse, before any work, an algorithm whose space operations (:data:`SPACE_OPERATIONS`)
    ``space`` leaves to :class:`~xigsnr_naslib.benchmarks.space.SearchSpace`, which cannot do them
    (the NDS spaces, whose architectures are the benchmark's records). Errors: ``ValueError``."""
    from xigsnr_naslib.benchmarks.space import SearchSpace

    lacking = [op for op in SPACE_OPERATIONS.get(algorithm, ())
               if getattr(type(space), op, None) is getattr(SearchSpace, op, None)]
    if lacking:
        raise ValueError(f"space {space.name!r} cannot run --algorithm {algorithm}: it has no "
                         f"{', '.join(lacking)} operation (score its architectures with 'xigsnr-naslib correlate'; "
                         "the DARTS cells are searched with --space darts)")


def check_supernet_proxy(proxy) -> None:
    """Refuse, before any work, a proxy that is not defined on a supernet (``Proxy.on_supernet``)."""
    if not getattr(proxy, "on_supernet", True):
        raise ValueError(f"proxy {proxy.name!r} is not computable on a supernet (it is defined on single-path "
                         "networks only); use it with --algorithm sample or evolution")


def _defaults(factory) -> dict:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def supernet_card(card: BenchmarkCard, dataset: DatasetCard) -> BenchmarkCard:
    """A card for ``card``'s supernet (scored like any space; its records carry the name
    ``<space>_supernet``). Errors: ``ValueError`` when the space has no supernet."""
    if card.supernet is None:
        raise UnknownChoiceError(f"space {card.name!r} has no supernet; it offers: {', '.join(card.search_algorithms)}")
    return BenchmarkCard(f"{card.name}_supernet", card.supernet, {dataset.name: dataset},
                         f"supernet of {card.name} (pruning search)", space_options=_defaults(card.supernet))


def run_header(algorithm: str, settings: dict, study) -> dict:
    """What defines a run: algorithm and its settings, and the study's space, options, dataset,
    images, proxy and protocol (with its seeds), as plain data."""
    header = {"algorithm": algorithm, "algorithm_settings": settings}
    header.update(study.settings())
    return json.loads(json.dumps(header))


def open_run(path: str | os.PathLike, header: dict) -> dict:
    """The run file at ``path``: created with ``header``, or read back if its header is the same.

    Errors: ``ValueError`` naming every field that changed (``proxies.xi_gsnr``,
    ``protocol.init_seed``, ``algorithm_settings.seed``, ...) and their old and new values.
    """
    from xigsnr_naslib.search.evolution import _at, _differences

    path = Path(path)
    if path.exists():
        try:
            data = json.loads(path.read_text())
            saved = data["header"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"run file {path} is not readable: {exc}") from None
        if saved != header:
            fields = _differences(saved, header)
            raise ValueError(f"run file {path} was written with other {', '.join(fields)} "
                             f"({'; '.join(f'{f}: {_at(saved, f)!r} then, {_at(header, f)!r} now' for f in fields)}); "
                             "use another --checkpoint or the same settings")
        return data
    data = {"header": header}
    _write(path, data)
    return data


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True))
    os.replace(tmp, path)


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children so far."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# --- sample -----------------------------------------------------------------------------------------

def draw_architectures(space, n: int, seed: int, max_draws: int | None = None) -> list:
    """``n`` distinct architectures drawn uniformly by ``space.sample`` from ``random.Random(seed)``.

    Errors: ``ValueError`` when the space does not give ``n`` distinct ones in ``max_draws``
    draws (default ``100 * n``), e.g. ``n`` larger than the space.
    """
    rng = random.Random(seed)
    seen, out = set(), []
    for _ in range(max_draws or 100 * n):
        arch = space.sample(rng)
        code = space.encode(arch)
        if code not in seen:
            seen.add(code)
            out.append(arch)
            if len(out) == n:
                return out
    raise ValueError(f"{space.name}: only {len(out)} distinct architectures in {max_draws or 100 * n} draws; "
                     f"ask for fewer than {n}")


def check_samples(space, n: int) -> None:
    """Refuse ``n`` larger than a finite space (one that lists ``all_archs``)."""
    if hasattr(space, "all_archs"):
        size = len(space.all_archs())
        if n > size:
            raise ValueError(f"--samples {n} exceeds the {size} architectures of space {space.name!r}")


def sample_search(study, n: int, seed: int) -> tuple[Hashable, float, list[dict]]:
    """The best of ``n`` distinct architectures drawn with ``seed``, by the study's first proxy.

    Returns ``(architecture, score, records)`` (records in draw order; ties: the earliest
    drawn). Errors: ``ValueError`` when no architecture has a finite score.
    """
    check_samples(study.space, n)
    archs = draw_architectures(study.space, n, seed)
    name = study.proxies[0].name
    records = [r for r in study.score([(None, a) for a in archs]) if r["proxy"] == name]
    best, best_score = None, -math.inf
    for arch, record in zip(archs, records):
        score = record.get("score")
        if record.get("status") == "ok" and score is not None and score > best_score:
            best, best_score = arch, float(score)
    if best is None:
        raise ValueError(f"proxy {name!r} gave no finite score to any of the {n} architectures drawn")
    return best, best_score, records


# --- the report of a chosen architecture -------------------------------------------------------------

def describe_architecture(card: BenchmarkCard, dataset: DatasetCard, space, arch: Hashable, data_root=None) -> dict:
    """Ground truth (every dataset of the card: test accuracy, rank and top percentage in the
    space; NAS-Bench-201 CIFAR-10 validation too), parameters and FLOPs of ``arch``.

    Ground truth that is not under the data root is reported as missing (``"missing"``: the
    reason), not an error. FLOPs are multiply-adds of one ``dataset.resolution`` image.
    """
    from xigsnr_naslib.core.complexity import count_flops, count_params
    from xigsnr_naslib.data.data_root import MissingDataError

    code = space.encode(arch)
    out: dict[str, Any] = {"arch": code}
    if hasattr(space, "evaluation_net"):  # DARTS: the size of the network the paper trains
        from xigsnr_naslib.benchmarks.nds.space import NDSNetwork, count_nds_params

        net = space.evaluation_net(arch)
        model = NDSNetwork(net, dataset.num_classes, "cifar")
        out["evaluation_network"] = {"width": net.width, "depth": net.depth}
        out["params"] = count_params(model)
        assert out["params"] == count_nds_params(net, dataset.num_classes, "cifar")
    else:
        model = space.build(arch, num_classes=dataset.num_classes)
        out["params"] = count_params(model)
    out["flops"] = count_flops(model, dataset.input_shape)
    if card.ground_truth is None:
        return out
    truth: dict[str, Any] = {}
    for name in card.datasets:
        try:
            table = card.load_ground_truth(name, data_root)
        except (MissingDataError, OSError) as exc:
            truth[name] = {"missing": str(exc).splitlines()[0]}
            continue
        truth[name] = _standing(table, code)
        if card.name == "nb201" and name == "cifar10":
            from xigsnr_naslib.benchmarks.nb201.ground_truth import nb201_cifar10_validation

            try:
                truth[name]["valid"] = _standing(nb201_cifar10_validation(data_root), code)
            except (MissingDataError, OSError, ValueError) as exc:
                truth[name]["valid"] = {"missing": str(exc).splitlines()[0]}
    out["ground_truth"] = truth
    return out


def _standing(table, code: str) -> dict:
    """Accuracy of ``code`` in ``table``, its rank (1 = best) and the percentage of the space
    at or above it, and the space's best."""
    rows = table[table["arch"] == code]
    if rows.empty:
        return {"missing": f"{code} not in {table.attrs.get('source', 'the ground truth')}"}
    acc = float(rows["accuracy"].iloc[0])
    values = table["accuracy"].to_numpy(float)
    rank = int((values > acc).sum()) + 1
    return {"accuracy": acc, "rank": rank, "of": int(len(values)), "top_percent": 100.0 * rank / len(values),
            "space_best": float(values.max()), "definition": table.attrs.get("definition", "")}


# --- the command ----------------------------------------------------------------------------------

def search_images(dataset: DatasetCard, protocol, source: str | None = None, synthetic: bool = False,
                  data_root=None, max_images: int = 1024):
    """The images a search draws its batches from (an :class:`~xigsnr_naslib.data.image_set.ImageSet`).

    ``synthetic``: random noise (tests and sizing only); ``source``: a folder of images or an
    ``.npz``, absolute or under the data root, read at ``dataset.resolution``; neither: the
    images the space's card names for ``dataset`` (``DatasetCard.images``): CIFAR-10 for
    ``nb101``, ``nb201``, ``darts`` and the CIFAR NDS spaces, ImageNet training images for
    the ImageNet spaces (``imagenet/train``, ``ILSVRC2012/train`` or ``imagenet`` under the
    data root, ``max_images`` of them drawn with the protocol's data seed).

    Errors: :class:`~xigsnr_naslib.data.data_root.MissingDataError`, one line naming the files
    looked for and the choices (``--images PATH``, ``--synthetic-images``).
    """
    from xigsnr_naslib.data.data_root import MissingDataError
    from xigsnr_naslib.data.datasets import load_images
    from xigsnr_naslib.data.image_folder import read_images, synthetic_images

    count = max(max_images, protocol.batch_size)
    if synthetic:
        return synthetic_images(max(protocol.n_batches * protocol.batch_size, protocol.batch_size),
                                dataset.resolution, dataset.num_classes, protocol.data_seed)
    if source is not None or dataset.images == "imagenet":
        return read_images(source, data_root, dataset.resolution, count, protocol.data_seed)
    try:
        return load_images(dataset.images, data_root)
    except MissingDataError as exc:
        message = " ".join(str(exc).split())
        raise MissingDataError(f"{message} Or pass --images PATH (a folder of images or an .npz), or "
                               "--synthetic-images for a test without images.") from None


#: the flags each algorithm reads, with the parser's defaults (``search_command``; a test checks
#: they agree): a flag of another algorithm set to anything else is refused (it would be ignored)
ALGORITHM_FLAGS = {
    "prune": {"repeats": 3, "supernet_option": []},
    "sample": {"samples": 100, "search_seed": 0},
    "evolution": {"population": 128, "steps": 2000, "sample_size": 32, "mutation_rate": None,
                  "crossover_rate": 0.25, "search_seed": 0},
}


def check_algorithm_flags(args, algorithm: str) -> None:
    """Refuse a flag that only another algorithm reads (e.g. ``--samples`` with ``prune``),
    naming the algorithms that read it. Errors: ``ValueError``."""
    own = ALGORITHM_FLAGS.get(algorithm, {})
    for flags in ALGORITHM_FLAGS.values():
        for name, default in flags.items():
            if name in own or getattr(args, name, default) == default:
                continue
            readers = [a for a, f in ALGORITHM_FLAGS.items() if name in f]
            raise ValueError(f"--{name.replace('_', '-')} is for --algorithm {' or '.join(readers)}, not {algorithm}")


def run_zero_shot(args) -> int:
    """``xigsnr-naslib search`` on a space with a supernet (NAS-Bench-201, DARTS); see
    :mod:`xigsnr_naslib.cli.search`."""
    from xigsnr_naslib.cli.app import execution_from_args, protocol_from_args
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.proxies import get_proxy
    from xigsnr_naslib.scoring.study import Study

    card = get_card(args.space)
    algorithm = check_algorithm(card, args.algorithm)
    dataset = card.dataset(args.dataset)
    changes = {k: v for k, v in (("num_classes", args.num_classes), ("resolution", args.resolution)) if v}
    dataset = dataclasses.replace(dataset, **changes)
    if args.proxy and len(args.proxy) > 1:
        raise ValueError(f"a zero-shot search takes one --proxy (its indicator), got {len(args.proxy)}: "
                         f"{', '.join(args.proxy)}")
    proxy = get_proxy(args.proxy[0] if args.proxy else dataset.proxy)
    supernet_options = dict(args.supernet_option)
    check_algorithm_flags(args, algorithm)
    if algorithm == "prune":
        check_supernet_proxy(proxy)
        sn_card = supernet_card(card, dataset)
        sn_card.create_space(**supernet_options)  # an unknown or bad option is refused before any work
    if args.paper_constraints:
        raise ValueError(f"the paper gives no constraints for space {card.name!r}")
    from xigsnr_naslib.search.evolution import Constraints, parse_amount

    bounds = {name: parse_amount(getattr(args, name)) for name in ("max_flops", "min_flops", "max_params", "min_params")
              if getattr(args, name) is not None}
    if bounds and algorithm != "evolution":
        flag = "--" + next(iter(bounds)).replace("_", "-")
        raise ValueError(f"{flag} bounds --algorithm evolution only, not {algorithm}")
    constraints = Constraints(resolution=args.constraint_resolution or dataset.resolution,
                              num_classes=dataset.num_classes, **bounds)
    protocol = protocol_from_args(args, dataset.protocol)
    options = dict(args.space_option)
    stem = f"results/search_{args.space}_{algorithm}"
    store = args.results or f"results/search_{args.space}.scores.jsonl"
    images = None
    if proxy.needs_data:
        images = search_images(dataset, protocol, args.images, args.synthetic_images, args.data_root,
                               args.max_images)
        if images.num_classes > dataset.num_classes:
            raise ValueError(f"{images.source} has {images.num_classes} classes but the dataset has "
                             f"{dataset.num_classes}; give --num-classes")
    study = Study(card, dataset, [proxy], protocol, execution_from_args(args), store, args.data_root,
                  images=images, space_options=options)
    settings: dict[str, Any]
    if algorithm == "prune":
        settings = {"repeats": args.repeats, "supernet": sn_card.options(**supernet_options),
                    "repeat_init_seeds": [protocol.init_seed + r * REPEAT_SEED_STRIDE for r in range(args.repeats)]}
    elif algorithm == "sample":
        settings = {"samples": args.samples, "seed": args.search_seed}
    else:
        settings = {"population": args.population, "steps": args.steps, "sample_size": args.sample_size,
                    "seed": args.search_seed, "constraints": constraints.settings()}
    check_space_operations(study.space, algorithm)
    if algorithm == "sample":
        check_samples(study.space, args.samples)
    header = run_header(algorithm, settings, study)
    checkpoint = Path(args.checkpoint or f"{stem}.checkpoint.json")
    output = Path(args.output or f"{stem}.best.json")
    _print_header(header, study)
    run = open_run(checkpoint, header) if algorithm != "evolution" else {"header": header}
    began_cpu, began_wall = cpu_seconds(), time.perf_counter()
    stored_before = _stored_keys(study)
    extra: dict[str, Any] = {}
    if algorithm == "prune":
        from xigsnr_naslib.search.pruning import prune, study_scorer

        studies = [Study(sn_card, dataset, [proxy], protocol.replace(init_seed=seed), study.execution, study.store,
                         args.data_root, images=study.images, space_options=supernet_options)
                   for seed in settings["repeat_init_seeds"]]
        scorers = [study_scorer(s) for s in studies]
        result = prune(studies[0].space, scorers,
                       progress=(lambda m: print(m, flush=True)) if args.progress else None)
        arch = result.arch
        used = [r for sc in scorers for r in sc.records.values()] + _records(study, [arch])
        extra["steps"] = [dataclasses.asdict(s) for s in result.steps]
        extra["supernet_state"] = studies[0].space.encode(result.state)
    elif algorithm == "sample":
        arch, _, used = sample_search(study, args.samples, args.search_seed)
        extra["scores"] = {r["arch"]: r.get("score") for r in used}
    else:
        from xigsnr_naslib.search.evolution import EvolutionSettings, RegularizedEvolution

        search = RegularizedEvolution(study.space, study, EvolutionSettings(
            population_size=args.population, steps=args.steps, sample_size=args.sample_size,
            mutation_rate=args.mutation_rate, crossover_rate=args.crossover_rate, seed=args.search_seed),
            constraints=constraints, checkpoint=checkpoint, progress=args.progress)
        history = search.run().history
        best = max(history, key=lambda c: (c.rank_value, -c.step))
        arch = study.space.decode(best.arch)
        used = _records(study, [study.space.decode(c) for c in dict.fromkeys(c.arch for c in history)])
        extra["scores"] = {c.arch: c.fitness for c in history}
    final = _records(study, [arch])[0]
    from xigsnr_naslib.scoring.results import record_key

    used = list({record_key(r): r for r in used}.values())  # a data-free proxy's repeats are one network
    report = {"header": header, "algorithm": algorithm, "space": card.name, "dataset": dataset.name,
              "proxy": proxy.name, "proxy_score": final.get("score"), "networks_scored": len(used),
              "networks_scored_now": sum(1 for r in used if record_key(r) not in stored_before),
              "cpu_seconds": round(cpu_seconds() - began_cpu, 2), "wall_seconds": round(time.perf_counter() - began_wall, 2),
              "scoring_seconds": round(sum(r.get("seconds") or 0.0 for r in used), 2)}
    report.update(describe_architecture(card, dataset, study.space, arch, args.data_root))
    if hasattr(study.space, "net"):  # DARTS: the genotype as an NDS record's net (NDS builder)
        report["genotype"] = json.loads(study.space.encode(arch))
    report.update(extra)
    run["result"] = report
    if algorithm != "evolution":
        _write(checkpoint, run)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1, allow_nan=True))
    _print_report(report)
    print(f"report: {output}\ncheckpoint: {checkpoint}\nscores: {store}")
    return 0


def _stored_keys(study) -> set:
    """The keys of the records the study's store holds now (none without a store)."""
    from xigsnr_naslib.scoring.results import record_key

    return {record_key(r) for r in study.store} if study.store is not None else set()


def _records(study, archs: list) -> list[dict]:
    """The study's records of ``archs`` (scored now where the store lacks them)."""
    name = study.proxies[0].name
    return [r for r in study.score([(None, a) for a in archs]) if r["proxy"] == name]


def _print_header(header: dict, study) -> None:
    protocol = header.get("protocol") or {}
    print(f"search {header['space']} / {header['dataset']}: {header['algorithm']} {header['algorithm_settings']}")
    print(f"proxy: {', '.join(f'{k} {v}' for k, v in header['proxies'].items())}")
    if protocol:
        print(f"protocol: {protocol.get('n_batches')} x {protocol.get('batch_size')}, data seed {protocol.get('data_seed')}, "
              f"init seed {protocol.get('init_seed')}, BN {protocol.get('bn_mode')}; images {header.get('images')}")


def _print_report(report: dict) -> None:
    print(f"chosen: {report['arch']}")
    print(f"proxy score ({report['proxy']}): {report['proxy_score']}")
    extra = f" (evaluation network {report['evaluation_network']})" if "evaluation_network" in report else ""
    print(f"params: {report['params']:,}{extra}; FLOPs: {report['flops']:,} multiply-adds")
    for name, t in (report.get("ground_truth") or {}).items():
        for split, v in (("test", t), ("valid", t.get("valid"))):
            if not v:
                continue
            if "missing" in v:
                print(f"{name} {split}: no ground truth ({v['missing']})")
            else:
                print(f"{name} {split}: {v['accuracy']:.2f} (rank {v['rank']} of {v['of']}, top {v['top_percent']:.2f}%; "
                      f"best {v['space_best']:.2f})")
    print(f"networks scored: {report['networks_scored']} ({report['networks_scored_now']} in this invocation, the "
          f"others read from the store); CPU seconds (this invocation): {report['cpu_seconds']}; "
          f"scoring seconds (every network used, this invocation or before): {report['scoring_seconds']}")
