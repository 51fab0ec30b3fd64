"""GAN metrics of a generator's samples, from arrays: a classifier's probabilities and embeddings of generated, test
and training images (computed by `api.evaluate_generator`, which also owns the cached evaluation classifier)."""
from __future__ import annotations

from typing import Any

import numpy as np

from mnistlab.evaluate import gan_metrics as gm
from mnistlab.evaluate.metrics import accuracy


def generator_metrics(*, probs: np.ndarray, test_probs: np.ndarray, test_y: np.ndarray, f_gen: np.ndarray,
                      f_test: np.ndarray, f_train: np.ndarray, x: np.ndarray, test_x: np.ndarray,
                      train_x: np.ndarray, requested: np.ndarray | None, num_classes: int,
                      nn_samples: int) -> dict[str, Any]:
    """Every GAN metric. probs (n, K) of the generated images x (n, C, H, W) uint8; test_probs (m, K) of test_x;
    f_* (·, D) classifier embeddings; requested (n,) the classes asked of a conditional generator (else None)."""
    preds = probs.argmax(1)
    score_mean, score_std = gm.mnist_score_splits(probs)
    fid = gm.frechet_distance(f_gen, f_test)
    floor = gm.frechet_distance(f_train, f_test)
    q = min(nn_samples, len(x), len(test_x))
    nn_gen = gm.nearest_neighbour_distances(x[:q], train_x)
    nn_test = gm.nearest_neighbour_distances(test_x[:q], train_x)
    out: dict[str, Any] = {
        "mnist_score": gm.mnist_score(probs), "mnist_score_splits": [score_mean, score_std],
        "mnist_score_real_test": gm.mnist_score(test_probs),
        "classifier_test_accuracy": accuracy(np.log(test_probs + 1e-12), test_y),
        "fid": fid, "fid_floor_train_vs_test": floor, "fid_ratio_to_floor": fid / max(floor, 1e-12),
        "class_histogram": gm.class_histogram(preds, num_classes),
        "nn_distance_generated_median": float(np.median(nn_gen)),
        "nn_distance_test_median": float(np.median(nn_test)),
        "nn_distance_generated_min": float(nn_gen.min()),
        "nn_samples": q,
    }
    if requested is not None:
        out.update({f"conditional_{k2}": v for k2, v in
                    gm.conditional_agreement(preds, requested, num_classes).items()})
    return out
