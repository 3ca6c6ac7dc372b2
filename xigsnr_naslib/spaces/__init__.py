"""Search spaces: architecture <-> model, behind one registry (see :mod:`.base`)."""
from .base import SearchSpace, create_space, list_spaces, register_space

__all__ = ["SearchSpace", "create_space", "list_spaces", "register_space"]

# Modules that register spaces when imported. Adapters outside this package (plugins)
# add themselves here by name so that create_space finds them without a hard import.
_BUILTIN_SPACE_MODULES = [
    "xigsnr_naslib.spaces.nb201",
    "xigsnr_naslib.plugins.proxylessnas",
    "xigsnr_naslib.plugins.burgerformer",
    "xigsnr_naslib.spaces.nb101",
    "xigsnr_naslib.spaces.nds",
]
_loaded = False


def _load_builtin_spaces() -> None:
    global _loaded
    if _loaded:
        return
    import importlib

    for module in _BUILTIN_SPACE_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:  # an optional space whose dependencies are missing
            import warnings

            warnings.warn(f"search space module {module} not loaded: {exc}")
    _loaded = True
