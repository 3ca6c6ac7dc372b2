"""Readers of precomputed zero-cost proxy tables, keyed by canonical architecture string.

Other proxies' scores come from tables that NAS-Bench-Suite-Zero, NASWOT and NASLib
published; the leaderboard ranks them next to the scores this project computes. Every reader
returns a :class:`ProxyTable`: one row per architecture (its canonical string, as the search
space encodes it), one float column per proxy, the accuracy targets the file carries, and
``notes`` saying what was dropped or changed and why. Nothing is dropped silently: each note
is also issued as a :class:`ProxyTableWarning`.

Layouts read:

* :func:`read_suitezero_csv`: NAS-Bench-Suite-Zero's scores of 13 proxies as a CSV
  (``arch_str``, one column per proxy, ``val_accs`` = NASLib's validation target,
  ``test_acc``), as in ``nb201/suitezero_<dataset>_9445.csv``.
* :func:`read_naswot_csv`: NASWOT scores (``arch_str``, ``naswot_v1_score``).
* :func:`read_naslib_subset_csv`: a NASLib ``zc_nasbench201.json`` flattened to CSV (one
  row per dataset and architecture: ``dataset``, ``arch_str``, ``val_accuracy``,
  ``test_accuracy``, one column per proxy).
* :func:`read_zc_json`: NASLib's own ``zc_<space>.json`` (NAS-Bench-Suite-Zero):
  ``{dataset: {arch_key: {"id": ..., "val_accuracy": float, "<proxy>": {"score": float,
  "time": float}, ...}}}``; ``arch_key`` is NASLib's string of the architecture (for
  NAS-Bench-201 the op-index tuple, e.g. ``"(4, 0, 3, 1, 4, 3)"``).

Cleaning, the same for every layout:

* a missing architecture column is an error; a missing proxy or target column is a note
  (that proxy or target is absent);
* values that are not numbers are read as NaN (a note says how many);
* rows whose architecture string the search space does not know are dropped (a note names
  examples);
* an architecture listed twice with identical values keeps one row; listed twice with
  different values it is dropped altogether, since neither row can be trusted (a note);
* NaN and infinite scores are kept as NaN and counted in a note: the leaderboard then
  leaves those architectures out of the set every proxy is ranked on, and says so.

The value -1e8 is NASLib's marker of a score that failed to compute; it is kept (NASLib ranks
it last, and so does every metric here) and counted in a note.
"""
from __future__ import annotations

import gzip
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.card import get_card
from xigsnr_naslib.data.data_root import reads_data_file

__all__ = ["ProxyTable", "ProxyTableWarning", "read_suitezero_csv", "read_naswot_csv", "read_naslib_subset_csv",
           "read_zc_json", "TABLE_FORMATS", "SUITEZERO_PROXIES", "TARGETS", "NASLIB_FAILED"]

#: the 13 proxies of NAS-Bench-Suite-Zero, as its files name them
SUITEZERO_PROXIES = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params",
                     "plain", "snip", "synflow", "zen")
#: target columns a table may carry, by the name this module gives them
TARGETS = {
    "naslib_val": "NASLib's validation accuracy (the target NAS-Bench-Suite-Zero correlates with)",
    "naslib_test": "test accuracy as NASLib's table records it",
}
#: NASLib's stand-in for a score that could not be computed
NASLIB_FAILED = -1e8


class ProxyTableWarning(UserWarning):
    """Rows or columns of a proxy table were dropped or changed; the message says why."""


@dataclass
class ProxyTable:
    """Precomputed proxy scores of one source for one search space and dataset.

    ``scores``: index ``arch`` (canonical strings), one float column per proxy;
    ``targets``: the same index, columns among :data:`TARGETS` (possibly none);
    ``notes``: what was dropped or changed while reading, and why.
    """

    name: str
    scores: pd.DataFrame
    targets: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def proxies(self) -> list[str]:
        return list(self.scores.columns)

    def __len__(self) -> int:
        return len(self.scores)


# --- architecture keys --------------------------------------------------------------------------

