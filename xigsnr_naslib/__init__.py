"""xi-GSNR, the zero-cost NAS proxy of Sun et al. (ICCV 2023), standalone and for NASLib.

The public API::

    from xigsnr_naslib import XiGSNR, xi_gsnr, create_space, get_proxy, correlate

    space = create_space("nb201")
    model = space.build("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    score = xi_gsnr(model, batches)            # batches: iterable of (images, labels)
    result = correlate("nb201", "cifar10", first=200, data_root="../shared/data")
"""
__version__ = "0.1.0"

from .gsnr import MODES, VARIANTS, XiGSNR, gradient_moments, score_moments, xi_gsnr
from .protocol import PAPER_NB201, RELEASED_NB101, Protocol, draw_batches
from .proxies import Proxy, get_proxy, list_proxies, register_proxy
from .spaces import SearchSpace, create_space, list_spaces, register_space


def correlate(*args, **kwargs):
    """See :func:`xigsnr_naslib.correlation_job.correlate` (imported lazily: it pulls in pandas)."""
    from .correlation_job import correlate as _correlate

    return _correlate(*args, **kwargs)


__all__ = [
    "MODES", "VARIANTS", "XiGSNR", "xi_gsnr", "gradient_moments", "score_moments",
    "Protocol", "PAPER_NB201", "RELEASED_NB101", "draw_batches",
    "Proxy", "get_proxy", "list_proxies", "register_proxy",
    "SearchSpace", "create_space", "list_spaces", "register_space", "correlate",
]
