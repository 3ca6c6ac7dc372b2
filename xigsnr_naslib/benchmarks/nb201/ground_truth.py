"""Benchmark accuracies: one named definition per (benchmark, dataset), several readers.

NAS-Bench-201 accuracies as the paper uses them (200 epochs, mean over seeds):

=================  ========================  ================================
dataset            benchmark key             reference CSV column
=================  ========================  ================================
cifar10            ``cifar10`` / ori-test    ``cifar10_ori_test``
cifar100           ``cifar100`` / x-test     ``cifar100_x_test``
ImageNet16-120     ``ImageNet16-120`` / x-test ``imagenet16_120_x_test``
=================  ========================  ================================

Readers return a ``pandas.DataFrame`` indexed by the benchmark index with the columns
``arch`` (canonical string) and ``accuracy`` (percent); ``df.attrs["definition"]`` says
what the accuracy is and ``df.attrs["source"]`` which file it came from.

* :func:`nb201_reference` reads ``nb201/nb201_groundtruth_all15625.csv`` under the data root.
* :func:`nb201_benchmark_file` reads the real ``NAS-Bench-201-v1_0-e61699.pth`` /
  ``NAS-Bench-201-v1_1-096897.pth`` file directly (its pickled dict layout; no API needed).
* :func:`nats_topology` reads a NATS-Bench topology file through the ``nats_bench`` API
  (optional extra ``nats``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.data_root import MissingDataError, find_file, reading, reads_data_file, resolve_data_root
from xigsnr_naslib.data.datasets import canonical_dataset

__all__ = ["NB201_DEFINITIONS", "NATS_FILES", "nb201_reference", "nb201_benchmark_file", "nats_topology",
           "nb201_ground_truth", "NB201_CIFAR10_VALID_COLUMN", "nb201_cifar10_validation"]

#: dataset -> (benchmark dataset key, evaluation set, reference CSV column)
NB201_DEFINITIONS = {
    "cifar10": ("cifar10", "ori-test", "cifar10_ori_test"),
    "cifar100": ("cifar100", "x-test", "cifar100_x_test"),
    "ImageNet16-120": ("ImageNet16-120", "x-test", "imagenet16_120_x_test"),
}
REFERENCE_CSV = "nb201/nb201_groundtruth_all15625.csv"
BENCHMARK_FILES = ["NAS-Bench-201-v1_1-096897.pth", "NAS-Bench-201-v1_0-e61699.pth",
                   "nb201/NAS-Bench-201-v1_1-096897.pth", "nb201/NAS-Bench-201-v1_0-e61699.pth"]
_HOW_TO_GET = ("The reference CSV comes with the project's reference data (DATA_ROOT/nb201/); the full "
               "benchmark file NAS-Bench-201-v1_0-e61699.pth is linked from "
               "https://github.com/D-X-Y/NAS-Bench-201.")


def _definition(dataset: str) -> str:
    key, split, _ = NB201_DEFINITIONS[dataset]
    return f"NAS-Bench-201 {key} {split} accuracy after 200 epochs, mean over seeds"


def _frame(index, archs, accuracy, dataset: str, source: str, extra: dict | None = None) -> pd.DataFrame:
    df = pd.DataFrame({"arch": list(archs), "accuracy": np.asarray(accuracy, dtype=float), **(extra or {})},
                      index=pd.Index(np.asarray(index, dtype=int), name="index"))
    df.attrs["definition"] = _definition(dataset)
    df.attrs["source"] = source
    return df


def nb201_reference(dataset: str = "cifar10", data_root: str | Path | None = None, path: str | Path | None = None
                    ) -> pd.DataFrame:
    """The reference CSV (all 15,625 architectures), with ``params`` in millions as well."""
    dataset = canonical_dataset(dataset)
    if path is None:
        path = find_file(resolve_data_root(data_root), [REFERENCE_CSV], "NAS-Bench-201 reference ground truth", _HOW_TO_GET)
    with reading(path, "the NAS-Bench-201 reference ground truth (CSV)"):
        table = pd.read_csv(path)
        column = NB201_DEFINITIONS[dataset][2]
        missing = {"nb201_index", "arch_str", column} - set(table.columns)
        if missing:
            raise UsageError(f"missing column(s) {', '.join(sorted(missing))}")
        extra = {"params_MB": table["params_MB"].to_numpy()} if "params_MB" in table else None
        return _frame(table["nb201_index"], table["arch_str"], table[column], dataset, str(path), extra)


@reads_data_file('the NAS-Bench-201 benchmark file (.pth)')
def nb201_benchmark_file(path: str | Path, dataset: str = "cifar10") -> pd.DataFrame:
    """The real NAS-Bench-201 ``.pth`` file, read from its pickled layout.

    The file is a dict with ``meta_archs`` (arch strings by index) and ``arch2infos``
    (index -> ``{"less": 12-epoch results, "full": 200-epoch results}``); each result holds
    ``dataset_seed`` and ``all_results[(dataset, seed)]["eval_acc1es"]["<set>@<epoch>"]``.
    The accuracy is the mean over seeds at the last of the 200 epochs, as the official
    API's ``get_metrics(dataset, set)`` returns it.
    """
    import torch

    dataset = canonical_dataset(dataset)
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"NAS-Bench-201 benchmark file {path} not found. {_HOW_TO_GET}")
    data = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("meta_archs", "arch2infos"):
        if key not in data:
            raise UsageError(f"{path}: not a NAS-Bench-201 file (no {key!r} key)")
    key, split, _ = NB201_DEFINITIONS[dataset]
    index, archs, accuracy = [], [], []
    for i in sorted(data["arch2infos"]):
        full = data["arch2infos"][i]["full"]
        seeds = full["dataset_seed"][key]
        values = []
        for seed in seeds:
            result = full["all_results"][(key, seed)]
            values.append(result["eval_acc1es"][f"{split}@{result['epochs'] - 1}"])
        index.append(i)
        archs.append(data["meta_archs"][i])
        accuracy.append(float(np.mean(values)))
    return _frame(index, archs, accuracy, dataset, str(path))


@reads_data_file('the NATS-Bench topology benchmark (tss)')
def nats_topology(path: str | Path, dataset: str = "cifar10") -> pd.DataFrame:  # pragma: no cover - needs nats_bench
    """A NATS-Bench topology file (``NATS-tss-v1_0-3ffb9-simple``) through its API."""
    dataset = canonical_dataset(dataset)
    try:
        from nats_bench import create
    except ImportError as exc:
        raise ImportError("reading NATS-Bench files needs the optional extra: pip install 'xigsnr-naslib[nats]'") from exc
    api = create(str(path), "tss", fast_mode=True, verbose=False)
    key, split, _ = NB201_DEFINITIONS[dataset]
    index, archs, accuracy = [], [], []
    for i in range(len(api)):
        info = api.get_more_info(i, key, hp="200", is_random=False)
        name = "test-accuracy" if split in ("ori-test", "x-test") else "valid-accuracy"
        index.append(i)
        archs.append(api.arch(i))
        accuracy.append(info[name])
    return _frame(index, archs, accuracy, dataset, str(path))


#: NATS-Bench topology files (the NAS-Bench-201 cells, re-released; read through its API)
NATS_FILES = ["NATS-tss-v1_0-3ffb9-simple", "NATS-tss-v1_0-3ffb9-full", "NATS-tss-v1_0-3ffb9.pickle.pbz2",
              "nb201/NATS-tss-v1_0-3ffb9-simple", "nb201/NATS-tss-v1_0-3ffb9-full",
              "nb201/NATS-tss-v1_0-3ffb9.pickle.pbz2"]
_WHERE_EACH_COMES_FROM = ("the .pth files: the NAS-Bench-201 release (github.com/D-X-Y/NAS-Bench-201); NATS-tss-*: "
                          "the NATS-Bench release (github.com/D-X-Y/NATS-Bench, extra [nats]); the CSV: the "
                          "project's reference data")


def nb201_ground_truth(dataset: str = "cifar10", data_root: str | Path | None = None) -> pd.DataFrame:
    """The best ground truth under the data root, trying in order: the NAS-Bench-201 ``.pth``
    file, a NATS-Bench topology file, the reference CSV. A miss raises
    :class:`MissingDataError` listing every path tried and where each file comes from."""
    root = resolve_data_root(data_root)
    for rel in BENCHMARK_FILES:
        if (root / rel).exists():
            return nb201_benchmark_file(root / rel, dataset)
    for rel in NATS_FILES:
        if (root / rel).exists():
            return nats_topology(root / rel, dataset)
    if not (root / REFERENCE_CSV).exists():
        tried = ", ".join([*BENCHMARK_FILES, *NATS_FILES, REFERENCE_CSV])
        raise MissingDataError(f"no NAS-Bench-201 ground truth under the data root {root}; tried (under it): "
                               f"{tried}. From: {_WHERE_EACH_COMES_FROM}")
    return nb201_reference(dataset, root)


#: the reference CSV's column of CIFAR-10 validation accuracy: NAS-Bench-201 v1_1 ``cifar10-valid``
#: trained on the 25k-image split, ``x-valid`` accuracy after 200 epochs, mean over seeds (the
#: "CIFAR-10 validation" column of the NAS-Bench-201, TE-NAS and xi-GSNR search tables)
NB201_CIFAR10_VALID_COLUMN = "cifar10valid_x_valid_naswot_v1_1"


def nb201_cifar10_validation(data_root: str | Path | None = None) -> pd.DataFrame:
    """CIFAR-10 validation accuracy of every NAS-Bench-201 cell, from the reference CSV
    (:data:`NB201_CIFAR10_VALID_COLUMN`), as a frame like :func:`nb201_reference`'s.

    Errors: :class:`MissingDataError` when the CSV is not under the data root,
    ``ValueError`` when it lacks the column.
    """
    path = find_file(resolve_data_root(data_root), [REFERENCE_CSV], "NAS-Bench-201 reference ground truth", _HOW_TO_GET)
    table = pd.read_csv(path)
    if NB201_CIFAR10_VALID_COLUMN not in table:
        raise UsageError(f"{path}: no column {NB201_CIFAR10_VALID_COLUMN} (CIFAR-10 validation accuracy)")
    df = pd.DataFrame({"arch": table["arch_str"].to_numpy(), "accuracy": table[NB201_CIFAR10_VALID_COLUMN].to_numpy(float)},
                      index=pd.Index(table["nb201_index"].to_numpy(int), name="index"))
    df.attrs["definition"] = "NAS-Bench-201 cifar10-valid x-valid accuracy after 200 epochs, mean over seeds"
    df.attrs["source"] = str(path)
    return df
