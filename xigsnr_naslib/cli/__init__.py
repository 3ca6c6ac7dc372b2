"""The ``xigsnr-naslib`` command line: the only code that parses arguments (:mod:`.app`)."""


def main(argv=None) -> int:
    """The ``xigsnr-naslib`` command (see :func:`xigsnr_naslib.cli.app.main`)."""
    from xigsnr_naslib.cli.app import main as _main

    return _main(argv)


__all__ = ["main"]
