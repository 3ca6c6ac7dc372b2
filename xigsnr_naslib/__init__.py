"""xi-GSNR, the zero-cost NAS proxy of Sun et al. (ICCV 2023), standalone and for NASLib.

The public API::

    from xigsnr_naslib import Selection, Study, XiGSNR, correlate, create_space, get_card, xi_gsnr

    space = create_space("nb201")
    model = space.build("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    score = xi_gsnr(model, batches)            # batches: iterable of (images, labels)
    study = Study("nb201", "cifar10", ["xi_gsnr", "zico"], data_root="../shared/data", store="results/nb201.jsonl")
    result = correlate(study, Selection(first=200))
"""
__version__ = "0.1.0"

from xigsnr_naslib.core.gsnr import MODES, VARIANTS, XiGSNR, gradient_moments, score_moments, xi_gsnr
from xigsnr_naslib.benchmarks.card import BenchmarkCard, DatasetCard, NASLibCodec, UnknownChoiceError, get_card, list_cards, register_card
from xigsnr_naslib.data.protocol import PAPER_NB201, RELEASED_NB101, Protocol, draw_batches
from xigsnr_naslib.proxies import Moments, PassResults, Proxy, get_proxy, list_proxies, register_compute, register_function, \
    register_proxy
from xigsnr_naslib.registry import registered
from xigsnr_naslib.benchmarks import SearchSpace, create_space, list_spaces
from xigsnr_naslib.scoring.study import Execution, Study


def correlate(*args, **kwargs):
    """See :func:`xigsnr_naslib.analysis.correlate.correlate` (imported lazily: it pulls in pandas)."""
    from xigsnr_naslib.analysis.correlate import correlate as _correlate

    return _correlate(*args, **kwargs)


def __getattr__(name: str):
    if name == "Selection":  # lazily, with pandas
        from xigsnr_naslib.analysis.correlate import Selection

        return Selection
    raise AttributeError(f"module 'xigsnr_naslib' has no attribute {name!r}")


__all__ = [
    "MODES", "VARIANTS", "XiGSNR", "xi_gsnr", "gradient_moments", "score_moments",
    "Protocol", "PAPER_NB201", "RELEASED_NB101", "draw_batches",
    "Proxy", "Moments", "PassResults", "get_proxy", "list_proxies", "register_proxy", "register_compute", "register_function",
    "registered",
    "BenchmarkCard", "DatasetCard", "NASLibCodec", "UnknownChoiceError", "get_card", "list_cards", "register_card",
    "SearchSpace", "create_space", "list_spaces", "Execution", "Study", "correlate", "Selection",
]
