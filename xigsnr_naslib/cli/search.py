"""The ``xigsnr-naslib search`` command: architecture search driven by a zero-cost proxy.

``--algorithm`` chooses among the algorithms the space's card offers: ``evolution``
(constrained regularized evolution; every space with ``sample``/``mutate``), and on the
benchmark spaces ``nb201`` and ``darts`` also ``prune`` (TE-NAS's training-free pruning of the
space's supernet, the proxy as indicator) and ``sample`` (the proxy's best of N random
architectures); see :mod:`xigsnr_naslib.search.zero_shot`. The flags are read into the frozen
settings of :mod:`xigsnr_naslib.search.settings` (whose defaults they take) and the search runs
through the one door, :func:`xigsnr_naslib.search.search`. Examples::

    xigsnr-naslib search --space nb201 --algorithm prune --proxy xi_gsnr --data-root DATA_ROOT
    xigsnr-naslib search --space nb201 --algorithm sample --samples 1000 --search-seed 3
    xigsnr-naslib search --space darts --algorithm prune --proxy xi_gsnr

On ``nb201`` and ``darts`` the report (printed and ``--output``) gives the chosen architecture,
its proxy score, its ground-truth accuracies (every dataset of the card; NAS-Bench-201 also
CIFAR-10 validation), its rank in the space, parameters, FLOPs, CPU seconds and networks
scored; ``--checkpoint`` holds the run's header (proxy, protocol, seeds, algorithm settings):
rerunning resumes, a changed header is refused.

The paper's ProxylessNAS search, on the user's ImageNet training folder::

    xigsnr-naslib search --space proxylessnas_xigsnr --max-flops 400M \\
        --population 128 --steps 2000 --images imagenet/train --data-root /data

The best architectures are written to ``--output`` (JSON: the space, its options, and for
each architecture its canonical encoding, fitness, FLOPs and parameters), which
``create_space(space, **options).decode(encoding)`` turns back into the same network. The
population is checkpointed to ``--checkpoint``; rerunning the same command resumes it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from xigsnr_naslib.errors import UsageError

__all__ = ["add_search_parser", "run_search", "search_settings", "algorithm_settings"]


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"space options are KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_search_parser(sub) -> None:
    from xigsnr_naslib.search.evolution import EvolutionSettings
    from xigsnr_naslib.search.settings import ImageSettings, OutputSettings, PruneSettings, SampleSettings

    p = sub.add_parser("search", help="architecture search scored by a zero-cost proxy (evolution; prune, sample on nb201/darts)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from xigsnr_naslib.cli.app import add_study_args

    add_study_args(p, space_default=None, proxy_help="fitness proxy (default: the card's, xi_gsnr); the first "
                   "one given is the fitness", results_help="results store of every scored architecture, so a "
                   "resumed search never scores one twice (default results/search_<space>.scores.jsonl)")
    p.add_argument("--algorithm", default="evolution", help="search algorithm, one the space offers: "
                   "evolution (default; every space), prune or sample (nb201, darts)")
    p.add_argument("--space-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="option of the space, repeatable (e.g. skeleton=gpu, search_edges=true)")
    from xigsnr_naslib.cli.app import whole

    p.add_argument("--resolution", type=whole(8), default=None, help="input resolution (default: the space's, 224)")
    p.add_argument("--num-classes", type=whole(1), default=None, help="classifier outputs (default: the dataset's, 1000)")
    _add_evolution_args(p, EvolutionSettings())
    _add_zero_shot_args(p, PruneSettings(), SampleSettings())
    _add_constraint_args(p)
    _add_image_args(p, ImageSettings())
    o = p.add_argument_group("output")
    o.add_argument("--checkpoint", default=None, help="the run's checkpoint (evolution's population, a "
                   "sample's or a prune's progress), resumed if present; a run with other settings is refused "
                   "(default results/search_<space>.checkpoint.json for evolution, "
                   "results/search_<space>_<algorithm>.checkpoint.json on nb201 and darts)")
    o.add_argument("--output", default=None, help="the report: best architectures (default "
                   "results/search_<space>.best.json, results/search_<space>_<algorithm>.best.json on nb201 and darts)")
    top_k = OutputSettings().top_k
    o.add_argument("--top-k", type=whole(1), default=top_k, help=f"architectures written to --output (default {top_k})")
    p.set_defaults(handler=run_search)


def _add_evolution_args(p, default) -> None:
    from xigsnr_naslib.cli.app import fraction, whole

    g = p.add_argument_group("evolution")
    g.add_argument("--population", type=whole(2), default=default.population_size,
                   help=f"population size (default {default.population_size}, the paper's)")
    g.add_argument("--steps", type=whole(0), default=default.steps,
                   help=f"children after the first population (default {default.steps})")
    g.add_argument("--sample-size", type=whole(1), default=default.sample_size,
                   help=f"tournament size (default {default.sample_size})")
    g.add_argument("--mutation-rate", type=fraction, default=default.mutation_rate, help="per-choice mutation "
                   "probability (default: one choice on average)")
    g.add_argument("--crossover-rate", type=fraction, default=default.crossover_rate,
                   help=f"probability of crossover (default {default.crossover_rate})")
    g.add_argument("--search-seed", type=whole(0), default=default.seed,
                   help=f"seed of the evolution (default {default.seed})")


def _add_zero_shot_args(p, prune, sample) -> None:
    from xigsnr_naslib.cli.app import whole

    z = p.add_argument_group("prune and sample (nb201, darts)")
    z.add_argument("--samples", type=whole(1), default=sample.samples, help=f"sample: architectures drawn "
                   f"(default {sample.samples}); --search-seed seeds the draw")
    z.add_argument("--repeats", type=whole(1), default=prune.repeats, help="prune: initialisations each removal is "
                   f"scored at, the costs averaged (default {prune.repeats}, TE-NAS's); repeat r uses init seed + 1000 r")
    z.add_argument("--supernet-option", type=_option, action="append", default=list(prune.supernet_options.items()),
                   metavar="KEY=VALUE", help="prune: option of the supernet, repeatable (nb201: channels=3, "
                   "cells_per_stage=1; darts: width=4, depth=5)")


def _add_constraint_args(p) -> None:
    from xigsnr_naslib.cli.app import whole

    c = p.add_argument_group("constraints (FLOPs as multiply-adds; amounts as 400M, 5G, 3e7)")
    c.add_argument("--constraint-resolution", type=whole(8), default=None,
                   help="resolution the constraints are counted at (default: the space's default, 224, "
                        "also when scoring at a lower --resolution)")
    c.add_argument("--max-flops", default=None)
    c.add_argument("--min-flops", default=None)
    c.add_argument("--max-params", default=None)
    c.add_argument("--min-params", default=None)
    c.add_argument("--paper-constraints", action="store_true",
                   help="the xi-GSNR paper's bounds for this space (ProxylessNAS: 400M FLOPs; "
                        "BurgerFormer: 30M params, 5G FLOPs)")


def _add_image_args(p, default) -> None:
    from xigsnr_naslib.cli.app import whole

    i = p.add_argument_group("images")
    i.add_argument("--images", default=default.source, help="image folder or .npz, absolute or under the data root "
                   "(default: the images the space's card names for the dataset: CIFAR-10 for nb201, nb101, darts "
                   "and the CIFAR NDS spaces; for ImageNet spaces imagenet/train, ILSVRC2012/train or imagenet "
                   "under the data root)")
    i.add_argument("--max-images", type=whole(1), default=default.max_images,
                   help=f"images read from the folder (default {default.max_images})")
    i.add_argument("--synthetic-images", action="store_true", default=default.synthetic,
                   help="use random-noise images instead (for tests and timing only)")


def search_settings(args):
    """The :class:`~xigsnr_naslib.search.settings.SearchSettings` of a ``search`` command line."""
    from xigsnr_naslib.cli.app import execution_from_args
    from xigsnr_naslib.search.settings import ConstraintSettings, ImageSettings, OutputSettings, SearchSettings

    constraints = ConstraintSettings(max_flops=args.max_flops, min_flops=args.min_flops, max_params=args.max_params,
                                     min_params=args.min_params, resolution=args.constraint_resolution,
                                     paper=args.paper_constraints)
    return SearchSettings(
        dataset=args.dataset, proxies=tuple(args.proxy or ()), n_batches=args.n_batches, batch_size=args.batch_size,
        data_seed=args.data_seed, init_seed=args.init_seed, execution=execution_from_args(args),
        data_root=args.data_root, space_options=dict(args.space_option), resolution=args.resolution,
        num_classes=args.num_classes, images=ImageSettings(args.images, args.synthetic_images, args.max_images),
        constraints=constraints, outputs=OutputSettings(args.results, args.checkpoint, args.output, args.top_k))


def algorithm_settings(args, card):
    """The settings of ``args.algorithm`` (an instance of its class in
    :data:`~xigsnr_naslib.search.algorithms.ALGORITHMS`) read from its flags.

    A flag that only another algorithm reads, set to anything but its default, is refused
    (it would be ignored): ``ValueError`` naming the flag and the algorithms that read it.
    """
    from xigsnr_naslib.search.algorithms import ALGORITHMS, get_algorithm

    own = get_algorithm(args.algorithm, card)
    for algorithm in ALGORITHMS.values():
        for dest, default in algorithm.defaults().items():
            if dest not in own.flags.values() and _flag_value(args, dest) != default:
                _refuse_flag(dest, args.algorithm, card)
    return own.settings(**{field: _flag_value(args, dest) for field, dest in own.flags.items()})


def _refuse_flag(dest: str, algorithm: str, card) -> None:
    """``ValueError`` for a flag of another algorithm: the algorithms that read it, or those the
    space does not offer when it offers none of them."""
    from xigsnr_naslib.search.algorithms import ALGORITHMS

    readers = [n for n, a in ALGORITHMS.items() if dest in a.flags.values()]
    flag = "--" + dest.replace("_", "-")
    if any(r in card.search_algorithms for r in readers):
        raise UsageError(f"{flag} is for --algorithm {' or '.join(readers)}, not {algorithm}")
    lacking = [n for n in ALGORITHMS if n not in card.search_algorithms]
    raise UsageError(f"{flag} is for --algorithm {' or '.join(lacking)}, which space {card.name!r} does not offer")


def _flag_value(args, dest: str):
    """A flag's value as its settings field takes it (``KEY=VALUE`` pairs as a dict)."""
    value = getattr(args, dest)
    return dict(value) if dest.endswith("_option") else value


def run_search(args) -> int:
    """``xigsnr-naslib search``: the flags as settings, then :func:`xigsnr_naslib.search.search`."""
    import functools

    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.search import search

    card = get_card(args.space)
    settings = search_settings(args)  # a device, strategy or worker count it cannot use is refused before any work
    search(card, args.algorithm, settings, algorithm_settings(args, card), echo=functools.partial(print, flush=True))
    return 0
