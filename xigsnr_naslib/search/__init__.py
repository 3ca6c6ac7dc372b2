"""Architecture search driven by a zero-cost proxy, through one door: :func:`search`.

``search(space, algorithm, settings, algorithm_settings)`` runs one of the registered
algorithms (:data:`~xigsnr_naslib.search.algorithms.ALGORITHMS`: pruning, :mod:`.pruning`;
sampling and evolution, :mod:`.evolution`) on a benchmark card, with the settings of
:mod:`.settings`; :mod:`.zero_shot` holds the building blocks of the benchmark spaces' runs
(headers, reports with ground truth, images).
"""
from xigsnr_naslib.search.algorithms import ALGORITHMS, Algorithm, get_algorithm
from xigsnr_naslib.search.door import search
from xigsnr_naslib.search.evolution import EvolutionSettings
from xigsnr_naslib.search.settings import (ConstraintSettings, ImageSettings, OutputSettings, PruneSettings,
                                           SampleSettings, SearchSettings)

__all__ = ["search", "ALGORITHMS", "Algorithm", "get_algorithm", "SearchSettings", "ImageSettings",
           "ConstraintSettings", "OutputSettings", "PruneSettings", "SampleSettings", "EvolutionSettings"]
