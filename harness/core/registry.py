"""Name -> factory registries that fill themselves from their package.

Adding a task, dataset, metric or adapter touches one file: the new module registers itself with
``@REGISTRY.register("name")``.  The registry imports every module of its package the first time a name is
looked up, so listing and ``--help`` stay cheap and nobody maintains a central list.  Modules therefore keep
optional heavy imports (mmdet, torchvision models) inside functions.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

from harness.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a class or factory; discovers registrations in ``packages`` on first use."""

    def __init__(self, kind: str, packages: tuple[str, ...]) -> None:
        self.kind = kind
        self.packages = packages
        self._entries: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj:
                raise RuntimeError(f"{self.kind} {name!r} registered twice: {existing!r} and {obj!r}")
            self._entries[name] = obj
            return obj

        return decorate

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for package_name in self.packages:
            package = importlib.import_module(package_name)
            for module in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
                importlib.import_module(module.name)

    def get(self, name: str) -> T:
        self._discover()
        if name in self._entries:
            return self._entries[name]
        prefix, _, _ = name.partition(":")
        if f"{prefix}:" in self._entries:  # parametrised names such as "mmdet:CONFIG"
            return self._entries[f"{prefix}:"]
        hint = difflib.get_close_matches(name, list(self._entries), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        known = ", ".join(sorted(self._entries)) or "none"
        raise UnknownNameError(f"unknown {self.kind} {name!r}{suggestion} (known: {known})")

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._discover()
        yield from sorted(self._entries.items())

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries
