"""NAS-Bench-101 accuracies, from the real benchmark files or the reference CSVs.

Accuracy definitions (percent, 108 training epochs, CIFAR-10), selected by name:

``released``
    the maximum over the three seeds of the final *test* accuracy: what the released
    xi-GSNR run correlated with. The default wherever all seeds are present.
``naslib``
    the final *validation* accuracy of one seed (``seed=0`` unless given): NASLib's query
    returns one seed's validation accuracy.

Readers (each returns a DataFrame indexed by the benchmark index, with ``arch`` (the cell's
canonical string, :func:`~xigsnr_naslib.benchmarks.nb101.space.canonical_cell`: the space's encoding,
one per hash, not the benchmark's own vertex order), ``hash``, ``accuracy`` and, where known, ``params``; ``attrs`` carry
``definition``, ``source`` and ``skipped``):

* :func:`read_nb101_tfrecord`: ``nasbench_only108.tfrecord`` (or ``nasbench_full.tfrecord``,
  108-epoch rows only) read without TensorFlow: the file's framing by the ``tfrecord``
  package, each record a JSON list ``[hash, epochs, adjacency bits, ops, base64
  ModelMetrics]``, the protobuf message defined here (:func:`model_metrics_message`).
  Needs the optional extra ``nb101`` (``tfrecord``, ``protobuf``).
* :func:`read_nb101_pickle`: NASLib's ``nasbench_only108.pkl``, a dict ``hash ->
  (fixed statistics, {epochs: [per-seed metric dicts]})``.
* :func:`read_nb101_sample_csv`: the reference sample ``nb101/nb101_sample2500.csv``
  (2,500 cells, ONE seed's accuracy whose split, test or validation, is not confirmed).
* :func:`read_nb101_full_metrics_csv`: the reference ``nb101/nb101_30_fullmetrics.csv``
  (30 cells, all seeds, both splits).

The benchmark index of a cell is the rank of its hash in sorted order, in every reader, so
the paper's sample of 4,500 architectures (the first 4,500 hashes in sorted order) is
``indices 0..4499`` of the full data: ``correlate --space nb101 --first 4500``.

Every cell is validated; ``verify_hash=True`` also recomputes each recorded hash (about
2 ms a cell: 15 minutes for the full benchmark, so off by default). Cells that are not
valid NAS-Bench-101 cells are skipped, reported by a warning and listed
in ``attrs["skipped"]`` as ``(record, reason)`` pairs; the other cells are kept.
"""
from __future__ import annotations

import base64
import json
import pickle
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.data_root import MissingDataError, resolve_data_root, reads_data_file
from xigsnr_naslib.benchmarks.nb101.space import InvalidCellError, canonical_cell, graph_hash, make_cell

__all__ = [
    "NB101_DEFINITIONS",
    "model_metrics_message",
    "read_nb101_tfrecord",
    "read_nb101_pickle",
    "read_nb101_sample_csv",
    "read_nb101_full_metrics_csv",
    "nb101_ground_truth",
    "paper_sample",
]

NB101_DEFINITIONS = {
    "released": "NAS-Bench-101 CIFAR-10 test accuracy after 108 epochs, maximum over the 3 seeds (as the released xi-GSNR run)",
    "naslib": "NAS-Bench-101 CIFAR-10 validation accuracy after 108 epochs of seed {seed} (as NASLib queries it)",
}
SAMPLE_DEFINITION = ("NAS-Bench-101 CIFAR-10 accuracy after 108 epochs of ONE seed, test or validation not "
                     "confirmed (reference sample of 2,500 cells; approximate ground truth)")
TFRECORD_FILES = ["nasbench_only108.tfrecord", "nb101/nasbench_only108.tfrecord",
                  "nasbench_full.tfrecord", "nb101/nasbench_full.tfrecord"]
PICKLE_FILES = ["nasbench_only108.pkl", "nb101/nasbench_only108.pkl"]
SAMPLE_CSV = "nb101/nb101_sample2500.csv"
FULL_METRICS_CSV = "nb101/nb101_30_fullmetrics.csv"
PAPER_SAMPLE_SIZE = 4500
_HOW_TO_GET = ("The full benchmark nasbench_only108.tfrecord is linked from https://github.com/google-research/nasbench "
               "(NASLib's nasbench_only108.pkl also works); the 2,500-cell reference sample comes with the project's "
               "reference data (DATA_ROOT/nb101/).")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"NAS-Bench-101 file {path} not found. {_HOW_TO_GET}")
    return path


