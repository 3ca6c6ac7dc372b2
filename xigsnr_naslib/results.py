"""The results store: one JSON line per scored architecture, append-only, resumable.

A record holds the space, dataset, benchmark index, canonical arch string, proxy name, its
settings and the protocol, the score, seconds, and a ``status``:

* ``"ok"``: ``score`` is a finite number;
* ``"nonfinite"``: the score was NaN or infinite; ``score`` is null and ``value`` holds
  ``"nan"``, ``"inf"`` or ``"-inf"``;
* ``"error"``: scoring raised; ``error`` holds the message (the run went on).
* ``"not computable"``: the proxy is undefined for this architecture (e.g. NASWOT on a
  network without ReLU); ``score`` is null and ``reason`` says why.

Records are keyed by everything that changes their value (:func:`record_key`): space and
its options, dataset, the fingerprint of the images used (``images``), arch, proxy and its
settings, protocol (batches, batch size, data seed, init seed, normalisation, BatchNorm
mode); a re-run skips the keys already present, so an interrupted run resumes without
recomputing. Records written before some of these fields existed are read by
:func:`upgrade_record`: a protocol's single ``seed`` seeded both the batch draw and the
initialisation, so it reads as ``data_seed = init_seed = seed``; missing space options read
as the space's defaults (the only options that release used); a missing image fingerprint
reads as the images of the run that resumes (that release always read the dataset's images
from the data root: resume such a file only with the same data root). A line cut
short by an interruption is dropped (with a warning) when the file is next opened.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["ResultsStore", "StoreBusyError", "record_key", "score_fields", "record_score", "upgrade_record"]


class StoreBusyError(ValueError):
    """Another run is writing the results file."""


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
    from .protocol import Protocol

    out = dict(record)
    out.setdefault("space_options", defaults.get("space_options", {}))
    protocol = out.get("protocol") or {}
    if protocol:
        out["protocol"] = Protocol.from_settings(protocol).settings()
    out.setdefault("images", defaults.get("images") if protocol else None)
    return out


def score_fields(score: float) -> dict:
    """``score``/``status`` fields for a float, recording a non-finite value as such."""
    if math.isfinite(score):
        return {"score": float(score), "status": "ok"}
    return {"score": None, "status": "nonfinite", "value": "nan" if math.isnan(score) else ("inf" if score > 0 else "-inf")}


def record_score(record: dict) -> float:
    """The record's score as a float (NaN for non-finite or failed records)."""
    if record.get("status") == "ok":
        return float(record["score"])
    value = record.get("value")
    return float(value) if value in ("inf", "-inf") else float("nan")


class ResultsStore:
    """An append-only JSON-lines file of scoring records."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = None
        self._repair()

    def _repair(self) -> None:
        """Drop a partial last line left by an interrupted write."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
            cut = data.rfind(b"\n") + 1
            warnings.warn(f"{self.path}: dropping an incomplete last line ({len(data) - cut} bytes) left by an interrupted run")
            f.truncate(cut)

    def __iter__(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    warnings.warn(f"{self.path}:{number}: unreadable line skipped ({exc})")

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

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = FileLock(str(self.path) + ".lock")
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StoreBusyError(f"results file {self.path} is being written by another run; wait for it to "
                                 "finish, or give this run another results file") from None
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
