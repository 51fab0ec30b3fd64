"""CIFAR-10 (Krizhevsky 2009): 50k/10k colour images, 3×32×32, 10 classes — from the official *binary* tarball.

`cifar-10-binary.tar.gz` holds `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`: 10 000 records each,
one record = 1 label byte + 3 072 pixel bytes (1 024 red, then green, then blue, each 32×32 row-major) — which is already
(C, H, W). The archive is checked against a pinned SHA-256, read in memory (nothing extracted to disk, nothing
unpickled), and every batch must have exactly the expected size. Download-only: `$MNISTLAB_MIRROR` (an http(s):// or
file:// folder URL) replaces the official site, e.g. for a copy fetched on another machine.
"""
from __future__ import annotations

import io
import tarfile
import zlib

import numpy as np

from mnistlab.data import DATASETS, Dataset, check_arrays
from mnistlab.data.sources import RemoteFile, download_files, load_from_sources, mirrors
from mnistlab.errors import MnistlabError

# SHA-256 of the official archive (170 052 171 bytes, MD5 c32a1d4ab5d03f1284b67883e8d87530 as published on the site)
ARCHIVE = RemoteFile("cifar-10-binary.tar.gz", "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd")
MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]
FOLDER = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
RECORDS_PER_BATCH = 10_000
SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32  # label byte + R, G, B planes
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def parse_batch(data: bytes, *, records: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One `.bin` batch → uint8 images (records, 3, 32, 32) and int64 labels; its size must be exact."""
    if len(data) != records * RECORD_BYTES:
        raise MnistlabError(f"{source}: {len(data)} bytes, expected {records} records × {RECORD_BYTES} = "
                            f"{records * RECORD_BYTES}")
    rec = np.frombuffer(data, np.uint8).reshape(records, RECORD_BYTES)
    labels = rec[:, 0].astype(np.int64)
    if labels.size and labels.max() >= len(CLASSES):
        raise MnistlabError(f"{source}: label {int(labels.max())} outside 0..{len(CLASSES) - 1}")
    return rec[:, 1:].reshape(records, *SHAPE).copy(), labels


def parse_archive(blob: bytes, *, records_per_batch: int = RECORDS_PER_BATCH, source: str = ARCHIVE.name):
    """The gzipped tar (bytes) → (train_x, train_y, test_x, test_y). Reads only the six regular batch members."""
    wanted = [f"{FOLDER}/{n}" for n in (*TRAIN_BATCHES, TEST_BATCH)]
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            for name in wanted:
                try:
                    member = tar.getmember(name)
                except KeyError:
                    raise MnistlabError(f"{source}: no {name} in the archive (not the CIFAR-10 binary version?)") \
                        from None
                if not member.isfile():
                    raise MnistlabError(f"{source}: {name} is not a regular file")
                expected = records_per_batch * RECORD_BYTES
                if member.size != expected:  # checked before reading: no size surprises
                    raise MnistlabError(f"{source}: {name} has {member.size} bytes, expected {expected}")
                f = tar.extractfile(member)
                data = f.read() if f is not None else b""
                parts[name] = parse_batch(data, records=records_per_batch, source=f"{source}:{name}")
            meta = _read_meta(tar)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise MnistlabError(f"{source}: corrupt or truncated archive ({type(e).__name__}: {e})") from None
    if meta is not None and meta != CLASSES:
        raise MnistlabError(f"{source}: batches.meta.txt lists {', '.join(meta)}, expected {', '.join(CLASSES)}")
    train = [parts[n] for n in wanted[:-1]]
    test = parts[wanted[-1]]
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), *test)


def _read_meta(tar: tarfile.TarFile) -> tuple[str, ...] | None:
    """Class names from batches.meta.txt, one a line (None if the member is absent)."""
    try:
        member = tar.getmember(f"{FOLDER}/batches.meta.txt")
    except KeyError:
        return None
    f = tar.extractfile(member) if member.isfile() and member.size < 4096 else None
    if f is None:
        return None
    return tuple(line.strip() for line in f.read().decode("ascii", "replace").splitlines() if line.strip())


def _download():
    (blob,) = download_files(MIRRORS, [ARCHIVE])
    return parse_archive(blob, records_per_batch=RECORDS_PER_BATCH, source=ARCHIVE.name)


@DATASETS.register("cifar10")
def cifar10() -> Dataset:
    sizes = (len(TRAIN_BATCHES) * RECORDS_PER_BATCH, RECORDS_PER_BATCH)
    try:
        arrays = load_from_sources("cifar10", [(f"download ({', '.join(mirrors(MIRRORS))})", _download)],
                                   check=lambda a: check_arrays("cifar10", a, SHAPE, sizes, len(CLASSES)))
    except MnistlabError as e:
        raise MnistlabError(f"{e}. CIFAR-10 needs the network once: put {ARCHIVE.name} (170 MB, "
                            f"sha256 {ARCHIVE.sha256[:12]}…) in a folder and set MNISTLAB_MIRROR=file:///that/folder/"
                            ) from None
    sample = arrays[0][:: max(1, len(arrays[0]) // 10000)].astype(np.float32) / 255.0
    return Dataset("cifar10", *arrays, classes=CLASSES, hflip_safe=True,  # a mirrored car is still a car
                   mean=float(sample.mean()), std=float(sample.std()))
