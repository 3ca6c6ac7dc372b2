"""``xigsnr-naslib predictor-eval``: train the few-shot predictor on N cells, test it on M others.

::

    xigsnr-naslib predictor-eval --space nb201 --dataset cifar10 --train 100 --test 264 --split-seed 0
    xigsnr-naslib predictor-eval --space nb201 --train 400 --test 2000 --table suitezero --features proxies,graph
    xigsnr-naslib predictor-eval --space nb101 --train 100 --test 100 --features graph,aznas_expressivity

The cells are those of the feature source that the benchmark's ground truth has: a seeded
permutation (``--split-seed``) gives the first N for training and the last M for testing
(disjoint). Only the training cells' accuracies reach the model. Prints Kendall tau,
Spearman rho, nDCG@10 (scikit-learn; relevance the accuracy's percentile among the test
cells), P@Top5% and P@Top10% on the test cells, and the fit time.

Sources of proxy scores (``--features`` names them; ``proxies`` means every proxy of a table):

* ``--table PATH``: a score CSV with an ``arch`` column (a leaderboard's ``scores.csv``);
* ``--table NAME``: a precomputed table the space's card lists (e.g. ``suitezero``), read
  from the data root;
* ``--store PATH``: the project's Study with that store: scores are read from it, and the
  missing ones computed and added (slow: every proxy on every drawn cell);
* default: the checked-in zoo leaderboard of the space (``evaluation/leaderboard/``), when
  run from a checkout.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from xigsnr_naslib.errors import UsageError

__all__ = ["add_parser", "parse_features", "DEFAULT_TABLES"]

#: the checked-in zoo leaderboards (paths from the project root), by (space, dataset)
DEFAULT_TABLES = {("nb201", "cifar10"): "evaluation/leaderboard/nb201_cifar10_zoo/scores.csv",
                  ("nb101", "cifar10"): "evaluation/leaderboard/nb101_cifar10/scores.csv"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("predictor-eval", help="few-shot predictor: train on N cells, test on M others",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from xigsnr_naslib.cli.app import whole
    from xigsnr_naslib.analysis.predictor import LEARNERS, TARGETS

    p.add_argument("--space", default="nb201", help="search space (default nb201)")
    p.add_argument("--dataset", default=None, help="one of the space's datasets (default: its card's first)")
    p.add_argument("--train", type=whole(2), required=True, help="training cells N (>= 2)")
    p.add_argument("--test", type=whole(2), required=True, help="test cells M (>= 2), disjoint from the training cells")
    p.add_argument("--split-seed", type=whole(0), default=0, help="seeds the split (default 0)")
    p.add_argument("--features", default="proxies,graph",
                   help="comma list: proxy names, 'proxies' (every proxy of the table), 'graph' (graph features); "
                        "default proxies,graph")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--table", default=None, metavar="PATH|NAME",
                        help="score CSV with an 'arch' column, or a table the card lists (e.g. suitezero)")
    source.add_argument("--store", default=None, metavar="PATH",
                        help="score through the project's Study with this results store (computes missing scores)")
    p.add_argument("--learner", choices=list(LEARNERS), default="lightgbm",
                   help="default lightgbm (the most accurate affordable one in evaluation/predictor/develop.csv)")
    p.add_argument("--target", choices=list(TARGETS), default="quantile", help="default quantile")
    p.add_argument("--seed", type=whole(0), default=0, help="seeds the learner (default 0)")
    p.add_argument("--data-root", default=None, help="folder with the benchmark files (default: $XIGSNR_DATA_ROOT)")
    p.set_defaults(handler=run)


def parse_features(text: str, offered: list[str] | None) -> tuple[list[str] | str, bool]:
    """``--features`` -> (proxies, graph). ``offered``: a table's proxies (``None``: any registered)."""
    from xigsnr_naslib.proxies import list_proxies

    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"--features {text!r} names no feature; give proxy names, 'proxies' or 'graph'")
    known = offered if offered is not None else list_proxies()
    bad = [t for t in items if t not in ("proxies", "graph") and t not in known]
    if bad:
        raise UsageError(f"--features: unknown feature {bad[0]!r}; choices: proxies, graph, {', '.join(known)}")
    if "proxies" in items and offered is None:
        raise UsageError("--features proxies needs a score table (--table); with --store name the proxies")
    proxies = "all" if "proxies" in items else [t for t in items if t != "graph"]
    return proxies, "graph" in items


