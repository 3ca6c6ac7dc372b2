"""Where the benchmark files and images live: one data root, from a flag or the environment.

The data root is a folder; everything the project reads lies under it, either in the
layout of the reference data (``nb201/``, ``nb101/``, ``nds/``, ``images/``) or in the
standard layouts of the real files (``cifar-10-batches-py/``, ``NAS-Bench-201-*.pth``...).
It is never copied into the project.
"""
from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from xigsnr_naslib.errors import DataError, UsageError

__all__ = ["ENV_VAR", "resolve_data_root", "MissingDataError", "DataRootError", "DataFileError", "find_file",
           "reading", "reads_data_file"]

T = TypeVar("T")

#: the environment variable naming the data root when no flag is given
ENV_VAR = "XIGSNR_DATA_ROOT"


class MissingDataError(DataError, FileNotFoundError):
    """A file the run needs is not under the data root; the message says how to get it."""


class DataRootError(MissingDataError, UsageError):
    """No data root was given, or it is not a folder (a usage error, not missing data)."""


class DataFileError(DataError, ValueError):
    """A data file exists but cannot be read as the format it should have (truncated, another
    format, missing columns...). The message names the file, the format expected and what
    failed; the command line reports it as a data error (exit status 1). It is a
    ``ValueError`` too, as the readers' own complaints about a file's contents were."""


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn any failure while reading ``path`` as ``what`` into one :class:`DataFileError`
    naming both (missing files, data-root problems and missing optional packages pass through
    unchanged: their messages already say what to do)."""
    try:
        yield
    except (MissingDataError, DataFileError, ImportError):
        raise
    except Exception as exc:
        from xigsnr_naslib.registry import UnknownChoiceError

        if isinstance(exc, UnknownChoiceError):  # a bad argument, not a bad file
            raise
        said = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        if str(path) in said:  # the reader named the file already: keep its one line
            raise DataFileError(" ".join(said.split())) from exc
        raise DataFileError(f"{path}: cannot be read as {what} ({_one_line(exc)})") from exc


def reads_data_file(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator of a reader whose first argument is the file (or folder) it reads: any
    failure becomes a :class:`DataFileError` naming the file and ``what`` it should be."""

    def decorator(reader: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(reader)
        def wrapped(path, *args, **kwargs):
            with reading(path, what):
                return reader(path, *args, **kwargs)
        return wrapped

    return decorator


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
