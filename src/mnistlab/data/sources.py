"""Where dataset bytes come from, tried in order: user cache, installed package, system dir, checked download.

Every source returns the four arrays `(train_x, train_y, test_x, test_y)` — images uint8 (N, C, H, W), labels int64 —
or raises `SourceUnavailable` (nothing there: try the next) / `MnistlabError` (something there, but wrong).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mnistlab import fileio
from mnistlab.errors import MnistlabError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
MAX_DOWNLOAD_BYTES = 512 * 2**20  # refuse anything larger: no MNIST-family file comes near it


class SourceUnavailable(Exception):
    """This source has nothing for the dataset (not installed, offline, no cache yet)."""


def data_home() -> Path:
    """`$MNISTLAB_DATA`, else `~/.cache/mnistlab`."""
    return Path(os.environ.get("MNISTLAB_DATA") or Path.home() / ".cache" / "mnistlab")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_sha256(data: bytes, expected: str, *, source: str) -> bytes:
    got = sha256(data)
    if got != expected:
        raise MnistlabError(f"{source}: SHA-256 mismatch (expected {expected[:12]}…, got {got[:12]}…)")
    return data


# ---------------------------------------------------------------------------------------------------------- cache
def cache_path(name: str) -> Path:
    return data_home() / f"{name}.npz"


STALE_AGE = 600.0  # s: a temporary in the shared cache older than this before our start is from a dead process


def read_cache(name: str) -> Arrays:
    path = cache_path(name)
    fileio.remove_stale_temps(path.parent, min_age=STALE_AGE)  # a cache write killed mid-way (kill -9)
    if not path.exists():
        raise SourceUnavailable(f"no cache at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = tuple(z[k] for k in ("train_x", "train_y", "test_x", "test_y"))
    except Exception as e:  # zip/npz errors come in many types; any of them means a bad cache file
        raise MnistlabError(f"{path}: corrupt cache ({type(e).__name__}: {e}); delete it to rebuild") from None
    return arrays  # type: ignore[return-value]


def write_cache(name: str, arrays: Arrays) -> None:
    """Compressed uint8/int64 arrays, written atomically (a killed write leaves the old file or none)."""
    keys = ("train_x", "train_y", "test_x", "test_y")
    with fileio.atomic_path(cache_path(name)) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **dict(zip(keys, arrays)))


# ---------------------------------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class RemoteFile:
    """A file known by name and SHA-256; fetched from a system dir or from a mirror."""

    name: str
    sha256: str


def package_file(dist: str, relpath: str) -> Path:
    """Locate a data file inside an installed distribution without importing (running) its code."""
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise SourceUnavailable(f"Python package {dist} not installed") from None
    for f in files:
        if str(f).replace("\\", "/") == relpath:
            return Path(f.locate())
    raise SourceUnavailable(f"{dist} has no {relpath}")


def find_system_dir(dirs: list[str], files: list[RemoteFile]) -> Path:
    """The first of `dirs` that holds every one of `files`."""
    for d in dirs:
        if all((Path(d) / f.name).is_file() for f in files):
            return Path(d)
    raise SourceUnavailable(f"not found in {', '.join(dirs)}")


def read_system_files(dirs: list[str], files: list[RemoteFile]) -> list[bytes]:
    """Read and checksum `files` from the first of `dirs` that has them all."""
    d = find_system_dir(dirs, files)
    return [check_sha256((d / f.name).read_bytes(), f.sha256, source=str(d / f.name)) for f in files]


def download(url: str, *, expected_sha256: str, timeout: float = 20.0) -> bytes:
    """GET `url` (size-capped), check its SHA-256, keep a verified copy under the data home."""
    dest = data_home() / "downloads" / url.rsplit("/", 1)[-1]
    fileio.remove_stale_temps(dest.parent, min_age=STALE_AGE)
    if dest.is_file():
        data = dest.read_bytes()
        if sha256(data) == expected_sha256:
            return data
    if os.environ.get("MNISTLAB_OFFLINE"):
        raise SourceUnavailable("MNISTLAB_OFFLINE is set")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            data = r.read(MAX_DOWNLOAD_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise SourceUnavailable(f"download of {url} failed ({getattr(e, 'reason', e)})") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise MnistlabError(f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes, refused")
    check_sha256(data, expected_sha256, source=url)
    fileio.write_bytes(dest, data)
    return data


def mirrors(default: list[str]) -> list[str]:
    """`$MNISTLAB_MIRROR` (one base URL) replaces the official mirrors, e.g. for a local copy or a test server."""
    env = os.environ.get("MNISTLAB_MIRROR")
    return [env.rstrip("/") + "/"] if env else default


def download_files(bases: list[str], files: list[RemoteFile]) -> list[bytes]:
    """Each file from the first mirror that serves it with the right checksum."""
    out = []
    for f in files:
        errors = []
        for base in mirrors(bases):
            try:
                out.append(download(base + f.name, expected_sha256=f.sha256))
                break
            except (SourceUnavailable, MnistlabError) as e:
                errors.append(str(e))
        else:
            raise SourceUnavailable("; ".join(dict.fromkeys(errors)))  # each distinct reason once
    return out


# ---------------------------------------------------------------------------------------------------------- chain
Source = tuple[str, Callable[[], Arrays]]  # (description, loader)


def load_from_sources(name: str, sources: list[Source], *, check: Callable[[Arrays], None] | None = None) -> Arrays:
    """The cache, then each source in turn; the first that works fills the cache. None works → one error naming all.

    `check(arrays)` validates what a source produced (shapes, sizes, labels); a source that fails it counts as
    broken, so a stale or tampered cache is skipped and rebuilt.
    """
    tried = []
    try:
        arrays = read_cache(name)
        if check is not None:
            check(arrays)
        return arrays
    except (SourceUnavailable, MnistlabError) as e:
        tried.append(f"cache: {e}")
    for desc, loader in sources:
        try:
            arrays = loader()
            if check is not None:
                check(arrays)
        except (SourceUnavailable, MnistlabError) as e:
            tried.append(f"{desc}: {e}")
            continue
        try:
            write_cache(name, arrays)
        except MnistlabError:
            pass  # a read-only or full data home only costs speed next time
        return arrays
    raise MnistlabError(f"dataset {name!r} is not available; tried " + " | ".join(tried))
