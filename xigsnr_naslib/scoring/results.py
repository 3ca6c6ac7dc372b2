"""The results store: one JSON line per scored architecture, append-only, resumable.

A record holds the space, dataset, benchmark index, canonical arch string, proxy name, its
settings and the protocol, the score, seconds, and a ``status``:

* ``"ok"``: ``score`` is a finite number;
* ``"nonfinite"``: the score was NaN or infinite; ``score`` is null and ``value`` holds
  ``"nan"``, ``"inf"`` or ``"-inf"``;
* ``"error"``: scoring raised; ``error`` holds the message (the run went on). An error is
  a failure of the run that wrote it (out of memory, a worker that died, a device that
  failed), never a fact about the architecture: the next run on the same store scores it
  again (:func:`reusable`) and appends the new record.
* ``"not computable"``: the proxy is undefined for this architecture (e.g. NASWOT on a
  network without ReLU); ``score`` is null and ``reason`` says why. Like ``"ok"`` and
  ``"nonfinite"``, a property of architecture and protocol: reused, never recomputed.

Each record also names the torch ``device`` it was computed on (provenance; records of
earlier releases, which lack it, were computed on a device that holds values). The device
is not part of the key: the scores do not depend on it beyond rounding. A record computed
on a device whose tensors hold no values (``meta``) is never reused. Likewise each record
computed since this field exists carries its ``environment`` (torch version, intra-op
``threads``, ATen's ``cpu_capability`` and any CPU kernel limit set:
:func:`xigsnr_naslib.scoring.study.scoring_environment`): provenance, not key. Within one environment
a score is reproduced bit for bit; across environments it moves by float32 rounding only.

Records are keyed by everything that changes their value (:func:`record_key`): space and
its options, dataset, the fingerprint of the images used (``images``), arch, proxy and its
settings, protocol (batches, batch size, data seed, init seed, normalisation, BatchNorm
mode); a re-run skips the keys already present, so an interrupted run resumes without
recomputing. Records written before some of these fields existed are read by
:func:`upgrade_record`: a protocol's single ``seed`` seeded both the batch draw and the
initialisation, so it reads as ``data_seed = init_seed = seed``; missing space options read
as the space's defaults (the only options that release used); a missing image fingerprint
reads as the images of the run that resumes (that release always read the dataset's images
from the data root: resume such a file only with the same data root).

Damaged lines are skipped with a warning naming the file, the line number and what is
wrong, and the run goes on (the scores they held are recomputed): a line that is not JSON,
and a line that is JSON but not a record (a number, a string, a list, null, an object that
lacks a record's fields or has fields of the wrong type; :func:`record_problem`). A last
line cut short by an interruption is dropped from the file when it is next opened for
writing. Reading needs no write access: a run whose every record is stored succeeds on a
read-only file; a run with records to append is refused at once, before any scoring, with
:class:`StoreNotWritableError` naming the file.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from enum import Enum
from pathlib import Path
from typing import Iterable, Iterator

from xigsnr_naslib.errors import DataError, UsageError

__all__ = ["ResultsStore", "Status", "StoreBusyError", "StoreNotWritableError", "STATUSES", "RETRIED_STATUSES",
           "NO_VALUE_DEVICES", "record_key", "record_problem", "reusable", "score_fields", "record_score",
           "upgrade_record"]


class Status(str, Enum):
    """A record's ``status`` (module documentation). A member is the string it stands for:
    it equals, hashes and prints as that string, and JSON writes it as that string, so a
    record read back from a store (plain strings) compares equal to one just computed."""

    OK = "ok"
    NONFINITE = "nonfinite"
    ERROR = "error"
    NOT_COMPUTABLE = "not computable"

    __hash__ = str.__hash__
    __str__ = str.__str__
    __format__ = str.__format__


#: every status a record can have (module documentation)
STATUSES = tuple(s.value for s in Status)
#: statuses that are failures of the run that wrote them: scored again by the next run
RETRIED_STATUSES = frozenset({Status.ERROR.value})
#: torch device types whose tensors hold no values: nothing computed there is reused
NO_VALUE_DEVICES = frozenset({"meta"})


class StoreBusyError(UsageError):
    """Another run is writing the results file."""


class StoreNotWritableError(DataError, PermissionError):
    """The run has records to append and the results file (or its folder) is not writable."""


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def record_key(record: dict) -> tuple:
    """What identifies a result: two records with equal keys are the same computation."""
    return (record.get("space"), _canonical(record.get("space_options", {})), record.get("dataset"),
            record.get("images"), record.get("arch"), record.get("proxy"), _canonical(record.get("settings", {})),
            _canonical(record.get("protocol", {})))


def upgrade_record(record: dict, defaults: dict) -> dict:
    """``record`` with the fields of the current format, for records of earlier releases.

    ``defaults`` gives the values missing fields were written with: ``space_options`` (the
    space's defaults) and ``images`` (the fingerprint of the images being resumed with; used
    only for records of proxies that read images). See the module documentation.
    """
    if "space_options" in record and "images" in record and "seed" not in record.get("protocol", {}):
        return record
    from xigsnr_naslib.data.protocol import Protocol

    out = dict(record)
    out.setdefault("space_options", defaults.get("space_options", {}))
    protocol = out.get("protocol") or {}
    if protocol:
        out["protocol"] = Protocol.from_settings(protocol).settings()
    out.setdefault("images", defaults.get("images") if protocol else None)
    return out


def reusable(record: dict) -> bool:
    """Whether a stored record may be served instead of scoring again: not a failure of the run
    that wrote it (:data:`RETRIED_STATUSES`) and not computed on a device without values
    (:data:`NO_VALUE_DEVICES`; records without ``device`` predate it and were not)."""
    device = str(record.get("device") or "cpu").split(":", 1)[0]
    return record.get("status") not in RETRIED_STATUSES and device not in NO_VALUE_DEVICES


_NULL = type(None)
#: optional fields of a record and the JSON types they may hold
_FIELD_TYPES = {"dataset": (str, _NULL), "images": (str, _NULL), "index": (int, _NULL), "settings": (dict,),
                "protocol": (dict,), "space_options": (dict,), "seconds": (int, float, _NULL), "error": (str,),
                "reason": (str, _NULL), "device": (str,), "value": (str, _NULL)}


def _type_name(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def record_problem(record) -> str | None:
    """What makes ``record`` (one parsed line of a results file) not a record, or None.

    A record is an object with the strings ``space``, ``arch`` and ``proxy``, a ``status`` of
    :data:`STATUSES`, a finite number ``score`` when the status is ``"ok"``, and optional
    fields of their types (``settings``, ``protocol`` and ``space_options`` objects; ``index``
    a whole number or null; ...); its protocol must be one :class:`~xigsnr_naslib.data.protocol.Protocol`
    reads.
    """
    if not isinstance(record, dict):
        return f"{_type_name(record)}, not a record (a JSON object)"
    missing = [k for k in ("space", "arch", "proxy", "status") if k not in record]
    if missing:
        return f"a JSON object without the record field(s) {', '.join(missing)}"
    for key in ("space", "arch", "proxy"):
        if not isinstance(record[key], str):
            return f"field {key!r} is {_type_name(record[key])}, not a string"
    if record["status"] not in STATUSES:
        return f"unknown status {record['status']!r} (a record's is one of: {', '.join(STATUSES)})"
    for key, types in _FIELD_TYPES.items():
        value = record.get(key)
        if key in record and (not isinstance(value, types) or isinstance(value, bool)):
            return f"field {key!r} is {_type_name(value)} {value!r}"[:200]
    score = record.get("score")
    if record["status"] == Status.OK:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            return f"status 'ok' with score {score!r}, not a finite number"[:200]
    elif score is not None:
        return f"status {record['status']!r} with score {score!r} (such a record's score is null)"[:200]
    if record.get("protocol"):
        from xigsnr_naslib.data.protocol import Protocol

        try:
            Protocol.from_settings(record["protocol"])
        except (TypeError, ValueError) as exc:
            return f"its protocol is not one this release reads ({exc})"[:200]
    return None


def score_fields(score: float) -> dict:
    """``score``/``status`` fields for a float, recording a non-finite value as such."""
    if math.isfinite(score):
        return {"score": float(score), "status": Status.OK}
    return {"score": None, "status": Status.NONFINITE, "value": "nan" if math.isnan(score) else ("inf" if score > 0 else "-inf")}


def record_score(record: dict) -> float:
    """The record's score as a float (NaN for non-finite or failed records)."""
    if record.get("status") == Status.OK:
        return float(record["score"])
    value = record.get("value")
    return float(value) if value in ("inf", "-inf") else float("nan")


