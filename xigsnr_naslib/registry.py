"""What the project's registries (benchmark cards, proxies) share: validated names and entry points.

:class:`Registry` is one dict behind one door, in the style of timm's model registry: items
are registered by their ``name``, looked up with :meth:`Registry.get` (an unknown name is an
:class:`UnknownChoiceError` listing the known ones) and listed with :meth:`Registry.names`;
the first lookup also loads the project's own modules and the entry points of other packages.

:func:`choose` validates a name against the valid choices and raises
:class:`UnknownChoiceError` (a ``ValueError``) whose one-line message names the bad value and
lists the choices. :func:`load_entry_points` registers what other packages contribute through
an ``importlib.metadata`` entry-point group (``xigsnr_naslib.spaces``, ``xigsnr_naslib.proxies``).
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

__all__ = ["UnknownChoiceError", "choose", "load_entry_points", "Registry"]


class UnknownChoiceError(ValueError):
    """A name that is not among the valid choices; the message lists them."""


def choose(value: str, choices: Sequence[str], what: str, where: str = "") -> str:
    """``value`` if it is one of ``choices``, else :class:`UnknownChoiceError` listing them
    (``unknown <what> <value> [<where>]; choose one of: ...``)."""
    if value not in choices:
        raise UnknownChoiceError(f"unknown {what} {value!r}{' ' + where if where else ''}; "
                                 f"choose one of: {', '.join(choices) or '(none)'}")
    return value


def load_entry_points(group: str, kind: type, register: Callable[[object], object]) -> None:
    """Register every object the entry points of ``group`` give.

    An entry point's object is an instance of ``kind``, or a function returning one or a
    list of them. One that fails to load or gives something else is skipped with a warning
    naming it: a broken package must not take the others down.
    """
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, kind):
                obj = obj()
            items = [obj] if isinstance(obj, kind) else list(obj)
            for item in items:
                if not isinstance(item, kind):
                    raise TypeError(f"gave a {type(item).__name__}, not a {kind.__name__}")
                register(item)
        except Exception as exc:
            warnings.warn(f"entry point {ep.name} = {ep.value} ({group}) not loaded: {type(exc).__name__}: {exc}")


class Registry:
    """Items of one ``kind`` by name, filled by :meth:`register` and by the entry points of ``group``.

    ``what`` names the kind in error messages (``"search space"``); ``modules`` are imported
    before the entry points are read (the project's own items that register on import).
    """

    def __init__(self, kind: type, group: str, what: str, modules: Sequence[str] = ()):
        self.kind, self.group, self.what, self.modules = kind, group, what, tuple(modules)
        self._items: dict[str, object] = {}
        self._loaded = False

    def register(self, item):
        """Add ``item`` under ``item.name``; another item of that name is an error. Returns ``item``."""
        known = self._items.get(item.name)
        if known is not None and known != item:
            raise ValueError(f"a {self.what} named {item.name!r} is already registered")
        self._items[item.name] = item
        return item

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            import importlib

            for module in self.modules:
                importlib.import_module(module)
            load_entry_points(self.group, self.kind, self.register)

    def get(self, name: str):
        """The item registered as ``name``."""
        if name not in self._items:
            self._load()
        return self._items[choose(name, self.names(), self.what)]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self._items)
