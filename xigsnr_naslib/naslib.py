"""``python -m xigsnr_naslib.naslib run SCRIPT [ARGS]``: run a NASLib script with the project's
measures registered. The name users run; its command line is :mod:`xigsnr_naslib.cli.naslib`, the
library function it calls :func:`xigsnr_naslib.integrations.naslib.launcher.run_naslib_script`.
"""
import sys

from xigsnr_naslib.cli.naslib import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
