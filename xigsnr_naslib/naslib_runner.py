"""``xigsnr-naslib naslib-run --config CONFIG.yaml``: a NASLib zero-cost config, run live.

The config is NASLib's own zero-cost YAML (``search_space, dataset, predictor, seed,
test_size, batch_size, out_dir, config_type, ...``; see ``evaluation/configs/``), plus an
optional ``xigsnr:`` block for this package:

================  =======  ===============================================================
key               default  meaning
================  =======  ===============================================================
``n_batches``     8        N: the one batch of ``batch_size`` images is split into N ...
``batch_size``    64       ... batches of |B| images (so ``batch_size`` = N x |B| = 512)
``batches``       project  ``project``: N batches drawn once from the data root (seeded,
                           no augmentation, as the paper) and the same for every
                           architecture; ``naslib``: NASLib's training loader (a new
                           random, augmented batch per architecture; needs NASLib's data)
``bn``            true     NASLib's measure flag (false: BatchNorm dropped in the copy)
``copy_net``      true     NASLib's measure flag (false: the network is scored in place)
================  =======  ===============================================================

Engines: ``naslib`` runs NASLib's own evaluator (``use_zc_api=False``, see
:func:`xigsnr_naslib.naslib_bridge.run_naslib_zero_cost`); ``standalone`` runs the
project's pipeline (:func:`xigsnr_naslib.correlation_job.correlate`; NAS-Bench-201, ground truth
from the data root); ``auto`` picks ``naslib`` when NASLib is importable.

Both write NASLib's ``scores.json`` into ``out_dir/config_type/search_space/dataset/
predictor/seed/``: a JSON list ``[config, metrics]``. The metrics are computed here (not by
NASLib's ``compute_scores``, which calls a scikit-learn argument removed in 1.6 and then
turns every metric into NaN inside a bare ``except``); NASLib's keys keep NASLib's meaning
(``pearson`` is |r|, predictions are NASLib's scores with NaN/inf as -1e8), and the
``xigsnr`` entry adds the raw-score report (non-finite scores left out and counted) and
names the metrics NASLib itself left NaN. ``--zc-json`` also merges the scores into a file
in NASLib's ``zc_<space>.json`` layout.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .metrics import correlation_report, kendall_tau, pearson_r, spearman_rho

__all__ = ["load_config", "save_dir", "naslib_metrics", "run_config", "RunResult", "write_scores_json",
           "merge_zc_json", "add_parser"]

#: NASLib search-space names -> this package's
REQUIRED_KEYS = ("search_space", "dataset", "predictor", "seed", "test_size", "batch_size")
PLUGIN_DEFAULTS = {"n_batches": 8, "batch_size": 64, "batches": "project", "bn": True, "copy_net": True}
ENGINES = ("auto", "naslib", "standalone")
#: NASLib's own NaN/inf handling of scores
_NASLIB_P_AT_K = (1, 5, 10, 20, 25, 30, 50, 75, 100)

def load_config(path: str | os.PathLike) -> dict:
    """A NASLib zero-cost YAML config as a dict, with the ``xigsnr`` block filled with defaults."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config {path} not found")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        raise ValueError(f"{path}: not YAML{f' (line {where.line + 1})' if where else ''}: "
                         f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a mapping of NASLib config keys")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ValueError(f"{path}: missing NASLib config key(s) {', '.join(missing)}")
    plugin = dict(PLUGIN_DEFAULTS)
    plugin.update(config.get("xigsnr") or {})
    unknown = set(plugin) - set(PLUGIN_DEFAULTS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) in 'xigsnr': {', '.join(sorted(unknown))}")
    if plugin["batches"] not in ("project", "naslib"):
        raise ValueError(f"{path}: xigsnr.batches must be 'project' or 'naslib', got {plugin['batches']!r}")
    config["xigsnr"] = plugin
    config.setdefault("out_dir", "run")
    config.setdefault("config_type", "zc_example")
    n, b, total = int(plugin["n_batches"]), int(plugin["batch_size"]), int(config["batch_size"])
    if n * b != total:
        raise ValueError(f"{path}: batch_size {total} does not split into xigsnr.n_batches x xigsnr.batch_size = "
                         f"{n} x {b} = {n * b}; set 'batch_size: {n * b}' or change the split")
    return config


def save_dir(config: dict) -> Path:
    """Where NASLib's zero-cost runner saves: out_dir/config_type/search_space/dataset/predictor/seed."""
    return Path(str(config["out_dir"])) / str(config["config_type"]) / str(config["search_space"]) / \
        str(config["dataset"]) / str(config["predictor"]) / str(config["seed"])


def _top(values: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-values, kind="stable")[:k]


def naslib_metrics(accuracy, predictions) -> dict:
    """NASLib's ``scores.json`` metric keys, computed here with NASLib's meanings.

    ``pearson`` is |r|; ``kendalltau``/``spearman`` rank correlations; ``kt_2dec``/``kt_1dec``
    Kendall tau of predictions rounded to 2/1 decimals; ``precision_K`` the share of the true
    top K among the predicted top K; ``p_at_topK`` the same share for the predicted top K,
    ``kd_at_topK`` Kendall tau inside the predicted top K, ``br_at_K`` the best true rank
    (1 = best) among the predicted top K divided by the count; ``full_ytest``/``full_testpred``.
    """
    y = np.asarray(accuracy, dtype=float)
    p = np.asarray(predictions, dtype=float)
    n = len(y)
    out: dict = {}
    true_rank = np.empty(n, dtype=int)
    true_rank[np.argsort(-y, kind="stable")] = np.arange(n)
    for k in _NASLIB_P_AT_K:
        if k > n:
            continue
        top = _top(p, k)
        out[f"p_at_top{k}"] = float(np.mean(true_rank[top] < k))
        out[f"kd_at_top{k}"] = kendall_tau(p[top], y[top])
        out[f"br_at_{k}"] = float((true_rank[top].min() + 1) / n)
    with np.errstate(invalid="ignore"):
        out["mae"] = float(np.mean(np.abs(p - y))) if n else math.nan
        out["rmse"] = float(np.sqrt(np.mean((p - y) ** 2))) if n else math.nan
    r = pearson_r(p, y)
    out["pearson"] = abs(r) if math.isfinite(r) else math.nan
    out["spearman"] = spearman_rho(p, y)
    out["kendalltau"] = kendall_tau(p, y)
    out["kt_2dec"] = kendall_tau(np.round(p, 2), y)
    out["kt_1dec"] = kendall_tau(np.round(p, 1), y)
    for k in (10, 20):
        kk = min(k, n)
        out[f"precision_{k}"] = float(len(set(_top(p, kk)) & set(_top(y, kk))) / k) if kk else math.nan
    out["full_ytest"] = y.tolist()
    out["full_testpred"] = p.tolist()
    return out


@dataclass
class RunResult:
    """What :func:`run_config` did: the engine, one record per architecture, the metrics."""

    engine: str
    records: list[dict]
    results: dict
    config: dict
    save_dir: Path
    accuracy_definition: str
    extra: dict = field(default_factory=dict)

    @property
    def scores_json(self) -> Path:
        return self.save_dir / "scores.json"


def _to_jsonable(value):
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _atomic_write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_to_jsonable(data), f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_scores_json(path: str | os.PathLike, config: dict, results: dict) -> None:
    """NASLib's ``scores.json``: ``[config, results]`` (NaN written as NaN, as NASLib's json.dump does)."""
    _atomic_write_json(Path(path), [config, results])


def merge_zc_json(path: str | os.PathLike, dataset: str, proxy: str, records: list[dict]) -> int:
    """Merge scores into a ``zc_<space>.json`` file: ``{dataset: {arch_key: {proxy: {score, time},
    val_accuracy, ...}}}``; returns the number of architectures written.

    Everything already in the file is kept (other datasets, other proxies, ``id`` and
    ``val_accuracy`` of known architectures). A new architecture gets ``val_accuracy`` only
    from a record whose accuracy is NASLib's validation accuracy (``accuracy_kind: "val"``,
    the NASLib engine's); the standalone engine's accuracy is the benchmark's test accuracy,
    which NASLib's key does not hold, so it writes none. Scores are NASLib's (NaN/inf as -1e8, as ``ZeroCost.query`` returns
    them). The file is replaced atomically, so an interrupted write loses nothing.
    """
    path = Path(path)
    data = {}
    if path.exists():
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a zc_<space>.json file (top level is not a dataset mapping)")
    per_arch = data.setdefault(dataset, {})
    for r in records:
        entry = per_arch.setdefault(r["arch_key"], {})
        entry[proxy] = {"score": float(r["score"]), "time": float(r.get("seconds", 0.0))}
        if "val_accuracy" not in entry and r.get("accuracy") is not None and r.get("accuracy_kind") == "val":
            entry["val_accuracy"] = float(r["accuracy"])
    _atomic_write_json(path, data)
    return len(records)


def _naslib_available() -> bool:
    from .naslib_bridge import NASLibNotFound, add_collections_aliases, find_measures_module

    add_collections_aliases()
    try:
        find_measures_module()
    except NASLibNotFound:
        return False
    return True


def _project_batch(config: dict, data_root, device: str):
    """The protocol's N batches from the data root, concatenated into the one batch NASLib hands a measure."""
    import torch

    from .card import UnknownChoiceError, card_for_naslib
    from .datasets import canonical_dataset, load_images
    from .protocol import Protocol, draw_batches

    try:  # a space with a card: its dataset's images and protocol
        dataset = card_for_naslib(str(config["search_space"])).dataset(config["dataset"])
        images, protocol = dataset.images, _protocol(config, dataset.protocol)
    except UnknownChoiceError:  # a space only NASLib knows (NAS-Bench-301): the dataset's images
        images, protocol = canonical_dataset(config["dataset"]), _protocol(config, Protocol())
    batches = draw_batches(load_images(images, data_root), protocol, images, device)
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def _run_naslib(config: dict, out: Path, data_root, device: str, dataset_api, naslib_data) -> tuple[list, dict, dict]:
    from .naslib_bridge import run_naslib_zero_cost

    plugin = config["xigsnr"]
    fixed = _project_batch(config, data_root, device) if plugin["batches"] == "project" else None
    naslib_config = {k: v for k, v in config.items() if k != "xigsnr"}
    run = run_naslib_zero_cost(naslib_config, save=str(out), n_batches=int(plugin["n_batches"]),
                               batch_size=int(plugin["batch_size"]), bn=bool(plugin["bn"]),
                               copy_net=bool(plugin["copy_net"]), fixed_batch=fixed, dataset_api=dataset_api,
                               naslib_data=naslib_data)
    definition = f"NASLib Metric.VAL_ACCURACY of {config['search_space']}/{config['dataset']}"
    for record in run["records"]:
        record["accuracy_kind"] = "val"
    return run["records"], run["naslib_results"], {"layout": run["layout"], "evaluator": run["evaluator"],
                                                   "accuracy_definition": definition}


def _protocol(config: dict, default):
    """The config's protocol: the plugin's N x |B|, the config's seed for the batches and the
    networks' initialisation."""
    plugin, seed = config["xigsnr"], int(config["seed"])
    return default.replace(n_batches=int(plugin["n_batches"]), batch_size=int(plugin["batch_size"]),
                                    data_seed=seed, init_seed=seed)


def _run_standalone(config: dict, out: Path, data_root, device: str, progress: bool) -> tuple[list, dict, dict]:
    from .card import card_for_naslib, list_cards, get_card
    from .correlation_job import Selection, correlate
    from .naslib_bridge import naslib_score
    from .results import record_score
    from .study import Execution, Study

    try:
        card = card_for_naslib(str(config["search_space"]))
    except ValueError:
        card = None
    if card is None or card.ground_truth is None:
        offered = [get_card(n).naslib.name for n in list_cards()
                   if get_card(n).naslib is not None and get_card(n).ground_truth is not None]
        raise ValueError(f"search space {config['search_space']!r} runs only through NASLib here (the standalone "
                         f"engine has: {', '.join(offered)})")
    dataset = card.dataset(config["dataset"])
    study = Study(card, dataset.name, [config["predictor"]], _protocol(config, dataset.protocol),
                  Execution(device=device, progress=progress), out / "xigsnr_records.jsonl", data_root)
    result = correlate(study, Selection(sample=int(config["test_size"]), sample_seed=int(config["seed"])))
    records = []
    for r in result.records:
        raw = record_score(r)
        records.append({"arch_key": card.naslib.to_naslib(r["arch"]), "arch": r["arch"], "index": r["index"],
                        "raw": raw, "score": naslib_score(raw), "seconds": r.get("seconds", 0.0),
                        "accuracy": float(result.table.at[r["index"], "accuracy"]), "accuracy_kind": "test"})
    query_time = float(np.mean([r["seconds"] for r in records])) if records else math.nan
    return records, {"query_time": query_time}, {"accuracy_definition": result.ground_truth_definition}


def run_config(config: dict | str | os.PathLike, *, engine: str = "auto", data_root=None, device: str = "cpu",
               zc_json: str | os.PathLike | None = None, out_dir: str | None = None, progress: bool = True,
               dataset_api: dict | None = None, naslib_data: str | None = None) -> RunResult:
    """Run a NASLib zero-cost config (a path or a dict from :func:`load_config`); see the module doc."""
    if not isinstance(config, dict):
        config = load_config(config)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    config = dict(config)
    if out_dir is not None:
        config["out_dir"] = str(out_dir)
    if engine == "auto":
        engine = "naslib" if _naslib_available() else "standalone"
    if zc_json is not None and engine == "standalone" and str(config["search_space"]) != "nasbench201":
        # NASLib keys its zc files by its own graph hashes; the standalone engine reproduces
        # them for NAS-Bench-201 only, so it refuses rather than write keys NASLib cannot match
        raise ValueError(f"--zc-json with the standalone engine is written for nasbench201 only, not "
                         f"{config['search_space']!r}: run that space through NASLib (--engine naslib)")
    out = save_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    if engine == "naslib":
        records, naslib_results, info = _run_naslib(config, out, data_root, device, dataset_api, naslib_data)
    else:
        records, naslib_results, info = _run_standalone(config, out, data_root, device, progress)
    accuracy = [r["accuracy"] for r in records]
    ours = naslib_metrics(accuracy, [r["score"] for r in records])
    naslib_nan = sorted(k for k, v in naslib_results.items()
                        if isinstance(v, float) and math.isnan(v) and k in ours and not _isnan(ours[k]))
    if naslib_nan:
        warnings.warn(f"NASLib's compute_scores left {', '.join(naslib_nan)} NaN (its scikit-learn call fails with "
                      f"scikit-learn >= 1.6 inside a bare except); scores.json holds the values computed here")
    results = {**naslib_results, **ours}
    raw = [r["raw"] for r in records]
    report = correlation_report(raw, accuracy)
    report["n_nonfinite"] = int(sum(not math.isfinite(v) for v in raw))
    results["xigsnr"] = {"engine": engine, "report_on_raw_scores": report, "naslib_nan_metrics": naslib_nan,
                         "archs": [r["arch_key"] for r in records], "raw_scores": [_finite_or_str(v) for v in raw],
                         **info}
    write_scores_json(out / "scores.json", _to_jsonable(config), results)
    if zc_json is not None:
        space_name = str(config["search_space"])
        merge_zc_json(zc_json, str(config["dataset"]), str(config["predictor"]), records)
        info["zc_json"] = str(zc_json)
        info["zc_space"] = space_name
    return RunResult(engine, records, results, config, out, info.get("accuracy_definition", ""), info)


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _finite_or_str(value: float):
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


# ---------------------------------------------------------------------------------- CLI

def add_parser(subparsers) -> None:
    """Add ``naslib-run`` to the ``xigsnr-naslib`` command line."""
    p = subparsers.add_parser("naslib-run", help="run a NASLib zero-cost config live (NASLib or standalone)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="NASLib zero-cost YAML (see evaluation/configs/)")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="naslib: NASLib's evaluator; standalone: this package's pipeline; auto (default): "
                        "naslib when NASLib is importable")
    p.add_argument("--zc-json", default=None, help="also merge the scores into this zc_<space>.json file")
    p.add_argument("--out-dir", default=None, help="override the config's out_dir")
    p.add_argument("--naslib-data", default=None, help="NASLib's data folder for its own loaders "
                   "(default: naslib/data of the checkout)")
    p.add_argument("--data-root", default=None, help="folder with the benchmark files and images "
                   "(default: $XIGSNR_DATA_ROOT)")
    p.add_argument("--device", default="cpu", help="torch device of the project's batches (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_naslib_run)


def _cmd_naslib_run(args) -> int:
    import sys

    try:
        result = run_config(args.config, engine=args.engine, data_root=args.data_root, device=args.device,
                            zc_json=args.zc_json, out_dir=args.out_dir, progress=not args.no_progress,
                            naslib_data=args.naslib_data)
    except (FileNotFoundError, ImportError) as exc:  # a missing config, data file or NASLib
        print(f"xigsnr-naslib naslib-run: error: {exc}", file=sys.stderr)
        return 2
    r = result.results
    rep = r["xigsnr"]["report_on_raw_scores"]
    print(f"engine: {result.engine}  predictor: {result.config['predictor']}  "
          f"{result.config['search_space']}/{result.config['dataset']}  n={rep['n']} "
          f"(non-finite {rep['n_nonfinite']})")
    print(f"accuracy: {result.accuracy_definition}")
    print(f"kendalltau {r['kendalltau']:.4f}  spearman {r['spearman']:.4f}  pearson |r| {r['pearson']:.4f}  "
          f"seconds/arch {r.get('query_time', float('nan')):.3f}")
    if r["xigsnr"]["naslib_nan_metrics"]:
        print(f"note: NASLib's own metrics were NaN for {', '.join(r['xigsnr']['naslib_nan_metrics'])}; "
              "the values above are computed by xigsnr-naslib")
    print(f"scores: {result.scores_json}")
    if "zc_json" in result.extra:
        print(f"zc json: {result.extra['zc_json']}")
    return 0
