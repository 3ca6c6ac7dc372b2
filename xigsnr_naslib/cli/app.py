"""The ``xigsnr-naslib`` command line.

Subcommands::

    xigsnr-naslib correlate   score benchmark architectures, correlate with accuracy
    xigsnr-naslib score       score one architecture string
    xigsnr-naslib proxies     list the registered proxies
    xigsnr-naslib spaces      list the registered search spaces
    xigsnr-naslib leaderboard every proxy on the same architectures: Markdown, CSV, figures
    xigsnr-naslib search      constrained evolutionary search (ProxylessNAS, BurgerFormer, ...)
    xigsnr-naslib naslib-run  run a NASLib zero-cost config (NASLib's evaluator or standalone)
    xigsnr-naslib cifar10-layout  write the CIFAR-10 python layout NASLib's loader reads

Every command that reads data takes ``--data-root`` (default: ``$XIGSNR_DATA_ROOT``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from xigsnr_naslib.errors import UsageError, XiGSNRError

__all__ = ["main", "build_parser"]

#: subcommands contributed by other modules: name -> (module, "add_parser function name")
_EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "search": ("xigsnr_naslib.cli.search", "add_search_parser"),
    "leaderboard": ("xigsnr_naslib.cli.leaderboard", "add_parser"),
    "naslib-run": ("xigsnr_naslib.cli.naslib", "add_naslib_run_parser"),
    "cifar10-layout": ("xigsnr_naslib.cli.naslib", "add_cifar10_layout_parser"),
    "predictor-eval": ("xigsnr_naslib.cli.predictor", "add_parser"),
}


def _parse_indices(text: str) -> dict:
    """``0:200`` -> range, ``3,17,99`` -> list."""
    try:
        if ":" in text:
            a, _, b = text.partition(":")
            return {"start": int(a or 0), "stop": int(b) if b else None}
        return {"indices": [int(t) for t in text.split(",") if t.strip()]}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP or a comma list of indices, got {text!r}") from None


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``xigsnr-naslib correlate: error: <what>`` and exit 2
    (argparse prints the whole usage first; the message alone names the bad value)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole(minimum: int):
    """An argparse type: a whole number >= ``minimum``, or an error naming the value."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number >= 0, got {text!r}")
    return value


def add_study_args(p: argparse.ArgumentParser, *, space_default: str | None = "nb201", proxy_help: str = "",
                   results_help: str = "") -> None:
    """The arguments every scoring command shares: same names, defaults from the space's card.

    ``--space``, ``--dataset``, ``--proxy``, the protocol (``--n-batches``, ``--batch-size``,
    ``--data-seed``, ``--init-seed``), ``--data-root``, ``--results`` and the execution
    (``--device``, ``--workers``, ``--threads``, ``--strategy``, ``--backend``,
    ``--ray-address``, ``--no-progress``).
    """
    p.add_argument("--space", default=space_default, required=space_default is None,
                   help="search space (see 'xigsnr-naslib spaces')" + (f" (default {space_default})" if space_default
                                                                         else ""))
    p.add_argument("--dataset", default=None, help="one of the space's datasets (default: its card's first: "
                   "cifar10 for nb201 and nb101, imagenet for ImageNet spaces)")
    p.add_argument("--proxy", action="append", default=None, help=proxy_help or
                   "proxy name, repeatable (default: the card's: xi_gsnr; xi_gsnr_per_sample for nb101); "
                   "see 'xigsnr-naslib proxies'")
    p.add_argument("--results", default=None, help=results_help or "JSON-lines results file, resumed if present")
    p.add_argument("--data-root", default=None, help="folder with the benchmark files and images "
                   "(default: $XIGSNR_DATA_ROOT)")
    g = p.add_argument_group("protocol (defaults: the space's card; nb201, NDS, ImageNet spaces: 8 x 64; "
                             "nb101: 1 x 8, per-sample)")
    g.add_argument("--n-batches", type=whole(1), default=None, help="N batches (default: the card's)")
    g.add_argument("--batch-size", type=whole(1), default=None, help="|B| images per batch (default: the card's)")
    g.add_argument("--data-seed", type=whole(0), default=None, help="seeds the batch draw (default: the card's, 1)")
    g.add_argument("--init-seed", type=whole(0), default=None, help="seeds each network's initialisation "
                   "(default: the card's, 1)")
    g = p.add_argument_group("execution (the scores depend on it by float32 rounding at most)")
    g.add_argument("--device", default="cpu", help="torch device (default cpu): cpu, cuda, cuda:N, mps, xpu where "
                   "this torch and machine have it; any other is refused before any work, naming those available")
    g.add_argument("--workers", type=_workers, default="auto", help="architectures scored at a time, each in its "
                   "own process (default auto: one per CPU core on cpu; 0 = in this process)")
    g.add_argument("--threads", type=whole(1), default=None,
                   help="intra-op threads of each scoring process (default 1 for every command and worker "
                   "count, so that they store the same values; records name theirs)")
    g.add_argument("--strategy", default="loop", choices=["loop", "vmap"],
                   help="loop (default) or vmap (all N batch gradients at once; for GPUs)")
    g.add_argument("--backend", default="processes", choices=["processes", "ray"],
                   help="processes on this machine (default) or Ray tasks (pip install 'xigsnr-naslib[ray]')")
    g.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: a local one)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def protocol_from_args(args, default):
    """The card's default protocol with the command line's changes."""
    return default.replace(n_batches=args.n_batches, batch_size=args.batch_size, data_seed=args.data_seed,
                           init_seed=args.init_seed)


