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
(``BenchmarkCard.search_algorithms``); :func:`check_algorithm` refuses the others by name. The
algorithms are registered in :data:`xigsnr_naslib.search.algorithms.ALGORITHMS` and run by the one
door, :func:`xigsnr_naslib.search.search`; this module holds their building blocks.

A run is described by its **header** (:func:`run_header`: algorithm and its settings,
space, dataset, proxy and settings, protocol with both seeds, image fingerprint). The header
is written to the run's checkpoint file; rerunning with the same file resumes (every network
already scored is read from the store, so none is scored twice), and a changed header is
refused with the names of the fields that changed. The report of a run
(:func:`describe_architecture`) gives the chosen architecture, its proxy score, its
ground-truth accuracies on every dataset of the card (test, and CIFAR-10 validation for
NAS-Bench-201: ``DatasetCard.validation_ground_truth``), its rank in the space, its parameters
and FLOPs (DARTS: of its evaluation network, ``BenchmarkCard.evaluation_network``), the CPU
seconds and the number of networks scored.
"""
from __future__ import annotations

import inspect
import json
import math
import os
import random
from pathlib import Path
from typing import Any, Hashable

from xigsnr_naslib.scoring.results import Status
from xigsnr_naslib.data.outputs import writing
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard, UnknownChoiceError
from xigsnr_naslib.search.algorithms import ALGORITHMS, get_algorithm

__all__ = ["SEARCH_ALGORITHMS", "check_algorithm", "check_supernet_proxy", "supernet_card", "run_header",
           "open_run", "draw_architectures", "sample_search", "check_samples", "describe_architecture",
           "cpu_seconds", "search_images", "check_space_operations", "SPACE_OPERATIONS", "ALGORITHM_FLAGS",
           "write_run_file"]

#: every search algorithm of ``xigsnr-naslib search``, with one line each; a card lists those it offers
SEARCH_ALGORITHMS = {name: algorithm.description for name, algorithm in ALGORITHMS.items()}


def check_algorithm(card: BenchmarkCard, algorithm: str) -> str:
    """``algorithm`` if ``card`` offers it; ``UnknownChoiceError`` (a ``ValueError``) naming the
    offered ones otherwise (:func:`~xigsnr_naslib.search.algorithms.get_algorithm`)."""
    get_algorithm(algorithm, card)
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
        raise UsageError(f"space {space.name!r} cannot run --algorithm {algorithm}: it has no "
                         f"{', '.join(lacking)} operation (score its architectures with 'xigsnr-naslib correlate'; "
                         "the DARTS cells are searched with --space darts)")


def check_supernet_proxy(proxy) -> None:
    """Refuse, before any work, a proxy that is not defined on a supernet (``Proxy.on_supernet``)."""
    if not getattr(proxy, "on_supernet", True):
        raise UsageError(f"proxy {proxy.name!r} is not computable on a supernet (it is defined on single-path "
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
    """The run's checkpoint at ``path``: created with ``header``, or read back if its header is the same.

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
            raise UsageError(f"checkpoint {path} is not readable: {exc}") from None
        if saved != header:
            fields = _differences(saved, header)
            raise UsageError(f"checkpoint {path} was written with other {', '.join(fields)} "
                             f"({'; '.join(f'{f}: {_at(saved, f)!r} then, {_at(header, f)!r} now' for f in fields)}); "
                             "name another --checkpoint (one is written by default) or use the same settings")
        return data
    data = {"header": header}
    write_run_file(path, data)
    return data


def write_run_file(path: Path, data: dict) -> None:
    """Write a run's checkpoint whole (a temporary file renamed over it: never half written)."""
    with writing(path, "checkpoint"):
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
    raise UsageError(f"{space.name}: only {len(out)} distinct architectures in {max_draws or 100 * n} draws; "
                     f"ask for fewer than {n}")


def check_samples(card: BenchmarkCard, n: int) -> None:
    """Refuse ``n`` larger than a finite space (``BenchmarkCard.size``)."""
    if card.size is not None and n > card.size:
        raise UsageError(f"--samples {n} exceeds the {card.size} architectures of space {card.name!r}")


def sample_search(study, n: int, seed: int) -> tuple[Hashable, float, list[dict]]:
    """The best of ``n`` distinct architectures drawn with ``seed``, by the study's first proxy.

    Returns ``(architecture, score, records)`` (records in draw order; ties: the earliest
    drawn). Errors: ``ValueError`` when no architecture has a finite score.
    """
    check_samples(study.card, n)
    archs = draw_architectures(study.space, n, seed)
    name = study.proxies[0].name
    records = [r for r in study.score([(None, a) for a in archs]) if r["proxy"] == name]
    best, best_score = None, -math.inf
    for arch, record in zip(archs, records):
        score = record.get("score")
        if record.get("status") == Status.OK and score is not None and score > best_score:
            best, best_score = arch, float(score)
    if best is None:
        raise UsageError(f"proxy {name!r} gave no finite score to any of the {n} architectures drawn")
    return best, best_score, records


# --- the report of a chosen architecture -------------------------------------------------------------

def describe_architecture(card: BenchmarkCard, dataset: DatasetCard, space, arch: Hashable, data_root=None) -> dict:
    """Ground truth (every dataset of the card: test accuracy, rank and top percentage in the
    space; where the dataset card has ``validation_ground_truth``, that as ``valid`` too:
    NAS-Bench-201 CIFAR-10), parameters and FLOPs of ``arch`` (of the card's
    ``evaluation_network`` where it has one: DARTS).

    Ground truth that is not under the data root is reported as missing (``"missing"``: the
    reason), not an error. FLOPs are multiply-adds of one ``dataset.resolution`` image.
    """
    from xigsnr_naslib.core.complexity import count_flops, count_params
    from xigsnr_naslib.data.data_root import MissingDataError

    code = space.encode(arch)
    out: dict[str, Any] = {"arch": code}
    if card.evaluation_network is not None:  # DARTS: the size of the network the paper trains
        model, out["evaluation_network"] = card.evaluation_network(space, arch, dataset.num_classes)
    else:
        model = space.build(arch, num_classes=dataset.num_classes)
    out["params"] = count_params(model)
    out["flops"] = count_flops(model, dataset.input_shape)
    if card.ground_truth is None:
        return out
    truth: dict[str, Any] = {}
    for name, spec in card.datasets.items():
        try:
            table = card.load_ground_truth(name, data_root)
        except (MissingDataError, OSError) as exc:
            truth[name] = {"missing": str(exc).splitlines()[0]}
            continue
        truth[name] = _standing(table, code)
        if spec.validation_ground_truth is not None:  # NAS-Bench-201 CIFAR-10: its validation accuracy
            try:
                truth[name]["valid"] = _standing(spec.validation_ground_truth(data_root), code)
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


# --- images -----------------------------------------------------------------------------------------

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


#: each algorithm's ``xigsnr-naslib search`` options with their defaults (from its settings
#: class, :data:`~xigsnr_naslib.search.algorithms.ALGORITHMS`): an option of another algorithm set
#: to anything else is refused by the command line (it would be ignored)
ALGORITHM_FLAGS = {name: algorithm.defaults() for name, algorithm in ALGORITHMS.items()}
