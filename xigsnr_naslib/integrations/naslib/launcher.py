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
"""
from __future__ import annotations

import argparse
import logging
import os
import runpy
import sys
from typing import Sequence

__all__ = ["main", "run_naslib_script"]

PROG = "python -m xigsnr_naslib.naslib"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Run NASLib scripts with the xigsnr-naslib measures registered.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a NASLib script (or -m module) unchanged, measures registered",
                         description="Register the xigsnr-naslib measures in NASLib, then run SCRIPT (or -m "
                                     "MODULE) as python would, with its own arguments; see the module documentation.")
    run.add_argument("--n-batches", type=_positive, default=8, help="N batches each measure splits NASLib's batch into")
    run.add_argument("--batch-size", type=_positive, default=64, help="|B| images per batch (NASLib's batch_size = N x |B|)")
    run.add_argument("--no-bn", action="store_true", help="NASLib's bn=False flag (BatchNorm dropped in its copy)")
    run.add_argument("--in-place", action="store_true", help="NASLib's copy_net=False flag (score NASLib's network)")
    run.add_argument("-m", dest="module", action="store_true", help="the target is a module name, as python -m")
    run.add_argument("target", help="the NASLib script (a .py path) or, with -m, a module")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments, passed unchanged")
    return parser


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


def run_naslib_script(target: str, args: Sequence[str], *, module: bool = False, n_batches: int = 8,
                      batch_size: int = 64, bn: bool = True, copy_net: bool = True) -> int:
    """Register the measures and run ``target`` (a script path, or a module with ``module``)
    with ``args`` as its command line; returns the exit status (module documentation)."""
    from xigsnr_naslib.integrations.naslib.bridge import (DEFAULT_MEASURES, NASLibNotFound, add_collections_aliases, find_measures_module,
                                guard_registry, measure_report, register_naslib_measures, reset_measure_report)
    from xigsnr_naslib.integrations.naslib.data import accept_written_layouts

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # errors reach stderr with their level
    if not module and not os.path.isfile(target):
        print(f"{PROG}: error: no such NASLib script: {target!r}", file=sys.stderr)
        return 2
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    # before NASLib is imported: naslib.utils.parse_args reads sys.argv[1:] as a default
    # argument, i.e. once, when NASLib is imported
    sys.argv = [target, *args]
    status = 0
    try:
        add_collections_aliases()
        try:
            registry, _ = find_measures_module()
        except NASLibNotFound as exc:
            print(f"{PROG}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        try:
            register_naslib_measures(DEFAULT_MEASURES, n_batches=n_batches, batch_size=batch_size, bn=bn,
                                     copy_net=copy_net, measures_module=registry)
        except ValueError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        guard_registry(registry)
        reset_measure_report()
        accept_written_layouts()
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
        if not isinstance(code, (int, type(None))):
            print(code, file=sys.stderr)
    except (AssertionError, RuntimeError, OSError) as exc:
        line = _missing_data_line(exc)
        if line is None:
            raise
        print(f"{PROG}: error: {line}", file=sys.stderr)
        return 1
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    failed_everywhere = []
    for name, report in measure_report().items():
        if report["failed"] and report["failed"] == report["calls"]:
            failed_everywhere.append(f"measure {name!r} failed on every one of the {report['calls']} architectures "
                                     f"it was called on (first: {report['errors'][0]})")
        elif report["failed"]:
            print(f"{PROG}: warning: measure {name!r} failed on {report['failed']} of {report['calls']} "
                  f"architectures (logged above)", file=sys.stderr)
        if report["not_computable"]:
            print(f"{PROG}: note: measure {name!r} is not computable on {len(report['not_computable'])} "
                  f"architecture(s) (NaN, recorded by NASLib as -1e8; reasons logged above)", file=sys.stderr)
    if failed_everywhere:
        print(f"{PROG}: error: {'; '.join(failed_everywhere)}", file=sys.stderr)
        return 1
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """The launcher's command line; returns the exit status."""
    args = _parser().parse_args(argv)
    return run_naslib_script(args.target, args.args, module=args.module, n_batches=args.n_batches,
                             batch_size=args.batch_size, bn=not args.no_bn, copy_net=not args.in_place)


if __name__ == "__main__":
    sys.exit(main())
