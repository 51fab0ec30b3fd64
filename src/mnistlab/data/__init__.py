"""Dataset registry: `load_dataset(name)` returns uint8 images (N, C, H, W), int64 labels and class names.

Datasets know nothing about methods. They declare which augmentations are label-preserving for them (a horizontal flip
keeps a shirt a shirt, but not a 3 a 3), and methods ask.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from mnistlab.errors import MnistlabError
from mnistlab.registry import Registry

DATASETS: Registry = Registry("dataset", "mnistlab.data.sets")
# kinds of user data, named `KIND:PATH[?options]` (folder:scans/, npz:arrays.npz): data/userdata.py
DATASET_KINDS: Registry = Registry("dataset kind", "mnistlab.data.sets")


@dataclass(frozen=True)
class Dataset:
    name: str
    train_x: np.ndarray  # (N, C, H, W) uint8
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    hflip_safe: bool = False  # is a left-right mirror image still the same class?
    # photographed upright and centred (clothes): rotations and zooms make images the test set never has, so
    # FixMatch's weak view jitters such images by whole-pixel shifts only (`weak=auto`; measured on Fashion-MNIST:
    # benchmarks/notes/fashion.md); the supervised recipe for clothes asks for its shift in its own settings
    aligned: bool = False
    mean: float = 0.0  # per-pixel mean/std of train in [0, 1] units, for models that normalise
    std: float = 1.0
    extra: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def check_arrays(name: str, arrays, shape: tuple[int, ...], sizes: tuple[int, int] | None, num_classes: int):
    """Validate what a source produced: dtype, shape, label range, sizes."""
    train_x, train_y, test_x, test_y = arrays
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if x.dtype != np.uint8 or tuple(x.shape[1:]) != shape or x.shape[0] != y.shape[0]:
            raise MnistlabError(f"{name} {split}: expected uint8 (N, {shape}) images with N labels, got "
                                f"{x.dtype} {x.shape} and {y.shape[0]} labels")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise MnistlabError(f"{name} {split}: labels outside 0..{num_classes - 1}")
    if sizes is not None and (len(train_x), len(test_x)) != sizes:
        raise MnistlabError(f"{name}: expected {sizes[0]} train / {sizes[1]} test images, got {len(train_x)} / {len(test_x)}")


def load_dataset(name: str) -> Dataset:
    """A registered dataset (memoised), or user data `KIND:PATH[?options]` (read through its own disk cache, so a
    changed folder is seen); a name that is not a string (a damaged config.json) is one error."""
    if not isinstance(name, str):
        raise MnistlabError(f"a dataset name must be a string, got {type(name).__name__} {name!r:.60}")
    kind, sep, _ = name.partition(":")
    if sep and kind in DATASET_KINDS:
        return DATASET_KINDS.get(kind)(name)
    return _load_registered(name)


@functools.lru_cache(maxsize=4)
def _load_registered(name: str) -> Dataset:
    ds = DATASETS.get(name)()
    ds.train_x.setflags(write=False)
    ds.test_x.setflags(write=False)
    return ds


load_dataset.cache_clear = _load_registered.cache_clear  # type: ignore[attr-defined]  # tests reset the memo


def dataset_names() -> list[str]:
    return DATASETS.names()


def check_dataset_name(name: str) -> None:
    """An unknown name is one error listing the valid ones (and the user-data kinds)."""
    kind, sep, _ = name.partition(":") if isinstance(name, str) else ("", "", "")
    if sep and kind in DATASET_KINDS:
        return
    if name not in DATASETS:
        kinds = ", ".join(f"{k}:PATH" for k in DATASET_KINDS.names())
        raise MnistlabError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS.names())}, {kinds}")
