"""Run any NASLib script with the project's measures registered: the launcher.

::

    python -m xigsnr_naslib.naslib run [--n-batches 8] [--batch-size 64] [--no-bn] [--in-place]
                                       SCRIPT [SCRIPT'S ARGUMENTS ...]
    python -m xigsnr_naslib.naslib run [...] -m MODULE [MODULE'S ARGUMENTS ...]

e.g. ``python -m xigsnr_naslib.naslib run NASLib/naslib/runners/zc/benchmarks/runner.py
--config-file zc_config.yaml``. NASLib's runners import nothing of this package, so a config
naming ``predictor: xi_gsnr`` fails on every architecture; NASLib's benchmark runner catches
each failure, logs "Failed to compute score" at info level and exits 0. The launcher:

1. adds the ``collections`` aliases NASLib's Develop branch needs on Python >= 3.10 and
   registers :data:`~xigsnr_naslib.integrations.naslib.bridge.DEFAULT_MEASURES` in the installed NASLib
   layout with the given split (:func:`~xigsnr_naslib.integrations.naslib.bridge.register_naslib_measures`;
   the NASLib config's ``batch_size`` must then be N x |B|, 512 by default);
2. guards NASLib's registry (:func:`~xigsnr_naslib.integrations.naslib.bridge.guard_registry`): a measure
   that fails, or a name nobody registered, is logged at error level with the architecture;
3. lets torchvision read a CIFAR-10 folder written by ``xigsnr-naslib cifar10-layout``
   (:func:`~xigsnr_naslib.integrations.naslib.data.accept_written_layouts`);
4. runs the script unchanged as ``__main__`` (:func:`runpy.run_path`, or
   :func:`runpy.run_module` with ``-m``) with ``sys.argv`` = the script and its own arguments,
   and the script's folder first on ``sys.path``, as ``python SCRIPT ARGS`` would;
5. exits with the script's status, except: 1 when some measure failed on every architecture
   it was called on (one line naming the measure and the first error), and 1 with one line
   naming the file when NASLib stops on missing data. Partial failures are summed up on
   stderr.

Exit status 2: a usage error (no NASLib, no such script, bad option).

The command line is :mod:`xigsnr_naslib.cli.naslib` (``python -m xigsnr_naslib.naslib`` runs
its :func:`~xigsnr_naslib.cli.naslib.main`); this module is the library function it calls,
:func:`run_naslib_script`, with the settings of the measures in a
:class:`~xigsnr_naslib.integrations.naslib.bridge.MeasureSettings`.
"""
from __future__ import annotations

import logging
import os
import runpy
import sys
from typing import Sequence

from xigsnr_naslib.integrations.naslib.bridge import MeasureSettings

__all__ = ["run_naslib_script", "PROG"]

#: the name the launcher's messages start with
PROG = "python -m xigsnr_naslib.naslib"


class _UsageError(Exception):
    """A launcher usage error: one line, exit status 2."""


def _missing_data_line(exc: BaseException) -> str | None:
    """One line for NASLib stopping on missing data, else None."""
    from xigsnr_naslib.integrations.naslib.data import STANDALONE_HINT, _missing_file

    text = str(exc)
    if isinstance(exc, AssertionError) and "Could not find" in text:
        return f"NASLib's data file is missing: {_missing_file(exc)}; get it as NASLib's README says"
    if isinstance(exc, RuntimeError) and "Dataset not found or corrupted" in text:
        return (f"NASLib's image loader (torchvision) found no intact dataset under the config's data folder: "
                f"write CIFAR-10 there with 'xigsnr-naslib cifar10-layout --out DATA' ({text})")
    if isinstance(exc, FileNotFoundError) and getattr(exc, "filename", None):
        return f"NASLib's data file is missing: {exc.filename}"
    if type(exc).__name__ == "URLError":  # torchvision tried to download a missing dataset
        return (f"NASLib tried to download a missing dataset ({exc}): write CIFAR-10 with 'xigsnr-naslib "
                f"cifar10-layout --out DATA', {STANDALONE_HINT.replace('--engine standalone', 'xigsnr-naslib naslib-run --engine standalone')}")
    return None


