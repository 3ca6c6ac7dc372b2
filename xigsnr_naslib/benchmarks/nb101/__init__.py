"""NAS-Bench-101: the space (:mod:`.space`), its card (:mod:`.card`) and its ground truth (:mod:`.ground_truth`)."""
