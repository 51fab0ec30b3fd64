"""Atomic writes: a file is either the old one or the complete new one, never half-written."""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Any, Iterator

from mnistlab.errors import MnistlabError

# temporary files not yet renamed or removed. A Ctrl-C can land where no `except` sees it (between mkstemp and the
# `try`, or between the generator's yield and the `with` body): whatever is left here is removed at exit
_PENDING: set[Path] = set()


@atexit.register
def _remove_pending() -> None:
    for p in list(_PENDING):
        p.unlink(missing_ok=True)


def _new_temp(path: Path) -> Path:
    """mkstemp beside `path`, registered in `_PENDING` with SIGINT held back, so no interrupt can orphan it."""
    block = hasattr(signal, "pthread_sigmask")
    if block:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        _PENDING.add(Path(name))
    finally:
        if block:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (fsync + rename), on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise MnistlabError(f"cannot write {path}: {e.strerror or e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _PENDING.discard(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MnistlabError(f"missing file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MnistlabError(f"corrupt JSON in {path}: {e}") from None


def _jsonable(o: Any) -> Any:
    """numpy scalars/arrays and paths → plain JSON."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
