"""``python -m xigsnr_naslib.naslib run SCRIPT [ARGS]``: run a NASLib script with the project's
measures registered. The name users run; the launcher is :mod:`xigsnr_naslib.integrations.naslib.launcher`.
"""
import sys

from xigsnr_naslib.integrations.naslib.launcher import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
