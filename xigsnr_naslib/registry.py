"""What the project's registries (benchmark cards, proxies) share: validated names and entry points.

:class:`Registry` is one dict behind one door, in the style of timm's model registry: items
are registered by their ``name`` (:meth:`Registry.register`; the project's own proxies by the
``@register_compute`` decorator or a ``register_proxy(...)`` call beside their definition),
looked up with :meth:`Registry.get` (an unknown name is an :class:`UnknownChoiceError` listing
the known ones) and listed with :meth:`Registry.names`. The first lookup loads the built-ins
(a plain import of the modules that define them: ``import xigsnr_naslib`` stays light) and
then the entry points of other packages.

:func:`registered` registers items for the duration of a ``with`` block and removes them on
exit, on an error too (a test's proxy or card, an experiment's variant)::

    with registered(Proxy("my_proxy", my_compute)):
        study = Study("nb201", "cifar10", ["my_proxy"])

:func:`choose` validates a name against the valid choices and raises
:class:`UnknownChoiceError` (a ``ValueError``) whose one-line message names the bad value and
lists the choices. :func:`load_entry_points` registers what other packages contribute through
an ``importlib.metadata`` entry-point group (``xigsnr_naslib.spaces``, ``xigsnr_naslib.proxies``).
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Callable, Iterator, Sequence

from xigsnr_naslib.errors import UsageError

__all__ = ["UnknownChoiceError", "choose", "load_entry_points", "Registry", "registered"]


class UnknownChoiceError(UsageError):
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


#: every registry made, for :func:`registered` to find an item's
_REGISTRIES: list["Registry"] = []


class Registry:
    """Items of one ``kind`` by name: the built-ins, then the entry points of ``group``.

    Parameters
    ----------
    kind : type
        The class of the items (:class:`~xigsnr_naslib.proxies.Proxy`,
        :class:`~xigsnr_naslib.benchmarks.card.BenchmarkCard`).
    group : str
        The entry-point group other packages register items through.
    what : str
        The kind's name in messages (``"search space"``).
    load_builtins : callable or None
        Called once, at the first lookup and before the entry points are read: imports the
        project's modules whose items register when imported.
    """

    def __init__(self, kind: type, group: str, what: str, load_builtins: Callable[[], object] | None = None):
        self.kind, self.group, self.what, self.load_builtins = kind, group, what, load_builtins
        self._items: dict[str, object] = {}
        self._loaded = False
        _REGISTRIES.append(self)

    def register(self, item):
        """Add ``item`` under ``item.name``; another item of that name is an error. Returns ``item``."""
        known = self._items.get(item.name)
        if known is not None and known != item:
            raise UsageError(f"a {self.what} named {item.name!r} is already registered")
        self._items[item.name] = item
        return item

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            if self.load_builtins is not None:
                self.load_builtins()
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

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    @contextlib.contextmanager
    def registered(self, *items) -> Iterator[None]:
        """Register ``items`` for the ``with`` block and remove them on exit, on an error too.

        A name already registered (a built-in, an entry point's, an enclosing block's) or
        given twice is refused before anything is registered: ``ValueError`` naming it.
        """
        self._load()  # built-ins and entry points first: a clash with them is found now
        names: list[str] = []
        for item in items:
            if not isinstance(item, self.kind):
                raise TypeError(f"a {type(item).__name__} is not a {self.kind.__name__}")
            if item.name in self._items or item.name in names:
                raise UsageError(f"a {self.what} named {item.name!r} is already registered; "
                                 "register it under another name")
            names.append(item.name)
        try:
            for item in items:
                self.register(item)
            yield
        finally:
            for item in items:
                if self._items.get(item.name) is item:
                    del self._items[item.name]


@contextlib.contextmanager
def registered(*items) -> Iterator[None]:
    """Register ``items`` (proxies, benchmark cards, mixed) for the ``with`` block; remove them
    on exit, on an error too. Each goes to the registry of its kind; a name already
    registered there (or given twice) is refused with a ``ValueError`` naming it, and nothing
    of the block stays registered. Blocks nest (an inner block's names must differ from the
    outer's)."""
    groups: dict[int, tuple[Registry, list]] = {}
    for item in items:
        registry = next((r for r in _REGISTRIES if isinstance(item, r.kind)), None)
        if registry is None:
            raise TypeError(f"no registry takes a {type(item).__name__}; registries hold: "
                            f"{', '.join(r.kind.__name__ for r in _REGISTRIES) or '(none)'}")
        groups.setdefault(id(registry), (registry, []))[1].append(item)
    with contextlib.ExitStack() as stack:
        for registry, group in groups.values():
            stack.enter_context(registry.registered(*group))
        yield