def _canonicalizer(space: str, key_to_arch: Callable[[str], str] | None = None) -> Callable[[str], str]:
    search_space = get_card(space).create_space()

    def canonical(value) -> str:
        text = key_to_arch(value) if key_to_arch is not None else value
        return search_space.encode(search_space.decode(text))

    return canonical


# --- the shared cleaning ------------------------------------------------------------------------

def _examples(values, limit: int = 3) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


@dataclass(frozen=True)
class _Columns:
    """Where a table's file keeps what: the architecture column, and the proxy and target
    columns mapped to the names they get (a column missing from the file is a note).

    ``key_to_arch`` turns the file's architecture key into the space's string (default:
    the key is that string).
    """

    arch: str
    proxies: Mapping[str, str]
    targets: Mapping[str, str] = field(default_factory=dict)
    key_to_arch: Callable[[str], str] | None = None


def _from_frame(frame: pd.DataFrame, columns: _Columns, *, name: str, source: str, space: str,
                notes: list[str] | None = None) -> ProxyTable:
    """Clean ``frame`` into a :class:`ProxyTable` (see the module docstring for the rules),
    adding to ``notes`` (the reader's own) what was dropped or changed; each note is also a
    :class:`ProxyTableWarning`."""
    notes = list(notes or [])
    present, targets = _present_columns(frame, columns, source, notes)
    values = _numbers(frame, {**present, **targets}, notes)
    values = _by_architecture(values, frame[columns.arch], _canonicalizer(space, columns.key_to_arch), space, notes)
    values = _without_repeats(values, notes)
    scores = _checked_scores(values[list(present.values())], notes)
    for target in targets.values():
        absent = int((~np.isfinite(values[target].to_numpy())).sum())
        if absent:
            notes.append(f"target {target}: {absent} architecture(s) without a finite value")
    table = ProxyTable(name, scores, values[list(targets.values())], str(source), notes)
    for note in notes:
        warnings.warn(f"{name} ({source}): {note}", ProxyTableWarning, stacklevel=3)
    return table


