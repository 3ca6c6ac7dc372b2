"""Where the benchmark files and images live: one data root, from a flag or the environment.

The data root is a folder; everything the project reads lies under it, either in the
layout of the reference data (``nb201/``, ``nb101/``, ``nds/``, ``images/``) or in the
standard layouts of the real files (``cifar-10-batches-py/``, ``NAS-Bench-201-*.pth``...).
It is never copied into the project.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "resolve_data_root", "MissingDataError", "DataRootError", "find_file"]

#: the environment variable naming the data root when no flag is given
ENV_VAR = "XIGSNR_DATA_ROOT"


class MissingDataError(FileNotFoundError):
    """A file the run needs is not under the data root; the message says how to get it."""


class DataRootError(MissingDataError):
    """No data root was given, or it is not a folder (a usage error, not missing data)."""


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument if given, else ``$XIGSNR_DATA_ROOT``."""
    value = data_root if data_root is not None else os.environ.get(ENV_VAR)
    if value is None or str(value) == "":
        raise DataRootError(
            f"no data root: pass --data-root DIR (Python: data_root=...) or set {ENV_VAR}=DIR; "
            "DIR holds the benchmark files and images (see the README, 'Data')"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataRootError(f"data root {str(path)!r} is not a folder (from {'the argument' if data_root is not None else ENV_VAR})")
    return path


def find_file(root: Path, candidates: list[str], what: str, how_to_get: str) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that exists, or a clear error."""
    for rel in candidates:
        path = root / rel
        if path.exists():
            return path
    looked = ", ".join(str(root / c) for c in candidates)
    raise MissingDataError(f"{what} not found; looked for: {looked}. {how_to_get}")
