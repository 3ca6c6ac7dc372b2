"""The project's own errors: what the command line reports in one line instead of a traceback.

* :class:`UsageError` (a ``ValueError``): a bad value, flag, name or combination given by the
  caller; the message names the bad value and, where there are choices, lists them. The
  command line exits with status 2.
* :class:`DataError` (an ``OSError``): data the run needs is missing, unreadable, damaged or
  not writable (a benchmark file, an image folder, a results store). Exit status 3.

Both derive from :class:`XiGSNRError`. The command line catches only these (and Ctrl-C):
any other exception is a bug of the project and shows its traceback. Library callers may
keep catching ``ValueError`` / ``OSError``: every project error is also one of those.
"""
from __future__ import annotations

__all__ = ["XiGSNRError", "UsageError", "DataError"]


class XiGSNRError(Exception):
    """Base of the project's own errors (the ones the command line reports in one line)."""


class UsageError(XiGSNRError, ValueError):
    """A bad value, flag, name or combination given by the caller."""


class DataError(XiGSNRError, OSError):
    """Data the run needs is missing, unreadable, damaged or not writable."""
