"""The network's a-posteriori probabilities of a base of images (the brief's Q3–Q5.1): arrays in, dicts out."""
from __future__ import annotations

import numpy as np
import torch


def posteriors(logits: np.ndarray) -> np.ndarray:
    """Softmax in float32, as the network's output layer computes it (so the row sums show float32 rounding)."""
    return torch.softmax(torch.from_numpy(np.asarray(logits, np.float32)), dim=1).numpy()


def sum_check(p: np.ndarray, tol: float = 1e-5) -> dict:
    """How far each row is from summing to 1."""
    dev = np.abs(p.astype(np.float64).sum(1) - 1)
    return {"max_abs_sum_error": float(dev.max()) if len(dev) else 0.0,
            "mean_abs_sum_error": float(dev.mean()) if len(dev) else 0.0,
            "rows_off_by_more_than": {"tol": tol, "count": int((dev > tol).sum())},
            "all_rows_sum_to_one": bool((dev <= tol).all())}


def summary(p: np.ndarray, y: np.ndarray, *, n_train: int, classes) -> dict:
    """Posteriors p (N, K) of train-then-test images with labels y (N,): row sums, recognition rates (winner takes
    all) on train / test / all, the mean posterior per class beside the a-priori class frequencies."""
    pred, k = p.argmax(1), len(classes)
    return {"images": int(len(y)), "order": "train then test", "train_images": int(n_train),
            "test_images": int(len(y) - n_train), **sum_check(p),
            "recognition_rate": {"train": float((pred[:n_train] == y[:n_train]).mean()),
                                 "test": float((pred[n_train:] == y[n_train:]).mean()),
                                 "all": float((pred == y).mean())},
            "classes": list(classes), "priors": (np.bincount(y, minlength=k) / len(y)).tolist(),
            "mean_posterior": p.mean(0).tolist(),
            "predicted_frequency": (np.bincount(pred, minlength=k) / len(y)).tolist()}
