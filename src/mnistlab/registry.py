"""Name → object registries with automatic discovery of the modules that fill them (timm-style)."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Generic, TypeVar

from mnistlab.errors import MnistlabError

T = TypeVar("T")


class Info:
    """Base of a registry's typed info dataclass; dict-style reads (`info["config"]`, `info.get("task")`) still work
    for code written when the infos were dicts."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class Registry(Generic[T]):
    """A dict of named entries; a duplicate name is an error, an unknown name lists the valid ones.

    `info`: the dataclass that `register(name, **fields)` builds for each entry (default: a plain dict)."""

    def __init__(self, kind: str, package: str | None = None, *, info: Callable[..., Any] = dict):
        self.kind = kind
        self.package = package  # modules of this package are imported on first lookup
        self._entries: dict[str, T] = {}
        self._info: dict[str, Any] = {}
        self._info_type = info
        self._renamed: dict[str, str] = {}  # old name → new name, still accepted (run folders keep their names)
        self._loaded = package is None

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        record = self._info_type(**info)  # a field the info type does not have fails here, at import

        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise RuntimeError(f"duplicate {self.kind} name {name!r}")
            self._entries[name] = obj
            self._info[name] = record
            return obj

        return deco

    def rename(self, old: str, new: str) -> None:
        """`old` was renamed `new`: lookups by the old name still work; `canonical(old)` gives the new one."""
        self._renamed[old] = new

    def canonical(self, name: str) -> str:
        self._load()
        return self._renamed.get(name, name)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            import_submodules(self.package)

    def get(self, name: str) -> T:
        name = self.canonical(name)
        if name not in self._entries:
            raise MnistlabError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def info(self, name: str) -> Any:
        self.get(name)
        return self._info[self.canonical(name)]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return self.canonical(name) in self._entries


def import_submodules(package: str) -> None:
    """Import every module of `package` so that their decorators register; an import failure is an error."""
    pkg = importlib.import_module(package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{package}.{mod.name}")
