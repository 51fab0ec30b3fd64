"""Seeded splits: class-balanced labelled subsets, holdout fractions, k-fold. Pure functions of (labels, seed).

Each split takes its own seed and builds its own `numpy.random.Generator`, so which images are labelled (the split
seed) never depends on how the model is trained (the training seed).
"""
from __future__ import annotations

import numpy as np

from mnistlab.errors import MnistlabError


def balanced_subset(labels: np.ndarray, n: int, *, seed: int, num_classes: int | None = None) -> np.ndarray:
    """`n` indices with n / num_classes per class (the remainder spread over the first classes), sorted."""
    num_classes = num_classes or int(labels.max()) + 1
    if n < num_classes:
        raise MnistlabError(f"--labels {n}: need at least one label per class ({num_classes})")
    rng = np.random.default_rng(seed)
    per_class = [n // num_classes + (c < n % num_classes) for c in range(num_classes)]
    out = []
    for c, k in enumerate(per_class):
        pool = np.flatnonzero(labels == c)
        if len(pool) < k:
            raise MnistlabError(f"class {c} has {len(pool)} examples, {k} requested")
        out.append(rng.choice(pool, size=k, replace=False))
    return np.sort(np.concatenate(out))


def labelled_split(labels: np.ndarray, n_labels: int, *, seed: int, n_val: int = 0,
                   num_classes: int | None = None) -> dict[str, np.ndarray]:
    """Labelled / validation / unlabelled indices of a training set.

    `labelled` ∪ `val` is a balanced draw of `n_labels`; `val` (balanced, `n_val` of them) is carved from it, so the
    validation images are among the labels a user has. `unlabelled` is every other training index.
    Label -1 marks an image without a label (user data: `unlabelled=`, `labels_from=`): never drawn; and when
    `n_labels` reaches the number of labelled images, all of them are used (the user's fixed labelled set).
    """
    known = labels >= 0
    if not known.all() and n_labels >= known.sum():
        drawn = np.flatnonzero(known)
        n_labels = len(drawn)
    else:
        drawn = balanced_subset(labels, n_labels, seed=seed, num_classes=num_classes)
    val = np.array([], dtype=np.int64)
    if n_val:
        if n_val >= n_labels:
            raise MnistlabError(f"validation size {n_val} must be smaller than --labels {n_labels}")
        val = drawn[balanced_subset(labels[drawn], n_val, seed=seed + 1, num_classes=num_classes)]
    lab = np.setdiff1d(drawn, val)
    unl = np.setdiff1d(np.arange(len(labels)), drawn)
    return {"labelled": lab.astype(np.int64), "val": val.astype(np.int64), "unlabelled": unl.astype(np.int64)}


def holdout(n: int, fractions: tuple[float, ...], *, seed: int, labels: np.ndarray | None = None) -> list[np.ndarray]:
    """Disjoint index sets covering range(n) in the given fractions (e.g. (0.6, 0.4) or (0.6, 0.2, 0.2)).

    With `labels`, the split is stratified: each part keeps the class proportions.
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) <= 0:
        raise MnistlabError(f"split fractions {fractions} must be positive and sum to 1")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for g in groups:
        g = rng.permutation(g)
        cuts = np.round(np.cumsum(fractions)[:-1] * len(g)).astype(int)
        for i, piece in enumerate(np.split(g, cuts)):
            parts[i].append(piece)
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]


def kfold(n: int, k: int, *, seed: int, labels: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, val) pairs; the val parts are disjoint and cover range(n). Stratified when `labels` is given."""
    if not 2 <= k <= n:
        raise MnistlabError(f"k-fold needs 2 ≤ k ≤ {n}, got {k}")
    folds = holdout(n, tuple([1.0 / k] * k), seed=seed, labels=labels)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), folds[i]) for i in range(k)]
