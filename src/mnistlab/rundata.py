"""A finished run's images rebuilt from its config.json and splits.npz: the one way to get "the data this run saw".

Layer: above `runs` and `data`, below `api`. The official train/test parts carry the run's smoke subsets
(`train_subset`, `test_subset`); a run that re-split the base (`split` 60/40, 60/20/20) indexes train + test with its
saved indices.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.data import Dataset, load_dataset
from mnistlab.errors import MnistlabError


@dataclass
class RunData:
    ds: Dataset
    train_x: np.ndarray  # (N, C, H, W) uint8: the official training part, with the run's train_subset
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray  # the official test part, with the run's test_subset
    test_y: np.ndarray
    base_x: np.ndarray  # what the saved split indices index: train (official split) or train + test (re-split)
    base_y: np.ndarray
    splits: dict[str, np.ndarray] = field(default_factory=dict)  # splits.npz, {} when the run saved none
    resplit: bool = False

    def part(self, name: str, where: Path) -> np.ndarray:
        """Checked indices of split part `name` into the base."""
        return check_indices(self.splits[name], len(self.base_y), f"{where / 'splits.npz'} {name}")


def load_splits(run_dir: Path) -> dict[str, np.ndarray]:
    """splits.npz of a run folder as {part: indices}; {} when it has none; one line when it is damaged."""
    try:
        with np.load(run_dir / "splits.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise MnistlabError(f"{run_dir / 'splits.npz'}: unreadable ({e})") from None


def check_indices(idx: np.ndarray, n: int, where: str) -> np.ndarray:
    """Saved split indices must be integers into the `n` images they index."""
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= n)):
        raise MnistlabError(f"{where}: indices are not integers in 0…{n - 1}")
    return idx


def load_run_data(run_dir: str | Path, config: dict[str, Any]) -> RunData:
    """The dataset of the run whose config.json is `config`, cut as the run cut it."""
    run_dir = Path(run_dir)
    ds = load_dataset(config.get("dataset", "mnist"))
    for k in ("train_subset", "test_subset"):
        if not isinstance(config.get(k, 0), int) or config.get(k, 0) < 0:
            raise MnistlabError(f"{run_dir / 'config.json'}: {k} must be a whole number ≥ 0")
    tx, ty, vx, vy = ds.train_x, ds.train_y, ds.test_x, ds.test_y
    if config.get("train_subset"):  # a smoke run: its base is the subset it was trained and tested on
        tx, ty = tx[: config["train_subset"]], ty[: config["train_subset"]]
    if config.get("test_subset"):
        vx, vy = vx[: config["test_subset"]], vy[: config["test_subset"]]
    resplit = config.get("split", "official") != "official"
    bx, by = (np.concatenate([tx, vx]), np.concatenate([ty, vy])) if resplit else (tx, ty)
    return RunData(ds, tx, ty, vx, vy, bx, by, load_splits(run_dir), resplit)


def run_test_part(data: RunData, run_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The images the run tested on: the official test part, or its own test indices into the re-split base."""
    if not data.resplit:
        return data.test_x, data.test_y
    if "test" not in data.splits:
        raise MnistlabError(f"{run_dir}: splits.npz has no test indices (the run's split is {split})")
    test = data.part("test", run_dir)
    return data.base_x[test], data.base_y[test]
