"""Dataset statistics: sizes, class counts and a-priori class probabilities (the brief's Q1.1 and Q3)."""
from __future__ import annotations

import numpy as np

from mnistlab.data import load_dataset


def stats(name: str) -> dict:
    """Sizes, class counts and a-priori class probabilities (class frequencies) on train, test and all."""
    ds = load_dataset(name)
    k = ds.num_classes
    tr, te = np.bincount(ds.train_y, minlength=k), np.bincount(ds.test_y, minlength=k)
    allc = tr + te
    return {"dataset": name, "classes": list(ds.classes), "shape": list(ds.shape),
            "train_size": int(len(ds.train_y)), "test_size": int(len(ds.test_y)),
            "train_class_counts": tr.tolist(), "test_class_counts": te.tolist(),
            "priors": {"train": (tr / tr.sum()).round(6).tolist(), "test": (te / te.sum()).round(6).tolist(),
                       "all": (allc / allc.sum()).round(6).tolist()},
            "pixel_mean": round(ds.mean, 6), "pixel_std": round(ds.std, 6)}