def _present_columns(frame: pd.DataFrame, columns: _Columns, source: str,
                     notes: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The proxy and target columns the file has (file column -> name); an absent
    architecture column, or no proxy column at all, is an error."""
    if columns.arch not in frame.columns:
        raise UsageError(f"{source}: no architecture column {columns.arch!r}; columns: "
                         f"{', '.join(map(str, frame.columns))}")
    present = {c: n for c, n in columns.proxies.items() if c in frame.columns}
    missing = [c for c in columns.proxies if c not in frame.columns]
    if not present:
        raise UsageError(f"{source}: none of the proxy columns {', '.join(columns.proxies)} is present")
    if missing:
        notes.append(f"proxy column(s) {', '.join(missing)} missing from the file: those proxies are left out")
    targets = {c: n for c, n in columns.targets.items() if c in frame.columns}
    for column in columns.targets:
        if column not in frame.columns:
            notes.append(f"target column {column!r} missing from the file: "
                         f"no {columns.targets[column]} from this table")
    return present, targets


def _numbers(frame: pd.DataFrame, renames: Mapping[str, str], notes: list[str]) -> pd.DataFrame:
    """The ``renames`` columns of ``frame`` as floats, under their new names; what is not a
    number is NaN, and counted in a note."""
    values = pd.DataFrame(index=frame.index)
    for column, new_name in renames.items():
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = int(numbers.isna().sum() - frame[column].isna().sum())
        if bad:
            notes.append(f"{bad} non-numeric value(s) in column {column!r} read as NaN")
        values[new_name] = numbers.astype(float)
    return values


def _by_architecture(values: pd.DataFrame, keys: pd.Series, canonical: Callable[[str], str], space: str,
                     notes: list[str]) -> pd.DataFrame:
    """``values`` indexed by the canonical string of each row's key (``arch``); rows whose
    key is not an architecture of ``space`` are dropped with a note naming examples."""
    known: dict = {}
    unknown: dict = {}
    for raw in dict.fromkeys(keys):
        try:
            known[raw] = canonical(raw)
        except (ValueError, TypeError, KeyError) as exc:
            unknown[raw] = str(exc)
    archs = [known.get(raw) for raw in keys]
    values.index = pd.Index(archs, name="arch")
    if unknown:
        n_rows = sum(a is None for a in archs)
        first = next(iter(unknown.items()))
        notes.append(f"dropped {n_rows} row(s) whose architecture is not a {space} architecture: "
                     f"{_examples(unknown)} (e.g. {first[1]})")
        values = values[values.index.notna()]
    return values


def _without_repeats(values: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """One row per architecture: repeats with identical values collapse into one, an
    architecture listed with different values is dropped altogether (notes say which)."""
    duplicated = values.index.duplicated(keep=False)
    if duplicated.any():
        conflicting = [arch for arch, rows in values[duplicated].groupby(level=0, sort=False)
                       if len(rows.drop_duplicates()) > 1]
        if conflicting:
            notes.append(f"dropped {len(conflicting)} architecture(s) listed more than once with different values: "
                         f"{_examples(conflicting)}")
            values = values[~values.index.isin(conflicting)]
        repeats = values.index.duplicated(keep="first")
        if repeats.any():
            notes.append(f"{int(repeats.sum())} repeated row(s) with identical values collapsed into one")
            values = values[~repeats]
    return values


def _checked_scores(scores: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """``scores`` with every non-finite value as NaN; NaN, infinite and NASLib's failure
    marker are counted in notes."""
    for proxy in scores.columns:
        column = scores[proxy]
        nonfinite = int((~np.isfinite(column.to_numpy())).sum())
        if nonfinite:
            notes.append(f"proxy {proxy}: {nonfinite} NaN or infinite score(s); those architectures leave the "
                         "set that every proxy is ranked on")
        failed = int((column == NASLIB_FAILED).sum())
        if failed:
            notes.append(f"proxy {proxy}: {failed} score(s) of {NASLIB_FAILED:g} (NASLib's failure marker) kept as "
                         "the lowest score, as NASLib ranks them")
    return scores.where(np.isfinite(scores))


def _read_csv(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        from xigsnr_naslib.data.data_root import MissingDataError

        raise MissingDataError(f"proxy table {path} not found")
    return pd.read_csv(path)


# --- the readers ----------------------------------------------------------------------------------

@reads_data_file('a NAS-Bench-Suite-Zero score table (CSV)')
def read_suitezero_csv(path: str | Path, space: str = "nb201", dataset: str | None = None,
                       name: str = "suitezero") -> ProxyTable:
    """NAS-Bench-Suite-Zero scores as a CSV (``arch_str``, 13 proxy columns, ``val_accs``, ``test_acc``).

    ``dataset`` is not used (the file holds one dataset); it is accepted so that every
    reader has the same signature.
    """
    frame = _read_csv(path)
    columns = _Columns("arch_str", {p: p for p in SUITEZERO_PROXIES},
                       {"val_accs": "naslib_val", "test_acc": "naslib_test"})
    return _from_frame(frame, columns, name=name, source=str(path), space=space)


@reads_data_file('a NASWOT score table (CSV)')
def read_naswot_csv(path: str | Path, space: str = "nb201", dataset: str | None = None,
                    name: str = "naswot") -> ProxyTable:
    """NASWOT scores (Mellor et al. 2021): ``arch_str`` and ``naswot_v1_score`` -> proxy ``naswot``."""
    frame = _read_csv(path)
    return _from_frame(frame, _Columns("arch_str", {"naswot_v1_score": "naswot"}), name=name, source=str(path),
                       space=space)


@reads_data_file("NASLib's zero-cost subset table (CSV)")
def read_naslib_subset_csv(path: str | Path, space: str = "nb201", dataset: str = "cifar10",
                           name: str = "naslib_subset") -> ProxyTable:
    """A NASLib zero-cost table flattened to CSV, one row per (``dataset``, ``arch_str``)."""
    frame = _read_csv(path)
    if "dataset" not in frame.columns:
        raise UsageError(f"{path}: no 'dataset' column; columns: {', '.join(frame.columns)}")
    datasets = sorted(frame["dataset"].dropna().unique())
    if dataset not in datasets:
        raise UsageError(f"{path}: no rows for dataset {dataset!r}; it has {', '.join(datasets)}")
    frame = frame[frame["dataset"] == dataset]
    known = {"dataset", "op_indices", "arch_str", "nb201_index", "naslib_idx", "val_accuracy", "test_accuracy"}
    proxies = [c for c in frame.columns if c not in known]
    columns = _Columns("arch_str", {p: p for p in proxies},
                       {"val_accuracy": "naslib_val", "test_accuracy": "naslib_test"})
    return _from_frame(frame, columns, name=name, source=f"{path} [{dataset}]", space=space)


@reads_data_file('a NASLib zc_<space>.json')
def read_zc_json(path: str | Path, space: str = "nb201", dataset: str = "cifar10", name: str | None = None,
                 key_to_arch: Callable[[str], str] | None = None) -> ProxyTable:
    """NASLib's ``zc_<space>.json``: ``{dataset: {arch_key: {proxy: {"score", "time"}, "val_accuracy", "id"}}}``
    (plain, or gzip-compressed when the name ends in ``.gz``).

    ``key_to_arch`` turns NASLib's architecture key into this project's architecture string;
    by default the codec of ``space``'s card (the key itself when NASLib keys the space by
    the same string).
    """
    path = Path(path)
    if not path.exists():
        from xigsnr_naslib.data.data_root import MissingDataError

        raise MissingDataError(f"NASLib zero-cost file {path} not found")
    opener = gzip.open if path.suffix == ".gz" else open  # a gzip-compressed file (.json.gz) as well
    with opener(path, "rt", encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not JSON ({exc.msg}, line {exc.lineno}); expected NASLib's zc_<space>.json "
                             "layout") from None
        except (UnicodeDecodeError, OSError) as exc:  # not text, or a .gz that is not gzip
            raise UsageError(f"{path}: not JSON text ({exc}); expected NASLib's zc_<space>.json layout") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(f"{path}: not in NASLib's zc_<space>.json layout ({{dataset: {{arch: {{proxy: "
                         "{{'score': ...}}}}}}}})")
    if dataset not in data:
        raise UsageError(f"{path}: no dataset {dataset!r}; it has {', '.join(map(str, data))}")
    if key_to_arch is None:
        codec = get_card(space).naslib
        key_to_arch = codec.from_naslib if codec is not None else None
    rows, notes, malformed = [], [], []
    for key, entry in data[dataset].items():
        if not isinstance(entry, dict):
            malformed.append(key)
            continue
        row = {"arch_key": key}
        for field_name, value in entry.items():
            if isinstance(value, dict):
                row[field_name] = value.get("score", math.nan)
            elif field_name in ("val_accuracy", "test_accuracy"):
                row[field_name] = value
        rows.append(row)
    if malformed:
        notes.append(f"dropped {len(malformed)} entr(y/ies) that are not a dict of scores: {_examples(malformed)}")
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise UsageError(f"{path}: dataset {dataset!r} has no architectures")
    proxies = [c for c in frame.columns if c not in ("arch_key", "val_accuracy", "test_accuracy")]
    if not proxies:
        raise UsageError(f"{path}: dataset {dataset!r} holds no proxy scores ({{'<proxy>': {{'score': ...}}}})")
    targets = {c: n for c, n in (("val_accuracy", "naslib_val"), ("test_accuracy", "naslib_test")) if c in frame}
    if "val_accuracy" not in targets:
        notes.append("no 'val_accuracy' in any entry: no NASLib validation target from this file")
    stem = Path(path.name.removesuffix(".gz")).stem
    return _from_frame(frame, _Columns("arch_key", {p: p for p in proxies}, targets, key_to_arch),
                       name=name or stem, source=f"{path} [{dataset}]", space=space, notes=notes)


#: table formats by name (a card's :class:`~xigsnr_naslib.benchmarks.card.ScoreTableSpec` names one)
TABLE_FORMATS: dict[str, Callable[..., ProxyTable]] = {
    "suitezero": read_suitezero_csv,
    "naswot": read_naswot_csv,
    "naslib_subset": read_naslib_subset_csv,
    "zc_json": read_zc_json,
}