def _check_definition(definition: str) -> None:
    if definition not in NB101_DEFINITIONS:
        raise UsageError(f"unknown NAS-Bench-101 accuracy definition {definition!r}; choose "
                         f"{' or '.join(NB101_DEFINITIONS)}")


def _accuracy(test: list[float], valid: list[float], definition: str, seed: int, what: str) -> float:
    if definition == "released":
        if not test:
            raise UsageError(f"{what}: no test accuracy")
        return 100.0 * max(test)
    if seed >= len(valid):
        raise UsageError(f"{what}: no validation accuracy of seed {seed} ({len(valid)} seed(s))")
    return 100.0 * valid[seed]


def _frame(rows: list[dict], definition: str, source: str, skipped: list[tuple[str, str]]) -> pd.DataFrame:
    if skipped:
        shown = "; ".join(f"{r}: {why}" for r, why in skipped[:5])
        warnings.warn(f"{source}: skipped {len(skipped)} invalid record(s): {shown}{' ...' if len(skipped) > 5 else ''}")
    rows = sorted(rows, key=lambda r: r["hash"])
    df = pd.DataFrame(rows, columns=["hash", "arch", "accuracy", "params"] if rows and "params" in rows[0]
                      else ["hash", "arch", "accuracy"])
    df.index = pd.RangeIndex(len(df), name="index")
    df.attrs.update(definition=definition, source=source, skipped=skipped)
    return df


def _cell_row(key: str, matrix: Any, ops: Any, what: str, verify_hash: bool) -> dict:
    """Validate the cell and give its canonical string (about 0.3 ms a cell); with
    ``verify_hash``, also recompute its hash (about 2 ms a cell)."""
    cell = make_cell(matrix, ops, what)
    if verify_hash or not key:
        h = graph_hash(cell)
        if key and h != key:
            raise InvalidCellError(f"{what}: recorded hash {key} but the cell hashes to {h}")
        key = h
    return {"hash": str(key), "arch": canonical_cell(cell).to_string()}


# --- the real tfrecord --------------------------------------------------------------------

_MESSAGE = None


