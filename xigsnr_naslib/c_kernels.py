"""The library's small C kernels: built with the system's C compiler on first use, loaded with ctypes.

The package stays pure Python: a kernel's source ships in ``xigsnr_naslib/csrc/`` and is
compiled once per machine (about a second) into a cache folder, then loaded from there by
every process, worker processes included. Where no compiler works (none installed, an
unsupported platform, a read-only cache and temporary folder), :func:`load` returns ``None``
and says why in :func:`build_error`; the callers then use their PyTorch path, which gives the
same results, more slowly. Nothing here is needed for correctness.

Settings (environment variables):

``CC``
    the compiler to run (default ``cc``).
``XIGSNR_CACHE_DIR``
    where built kernels are kept (default ``$XDG_CACHE_HOME/xigsnr-naslib``, else
    ``~/.cache/xigsnr-naslib``). A kernel's file name carries a hash of its source, the
    flags, the compiler and the machine, so a changed source is rebuilt, never reused.

Flags: ``-O3 -ffp-contract=off`` (no fused multiply-add) and never ``-ffast-math``: the
kernels promise results identical to PyTorch's, and those flags keep the compiler from
reordering or contracting the arithmetic. On x86-64 each function is also built for AVX2
and picked at run time (``target_clones``), so a cache shared between machines never holds
code that a machine cannot run; where the compiler refuses that, plain ``-O3`` is used.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["SOURCE_DIR", "cache_dir", "load", "build_error"]

SOURCE_DIR = Path(__file__).resolve().parent / "csrc"
_BASE_FLAGS = ("-O3", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
_CLONE_FLAGS = ("-DXIGSNR_CLONES",)

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}
_errors: dict[str, str] = {}


def cache_dir() -> Path:
    """The folder built kernels are kept in (see the module documentation)."""
    explicit = os.environ.get("XIGSNR_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xigsnr-naslib"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc"))  # a path is checked as it is, a name on PATH


def _library_path(folder: Path, name: str, source: bytes, compiler: str, flags: tuple[str, ...]) -> Path:
    digest = hashlib.sha256()
    for part in (source, compiler.encode(), " ".join(flags).encode(), platform.machine().encode(),
                 sys.platform.encode()):
        digest.update(part)
        digest.update(b"\0")
    return folder / f"{name}-{digest.hexdigest()[:16]}.so"


def _compile(compiler: str, source_path: Path, target: Path, flags: tuple[str, ...]) -> str | None:
    """Build ``target`` atomically (a finished file or none); the compiler's complaint, or None."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=target.stem + ".", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run([compiler, *flags, str(source_path), "-o", partial],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            return (done.stderr or done.stdout).strip()[-2000:] or f"{compiler} exited with {done.returncode}"
        os.replace(partial, target)  # concurrent builders each rename a complete file
        return None
    except (OSError, subprocess.SubprocessError) as err:
        return f"{type(err).__name__}: {err}"
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _build(name: str) -> ctypes.CDLL:
    source_path = SOURCE_DIR / f"{name}.c"
    source = source_path.read_bytes()
    compiler = _compiler()
    if compiler is None:
        raise OSError(f"no C compiler found (tried {os.environ.get('CC', 'cc')!r}; set CC to use another)")
    complaints = []
    variants = [_BASE_FLAGS + _CLONE_FLAGS, _BASE_FLAGS] if platform.machine() in ("x86_64", "AMD64") else [_BASE_FLAGS]
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / "xigsnr-naslib"):
        unwritable = False
        for flags in variants:
            path = _library_path(folder, name, source, compiler, flags)
            if not path.exists():
                try:
                    complaint = _compile(compiler, source_path, path, flags)
                except OSError as err:  # the folder cannot be written: try the next one
                    complaints.append(f"{folder}: {err}")
                    unwritable = True
                    break
                if complaint is not None:
                    complaints.append(f"{' '.join(flags)}: {complaint}")
                    continue
            try:
                return ctypes.CDLL(str(path))
            except OSError as err:
                complaints.append(f"loading {path}: {err}")
        if not unwritable:  # the compiler, not the folder, failed: another folder will not help
            break
    raise OSError("could not build " + str(source_path) + ":\n" + "\n".join(complaints))


def load(name: str) -> ctypes.CDLL | None:
    """The C kernel library ``csrc/<name>.c``, built on first use; ``None`` if it cannot be built."""
    with _lock:
        if name not in _loaded:
            try:
                _loaded[name] = _build(name)
            except OSError as err:
                _loaded[name] = None
                _errors[name] = str(err)
        return _loaded[name]


def build_error(name: str) -> str | None:
    """Why :func:`load` returned ``None`` for ``name`` (``None`` if it was loaded or never tried)."""
    return _errors.get(name)
