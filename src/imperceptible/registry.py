"""One registry type for every kind of named thing (datasets, models, costs, attacks), after scikit-learn's
``all_estimators()``: each entry carries its factory, its description and what it needs, and ``info``, the
command line's help and choices, and the errors' suggestions are all derived from it.

An entry is a plain name (``mnist-cnn``) or a prefix that takes an argument (``torchvision:NAME``,
``folder:PATH``). An unknown name is refused with the closest known names.

Examples:
    >>> from imperceptible.registry import Entry, Registry
    >>> r = Registry("colour", [Entry("red", "the colour red", lambda: "#f00"),
    ...                         Entry("rgb:HEX", "any colour", lambda arg: "#" + arg)])
    >>> r.get("red"), r.get("rgb:0f0"), r.names()
    ('#f00', '#0f0', ['red', 'rgb:HEX'])
    >>> try:
    ...     r.get("rde")
    ... except ValueError as e:
    ...     print(e)
    unknown colour 'rde' (did you mean: red?); expected one of: red, rgb:HEX
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import MSG_UNKNOWN_PLACEHOLDER, MSG_UNKNOWN_SUGGEST, UnknownNameError
from .validation import suggestion


@dataclass(frozen=True)
class Entry:
    """A registered name: ``factory(**options)`` builds it (``factory(arg, **options)`` for a prefix entry
    ``PREFIX:ARG``); ``needs`` names optional packages or weights it depends on (shown by ``info``)."""

    name: str
    description: str
    factory: Callable
    needs: tuple[str, ...] = ()
    tags: Any = None  # the kind's typed tags (an attack's :class:`~imperceptible.attacks.tags.AttackTags` ...)

    @classmethod
    def of_class(cls, c: Any) -> Entry:
        """The entry a class declares beside itself: its ``name``, and its ``TAGS`` (description, needs)."""
        return cls(c.name, c.TAGS.description, c, needs=tuple(c.TAGS.needs), tags=c.TAGS)

    @property
    def prefix(self) -> str | None:
        """``torchvision`` for ``torchvision:NAME``; ``None`` for a plain name."""
        head, sep, _ = self.name.partition(":")
        return head if sep else None


class Registry:
    """Named entries of one kind (see the module docstring)."""

    def __init__(self, kind: str, entries: Iterable[Entry] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        for e in entries:
            self.add(e)

    def add(self, entry: Entry) -> Entry:
        self._entries[entry.name] = entry
        return entry

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def __contains__(self, name: str) -> bool:
        try:
            self.entry(name)
        except UnknownNameError:
            return False
        return True

    def entry(self, name: str) -> Entry:
        """The entry ``name`` resolves to (a plain name, or a prefix entry for ``PREFIX:ARG``)."""
        if name in self._entries and self._entries[name].prefix is None:
            return self._entries[name]
        head, sep, arg = name.partition(":")
        for e in self._entries.values():
            if e.prefix == head and sep:
                if name == e.name or not arg:
                    raise UnknownNameError.of(MSG_UNKNOWN_PLACEHOLDER, kind=self.kind, name=name,
                                              placeholder=e.name.partition(":")[2])
                return e
        raise UnknownNameError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        return MSG_UNKNOWN_SUGGEST.format(kind=self.kind, name=name, hint=suggestion(name, self.names()),
                                          choices=", ".join(self.names()))

    def get(self, name: str, **options):
        """Build ``name`` with ``options``."""
        e = self.entry(name)
        if e.prefix is not None:
            return e.factory(name.partition(":")[2], **options)
        return e.factory(**options)

    def tags(self, name: str) -> Any:
        """The typed tags of the entry ``name`` resolves to."""
        return self.entry(name).tags

    def describe(self) -> list[dict]:
        """``[{name, description, needs}]`` for ``info``."""
        return [{"name": e.name, "description": e.description, "needs": list(e.needs)} for e in self._entries.values()]


__all__ = ["Entry", "Registry"]