def run_naslib_script(target: str, args: Sequence[str], *, module: bool = False,
                      settings: MeasureSettings = MeasureSettings()) -> int:
    """Register the measures with ``settings`` and run ``target`` (a script path, or a module
    with ``module``) with ``args`` as its command line; returns the exit status (module documentation)."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # errors reach stderr with their level
    if not module and not os.path.isfile(target):
        print(f"{PROG}: error: no such NASLib script: {target!r}", file=sys.stderr)
        return 2
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    # before NASLib is imported: naslib.utils.parse_args reads sys.argv[1:] as a default
    # argument, i.e. once, when NASLib is imported
    sys.argv = [target, *args]
    registration, status = None, 0
    try:
        registration = _register(settings)
        _run_target(target, module)
    except SystemExit as exc:  # the script's (or, while NASLib is imported, NASLib's argument parser's)
        status = _exit_status(exc)
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (AssertionError, RuntimeError, OSError) as exc:
        line = _missing_data_line(exc)
        if line is None:
            raise
        print(f"{PROG}: error: {line}", file=sys.stderr)
        return 1
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return _summary(registration.measure_report() if registration is not None else {}, status)


def _register(settings: MeasureSettings):
    """Register :data:`~xigsnr_naslib.integrations.naslib.bridge.DEFAULT_MEASURES` in the installed
    layout, guard its registry and start a fresh report; the registry's registration."""
    from xigsnr_naslib.integrations.naslib.bridge import (DEFAULT_MEASURES, NASLibNotFound, add_collections_aliases,
                                                          find_measures_module, guard_registry, register)
    from xigsnr_naslib.integrations.naslib.data import accept_written_layouts

    add_collections_aliases()
    try:
        registry, _ = find_measures_module()
    except NASLibNotFound as exc:
        raise _UsageError(str(exc).splitlines()[0]) from None
    try:
        registration = register(DEFAULT_MEASURES, settings, registry)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    guard_registry(registry)
    registration.reset_measure_report()
    accept_written_layouts()
    return registration


def _run_target(target: str, module: bool) -> None:
    """Run ``target`` as ``__main__``, as ``python SCRIPT`` (or ``python -m MODULE``) would."""
    if module:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        runpy.run_path(target, run_name="__main__")


def _exit_status(exc: SystemExit) -> int:
    """The status ``sys.exit(code)`` gives, as python itself does (a message is printed, status 1)."""
    code = exc.code
    if not isinstance(code, (int, type(None))):
        print(code, file=sys.stderr)
    return code if isinstance(code, int) else (0 if code is None else 1)


def _summary(report: dict[str, dict], status: int) -> int:
    """Sum up the measures' ``report`` on stderr; 1 when a measure failed on every architecture, else ``status``."""
    failed_everywhere = []
    for name, entry in report.items():
        if entry["failed"] and entry["failed"] == entry["calls"]:
            failed_everywhere.append(f"measure {name!r} failed on every one of the {entry['calls']} architectures "
                                     f"it was called on (first: {entry['errors'][0]})")
        elif entry["failed"]:
            print(f"{PROG}: warning: measure {name!r} failed on {entry['failed']} of {entry['calls']} "
                  f"architectures (logged above)", file=sys.stderr)
        if entry["not_computable"]:
            print(f"{PROG}: note: measure {name!r} is not computable on {len(entry['not_computable'])} "
                  f"architecture(s) (NaN, recorded by NASLib as -1e8; reasons logged above)", file=sys.stderr)
    if failed_everywhere:
        print(f"{PROG}: error: {'; '.join(failed_everywhere)}", file=sys.stderr)
        return 1
    return status
