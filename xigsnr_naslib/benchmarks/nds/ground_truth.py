"""NDS accuracies from the original NDS json records (Radosavovic et al., 2019).

A file (``DARTS.json``, ``DARTS_in.json``, ...) is either a list of records or a dict whose
``top`` and ``mid`` lists hold them (read in that order). Each record has ``net`` (how to
build it: :func:`xigsnr_naslib.benchmarks.nds.space.parse_net`), ``params``, ``flops`` and
``test_ep_top1``, the top-1 test *error* after each epoch. The accuracy, as the paper
uses it, is ``100 - test_ep_top1[-1]``. The benchmark index of a record is its position
in the file.

Records without the needed fields, or whose genotype cannot be built, are skipped,
reported by a warning and listed in ``attrs["skipped"]``; the others are kept.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.data.data_root import MissingDataError, find_file, resolve_data_root, reads_data_file
from xigsnr_naslib.benchmarks.nds.space import NDS_SPACES, InvalidGenotypeError, canonical_net, parse_net

__all__ = ["NDS_DEFINITION", "read_nds_records", "read_nds_file", "nds_ground_truth", "nds_dataset"]

NDS_DEFINITION = "NDS top-1 test accuracy at the last epoch, 100 - test_ep_top1[-1] ({dataset})"
_HOW_TO_GET = ("The NDS records are linked from https://github.com/facebookresearch/nds (data.zip: DARTS.json, "
               "DARTS_in.json, ...); put them in DATA_ROOT/nds/.")


def nds_dataset(space: str) -> str:
    """The dataset an NDS space's records were trained on: ``cifar10`` or ``imagenet``."""
    return "imagenet" if NDS_SPACES[space][1] == "imagenet" else "cifar10"


def read_nds_records(data, source: str = "NDS records") -> list[dict]:
    """The list of records of a loaded NDS file (a list, or a dict with ``top``/``mid``)."""
    if isinstance(data, dict):
        if "top" not in data and "mid" not in data:
            raise UsageError(f"{source}: a dict of NDS records needs 'top' and/or 'mid' lists (has {', '.join(data)})")
        return list(data.get("top", [])) + list(data.get("mid", []))
    if isinstance(data, list):
        return data
    raise UsageError(f"{source}: expected a list of NDS records or a dict with 'top'/'mid', got {type(data).__name__}")


@reads_data_file('NDS records (json)')
def read_nds_file(path: str | Path, dataset: str = "cifar10") -> pd.DataFrame:
    """One NDS file: index (position), ``arch``, ``accuracy``, ``params``, ``flops``."""
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"NDS file {path} not found. {_HOW_TO_GET}")
    records = read_nds_records(json.loads(path.read_text()), str(path))
    rows, skipped = [], []
    for i, rec in enumerate(records):
        what = f"{path.name}[{i}]"
        try:
            if not isinstance(rec, dict):
                raise UsageError(f"{what}: a record must be a mapping, got {type(rec).__name__}")
            missing = [k for k in ("net", "test_ep_top1") if k not in rec]
            if missing:
                raise UsageError(f"{what}: record lacks field(s) {', '.join(missing)}")
            errors = rec["test_ep_top1"]
            if not isinstance(errors, list) or not errors or not isinstance(errors[-1], (int, float)) \
                    or not math.isfinite(errors[-1]):
                raise UsageError(f"{what}: 'test_ep_top1' must be a non-empty list of numbers")
            net = parse_net(rec["net"], what)
            rows.append({"index": i, "arch": canonical_net(net).to_string(), "accuracy": 100.0 - float(errors[-1]),
                         "params": rec.get("params"), "flops": rec.get("flops")})
        except (ValueError, InvalidGenotypeError) as exc:
            skipped.append((what, str(exc)))
    if skipped:
        shown = "; ".join(why for _, why in skipped[:5])
        warnings.warn(f"{path}: skipped {len(skipped)} invalid record(s): {shown}{' ...' if len(skipped) > 5 else ''}")
    df = pd.DataFrame(rows, columns=["index", "arch", "accuracy", "params", "flops"]).set_index("index")
    df.attrs.update(definition=NDS_DEFINITION.format(dataset=dataset), source=str(path), skipped=skipped)
    return df


def nds_ground_truth(space: str, dataset: str | None = None, data_root: str | Path | None = None) -> pd.DataFrame:
    """The records of NDS space ``space`` (e.g. ``nds_darts``: ``DARTS.json``) under the data root."""
    if space not in NDS_SPACES:
        raise UsageError(f"unknown NDS space {space!r}; known: {', '.join(NDS_SPACES)}")
    expected = nds_dataset(space)
    if dataset is not None and dataset != expected:
        raise UsageError(f"{space} records were trained on {expected}, not {dataset!r}")
    stem = NDS_SPACES[space][0]
    path = find_file(resolve_data_root(data_root), [f"nds/{stem}.json", f"{stem}.json"], f"NDS records {stem}.json",
                     _HOW_TO_GET)
    return read_nds_file(path, expected)
