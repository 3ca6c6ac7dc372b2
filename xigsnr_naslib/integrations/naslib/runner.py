"""``xigsnr-naslib naslib-run --config CONFIG.yaml``: a NASLib zero-cost config, run live.

The config is NASLib's own zero-cost YAML (``search_space, dataset, predictor, seed,
test_size, batch_size, out_dir, config_type, ...``; see ``xigsnr_naslib/integrations/naslib/configs/``), plus an
optional ``xigsnr:`` block for this package:

| key | default | meaning |
|:---|:---|:---|
| ``n_batches`` | 8 | N: the one batch of ``batch_size`` images is split into N ... |
| ``batch_size`` | 64 | ... batches of \\|B\\| images (so ``batch_size`` = N x \\|B\\| = 512) |
| ``batches`` | project | ``project``: N batches drawn once from the data root (seeded, no augmentation, as the paper) and the same for every architecture; ``naslib``: NASLib's training loader (a new random, augmented batch per architecture; needs NASLib's data) |
| ``bn`` | true | NASLib's measure flag (false: BatchNorm dropped in the copy) |
| ``copy_net`` | true | NASLib's measure flag (false: the network is scored in place) |

Engines: ``naslib`` runs NASLib's own evaluator (``use_zc_api=False``, see
:func:`xigsnr_naslib.integrations.naslib.bridge.run_naslib_zero_cost`); ``standalone`` runs the
project's pipeline (:func:`xigsnr_naslib.analysis.correlate.correlate`; NAS-Bench-201, ground truth
from the data root); ``auto`` picks ``naslib`` when NASLib is importable.

The architectures: both engines score the same ones for one config and seed
(:func:`plan_run`): NASLib's zc-runner draw (:mod:`xigsnr_naslib.integrations.naslib.draw`: ``random.seed``
then NASLib's search-space construction, then ``random.choice`` over the pool, repeats skipped) from the ``--zc-json`` file's
architectures of the dataset when it has any, else from every NAS-Bench-201 cell. Spaces
without such a pool here (NAS-Bench-101, -301) draw the same way from NASLib's
``get_arch_iterator`` (NASLib engine) or from the project's table (standalone), which are
different lists, so those two engines differ there.

``--zc-json`` never leaves the file half-filled: when the file has architectures of the
dataset that this run would leave without the predictor, the run is refused before
anything is scored (NASLib's zc runner and ensembles raise ``KeyError`` on them); with
``--zc-fill`` every architecture of the file lacking the predictor is scored, the file is
rewritten every :data:`CHUNK` architectures (an interrupted run resumes with the rest), and
the metrics cover all of the file's architectures (scores already there are reused).

Both write NASLib's ``scores.json`` into ``out_dir/config_type/search_space/dataset/
predictor/seed/``: a JSON list ``[config, metrics]``. The metrics under NASLib's keys are
NASLib's definitions (:mod:`xigsnr_naslib.integrations.naslib.metrics`; predictions are NASLib's scores,
NaN/inf as -1e8), computed here because NASLib's ``compute_scores`` calls a scikit-learn
argument removed in 1.6 and turns the metrics into NaN inside a bare ``except``. The
``xigsnr`` entry adds the project's own metrics on the raw scores (its own names:
``kendall_tau``, ``spearman_rho``, non-finite scores left out and counted), the sampling,
and the architectures that failed. A failure is logged at error level with its
architecture; when every architecture fails the run ends with :class:`RunFailed`.
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xigsnr_naslib.scoring.results import Status
from xigsnr_naslib.data.outputs import writing
from xigsnr_naslib.data.data_root import MissingDataError
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.analysis.metrics import correlation_report
from xigsnr_naslib.integrations.naslib.metrics import compute_scores

__all__ = ["load_config", "save_dir", "run_config", "RunSettings", "RunResult", "RunFailed", "write_scores_json",
           "merge_zc_json", "read_zc_json", "plan_run", "Plan", "ENGINES", "CHUNK"]

logger = logging.getLogger(__name__)

#: NASLib search-space names -> this package's
REQUIRED_KEYS = ("search_space", "dataset", "predictor", "seed", "test_size", "batch_size")
PLUGIN_DEFAULTS = {"n_batches": 8, "batch_size": 64, "batches": "project", "bn": True, "copy_net": True}
ENGINES = ("auto", "naslib", "standalone")


@dataclass(frozen=True)
class RunSettings:
    """How :func:`run_config` runs a config: the options of ``xigsnr-naslib naslib-run``.

    Parameters
    ----------
    engine:
        ``naslib`` (NASLib's own evaluator), ``standalone`` (the project's pipeline) or
        ``auto`` (``naslib`` when NASLib is importable); see the module documentation.
    data_root:
        folder with the benchmark files and images (default: ``$XIGSNR_DATA_ROOT``).
    device:
        torch device of the project's batches; one this torch cannot use is refused by
        :func:`run_config` before anything is read.
    zc_json:
        a ``zc_<space>.json`` file to merge the scores into (and to draw the test set from).
    zc_fill:
        score every architecture of ``zc_json`` that lacks the predictor (needs ``zc_json``).
    out_dir:
        replaces the config's ``out_dir``.
    progress:
        show a progress bar (standalone engine).
    naslib_data:
        NASLib's data folder for its own loaders (default: ``naslib/data`` of the checkout).

    Raises
    ------
    UsageError
        one line naming the bad value (and the choices).
    """

    engine: str = "auto"
    data_root: str | os.PathLike | None = None
    device: str = "cpu"
    zc_json: str | os.PathLike | None = None
    zc_fill: bool = False
    out_dir: str | os.PathLike | None = None
    progress: bool = True
    naslib_data: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if not isinstance(self.device, str):
            raise UsageError(f"device must be a torch device name such as 'cpu' or 'cuda:0', got {self.device!r}")
        for name in ("zc_fill", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("data_root", "zc_json", "out_dir", "naslib_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise UsageError(f"{name} must be a path or None, got {value!r}")
        if self.zc_fill and self.zc_json is None:
            raise UsageError("--zc-fill needs --zc-json FILE (the file whose architectures to score)")



class ConfigNotFound(UsageError, FileNotFoundError):
    """The NASLib config named does not exist (a usage error: the caller named it)."""

def load_config(path: str | os.PathLike) -> dict:
    """A NASLib zero-cost YAML config as a dict, with the ``xigsnr`` block filled with defaults."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigNotFound(f"config {path} not found")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        raise UsageError(f"{path}: not YAML{f' (line {where.line + 1})' if where else ''}: "
                         f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: not a mapping of NASLib config keys")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise UsageError(f"{path}: missing NASLib config key(s) {', '.join(missing)}")
    plugin = dict(PLUGIN_DEFAULTS)
    plugin.update(config.get("xigsnr") or {})
    unknown = set(plugin) - set(PLUGIN_DEFAULTS)
    if unknown:
        raise UsageError(f"{path}: unknown key(s) in 'xigsnr': {', '.join(sorted(unknown))}")
    if plugin["batches"] not in ("project", "naslib"):
        raise UsageError(f"{path}: xigsnr.batches must be 'project' or 'naslib', got {plugin['batches']!r}")
    config["xigsnr"] = plugin
    config.setdefault("out_dir", "run")
    config.setdefault("config_type", "zc_example")
    n, b, total = int(plugin["n_batches"]), int(plugin["batch_size"]), int(config["batch_size"])
    if n * b != total:
        raise UsageError(f"{path}: batch_size {total} does not split into xigsnr.n_batches x xigsnr.batch_size = "
                         f"{n} x {b} = {n * b}; set 'batch_size: {n * b}' or change the split")
    return config


