"""Pass requests: what a proxy asks the scoring path to compute on a network, once per
architecture, shared by every proxy that asks for it (see :mod:`.requests`)."""
from xigsnr_naslib.passes.requests import *  # noqa: F401,F403
from xigsnr_naslib.passes.requests import __all__  # noqa: F401