def _source(space: str, dataset: str, table: str | None, store: str | None, data_root):
    """(source, description) from the command's options."""
    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.analysis.predictor import read_score_table

    card = get_card(space)
    if store is not None:
        from xigsnr_naslib.scoring.study import Study

        return Study(card, dataset, proxies=[], store=store, data_root=data_root), f"store {store}"
    if table is not None and table in card.dataset(dataset).score_tables:
        from xigsnr_naslib.data.data_root import resolve_data_root
        from xigsnr_naslib.analysis.score_tables import TABLE_FORMATS

        spec = card.dataset(dataset).score_tables[table]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proxy_table = TABLE_FORMATS[spec.format](resolve_data_root(data_root) / spec.path, space, dataset)
        return proxy_table.scores, f"table {table} ({spec.path})"
    if table is None:
        default = DEFAULT_TABLES.get((space, dataset))
        path = Path(__file__).resolve().parents[2] / default if default else None
        if path is None or not path.is_file():
            raise UsageError(f"no checked-in score table for {space} {dataset} here: give --table PATH or NAME "
                             f"({', '.join(card.dataset(dataset).score_tables) or 'the card lists none'}) or --store")
        table = str(path)
    return read_score_table(table, space), f"table {table}"


def run(args) -> int:
    import numpy as np

    from xigsnr_naslib.benchmarks.card import get_card
    from xigsnr_naslib.analysis.graph_features import graph_spaces
    from xigsnr_naslib.analysis.predictor import ZeroCostPredictor, draw_split, evaluate_split, graph_feature_count, source_proxies
    from xigsnr_naslib.scoring.study import Study

    card = get_card(args.space)
    dataset = card.dataset(args.dataset).name
    source, described = _source(args.space, dataset, args.table, args.store, args.data_root)
    proxies, graph = parse_features(args.features, source_proxies(source))
    if graph and args.space not in graph_spaces():
        raise UsageError(f"--features graph: no graph features for space {args.space!r}; spaces with them: "
                         f"{', '.join(graph_spaces())}")
    truth = card.load_ground_truth(dataset, args.data_root)
    space = card.create_space()
    accuracy = dict(zip((space.encode(space.decode(a)) for a in truth["arch"]), truth["accuracy"].astype(float)))
    cells = sorted(accuracy) if isinstance(source, Study) else [c for c in source.index if c in accuracy]
    train, test = draw_split(len(cells), args.train, args.test, args.split_seed)
    model = ZeroCostPredictor(args.space, proxies, graph, source, args.learner, None, args.target, args.seed)
    picked = [cells[i] for i in np.concatenate([train, test])]
    result = evaluate_split(model, picked, [accuracy[c] for c in picked], np.arange(len(train)),
                            np.arange(len(train), len(picked)))
    fitted = result["model"]
    n_graph = graph_feature_count(args.space) if graph else 0
    print(f"predictor-eval: {args.space} {dataset}; {described}; {fitted.n_features_in_} features "
          f"({fitted.n_features_in_ - n_graph} proxies, {n_graph} graph); learner {args.learner} (target {args.target})")
    print(f"cells: {len(train)} training, {len(test)} test (disjoint; split seed {args.split_seed}) of {len(cells)}; "
          f"ground truth: {truth.attrs.get('definition', 'the card')}")
    print(f"{'tau':>8}{'rho':>8}{'nDCG@10':>9}{'P@Top5%':>9}{'P@Top10%':>10}{'fit s':>8}")
    print(f"{result['tau']:8.4f}{result['rho']:8.4f}{result['ndcg@10']:9.4f}{result['p_at_top5%']:9.4f}"
          f"{result['p_at_top10%']:10.4f}{result['fit_seconds']:8.2f}")
    return 0
