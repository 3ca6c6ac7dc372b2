"""The ``xigsnr-naslib`` command line.

Subcommands::

    xigsnr-naslib correlate   score benchmark architectures, correlate with accuracy
    xigsnr-naslib score       score one architecture string
    xigsnr-naslib proxies     list the registered proxies
    xigsnr-naslib spaces      list the registered search spaces
    xigsnr-naslib leaderboard every proxy on the same architectures: Markdown, CSV, figures
    xigsnr-naslib search      constrained evolutionary search (ProxylessNAS, BurgerFormer, ...)
    xigsnr-naslib naslib-run  run a NASLib zero-cost config (NASLib's evaluator or standalone)

Every command that reads data takes ``--data-root`` (default: ``$XIGSNR_DATA_ROOT``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_parser"]

#: subcommands contributed by other modules: name -> (module, "add_parser function name")
_EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "search": ("xigsnr_naslib.search_command", "add_search_parser"),
    "leaderboard": ("xigsnr_naslib.evaluation.leaderboard_cli", "add_parser"),
    "naslib-run": ("xigsnr_naslib.naslib_runner", "add_parser"),
}


def _parse_indices(text: str) -> dict:
    """``0:200`` -> range, ``3,17,99`` -> list."""
    if ":" in text:
        a, _, b = text.partition(":")
        return {"start": int(a or 0), "stop": int(b) if b else None}
    return {"indices": [int(t) for t in text.split(",") if t.strip()]}


def _add_protocol_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("protocol")
    g.add_argument("--n-batches", type=int, default=None, help="N batches (default: the space's; 8 for nb201)")
    g.add_argument("--batch-size", type=int, default=None, help="|B| images per batch (default: the space's; 64 for nb201)")
    g.add_argument("--seed", type=int, default=None, help="seeds the batch draw and each network's init (default 1)")


def _add_execution_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution (the scores do not depend on it)")
    g.add_argument("--workers", default="auto", help="architectures scored at a time, each in its own process "
                   "(default auto: one per CPU core on cpu, 0 = in this process)")
    g.add_argument("--threads", type=int, default=None, help="intra-op threads per worker (default: cores / workers)")
    g.add_argument("--strategy", default="loop", choices=["loop", "vmap"],
                   help="loop (default) or vmap (all N batch gradients at once; for GPUs)")
    g.add_argument("--backend", default="processes", choices=["processes", "ray"],
                   help="processes on this machine (default) or Ray tasks (pip install 'xigsnr-naslib[ray]')")
    g.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: a local one)")


def _execution(args):
    """The execution settings of a command that has them, for every scoring run inside it."""
    import contextlib

    if not hasattr(args, "workers"):
        return contextlib.nullcontext()
    from .pipeline import execution

    workers = args.workers if args.workers == "auto" else int(args.workers)
    return execution(workers=workers, threads=args.threads, strategy=args.strategy, backend=args.backend,
                     ray_address=args.ray_address)


def _protocol(args):
    from .protocol import Protocol, space_defaults

    base = space_defaults(args.space).protocol
    def pick(value, default):
        return default if value is None else value

    return Protocol(n_batches=pick(args.n_batches, base.n_batches), batch_size=pick(args.batch_size, base.batch_size),
                    seed=pick(args.seed, base.seed))


def _space_default(args, field: str):
    from .protocol import space_defaults

    return getattr(space_defaults(args.space), field)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None, help="folder with the benchmark files and images "
                   "(default: $XIGSNR_DATA_ROOT)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xigsnr-naslib", description="xi-GSNR zero-cost NAS proxy")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("correlate", help="score benchmark architectures and correlate with accuracy")
    c.add_argument("--space", default="nb201", help="search space (default nb201)")
    c.add_argument("--dataset", default=None, help="cifar10, cifar100, ImageNet16-120 or imagenet "
                   "(default: the space's; cifar10 for nb201)")
    which = c.add_mutually_exclusive_group()
    which.add_argument("--archs", type=_parse_indices, default=None,
                       help="benchmark indices: START:STOP or a comma list (default: all)")
    which.add_argument("--first", type=int, default=None, help="the first N benchmark indices")
    which.add_argument("--sample", type=int, default=None, help="a seeded random sample of N architectures")
    c.add_argument("--sample-seed", type=int, default=0, help="seed of --sample (default 0)")
    c.add_argument("--proxy", action="append", default=None,
                   help="proxy name, repeatable (default: the space's; xi_gsnr for nb201, xi_gsnr_per_sample "
                   "for nb101); see 'xigsnr-naslib proxies'")
    c.add_argument("--accuracy", default=None, help="ground-truth definition where a space has several "
                   "(nb101: released = max over seeds of test accuracy, the default; naslib = one seed's validation)")
    c.add_argument("--results", default=None, help="JSON-lines results file, resumed if present "
                   "(default results/<space>_<dataset>.jsonl)")
    c.add_argument("--report", default=None, help="JSON report (default: <results>.report.json)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_protocol_args(c)
    _add_common(c)
    _add_execution_args(c)

    s = sub.add_parser("score", help="score one architecture")
    s.add_argument("arch", help="the architecture's canonical string")
    s.add_argument("--space", default="nb201")
    s.add_argument("--dataset", default=None, help="default: the space's")
    s.add_argument("--proxy", action="append", default=None, help="proxy name, repeatable (default: the space's)")
    _add_protocol_args(s)
    _add_common(s)

    sub.add_parser("proxies", help="list the registered proxies")
    sub.add_parser("spaces", help="list the registered search spaces")

    import importlib

    for name, (module, adder) in _EXTRA_COMMANDS.items():
        getattr(importlib.import_module(module), adder)(sub)
    return parser


def _print_metrics(metrics: dict, definition: str) -> None:
    print(f"ground truth: {definition}")
    cols = ["n", "kendall_tau", "spearman_rho", "pearson_r", "p_at_top5%", "p_at_top10%", "seconds_per_arch"]
    print(f"{'proxy':<22}" + "".join(f"{c:>17}" for c in cols))
    for name, m in metrics.items():
        cells = []
        for c in cols:
            v = m.get(c)
            cells.append(f"{v:>17d}" if isinstance(v, int) else f"{v:>17.4f}")
        print(f"{name:<22}" + "".join(cells))


def _cmd_correlate(args) -> int:
    from .correlation_job import correlate, write_report
    from .datasets import canonical_dataset

    dataset = canonical_dataset(args.dataset or _space_default(args, "dataset"))
    results = Path(args.results or f"results/{args.space}_{dataset}.jsonl")
    selection = args.archs or {}
    result = correlate(args.space, dataset, proxies=args.proxy or [_space_default(args, "proxy")], first=args.first,
                       sample=args.sample, sample_seed=args.sample_seed, protocol=_protocol(args),
                       data_root=args.data_root, results=results, device=args.device,
                       progress=not args.no_progress, accuracy=args.accuracy, **selection)
    _print_metrics(result.metrics, result.ground_truth_definition)
    report = Path(args.report) if args.report else results.with_suffix(".report.json")
    write_report(result, report)
    print(f"results: {results}\nreport:  {report}")
    return 0


def _cmd_score(args) -> int:
    from .datasets import DATASET_CLASSES, canonical_dataset, load_images
    from .pipeline import build_model
    from .protocol import draw_batches
    from .proxies import get_proxy
    from .spaces import create_space

    dataset = canonical_dataset(args.dataset or _space_default(args, "dataset"))
    protocol = _protocol(args)
    space = create_space(args.space)
    arch = space.decode(args.arch)
    proxies = [get_proxy(p) for p in (args.proxy or [_space_default(args, "proxy")])]
    batches = draw_batches(load_images(dataset, args.data_root), protocol, dataset, args.device) \
        if any(p.needs_data for p in proxies) else []
    out = {}
    for proxy in proxies:
        model = build_model(space, arch, DATASET_CLASSES[dataset], protocol.seed, args.device)
        out[proxy.name] = proxy(model, batches)
    print(json.dumps({"arch": space.encode(arch), "dataset": dataset, "scores": out}, allow_nan=True))
    return 0


def _cmd_proxies(args) -> int:
    from .proxies import get_proxy, list_proxies

    for name in list_proxies():
        print(f"{name:<24} {get_proxy(name).description}")
    return 0


def _cmd_spaces(args) -> int:
    from .spaces import list_spaces

    print("\n".join(list_spaces()))
    return 0


_COMMANDS = {"correlate": _cmd_correlate, "score": _cmd_score, "proxies": _cmd_proxies, "spaces": _cmd_spaces}


def main(argv: Sequence[str] | None = None) -> int:
    from .data_root import MissingDataError

    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _COMMANDS.get(args.command) or getattr(args, "handler", None)
    try:
        with _execution(args):
            return handler(args)
    except (MissingDataError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"xigsnr-naslib {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished records are in the results file; rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
