"""One line to use the project's proxies in NASLib: ``import xigsnr_naslib.naslib_plugin``.

Importing this module registers :data:`~xigsnr_naslib.integrations.naslib.bridge.DEFAULT_MEASURES`
(``xi_gsnr``, its modes, the Table 9 variants and ``zico``) in the installed NASLib layout
with the default split (8 batches of 64: ``batch_size: 512`` in the NASLib config). It
raises :class:`~xigsnr_naslib.integrations.naslib.bridge.NASLibNotFound` when NASLib is not importable.
Importing it twice is harmless. It first adds the ``collections`` ABC aliases NASLib's
Develop branch still imports (gone in Python 3.10; names are added, none changed). For another split or NASLib flags, call
:func:`~xigsnr_naslib.integrations.naslib.bridge.register_naslib_measures` instead.
"""
from xigsnr_naslib.integrations.naslib.bridge import add_collections_aliases, register_naslib_measures

add_collections_aliases()
REGISTERED = register_naslib_measures()
