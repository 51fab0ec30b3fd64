"""Shared builder for IDX-format 28×28 grey datasets (MNIST, Fashion-MNIST, KMNIST-style)."""
from __future__ import annotations

import numpy as np

from mnistlab.data import Dataset, check_arrays
from mnistlab.data import sources as src
from mnistlab.data.idx import parse_idx
from mnistlab.data.sources import (RemoteFile, Source, download_files, find_system_dir, load_from_sources,
                                   read_system_files)
from mnistlab.errors import MnistlabError

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def arrays_from_idx(blobs: list[bytes], *, source: str, names: list[str] | None = None):
    """Four IDX blobs (train images, train labels, test images, test labels) → (N, 1, 28, 28) arrays.

    `names` (one per blob) make every error name the file it is about.
    """
    names = names or [f"{source} {part}" for part in ("train images", "train labels", "test images", "test labels")]
    out = []
    for i in (0, 2):
        x = parse_idx(blobs[i], source=names[i], ndim=3)
        y = parse_idx(blobs[i + 1], source=names[i + 1], ndim=1).astype(np.int64)
        if len(x) != len(y):
            raise MnistlabError(f"{names[i]} has {len(x)} images but {names[i + 1]} has {len(y)} labels")
        out += [x[:, None], y]  # (N, 1, 28, 28), (N,)
    return tuple(out)


def idx_sources(files: list[RemoteFile], *, system_dirs: list[str], mirrors: list[str]) -> list[Source]:
    """The system-dir and download sources of a 4-file IDX dataset (checksums pinned in `files`)."""
    out: list[Source] = []
    if system_dirs:
        def from_system():
            d = find_system_dir(system_dirs, files)
            return arrays_from_idx(read_system_files([str(d)], files), source=str(d),
                                   names=[str(d / f.name) for f in files])

        out.append((f"system dir ({', '.join(system_dirs)})", from_system))
    if mirrors:
        out.append((f"download ({', '.join(src.mirrors(mirrors))})",
                    lambda: arrays_from_idx(download_files(mirrors, files), source="download",
                                            names=[f"downloaded {f.name}" for f in files])))
    return out


def build(name: str, sources: list[Source], classes, *, hflip_safe: bool, aligned: bool = False,
          sizes=(60000, 10000)) -> Dataset:
    arrays = load_from_sources(name, sources,
                               check=lambda a: check_arrays(name, a, (1, 28, 28), sizes, len(classes)))
    tx = arrays[0]
    # mean/std over a fixed subsample: cheap and the same every time
    sample = tx[:: max(1, len(tx) // 10000)].astype(np.float32) / 255.0
    return Dataset(name, *arrays, classes=tuple(classes), hflip_safe=hflip_safe, aligned=aligned,
                   mean=float(sample.mean()), std=float(sample.std()))
