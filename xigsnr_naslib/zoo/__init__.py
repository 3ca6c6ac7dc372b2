"""The zero-cost proxy zoo: baseline proxies computed natively (no NASLib needed).

Each module registers its proxies with :func:`xigsnr_naslib.proxies.register_proxy` when
imported; :mod:`xigsnr_naslib.proxies` imports them lazily (the first time a proxy name is
looked up), so ``import xigsnr_naslib`` stays light. Every proxy declares the passes it
consumes (:mod:`xigsnr_naslib.passes`), so proxies reading the same gradients or
activations share one pass per architecture.
"""
