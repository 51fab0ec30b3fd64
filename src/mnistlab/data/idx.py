"""Reader for the IDX format of MNIST / Fashion-MNIST (LeCun's `*-idx3-ubyte`), with every header field checked."""
from __future__ import annotations

import gzip
import math
import zlib

import numpy as np

from mnistlab.errors import MnistlabError

_DTYPES = {0x08: np.uint8}  # the only element type MNIST-family files use


def parse_idx(data: bytes, *, source: str, ndim: int | None = None) -> np.ndarray:
    """Parse IDX bytes (gzip-compressed or not) into an array; `ndim` is the expected number of dimensions."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise MnistlabError(f"{source}: corrupt gzip stream ({e})") from None
    if len(data) < 4:
        raise MnistlabError(f"{source}: truncated IDX header ({len(data)} bytes)")
    zero, code, nd = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in _DTYPES or nd == 0:
        raise MnistlabError(f"{source}: bad IDX magic number {data[:4].hex()}")
    if ndim is not None and nd != ndim:
        raise MnistlabError(f"{source}: expected {ndim} dimensions, header says {nd}")
    head = 4 + 4 * nd
    if len(data) < head:
        raise MnistlabError(f"{source}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    expected = head + math.prod(dims)  # Python ints: 2³¹ × 2³¹ × 4 does not wrap around as int64 would
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise MnistlabError(f"{source}: {what}: dimensions {dims} need {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype=_DTYPES[code], offset=head).reshape(dims).copy()


def parse_idx_pair(images: bytes, labels: bytes, *, source: str, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) uint8 and labels (N,) int64, checked against each other."""
    x = parse_idx(images, source=f"{source} images", ndim=3)
    y = parse_idx(labels, source=f"{source} labels", ndim=1).astype(np.int64)
    if len(x) != len(y):
        raise MnistlabError(f"{source}: {len(x)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise MnistlabError(f"{source}: labels outside 0..{num_classes - 1}")
    return x, y


def to_idx(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes (used to build test fixtures and mirrors)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()
