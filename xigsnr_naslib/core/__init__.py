"""The estimator: gradient samples (:mod:`.gradients`), streamed moments (:mod:`.statistics`),
the xi-GSNR score (:mod:`.gsnr`); network size (:mod:`.complexity`), fast pooling, initialisation."""
