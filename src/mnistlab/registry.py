"""Name → object registries with automatic discovery of the modules that fill them (timm-style)."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Generic, TypeVar

from mnistlab.errors import MnistlabError

T = TypeVar("T")


class Registry(Generic[T]):
    """A dict of named entries; a duplicate name is an error, an unknown name lists the valid ones."""

    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self.package = package  # modules of this package are imported on first lookup
        self._entries: dict[str, T] = {}
        self._info: dict[str, dict[str, Any]] = {}
        self._loaded = package is None

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise RuntimeError(f"duplicate {self.kind} name {name!r}")
            self._entries[name] = obj
            self._info[name] = info
            return obj

        return deco

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            import_submodules(self.package)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise MnistlabError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def info(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._info[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


def import_submodules(package: str) -> None:
    """Import every module of `package` so that their decorators register; an import failure is an error."""
    pkg = importlib.import_module(package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{package}.{mod.name}")