def model_metrics_message():
    """The ``nasbench.ModelMetrics`` protobuf class, defined in Python (no generated code).

    ``ModelMetrics``: repeated ``EvaluationData evaluation_data = 1``, ``int32
    trainable_parameters = 2``, ``double total_time = 3``. ``EvaluationData``:
    ``double current_epoch = 1``, ``training_time = 2``, ``train_accuracy = 3``,
    ``validation_accuracy = 4``, ``test_accuracy = 5``, ``string checkpoint_path = 6``.
    Evaluation 0 is at initialisation, 1 half-way, 2 at the end of training.
    """
    global _MESSAGE
    if _MESSAGE is not None:
        return _MESSAGE
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError as exc:
        raise ImportError("reading nasbench_only108.tfrecord needs the optional extra: "
                          "pip install 'xigsnr-naslib[nb101]'") from exc
    fd = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="xigsnr_nasbench_model_metrics.proto", package="nasbench",
                                               syntax="proto2")
    evaluation = proto.message_type.add(name="EvaluationData")
    for number, name in enumerate(["current_epoch", "training_time", "train_accuracy", "validation_accuracy",
                                   "test_accuracy"], start=1):
        evaluation.field.add(name=name, number=number, type=fd.TYPE_DOUBLE, label=fd.LABEL_OPTIONAL)
    evaluation.field.add(name="checkpoint_path", number=6, type=fd.TYPE_STRING, label=fd.LABEL_OPTIONAL)
    metrics = proto.message_type.add(name="ModelMetrics")
    metrics.field.add(name="evaluation_data", number=1, type=fd.TYPE_MESSAGE, label=fd.LABEL_REPEATED,
                      type_name=".nasbench.EvaluationData")
    metrics.field.add(name="trainable_parameters", number=2, type=fd.TYPE_INT32, label=fd.LABEL_OPTIONAL)
    metrics.field.add(name="total_time", number=3, type=fd.TYPE_DOUBLE, label=fd.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("nasbench.ModelMetrics")
    if hasattr(message_factory, "GetMessageClass"):
        _MESSAGE = message_factory.GetMessageClass(descriptor)
    else:  # protobuf < 4.21
        _MESSAGE = message_factory.MessageFactory(pool).GetPrototype(descriptor)
    return _MESSAGE


def _tfrecord_rows(path: Path) -> Iterator[bytes]:
    try:
        from tfrecord.reader import tfrecord_iterator
    except ImportError as exc:
        raise ImportError("reading nasbench_only108.tfrecord needs the optional extra: "
                          "pip install 'xigsnr-naslib[nb101]'") from exc
    for view in tfrecord_iterator(str(path)):
        yield bytes(view)  # the iterator reuses its buffer


@reads_data_file('the NAS-Bench-101 tfrecord (nasbench_only108.tfrecord)')
def read_nb101_tfrecord(path: str | Path, definition: str = "released", seed: int = 0, epochs: int = 108,
                        verify_hash: bool = False) -> pd.DataFrame:
    """The benchmark's tfrecord file, one row per cell (its seeds combined by ``definition``)."""
    _check_definition(definition)
    path = _existing(path)
    message = model_metrics_message()
    from google.protobuf.message import DecodeError

    cells: dict[str, dict] = {}
    skipped: list[tuple[str, str]] = []
    for number, raw in enumerate(_tfrecord_rows(path)):
        what = f"{path.name} record {number}"
        try:
            key, record_epochs, adjacency, ops, encoded = json.loads(raw.decode("utf-8"))
            if int(record_epochs) != epochs:
                continue
            metrics = message.FromString(base64.b64decode(encoded))
            if len(metrics.evaluation_data) < 3:
                raise UsageError(f"{what}: {len(metrics.evaluation_data)} evaluations, expected 3 (start, half, end)")
            final = metrics.evaluation_data[2]
            entry = cells.get(key)
            if entry is None:
                n = int(round(len(adjacency) ** 0.5))
                if n * n != len(adjacency) or set(adjacency) - {"0", "1"}:
                    raise InvalidCellError(f"{what}: adjacency {adjacency!r} is not a square 0/1 matrix")
                matrix = np.array([int(b) for b in adjacency]).reshape(n, n)
                entry = _cell_row(key, matrix, ops.split(","), f"{what} ({key})", verify_hash)
                entry.update(params=int(metrics.trainable_parameters), test=[], valid=[])
                cells[key] = entry
            entry["test"].append(final.test_accuracy)
            entry["valid"].append(final.validation_accuracy)
        except (ValueError, TypeError, KeyError, DecodeError) as exc:  # bad JSON, base64, protobuf or cell
            skipped.append((what, f"{type(exc).__name__}: {exc}"))
    rows = []
    for key, entry in cells.items():
        try:
            accuracy = _accuracy(entry["test"], entry["valid"], definition, seed, f"{path.name} {key}")
        except ValueError as exc:
            skipped.append((key, str(exc)))
            continue
        rows.append({"hash": entry["hash"], "arch": entry["arch"], "accuracy": accuracy, "params": entry["params"]})
    return _frame(rows, NB101_DEFINITIONS[definition].format(seed=seed), str(path), skipped)


@reads_data_file("NASLib's NAS-Bench-101 pickle (nasbench_only108.pkl)")
def read_nb101_pickle(path: str | Path, definition: str = "released", seed: int = 0, epochs: int = 108,
                      verify_hash: bool = False) -> pd.DataFrame:
    """NASLib's ``nasbench_only108.pkl``: ``{hash: (fixed, {epochs: [seed metrics]})}``."""
    _check_definition(definition)
    path = _existing(path)
    with open(path, "rb") as f:
        data = pickle.load(f)
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not NASLib's NAS-Bench-101 pickle (a dict of hash -> (fixed, computed))")
    rows, skipped = [], []
    for key, value in data.items():
        what = f"{path.name} {key}"
        try:
            fixed, computed = value
            entry = _cell_row(key, fixed["module_adjacency"], list(fixed["module_operations"]), what, verify_hash)
            runs = computed[epochs]
            test = [r["final_test_accuracy"] for r in runs]
            valid = [r["final_validation_accuracy"] for r in runs]
            entry.update(accuracy=_accuracy(test, valid, definition, seed, what),
                         params=int(fixed["trainable_parameters"]))
            rows.append(entry)
        except (ValueError, TypeError, KeyError) as exc:
            skipped.append((what, f"{type(exc).__name__}: {exc}"))
    return _frame(rows, NB101_DEFINITIONS[definition].format(seed=seed), str(path), skipped)


def _csv_rows(table: pd.DataFrame, path: Path, needed: Iterable[str]) -> None:
    missing = set(needed) - set(table.columns)
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(sorted(missing))}")


@reads_data_file('the NAS-Bench-101 reference sample CSV')
def read_nb101_sample_csv(path: str | Path, verify_hash: bool = False) -> pd.DataFrame:
    """The 2,500-cell reference sample (one seed's accuracy, split not confirmed)."""
    path = Path(path)
    table = pd.read_csv(path)
    _csv_rows(table, path, ["nb101_hash", "matrix", "ops", "acc_108ep_single_seed"])
    rows, skipped = [], []
    for i, r in enumerate(table.itertuples(index=False)):
        what = f"{path.name} row {i} ({r.nb101_hash})"
        try:
            entry = _cell_row(r.nb101_hash, json.loads(r.matrix), json.loads(r.ops), what, verify_hash)
            entry["accuracy"] = 100.0 * float(r.acc_108ep_single_seed)
            rows.append(entry)
        except (ValueError, TypeError) as exc:
            skipped.append((what, str(exc)))
    return _frame(rows, SAMPLE_DEFINITION, str(path), skipped)


@reads_data_file('the NAS-Bench-101 full-metrics CSV')
def read_nb101_full_metrics_csv(path: str | Path, definition: str = "released", seed: int = 0,
                                verify_hash: bool = False) -> pd.DataFrame:
    """The 30-cell reference file with test and validation accuracy of all three seeds."""
    _check_definition(definition)
    path = Path(path)
    table = pd.read_csv(path)
    seeds = sorted(int(c.rsplit("seed", 1)[1]) for c in table.columns if c.startswith("test_acc_seed"))
    _csv_rows(table, path, ["nb101_hash", "matrix", "ops", "params"] + [f"test_acc_seed{s}" for s in seeds]
              + [f"val_acc_seed{s}" for s in seeds])
    rows, skipped = [], []
    for i, r in table.iterrows():
        what = f"{path.name} row {i} ({r['nb101_hash']})"
        try:
            entry = _cell_row(r["nb101_hash"], json.loads(r["matrix"]), json.loads(r["ops"]), what, verify_hash)
            test = [float(r[f"test_acc_seed{s}"]) for s in seeds]
            valid = [float(r[f"val_acc_seed{s}"]) for s in seeds]
            entry.update(accuracy=_accuracy(test, valid, definition, seed, what), params=int(r["params"]))
            rows.append(entry)
        except (ValueError, TypeError) as exc:
            skipped.append((what, str(exc)))
    return _frame(rows, NB101_DEFINITIONS[definition].format(seed=seed), str(path), skipped)


def nb101_ground_truth(dataset: str = "cifar10", data_root: str | Path | None = None,
                       accuracy: str | None = None, seed: int = 0) -> pd.DataFrame:
    """The best NAS-Bench-101 ground truth under the data root.

    The tfrecord if present, else NASLib's pickle (both with ``accuracy`` = ``released`` by
    default, or ``naslib``), else the 2,500-cell reference sample (its one definition; asking
    for another raises :class:`MissingDataError` naming the full files).
    """
    if dataset != "cifar10":
        raise UsageError(f"NAS-Bench-101 has CIFAR-10 accuracies only, not {dataset!r}")
    root = resolve_data_root(data_root)
    for rel in TFRECORD_FILES:
        if (root / rel).exists():
            return read_nb101_tfrecord(root / rel, accuracy or "released", seed)
    for rel in PICKLE_FILES:
        if (root / rel).exists():
            return read_nb101_pickle(root / rel, accuracy or "released", seed)
    if accuracy is not None:
        _check_definition(accuracy)
        raise MissingDataError(f"the {accuracy!r} NAS-Bench-101 accuracy needs every seed's results: looked for "
                               f"{', '.join(str(root / r) for r in TFRECORD_FILES + PICKLE_FILES)}. {_HOW_TO_GET}")
    if (root / SAMPLE_CSV).exists():
        return read_nb101_sample_csv(root / SAMPLE_CSV)
    looked = ", ".join(str(root / r) for r in TFRECORD_FILES + PICKLE_FILES + [SAMPLE_CSV])
    raise MissingDataError(f"no NAS-Bench-101 ground truth under the data root; looked for: {looked}. {_HOW_TO_GET}")


def paper_sample(truth: pd.DataFrame, size: int = PAPER_SAMPLE_SIZE) -> pd.DataFrame:
    """The paper's sample: the first ``size`` cells in sorted hash order (needs the full data)."""
    if len(truth) < size:
        raise UsageError(f"the paper's sample takes the first {size} of the 423,624 cells; "
                         f"{truth.attrs.get('source', 'this ground truth')} has {len(truth)}")
    return truth.sort_values("hash").iloc[:size]
