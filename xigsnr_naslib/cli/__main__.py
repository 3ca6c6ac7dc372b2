"""``python -m xigsnr_naslib.cli``: the ``xigsnr-naslib`` command."""
import sys

from xigsnr_naslib.cli import main

sys.exit(main())
