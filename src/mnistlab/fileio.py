"""Atomic writes: a file is either the old one or the complete new one, never half-written."""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from safetensors import SafetensorError, safe_open

from mnistlab.errors import MnistlabError

# temporary files not yet renamed or removed. A Ctrl-C can land where no `except` sees it (between mkstemp and the
# `try`, or between the generator's yield and the `with` body): whatever is left here is removed at exit
_PENDING: set[Path] = set()
STARTED = time.time()  # ~ this process's start: temporary files older than it were left by a process now gone


@atexit.register
def _remove_pending() -> None:
    for p in list(_PENDING):
        p.unlink(missing_ok=True)


def _new_temp(path: Path) -> Path:
    """mkstemp beside `path`, registered in `_PENDING` with SIGINT/SIGTERM held back, so no interrupt orphans it."""
    block = hasattr(signal, "pthread_sigmask")
    if block:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
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
    """Yield a temporary path beside `path`; on success it replaces `path` (fsync + rename), on error it is removed.

    A failure to write (full disk, read-only folder, a file where a folder should be) — from the OS or from
    safetensors' writer, which reports the OS error in its own exception — is one MnistlabError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistlabError(f"cannot write {path}: {e.strerror or e}") from None
    tmp = _new_temp(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except (OSError, SafetensorError) as e:
        tmp.unlink(missing_ok=True)
        raise MnistlabError(f"cannot write {path}: {_reason(e)}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _PENDING.discard(tmp)


def remove_stale_temps(folder: str | os.PathLike, *, min_age: float = 0.0) -> list[Path]:
    """Delete the `atomic_path` temporaries (`.NAME.XXXX.tmp`) in `folder` that were last written before this process
    started, less `min_age` seconds (kill -9, a power cut: no `finally` ran). A folder shared with other processes
    (the data cache) needs a `min_age` longer than any write takes; a locked run folder needs none. → removed."""
    removed = []
    try:
        candidates = list(Path(folder).glob(".*.tmp"))
    except OSError:
        return removed
    for p in candidates:
        try:
            if p not in _PENDING and p.is_file() and p.stat().st_mtime < STARTED - min_age:
                p.unlink()
                removed.append(p)
        except OSError:  # gone meanwhile, or not ours to delete: leave it
            pass
    return removed


def _reason(e: Exception) -> str:
    """The OS's words for a write failure: `strerror`, or the message inside safetensors' `IoError(Os {…})`."""
    if isinstance(e, OSError):
        return e.strerror or str(e)
    m = re.search(r'message: "([^"]+)"', str(e))
    return m.group(1) if m else str(e).splitlines()[0]


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike, kind: type | None = dict) -> Any:
    """A JSON file that must hold a `kind` (an object by default; None = any value): anything else is one error."""
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MnistlabError(f"missing file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MnistlabError(f"corrupt JSON in {path}: {e}") from None
    except OSError as e:
        raise MnistlabError(f"cannot read {path}: {e.strerror or e}") from None
    if kind is not None and not isinstance(obj, kind):
        raise MnistlabError(f"{path}: expected a JSON {_KINDS.get(kind, kind.__name__)}, got {type(obj).__name__}")
    return obj


_KINDS = {dict: "object", list: "array"}


def read_safetensors(path: str | os.PathLike, *, missing: str, meta_key: str | None = None, prefix: str = "",
                     tensors: bool = True, what: str = "", hint: str = "") -> tuple[dict, Any]:
    """THE reader of mnistlab's safetensors files → ({name: tensor on cpu}, metadata), with one error path.

    Tensors always load to the CPU (the `map_location` of a checkpoint written on a GPU); `prefix` keeps only the
    names that start with it (stripped); `tensors=False` reads the metadata alone. `meta_key`: the metadata entry
    that holds JSON, returned parsed (else the raw {str: str} metadata). A missing file is `missing`; anything
    unreadable is "PATH: unreadable<what> (reason)<hint>"."""
    try:
        with safe_open(str(path), "pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta_key is not None:
                meta = json.loads(meta[meta_key])
            out = {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)} if tensors else {}
    except FileNotFoundError:
        raise MnistlabError(missing) from None
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise MnistlabError(f"{path}: unreadable{what} ({e}){hint}") from None
    return out, meta


def _jsonable(o: Any) -> Any:
    """numpy scalars/arrays and paths → plain JSON."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
