"""The ``xigsnr-naslib search`` command: architecture search driven by a zero-cost proxy.

``--algorithm`` chooses among the algorithms the space's card offers: ``evolution``
(constrained regularized evolution; every space with ``sample``/``mutate``), and on the
benchmark spaces ``nb201`` and ``darts`` also ``prune`` (TE-NAS's training-free pruning of the
space's supernet, the proxy as indicator) and ``sample`` (the proxy's best of N random
architectures); see :mod:`xigsnr_naslib.search.zero_shot`. Examples::

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

__all__ = ["add_search_parser", "run_search"]


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"space options are KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_search_parser(sub) -> None:
    p = sub.add_parser("search", help="architecture search scored by a zero-cost proxy (evolution; prune, sample on nb201/darts)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from xigsnr_naslib.cli.app import add_study_args, fraction, whole

    add_study_args(p, space_default=None, proxy_help="fitness proxy (default: the card's, xi_gsnr); the first "
                   "one given is the fitness", results_help="results store of every scored architecture, so a "
                   "resumed search never scores one twice (default results/search_<space>.scores.jsonl)")
    p.add_argument("--algorithm", default="evolution", help="search algorithm, one the space offers: "
                   "evolution (default; every space), prune or sample (nb201, darts)")
    p.add_argument("--space-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="option of the space, repeatable (e.g. skeleton=gpu, search_edges=true)")
    p.add_argument("--resolution", type=whole(8), default=None, help="input resolution (default: the space's, 224)")
    p.add_argument("--num-classes", type=whole(1), default=None, help="classifier outputs (default: the dataset's, 1000)")
    g = p.add_argument_group("evolution")
    g.add_argument("--population", type=whole(2), default=128, help="population size (default 128, the paper's)")
    g.add_argument("--steps", type=whole(0), default=2000, help="children after the first population (default 2000)")
    g.add_argument("--sample-size", type=whole(1), default=32, help="tournament size (default 32)")
    g.add_argument("--mutation-rate", type=fraction, default=None, help="per-choice mutation probability "
                   "(default: one choice on average)")
    g.add_argument("--crossover-rate", type=fraction, default=0.25, help="probability of crossover (default 0.25)")
    g.add_argument("--search-seed", type=whole(0), default=0, help="seed of the evolution (default 0)")
    z = p.add_argument_group("prune and sample (nb201, darts)")
    z.add_argument("--samples", type=whole(1), default=100, help="sample: architectures drawn (default 100); "
                   "--search-seed seeds the draw")
    z.add_argument("--repeats", type=whole(1), default=3, help="prune: initialisations each removal is scored "
                   "at, the costs averaged (default 3, TE-NAS's); repeat r uses init seed + 1000 r")
    z.add_argument("--supernet-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="prune: option of the supernet, repeatable (nb201: channels=3, cells_per_stage=1; "
                        "darts: width=4, depth=5)")
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
    i = p.add_argument_group("images")
    i.add_argument("--images", default=None, help="image folder or .npz, absolute or under the data root "
                   "(default: the images the space's card names for the dataset: CIFAR-10 for nb201, nb101, darts "
                   "and the CIFAR NDS spaces; for ImageNet spaces imagenet/train, ILSVRC2012/train or imagenet "
                   "under the data root)")
    i.add_argument("--max-images", type=whole(1), default=1024, help="images read from the folder (default 1024)")
    i.add_argument("--synthetic-images", action="store_true",
                   help="use random-noise images instead (for tests and timing only)")
    o = p.add_argument_group("output")
    o.add_argument("--checkpoint", default=None, help="population checkpoint, resumed if present "
                   "(default results/search_<space>.checkpoint.json)")
    o.add_argument("--output", default=None, help="best architectures (default results/search_<space>.best.json)")
    o.add_argument("--top-k", type=whole(1), default=10, help="architectures written to --output (default 10)")
    p.set_defaults(handler=run_search)


def run_search(args) -> int:
    import dataclasses

    from xigsnr_naslib.cli.app import execution_from_args, protocol_from_args
    from xigsnr_naslib.search.evolution import Constraints, EvolutionSettings, RegularizedEvolution, parse_amount
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.scoring.study import Study

    card = get_card(args.space)
    execution_from_args(args)  # a device, strategy or worker count it cannot use is refused before any work
    if card.supernet is not None:  # a benchmark space: prune, sample or evolution, with its ground truth
        from xigsnr_naslib.search.zero_shot import run_zero_shot

        return run_zero_shot(args)
    from xigsnr_naslib.search.zero_shot import check_algorithm, check_space_operations, search_images

    check_algorithm(card, args.algorithm)
    for flag, value, default in (("--samples", args.samples, 100), ("--repeats", args.repeats, 3),
                                 ("--supernet-option", args.supernet_option, [])):
        if value != default:
            raise ValueError(f"{flag} is for --algorithm prune or sample, which space {args.space!r} does not offer")
    options = dict(args.space_option)
    if args.resolution is not None:
        options["resolution"] = args.resolution
    space = card.create_space(**options)
    check_space_operations(space, args.algorithm)
    resolution = getattr(space, "resolution", None) or space.default_resolution
    bounds = dict(getattr(space, "paper_constraints", None) or {}) if args.paper_constraints else {}
    if args.paper_constraints and not bounds:
        raise ValueError(f"the paper gives no constraints for space {args.space!r}")
    for name in ("max_flops", "min_flops", "max_params", "min_params"):
        value = parse_amount(getattr(args, name))
        if value is not None:
            bounds[name] = value
    dataset = card.dataset(args.dataset)
    num_classes = args.num_classes or dataset.num_classes
    dataset = dataclasses.replace(dataset, num_classes=num_classes, resolution=resolution)
    constraints = Constraints(resolution=args.constraint_resolution or space.default_resolution,
                              num_classes=num_classes, **bounds)
    protocol = protocol_from_args(args, dataset.protocol)
    proxies = args.proxy or [dataset.proxy]
    study = Study(card, dataset, proxies, protocol, execution_from_args(args),
                  args.results or f"results/search_{args.space}.scores.jsonl", args.data_root,
                  space_options=options)
    images = None
    if study.needs_data:  # the card's dataset images unless --images or --synthetic-images say otherwise
        images = search_images(dataset, protocol, args.images, args.synthetic_images, args.data_root, args.max_images)
        if images.num_classes > num_classes:
            raise ValueError(f"{images.source} has {images.num_classes} classes but --num-classes is {num_classes}")
        study.images = images
        shape = images.images.shape
        print(f"images: {images.source} ({len(images)} at {shape[2]}x{shape[1]})")
    proxy = study.proxies[0]

    checkpoint = Path(args.checkpoint or f"results/search_{args.space}.checkpoint.json")
    output = Path(args.output or f"results/search_{args.space}.best.json")
    search = RegularizedEvolution(space, study, EvolutionSettings(population_size=args.population,
                                                                  steps=args.steps, sample_size=args.sample_size,
                                                                  mutation_rate=args.mutation_rate,
                                                                  crossover_rate=args.crossover_rate,
                                                                  seed=args.search_seed),
                                  constraints=constraints, checkpoint=checkpoint, progress=args.progress)
    result = search.run()

    report = result.to_dict(args.top_k)
    report.update({"space_options": options, "proxy": proxy.name, "proxy_settings": proxy.settings,
                   "protocol": protocol.settings() if proxy.needs_data else {},
                   "images": images.source if images is not None else None, "flops_unit": "multiply-adds",
                   "flops_resolution": constraints.resolution})
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, allow_nan=True))
    print(f"{'rank':>4} {'fitness':>14} {'MFLOPs':>9} {'Mparams':>8}  architecture")
    for rank, c in enumerate(result.best(args.top_k), 1):
        fit = "nan" if c.fitness is None else f"{c.fitness:.6g}"
        print(f"{rank:>4} {fit:>14} {c.flops / 1e6:>9.1f} {c.params / 1e6:>8.2f}  {c.arch}")
    print(f"best architectures: {output}\ncheckpoint: {checkpoint}")
    return 0
