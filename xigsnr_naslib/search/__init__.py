"""Zero-shot architecture search: pruning (:mod:`.pruning`), sampling and evolution
(:mod:`.evolution`), run on a benchmark card by :mod:`.zero_shot`."""
