"""The NASLib commands: ``xigsnr-naslib naslib-run``, ``xigsnr-naslib cifar10-layout`` and the
launcher ``python -m xigsnr_naslib.naslib run``.

Each parses its command line into settings and calls one library function:

* ``python -m xigsnr_naslib.naslib run``: a
  :class:`~xigsnr_naslib.integrations.naslib.bridge.MeasureSettings`, then
  :func:`~xigsnr_naslib.integrations.naslib.launcher.run_naslib_script`;
* ``xigsnr-naslib naslib-run``: a :class:`~xigsnr_naslib.integrations.naslib.runner.RunSettings`,
  then :func:`~xigsnr_naslib.integrations.naslib.runner.run_config`;
* ``xigsnr-naslib cifar10-layout``: keyword arguments of
  :func:`~xigsnr_naslib.integrations.naslib.data.make_cifar10_layout`.

The defaults of each command line are the settings' defaults.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_launcher_parser", "launcher_settings", "add_naslib_run_parser", "run_settings",
           "add_cifar10_layout_parser"]


# ------------------------------------------------------------------ python -m xigsnr_naslib.naslib

class _LauncherParser(argparse.ArgumentParser):
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


def build_launcher_parser() -> argparse.ArgumentParser:
    """The launcher's parser (``python -m xigsnr_naslib.naslib``)."""
    from xigsnr_naslib.integrations.naslib.launcher import PROG

    parser = _LauncherParser(prog=PROG, description="Run NASLib scripts with the xigsnr-naslib measures registered.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_LauncherParser)
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


def launcher_settings(args: argparse.Namespace):
    """The :class:`~xigsnr_naslib.integrations.naslib.bridge.MeasureSettings` of a parsed launcher command line."""
    from xigsnr_naslib.integrations.naslib.bridge import MeasureSettings

    return MeasureSettings(n_batches=args.n_batches, batch_size=args.batch_size, bn=not args.no_bn,
                           copy_net=not args.in_place)


def main(argv: Sequence[str] | None = None) -> int:
    """The launcher's command line; returns the exit status (2: a usage error)."""
    from xigsnr_naslib.integrations.naslib.launcher import PROG, run_naslib_script

    args = build_launcher_parser().parse_args(argv)
    try:
        settings = launcher_settings(args)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return run_naslib_script(args.target, args.args, module=args.module, settings=settings)


# ------------------------------------------------------------------------ xigsnr-naslib naslib-run

def add_naslib_run_parser(subparsers) -> None:
    """Add ``naslib-run`` to the ``xigsnr-naslib`` command line."""
    from xigsnr_naslib.integrations.naslib import runner

    p = subparsers.add_parser("naslib-run", help="run a NASLib zero-cost config live (NASLib or standalone)",
                              description=runner.__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="NASLib zero-cost YAML (see xigsnr_naslib/integrations/naslib/configs/)")
    p.add_argument("--engine", choices=runner.ENGINES, default="auto",
                   help="naslib: NASLib's evaluator; standalone: this package's pipeline; auto (default): "
                        "naslib when NASLib is importable")
    p.add_argument("--zc-json", default=None, help="also merge the scores into this zc_<space>.json file; when it "
                   "has architectures of the dataset, the test set is drawn from them")
    p.add_argument("--zc-fill", action="store_true", help="score every architecture of --zc-json's dataset that "
                   "lacks the predictor (resumable: the file is written every %d architectures); the metrics are "
                   "over all of the file's architectures" % runner.CHUNK)
    p.add_argument("--out-dir", default=None, help="override the config's out_dir")
    p.add_argument("--naslib-data", default=None, help="NASLib's data folder for its own loaders "
                   "(default: naslib/data of the checkout)")
    p.add_argument("--data-root", default=None, help="folder with the benchmark files and images "
                   "(default: $XIGSNR_DATA_ROOT)")
    p.add_argument("--device", default="cpu", help="torch device of the project's batches (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_naslib_run)


def run_settings(args: argparse.Namespace):
    """The :class:`~xigsnr_naslib.integrations.naslib.runner.RunSettings` of a parsed ``naslib-run``."""
    from xigsnr_naslib.integrations.naslib.runner import RunSettings

    return RunSettings(engine=args.engine, data_root=args.data_root, device=args.device, zc_json=args.zc_json,
                       zc_fill=args.zc_fill, out_dir=args.out_dir, progress=not args.no_progress,
                       naslib_data=args.naslib_data)


def _cmd_naslib_run(args) -> int:
    from xigsnr_naslib.data.data_root import MissingDataError
    from xigsnr_naslib.integrations.naslib.runner import RunFailed, run_config

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    settings = run_settings(args)
    try:
        result = run_config(args.config, settings)
    except MissingDataError:
        raise  # the command line prints it in one line, exit status 1
    except FileNotFoundError as exc:  # the config itself
        print(f"xigsnr-naslib naslib-run: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # NASLib (or one of its dependencies) is not importable
        print(f"xigsnr-naslib naslib-run: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"xigsnr-naslib naslib-run: error: {exc}", file=sys.stderr)
        return 1
    _print_run(result)
    return 0


def _print_run(result) -> None:
    r = result.results
    x = r["xigsnr"]
    rep = x["report_on_raw_scores"]
    print(f"engine: {result.engine}  predictor: {result.config['predictor']}  "
          f"{result.config['search_space']}/{result.config['dataset']}  n={len(result.records)} "
          f"(scored {x['n_scored']}, from the zc file {x['n_reused']}, failed {x['n_failed']}, "
          f"non-finite {rep['n_nonfinite']})")
    print(f"architectures: {x['sampling']}")
    print(f"accuracy: {result.accuracy_definition}")
    print(f"NASLib's metrics: kendalltau {r['kendalltau']:.4f}  spearman {r['spearman']:.4f}  "
          f"pearson |r| {r['pearson']:.4f}  precision_20 {r['precision_20']:.3f}  "
          f"seconds/arch {r.get('query_time', float('nan')):.3f}")
    if x["n_failed"]:
        print(f"warning: {x['n_failed']} architecture(s) failed (logged above; scores.json -> xigsnr.errors)",
              file=sys.stderr)
    print(f"scores: {result.scores_json}")
    if "zc_json" in result.extra:
        print(f"zc json: {result.extra['zc_json']}")


# ------------------------------------------------------------------- xigsnr-naslib cifar10-layout

def add_cifar10_layout_parser(subparsers) -> None:
    """Add ``cifar10-layout`` to the ``xigsnr-naslib`` command line."""
    p = subparsers.add_parser("cifar10-layout", help="write the CIFAR-10 python layout NASLib's loader reads",
                              description="Write OUT/cifar-10-batches-py (data_batch_1..5, test_batch, batches.meta) "
                                          "from the reference images under the data root or from an image folder, "
                                          "so that NASLib's own CIFAR-10 loader (torchvision) runs on real images.")
    p.add_argument("--out", required=True, help="NASLib's data folder (the config's 'data'; naslib/data by default)")
    p.add_argument("--image-folder", default=None,
                   help="DIR/train/<class>/*.png and DIR/test/<class>/*.png, 32 x 32 (default: the reference images)")
    p.add_argument("--data-root", default=None, help="folder with the reference images (default: $XIGSNR_DATA_ROOT)")
    p.set_defaults(handler=_cmd_cifar10_layout)


def _cmd_cifar10_layout(args) -> int:
    from xigsnr_naslib.integrations.naslib.data import make_cifar10_layout

    out = Path(args.out)
    written = make_cifar10_layout(out, image_folder=args.image_folder, data_root=args.data_root)
    print(f"wrote {written.folder}: {written.n_train} training images in data_batch_1..5, {written.n_test} test "
          f"images in test_batch, classes {', '.join(written.classes)} (from {written.source})")
    print(f"NASLib reads it with data: {out} (config) or naslib-run --naslib-data {out}; torchvision "
          f"accepts it after xigsnr_naslib.integrations.naslib.data.accept_written_layouts() (naslib-run and the "
          f"launcher call it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
