"""Shared builder for IDX-format 28×28 grey datasets (MNIST, Fashion-MNIST, KMNIST-style)."""
from __future__ import annotations

import numpy as np

from mnistlab.data import Dataset, check_arrays
from mnistlab.data.idx import parse_idx_pair
from mnistlab.data.sources import RemoteFile, Source, download_files, load_from_sources, read_system_files

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def arrays_from_idx(blobs: list[bytes], *, source: str):
    """Four IDX blobs (train images, train labels, test images, test labels) → (N, 1, 28, 28) arrays."""
    tx, ty = parse_idx_pair(blobs[0], blobs[1], source=f"{source} train")
    vx, vy = parse_idx_pair(blobs[2], blobs[3], source=f"{source} test")
    return tx[:, None], ty, vx[:, None], vy


def idx_sources(files: list[RemoteFile], *, system_dirs: list[str], mirrors: list[str]) -> list[Source]:
    out: list[Source] = []
    if system_dirs:
        out.append((f"system dir ({', '.join(system_dirs)})",
                    lambda: arrays_from_idx(read_system_files(system_dirs, files), source=system_dirs[0])))
    if mirrors:
        out.append((f"download ({', '.join(mirrors)})",
                    lambda: arrays_from_idx(download_files(mirrors, files), source="download")))
    return out


def build(name: str, sources: list[Source], classes, *, hflip_safe: bool, sizes=(60000, 10000)) -> Dataset:
    arrays = load_from_sources(name, sources)
    check_arrays(name, arrays, (1, 28, 28), sizes, len(classes))
    tx = arrays[0]
    # mean/std over a fixed subsample: cheap and the same every time
    sample = tx[:: max(1, len(tx) // 10000)].astype(np.float32) / 255.0
    return Dataset(name, *arrays, classes=tuple(classes), hflip_safe=hflip_safe,
                   mean=float(sample.mean()), std=float(sample.std()))
