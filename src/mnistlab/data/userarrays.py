"""Arrays of user data from an .npz: named arrays read without pickle, sizes checked on the zip directory before
anything is inflated, and the image layouts `npz:` accepts (N×H×W, N×H×W×C) brought to (N, C, H, W)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mnistlab.errors import MnistlabError

MAX_ARRAY_BYTES = 4 * 2**30  # per array inside an .npz, checked on the zip directory before anything is inflated


def read_arrays(path: Path, where: str, *, want: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Named arrays of an .npz (no pickle; sizes checked before decompression); missing `want` keys are an error."""
    try:
        with zipfile.ZipFile(path) as zf:
            sizes = {i.filename.removesuffix(".npy"): i.file_size for i in zf.infolist()}
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise MnistlabError(f"{where}: not a readable .npz file ({e})") from None
    missing = [k for k in want if k not in sizes]
    if missing:
        raise MnistlabError(f"{where}: no array {', '.join(missing)} (it holds {', '.join(sorted(sizes)) or 'none'})")
    big = [k for k in (*want, *optional) if sizes.get(k, 0) > MAX_ARRAY_BYTES]
    if big:
        raise MnistlabError(f"{where}: array {', '.join(big)} over {MAX_ARRAY_BYTES >> 30} GiB uncompressed, refused")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in (*want, *optional) if k in sizes}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # object arrays (pickle) end here too
        raise MnistlabError(f"{where}: unreadable array ({e})") from None


def to_nchw(x: np.ndarray, where: str, key: str) -> np.ndarray:
    """uint8 N×H×W or N×H×W×C (C = 1 or 3) → (N, C, H, W)."""
    if x.dtype != np.uint8:
        raise MnistlabError(f"{where}: {key} must be uint8 (0–255), got {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise MnistlabError(f"{where}: {key} must be N×H×W or N×H×W×C with C = 1 or 3, got {x.shape}")
    if len(x) == 0 or min(x.shape[2:]) == 0:
        raise MnistlabError(f"{where}: {key} holds no images ({x.shape})")
    return np.ascontiguousarray(x)
