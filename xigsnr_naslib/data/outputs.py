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

__all__ = ["writing"]


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
