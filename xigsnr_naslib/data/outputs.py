"""Writing the files a caller named (reports, tables, checkpoints): a failure is a data error.

An output path the caller chose can fail for reasons of the machine, not of the project: a
file where a folder should be, no permission, a full disk. :func:`writing` turns such an
``OSError`` into a :class:`~xigsnr_naslib.errors.DataError` that names the file and the reason
in one line, so the command line reports it as such (exit status 1) and nothing computed
before is lost (the records are in the results store already).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from xigsnr_naslib.errors import DataError, XiGSNRError

__all__ = ["writing", "check_output"]


@contextlib.contextmanager
def writing(path: str | os.PathLike, what: str = "output") -> Iterator[None]:
    """Run the block that creates ``path`` (and its folder); an ``OSError`` in it becomes a
    :class:`DataError` ``cannot write <what> <path>: <reason>``."""
    try:
        yield
    except XiGSNRError:
        raise
    except OSError as exc:
        blocked = next((p for p in Path(path).parents if p.exists()), None)
        if blocked is not None and not blocked.is_dir():
            raise DataError(f"cannot write {what} {path}: {blocked} is a file, not a folder") from exc
        reason = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise DataError(f"cannot write {what} {path}: {reason}{where}") from exc


def check_output(path: str | os.PathLike, what: str = "output", folder: bool = False) -> None:
    """Refuse at once, before any work, an output file (``folder``: an output folder) that
    could not be written: a file where a folder should be, a folder where a file should be,
    or no write permission. A :class:`DataError` ``cannot write <what> <path>: <reason>``."""
    path = Path(path)
    nearest = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if nearest == path:
        if path.is_dir() != folder:
            reason = "it is a folder" if path.is_dir() else "it is a file, not a folder"
        else:
            reason = None if os.access(path, os.W_OK | (os.X_OK if folder else 0)) else "it is not writable"
    elif not nearest.is_dir():
        reason = f"{nearest} is a file, not a folder"
    else:
        reason = None if os.access(nearest, os.W_OK | os.X_OK) else f"{nearest} is not writable"
    if reason:
        raise DataError(f"cannot write {what} {path}: {reason}")