class ResultsStore:
    """An append-only JSON-lines file of scoring records."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = None
        if self.writable():  # a read-only file is read as it is (its cut line is skipped on reading)
            self._repair()

    def _incomplete_tail(self) -> int | None:
        """Where a partial last line left by an interrupted write starts (None: the file ends
        with a complete line or is empty). Opens the file for reading only."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return None
            f.seek(0)
            return f.read().rfind(b"\n") + 1

    def _repair(self) -> None:
        """Drop a partial last line left by an interrupted write."""
        cut = self._incomplete_tail()
        if cut is None:
            return
        size = self.path.stat().st_size
        warnings.warn(f"{self.path}: dropping an incomplete last line ({size - cut} bytes) left by an interrupted run")
        with open(self.path, "rb+") as f:
            f.truncate(cut)

    def writable(self) -> bool:
        """Whether records can be appended: the file (or, for a new file, its nearest existing
        folder) is writable, and so is its lock file (or the folder it is created in)."""
        def can_write(path: Path) -> bool:
            if path.exists():
                return os.access(path, os.W_OK)
            folder = next((p for p in path.parents if p.exists()), Path("."))
            return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)

        return can_write(self.path) and can_write(Path(str(self.path) + ".lock"))

    def check_writable(self, pending: int | None = None) -> None:
        """Raise :class:`StoreNotWritableError` naming the file unless records can be appended
        (``pending``: how many the run has to append, for the message)."""
        if not self.writable():
            what = f"{pending} record(s) to append" if pending else "records to append"
            blocked = next((p for p in self.path.parents if p.exists()), None)
            if blocked is not None and not blocked.is_dir():
                raise StoreNotWritableError(f"results file {self.path}: {blocked} is a file, not a folder; give "
                                            "this run a results file in a folder")
            raise StoreNotWritableError(
                f"results file {self.path} is read-only (or its folder is) and this run has {what}; make it "
                "writable, or give this run another results file (records already stored are read without "
                "writing)")

    def __iter__(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    warnings.warn(f"{self.path}:{number}: unreadable line skipped ({exc})")
                    continue
                problem = record_problem(record)
                if problem is not None:
                    warnings.warn(f"{self.path}:{number}: not a results record, line skipped: {problem}")
                    continue
                yield record

    def records(self) -> list[dict]:
        return list(self)

    def keys(self) -> set[tuple]:
        return {record_key(r) for r in self}

    @contextlib.contextmanager
    def writing(self) -> Iterator["ResultsStore"]:
        """Hold the file's lock (``<file>.lock``) while a run appends to it.

        A second run on the same file (another process) is refused at once with
        :class:`StoreBusyError` naming the file, so two runs never interleave, lose or
        duplicate records. Re-entrant within one process.
        """
        from filelock import FileLock, Timeout

        self.check_writable()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = FileLock(str(self.path) + ".lock")
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StoreBusyError(f"results file {self.path} is being written by another run; wait for it to "
                                 "finish, or give this run another results file") from None
        except PermissionError as exc:
            raise StoreNotWritableError(f"results file {self.path}: its lock file cannot be created ({exc}); "
                                        "make the folder writable, or give this run another results file") from None
        if self.path.exists():
            self._repair()  # a cut line left while another run held the file
        try:
            yield self
        finally:
            self._lock.release()

    def append(self, record: dict) -> None:
        """Write one record and flush it to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def extend(self, records: Iterable[dict]) -> None:
        for record in records:
            self.append(record)
