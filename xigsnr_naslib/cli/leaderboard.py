"""``xigsnr-naslib leaderboard``: build the proxy leaderboard of a search space and dataset.

::

    xigsnr-naslib leaderboard --space nb201 --dataset cifar10 --sample 500 --sample-seed 0 \\
        --out evaluation/leaderboard/nb201_cifar10

writes ``leaderboard.md``, ``leaderboard.csv``, ``scores.csv``, ``run.json`` and the PNG
figures into ``--out``; the computed scores go to ``--results`` (default
``<out>/scores.jsonl``), and a rerun of the same command resumes from them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from xigsnr_naslib.data.outputs import check_output
from xigsnr_naslib.errors import UsageError

__all__ = ["add_parser"]


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="rank every proxy on the same architectures, with CIs and figures",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from xigsnr_naslib.cli.app import add_study_args, fraction, whole

    add_study_args(p, proxy_help="proxy to compute, repeatable (default: xi_gsnr, xi_gsnr_paper, the whole zoo "
                   "and the ensemble: see 'xigsnr-naslib proxies'); 'none' for none",
                   results_help="JSON-lines store of computed scores (default <out>/scores.jsonl)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--sample", type=whole(1), default=500,
                       help="a seeded sample of N of the architectures every source has (default 500)")
    which.add_argument("--all", action="store_true", help="every architecture that every source has")
    which.add_argument("--archs-file", default=None, metavar="PATH",
                       help="these benchmark indices (a text file, whitespace- or comma-separated), e.g. the "
                            "evaluation sample evaluation/choose_ensemble.py writes")
    p.add_argument("--sample-seed", type=whole(0), default=0, help="seeds the sample and the bootstrap (default 0)")
    p.add_argument("--out", default=None, help="output folder (default results/leaderboard/<space>_<dataset>)")
    p.add_argument("--table", action="append", default=None,
                   help="precomputed table, repeatable (default: those listed for the space and dataset); "
                        "'none' for none")
    p.add_argument("--zc-json", action="append", default=[], metavar="PATH",
                   help="a NASLib zc_<space>.json file of precomputed scores, repeatable")
    p.add_argument("--exclude", action="append", default=[], metavar="KEY",
                   help="leave out a proxy: 'xi_gsnr' or 'table.proxy' such as 'suitezero.zen'; repeatable")
    g = p.add_argument_group("metrics")
    g.add_argument("--n-boot", type=whole(0), default=1000, help="bootstrap resamples (default 1000; 0: no intervals)")
    g.add_argument("--level", type=fraction, default=0.95, help="interval level (default 0.95)")
    g.add_argument("--naslib-k", type=_int_list, default=(10, 100), help="K of p_at_topK, kd_at_topK (default 10,100)")
    g.add_argument("--ndcg-k", type=_int_list, default=(10, 50), help="K of nDCG@K (default 10,50)")
    p.add_argument("--no-figures", action="store_true", help="no PNG figures (no matplotlib needed)")
    p.set_defaults(handler=run)


def read_indices(path: str) -> list[int]:
    """Benchmark indices from a text file (whitespace- or comma-separated whole numbers)."""
    from xigsnr_naslib.data.data_root import reading

    with reading(path, "index list"):
        text = Path(path).read_text()
        tokens = text.replace(",", " ").split()
        bad = [t for t in tokens if not t.isdigit()]
        if bad:
            raise UsageError(f"not a benchmark index: {bad[0]!r} (expected whole numbers)")
        if not tokens:
            raise UsageError("no index in the file")
    return [int(t) for t in tokens]


def _names(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [] if [v.lower() for v in values] == ["none"] else values


def settings_from_args(args):
    """The :class:`~xigsnr_naslib.analysis.leaderboard.LeaderboardSettings` of the command's flags."""
    from xigsnr_naslib.analysis.leaderboard import Bootstrap, LeaderboardSettings
    from xigsnr_naslib.analysis.metrics import standard_metrics

    return LeaderboardSettings(
        tables=_names(args.table), zc_json=args.zc_json, exclude=args.exclude,
        sample=None if (args.all or args.archs_file) else args.sample, seed=args.sample_seed,
        indices=read_indices(args.archs_file) if args.archs_file else None, bootstrap=Bootstrap(args.n_boot, args.level),
        metrics=standard_metrics(naslib_ks=args.naslib_k, ndcg_ks=args.ndcg_k))


def run(args) -> int:
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.cli.app import protocol_from_args, study_from_args
    from xigsnr_naslib.analysis.leaderboard import build_leaderboard, default_proxies_for

    if not args.no_figures:
        try:
            import matplotlib  # noqa: F401  (fail now, not after an hour of scoring)
        except ImportError:
            raise UsageError("the figures need matplotlib: pip install 'xigsnr-naslib[plot]', or pass --no-figures")
    dataset_card = get_card(args.space).dataset(args.dataset)
    dataset = dataset_card.name
    out = Path(args.out or f"results/leaderboard/{args.space}_{dataset}")
    results = Path(args.results) if args.results else out / "scores.jsonl"
    proxies, left_out = _names(args.proxy), []
    if proxies is None:
        proxies, left_out = default_proxies_for(dataset_card, protocol_from_args(args, dataset_card.protocol))
        for text in left_out:
            print(f"  - {text}")
    check_output(out, "leaderboard", folder=True)  # refused now, not after the scoring
    study = study_from_args(args, proxies=proxies, results=results)
    board = build_leaderboard(study, settings_from_args(args))
    board.notes[:0] = left_out
    written = board.write(out, figures=not args.no_figures)
    print()
    print(board.to_markdown())
    for name, path in written.items():
        print(f"{name + ':':<24}{path}")
    print(f"{'computed scores:':<24}{results}")
    return 0
