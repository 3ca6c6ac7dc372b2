"""The zero-cost proxy zoo: baseline proxies computed natively (no NASLib needed).

Each module registers its proxies beside their definitions when imported: a ``compute``
function with the decorator :func:`xigsnr_naslib.proxies.register_compute`, a ``compute``
object with :func:`xigsnr_naslib.proxies.register_proxy`. :mod:`xigsnr_naslib.proxies`
imports the modules lazily (the first time a proxy name is looked up), so ``import
xigsnr_naslib`` stays light. Every proxy declares the passes it
consumes (:mod:`xigsnr_naslib.passes`), so proxies reading the same gradients or
activations share one pass per architecture.
"""

#: the zoo's proxies under their plain names (the original authors' definitions), in the
#: order listings use: NAS-Bench-Suite-Zero's set, then the recent ones. Variants (e.g.
#: NASLib's definitions where they differ) are registered under other names and not listed.
BASELINES = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacov", "nwot", "epe_nas", "zen", "l2_norm", "plain",
             "params", "flops", "zico", "meco", "swap", "aznas_expressivity", "aznas_progressivity",
             "aznas_trainability", "aznas_complexity", "vkdnw", "vkdnw_single", "trainable_layers")