def save_dir(config: dict) -> Path:
    """Where NASLib's zero-cost runner saves: out_dir/config_type/search_space/dataset/predictor/seed."""
    return Path(str(config["out_dir"])) / str(config["config_type"]) / str(config["search_space"]) / \
        str(config["dataset"]) / str(config["predictor"]) / str(config["seed"])


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
    with writing(path, "scores"):
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
    data = read_zc_json(path)
    per_arch = data.setdefault(dataset, {})
    for r in records:
        entry = per_arch.setdefault(r["arch_key"], {})
        entry[proxy] = {"score": float(r["score"]), "time": float(r.get("seconds") or 0.0)}
        if "val_accuracy" not in entry and r.get("accuracy") is not None and r.get("accuracy_kind") == "val":
            entry["val_accuracy"] = float(r["accuracy"])
    _atomic_write_json(path, data)
    return len(records)


def read_zc_json(path: str | os.PathLike) -> dict:
    """A ``zc_<space>.json`` file as a dict (``{}`` when it does not exist).

    Raises ``ValueError`` naming the file when it is not JSON or not a dataset mapping.
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as exc:
        raise UsageError(f"{path}: not a zc_<space>.json file (not JSON: {exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(f"{path}: not a zc_<space>.json file (top level is not a dataset mapping)")
    for dataset, entries in data.items():  # this file is merged into and written back: refuse, never drop
        bad = next((k for k, v in entries.items() if not isinstance(v, dict)), None)
        if bad is not None:
            raise UsageError(f"{path}: {dataset} architecture {bad} is {json.dumps(entries[bad])[:60]}, not an "
                             "object of scores ({'<proxy>': {'score': ...}, 'val_accuracy': ...}); repair or remove it")
    return data


@dataclass
class Plan:
    """Which architectures a run scores: ``test`` (NASLib keys, the metrics' set), of which
    ``to_score`` are scored now and the rest read from the zc file (``reused``: key -> score)."""

    test: list[str] | None
    to_score: list[str] | None
    reused: dict[str, float]
    pool: str


def _stored_score(path, dataset: str, key: str, entry, predictor: str) -> float:
    """``entry[predictor]["score"]`` of a zc file; ``ValueError`` naming the file, the
    architecture and what is wrong when the entry is not NASLib's ``{"score": number, ...}``."""
    value = entry[predictor]
    score = value.get("score") if isinstance(value, dict) else None
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise UsageError(f"{path}: {dataset} architecture {key}: {predictor!r} is {json.dumps(value)[:80]}, not "
                         "{'score': <number>, 'time': <seconds>}; repair or remove that entry")
    return float(score)


def plan_run(config: dict, zc_json=None, zc_fill: bool = False) -> Plan:
    """The run's architectures (module documentation): NASLib's seeded draw
    (:func:`xigsnr_naslib.integrations.naslib.draw.draw_test_set`) from the zc file's architectures or the
    space, or with ``zc_fill`` every architecture of the zc file, those lacking the predictor
    scored. Raises ``ValueError`` up front when the run would leave architectures of the zc file
    without the predictor (NASLib's zc runner and ensembles then fail with ``KeyError``)."""
    from xigsnr_naslib.integrations.naslib.draw import draw_test_set, draws_before, pool_for

    dataset, predictor = str(config["dataset"]), str(config["predictor"])
    entries = read_zc_json(zc_json).get(dataset, {}) if zc_json is not None else {}
    if zc_fill:
        if zc_json is None:
            raise UsageError("--zc-fill needs --zc-json FILE (the file whose architectures to score)")
        if not entries:
            raise UsageError(f"--zc-fill: {zc_json} has no architectures of {dataset!r} to score")
        keys = list(entries)
        reused = {k: _stored_score(zc_json, dataset, k, entries[k], predictor) for k in keys
                  if isinstance(entries[k], dict) and predictor in entries[k]}
        return Plan(keys, [k for k in keys if k not in reused], reused, f"every architecture of {zc_json}")
    pool = pool_for(str(config["search_space"]), list(entries) if entries else None)
    if pool is None:
        return Plan(None, None, {}, "the search space's own iterator")
    test = draw_test_set(pool, int(config["test_size"]), int(config["seed"]),
                         draws_before(str(config["search_space"])))
    chosen = set(test)
    left = [k for k, entry in entries.items() if predictor not in entry and k not in chosen]
    if left:
        raise UsageError(f"{zc_json}: {len(left)} of its {len(entries)} {dataset} architectures would still lack "
                         f"{predictor!r} after this run of {len(test)}, and NASLib's zc runner and ensembles fail with "
                         f"KeyError: {predictor!r} on them; add --zc-fill to score every one of them (resumable), "
                         f"or write to a new file")
    where = f"the {len(entries)} architectures of {zc_json}" if entries else f"every {config['search_space']} cell"
    return Plan(test, test, {}, f"NASLib's seeded draw (random.choice, seed {config['seed']}) from {where}")


def _naslib_available() -> bool:
    from xigsnr_naslib.integrations.naslib.bridge import NASLibNotFound, add_collections_aliases, find_measures_module

    add_collections_aliases()
    try:
        find_measures_module()
    except NASLibNotFound:
        return False
    return True


def _project_batch(config: dict, data_root, device: str):
    """The protocol's N batches from the data root, concatenated into the one batch NASLib hands a measure."""
    import torch

    from xigsnr_naslib.benchmarks.card import UnknownChoiceError, card_for_naslib
    from xigsnr_naslib.data.datasets import canonical_dataset, load_images
    from xigsnr_naslib.data.protocol import Protocol, draw_batches

    try:  # a space with a card: its dataset's images and protocol
        dataset = card_for_naslib(str(config["search_space"])).dataset(config["dataset"])
        images, protocol = dataset.images, _protocol(config, dataset.protocol)
    except UnknownChoiceError:  # a space only NASLib knows (NAS-Bench-301): the dataset's images
        images, protocol = canonical_dataset(config["dataset"]), _protocol(config, Protocol())
    batches = draw_batches(load_images(images, data_root), protocol, images, device)
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def _run_naslib(config: dict, out: Path, settings: RunSettings, plan: Plan, on_chunk, dataset_api
                ) -> tuple[list, dict]:
    from xigsnr_naslib.integrations.naslib.bridge import (MeasureSettings, add_collections_aliases,
                                                          find_measures_module, load_naslib_search_space,
                                                          naslib_search_space_pool, query_accuracies,
                                                          run_naslib_zero_cost)
    from xigsnr_naslib.integrations.naslib.data import (accept_written_layouts, check_naslib_images,
                                                        load_naslib_dataset_api, naslib_data_folder)
    from xigsnr_naslib.integrations.naslib.draw import draw_test_set

    add_collections_aliases()
    find_measures_module()
    plugin = config["xigsnr"]
    data = naslib_data_folder(settings.naslib_data)
    if plugin["batches"] == "naslib":
        check_naslib_images(str(config["dataset"]), data)
        accept_written_layouts()
    if dataset_api is None:
        dataset_api = load_naslib_dataset_api(str(config["search_space"]), str(config["dataset"]))
    if plan.test is None:  # a space without a pool here: NASLib's iterator, the same seeded draw
        keys = draw_test_set(naslib_search_space_pool(load_naslib_search_space(config), dataset_api),
                             int(config["test_size"]), int(config["seed"]))
        plan = Plan(keys, keys, {}, "NASLib's seeded draw from the space's get_arch_iterator")
    fixed = _project_batch(config, settings.data_root, settings.device) if plugin["batches"] == "project" else None
    naslib_config = {k: v for k, v in config.items() if k != "xigsnr"}
    measure = MeasureSettings(int(plugin["n_batches"]), int(plugin["batch_size"]), bool(plugin["bn"]),
                              bool(plugin["copy_net"]))
    records, info = [], {}
    for chunk in _chunks(plan.to_score):
        run = run_naslib_zero_cost(naslib_config, chunk, save=str(out), settings=measure, fixed_batch=fixed,
                                   dataset_api=dataset_api, naslib_data=data)
        for record in run["records"]:
            record["accuracy_kind"] = "val"
        on_chunk(run["records"])
        records += run["records"]
        info = {"layout": run["layout"], "evaluator": run["evaluator"]}
    reused = list(plan.reused)
    for key, accuracy in zip(reused, query_accuracies(naslib_config, reused, dataset_api)):
        records.append(_reused_record(key, plan.reused[key], accuracy, "val"))
    info["accuracy_definition"] = f"NASLib Metric.VAL_ACCURACY of {config['search_space']}/{config['dataset']}"
    return _in_order(records, plan.test), info


#: architectures scored between two writes of the zc file (what an interruption can lose)
CHUNK = 25


def _chunks(keys):
    keys = list(keys)
    for i in range(0, len(keys), CHUNK):
        yield keys[i:i + CHUNK]


def _reused_record(key: str, score: float, accuracy: float, kind: str) -> dict:
    return {"arch_key": key, "raw": score, "score": score, "seconds": None, "accuracy": accuracy,
            "accuracy_kind": kind, "reused": True}


def _in_order(records: list[dict], keys: list[str]) -> list[dict]:
    by_key = {r["arch_key"]: r for r in records}
    return [by_key[k] for k in keys]


def _protocol(config: dict, default):
    """The config's protocol: the plugin's N x |B|, the config's seed for the batches and the
    networks' initialisation."""
    plugin, seed = config["xigsnr"], int(config["seed"])
    return default.replace(n_batches=int(plugin["n_batches"]), batch_size=int(plugin["batch_size"]),
                           data_seed=seed, init_seed=seed)


def _standalone_card(config: dict):
    from xigsnr_naslib.benchmarks.card import card_for_naslib, get_card, list_cards

    try:
        card = card_for_naslib(str(config["search_space"]))
    except ValueError:
        card = None
    if card is None or card.ground_truth is None:
        offered = [get_card(n).naslib.name for n in list_cards()
                   if get_card(n).naslib is not None and get_card(n).ground_truth is not None]
        raise UsageError(f"search space {config['search_space']!r} runs only through NASLib here (the standalone "
                         f"engine has: {', '.join(offered)})")
    return card


def _run_standalone(config: dict, out: Path, settings: RunSettings, plan: Plan, on_chunk) -> tuple[list, dict]:
    from xigsnr_naslib.analysis.correlate import Selection, correlate
    from xigsnr_naslib.integrations.naslib.bridge import naslib_score
    from xigsnr_naslib.scoring.results import record_score
    from xigsnr_naslib.scoring.study import Execution, Study

    card = _standalone_card(config)
    dataset = card.dataset(config["dataset"])
    study = Study(card, dataset.name, [config["predictor"]], _protocol(config, dataset.protocol),
                  Execution(device=settings.device, progress=settings.progress), out / "xigsnr_records.jsonl",
                  settings.data_root)
    truth = card.load_ground_truth(dataset.name, study.data_root)
    if plan.test is None:  # no NASLib pool for this space here: the project's own seeded sample
        selections = [Selection(sample=int(config["test_size"]), sample_seed=int(config["seed"]))]
        keys = None
    else:
        index_of = {arch: int(i) for i, arch in zip(truth.index, truth["arch"])}
        keys = plan.test
        missing = [k for k in plan.test if card.naslib.from_naslib(k) not in index_of]
        if missing:
            raise UsageError(f"{len(missing)} architecture(s) are not in the project's {card.name} ground truth, "
                             f"e.g. {missing[0]}")
        selections = [Selection(indices=[index_of[card.naslib.from_naslib(k)] for k in chunk])
                      for chunk in _chunks(plan.to_score)]
    records = []
    for selection in selections:
        result = correlate(study, selection)
        chunk = []
        for r in result.records:
            raw = record_score(r)
            record = {"arch_key": card.naslib.to_naslib(r["arch"]), "arch": r["arch"], "index": r["index"],
                      "raw": raw, "score": naslib_score(raw), "seconds": r.get("seconds", 0.0),
                      "accuracy": float(truth.at[r["index"], "accuracy"]), "accuracy_kind": "test"}
            if r.get("status") == Status.ERROR:
                record["error"] = r.get("error", "error")
            chunk.append(record)
        on_chunk(chunk)
        records += chunk
    if plan.reused:
        accuracy_of = {card.naslib.to_naslib(a): float(acc) for a, acc in zip(truth["arch"], truth["accuracy"])}
        records += [_reused_record(k, v, accuracy_of[k], "test") for k, v in plan.reused.items()]
    if keys is not None:
        records = _in_order(records, keys)
    return records, {"accuracy_definition": truth.attrs.get("definition", "")}


class RunFailed(RuntimeError):
    """Every architecture of a run failed (the first errors are in the message)."""


def run_config(config: dict | str | os.PathLike, settings: RunSettings = RunSettings(),
               dataset_api: dict | None = None) -> RunResult:
    """Run a NASLib zero-cost config (a path or a dict from :func:`load_config`) as ``settings``
    say; see the module doc. ``dataset_api``: NASLib's benchmark API for the NASLib engine
    (default: NASLib's ``get_dataset_api``).

    Raises ``ValueError`` for a bad config, engine or zc file (before anything is scored),
    :class:`~xigsnr_naslib.data.data_root.MissingDataError` for missing data, :class:`RunFailed`
    when every architecture failed (after writing what there is).
    """
    if not isinstance(config, dict):
        config = load_config(config)
    if not isinstance(settings, RunSettings):
        raise TypeError(f"settings must be a RunSettings, got {type(settings).__name__}")
    from xigsnr_naslib.scoring.study import check_device

    check_device(settings.device)  # a device this torch cannot score on is refused before anything is read
    config = dict(config)
    if settings.out_dir is not None:
        config["out_dir"] = str(settings.out_dir)
    engine = settings.engine
    if engine == "auto":
        engine = "naslib" if _naslib_available() else "standalone"
    zc_json = settings.zc_json
    if zc_json is not None and engine == "standalone" and str(config["search_space"]) != "nasbench201":
        # NASLib keys its zc files by its own graph hashes; the standalone engine reproduces
        # them for NAS-Bench-201 only, so it refuses rather than write keys NASLib cannot match
        raise UsageError(f"--zc-json with the standalone engine is written for nasbench201 only, not "
                         f"{config['search_space']!r}: run that space through NASLib (--engine naslib)")
    if engine == "standalone":
        _standalone_card(config)  # an unknown space is refused before anything is read
    plan = plan_run(config, zc_json, settings.zc_fill)
    out = save_dir(config)
    with writing(out, "output folder"):
        out.mkdir(parents=True, exist_ok=True)
    dataset, predictor = str(config["dataset"]), str(config["predictor"])

    def on_chunk(records: list[dict]) -> None:
        for r in records:
            if "error" in r:
                logger.error("%s failed on architecture %s: %s", predictor, r["arch_key"], r["error"])
        if zc_json is not None:
            merge_zc_json(zc_json, dataset, predictor, [r for r in records if "error" not in r])

    if engine == "naslib":
        records, info = _run_naslib(config, out, settings, plan, on_chunk, dataset_api)
    else:
        records, info = _run_standalone(config, out, settings, plan, on_chunk)
    results = _results(engine, records, plan, info)
    write_scores_json(out / "scores.json", _to_jsonable(config), results)
    if zc_json is not None:
        info["zc_json"] = str(zc_json)
    x = results["xigsnr"]
    if x["n_scored"] and x["n_failed"] == x["n_scored"]:
        first = next(iter(x["errors"]))
        raise RunFailed(f"{predictor} failed on every one of the {x['n_scored']} architectures scored (first: "
                        f"{first}: {x['errors'][first]}); see {out / 'scores.json'}")
    return RunResult(engine, records, results, config, out, info.get("accuracy_definition", ""), info)


def _results(engine: str, records: list[dict], plan: Plan, info: dict) -> dict:
    """NASLib's metrics of ``records`` and the ``xigsnr`` entry of ``scores.json``."""
    accuracy = [r["accuracy"] for r in records]
    results = compute_scores(accuracy, [r["score"] for r in records])
    scored = [r for r in records if not r.get("reused")]
    failed = [r for r in scored if "error" in r]
    seconds = [r["seconds"] for r in scored if r.get("seconds") is not None]
    results["query_time"] = float(np.mean(seconds)) if seconds else math.nan
    raw = [r["raw"] for r in records]
    report = correlation_report(raw, accuracy)
    report["n_nonfinite"] = int(sum(not math.isfinite(v) for v in raw))
    results["xigsnr"] = {"engine": engine, "report_on_raw_scores": report, "archs": [r["arch_key"] for r in records],
                         "raw_scores": [_finite_or_str(v) for v in raw], "sampling": plan.pool,
                         "n_scored": len(scored), "n_reused": len(records) - len(scored), "n_failed": len(failed),
                         "errors": {r["arch_key"]: r["error"] for r in failed}, **info}
    return results


def _finite_or_str(value: float):
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