def execution_from_args(args):
    from xigsnr_naslib.scoring.study import Execution

    return Execution(device=args.device, strategy=args.strategy, workers=args.workers, threads=args.threads,
                     backend=args.backend, ray_address=args.ray_address, progress=args.progress)


def study_from_args(args, *, proxies=None, results=None):
    """The :class:`~xigsnr_naslib.scoring.study.Study` a command line describes."""
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.scoring.study import Study

    card = get_card(args.space)
    dataset = card.dataset(args.dataset)
    return Study(card, dataset.name, proxies if proxies is not None else args.proxy,
                 protocol_from_args(args, dataset.protocol), execution_from_args(args),
                 results if results is not None else args.results, args.data_root)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="xigsnr-naslib", description="xi-GSNR zero-cost NAS proxy")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("correlate", help="score benchmark architectures and correlate with accuracy")
    add_study_args(c, results_help="JSON-lines results file, resumed if present "
                   "(default results/<space>_<dataset>.jsonl)")
    which = c.add_mutually_exclusive_group()
    which.add_argument("--archs", type=_parse_indices, default=None,
                       help="benchmark indices: START:STOP or a comma list (default: all)")
    which.add_argument("--first", type=whole(1), default=None, help="the first N benchmark indices")
    which.add_argument("--sample", type=whole(1), default=None, help="a seeded random sample of N architectures")
    c.add_argument("--sample-seed", type=whole(0), default=0, help="seed of --sample (default 0)")
    c.add_argument("--accuracy", default=None, help="ground-truth definition where a space has several "
                   "(nb101: released = max over seeds of test accuracy, the default; naslib = one seed's validation)")
    c.add_argument("--not-computable", choices=("drop", "last"), default="drop",
                   help="architectures a proxy cannot score (e.g. an NB201 cell with no path from input to "
                   "output): drop = leave them out of the correlation (default), last = rank them below every "
                   "score, as the released xi-GSNR evaluation (which scores them 0) does")
    c.add_argument("--report", default=None, help="JSON report (default: <results>.report.json)")

    s = sub.add_parser("score", help="score one architecture")
    s.add_argument("arch", help="the architecture's canonical string")
    add_study_args(s, results_help="JSON-lines results file (default: none)")

    sub.add_parser("proxies", help="list the registered proxies")
    sub.add_parser("spaces", help="list the registered search spaces (benchmark cards)")

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
    for name, m in metrics.items():
        left_out = {what: m.get(f"n_{key}", 0) for what, key in
                    [("not computable", "not_computable"), ("non-finite", "nonfinite"), ("failed", "error")]}
        said = ", ".join(f"{n} {what}" for what, n in left_out.items() if n)
        if said:
            print(f"note: {name}: {said} (see the records' status and reason)")
        if not m.get("n", 0) >= 2:
            print(f"note: {name}: fewer than two finite scores, no correlation")


def _cmd_correlate(args) -> int:
    from xigsnr_naslib.analysis.correlate import Selection, correlate, write_report
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.data.outputs import check_output

    dataset = get_card(args.space).dataset(args.dataset).name
    results = Path(args.results or f"results/{args.space}_{dataset}.jsonl")
    study = study_from_args(args, results=results)
    selection = Selection(first=args.first, sample=args.sample, sample_seed=args.sample_seed, **(args.archs or {}))
    report = Path(args.report) if args.report else results.with_suffix(".report.json")
    check_output(report, "report")  # refused now, not after the scoring
    result = correlate(study, selection, accuracy=args.accuracy, not_computable=args.not_computable)
    _print_metrics(result.metrics, result.ground_truth_definition)
    write_report(result, report)
    print(f"results: {results}\nreport:  {report}")
    return 0


def _cmd_score(args) -> int:
    study = study_from_args(args)
    arch = study.space.decode(args.arch)
    scores = study.score_one(arch)
    print(json.dumps({"arch": study.space.encode(arch), "dataset": study.dataset, "scores": scores}, allow_nan=True))
    return 0


def _cmd_proxies(args) -> int:
    from xigsnr_naslib.proxies import get_proxy, list_proxies

    for name in list_proxies():
        print(f"{name:<24} {get_proxy(name).description}")
    return 0


def _cmd_spaces(args) -> int:
    from xigsnr_naslib.benchmarks.card import get_card, list_cards

    for name in list_cards():
        card = get_card(name)
        print(f"{name:<22} {', '.join(card.datasets):<34} {card.description}")
    return 0


_COMMANDS = {"correlate": _cmd_correlate, "score": _cmd_score, "proxies": _cmd_proxies, "spaces": _cmd_spaces}


#: exit statuses: a usage error (a bad name, value or flag; argparse's own too) and a data
#: error (a file the run needs is missing or unreadable)
USAGE_ERROR, DATA_ERROR = 2, 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0, :data:`USAGE_ERROR`, :data:`DATA_ERROR`,
    130 when interrupted). The project's errors (:mod:`xigsnr_naslib.errors`) are one line on
    stderr; any other exception is a bug and propagates with its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _COMMANDS.get(args.command) or getattr(args, "handler", None)
    try:
        return handler(args)
    except XiGSNRError as exc:  # the project's own errors; anything else is a bug: its traceback shows
        print(f"xigsnr-naslib {args.command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR if isinstance(exc, UsageError) else DATA_ERROR
    except KeyboardInterrupt:
        print("interrupted: finished records are in the results file; rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
