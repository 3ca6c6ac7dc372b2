"""NDS (Radosavovic et al., 2019): the space (:mod:`.space`), its card (:mod:`.card`) and its ground truth (:mod:`.ground_truth`)."""
