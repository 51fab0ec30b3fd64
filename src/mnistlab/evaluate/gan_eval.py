"""Evaluate a trained GAN run with a classifier run: sample, classify, embed, and compute evaluate/gan_metrics.

The classifier is a finished `supervised` run (`runs.load_run`); without one, `cached_classifier` trains a supervised
CNN once into a cache folder under the data home, keyed by its full config, and reuses it afterwards.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio, infer
from mnistlab.evaluate import gan_metrics as gm
from mnistlab.evaluate.metrics import accuracy, softmax

# the evaluation classifier trained when none is given (≈ 99.3 % on MNIST test)
CLASSIFIER_OVERRIDES: dict[str, Any] = {"model": "cnn", "epochs": 3, "seed": 0}
CLASSIFIER_BUDGET = "quick"


def classifier_cache_root() -> Path:
    from mnistlab.data.sources import data_home

    return data_home() / "gan-classifiers"


def cached_classifier(dataset: str, *, overrides: dict | None = None, budget: str | None = None,
                      threads: int = 0):
    """A supervised classifier for `dataset`, trained once into the cache (keyed by its resolved config and the code
    that trains it) and reused."""
    from mnistlab import api
    from mnistlab.config import to_dict
    from mnistlab.models import MODELS
    from mnistlab.runs import load_run, source_fingerprint

    over = {**CLASSIFIER_OVERRIDES, **(overrides or {}), "dataset": dataset}
    budget = budget or CLASSIFIER_BUDGET
    cfg = {k: v for k, v in to_dict(api.resolve_config("supervised", budget=budget, overrides=over)).items()
           if k != "threads"}
    code = source_fingerprint("mnistlab.methods.supervised", "mnistlab.train", MODELS.get(cfg["model"]).__module__)
    key = hashlib.sha256(json.dumps({**cfg, "code": code}, sort_keys=True).encode()).hexdigest()[:12]
    out = classifier_cache_root() / f"supervised-{dataset}-{key}"
    if not (out / "metrics.json").exists():
        api.train("supervised", command="gan eval (classifier)", out=out, resume=True, budget=budget,
                  overrides={**over, **({"threads": threads} if threads else {})})
    return load_run(out)


def evaluate_generator(run_dir: str | Path, classifier, *, n: int = 10000, seed: int = 0, nn_samples: int = 1000,
                       precision: str = "auto") -> dict[str, Any]:
    """All GAN metrics for the generator of `run_dir`, with `classifier` (a `runs.LoadedRun`).

    Sampling is fp32 (seeded, deterministic); the classifier runs in `precision` (auto: bf16 where the CPU has it).
    """
    from mnistlab.precision import resolve_precision

    precision = resolve_precision(precision)
    from mnistlab.data import load_dataset
    from mnistlab.errors import MnistlabError
    from mnistlab.models.gan import load_generator, sample

    G, spec = load_generator(run_dir)
    config = fileio.read_json(Path(run_dir) / "config.json")
    ds = load_dataset(config.get("dataset", "mnist"))
    model, pre = classifier.model, classifier.spec.get("preprocess", {})
    if classifier.spec.get("num_classes") != ds.num_classes or not hasattr(model, "embed"):
        raise MnistlabError(f"classifier {classifier.dir} does not fit dataset {ds.name} (classes / embed)")
    if n < 10:
        raise MnistlabError("--n must be at least 10")
    images, requested = sample(G, n, seed=seed)  # (n, C, 28, 28) uint8
    x = images.numpy()
    k = ds.num_classes
    probs = softmax(infer.logits(model, x, spec=pre, precision=precision))
    preds = probs.argmax(1)
    score_mean, score_std = gm.mnist_score_splits(probs)

    rng = np.random.default_rng(seed)
    m = min(n, len(ds.test_y))
    test_x, test_y = ds.test_x[:m], ds.test_y[:m]
    train_sub = np.sort(rng.choice(len(ds.train_y), m, replace=False))
    f_gen = infer.embeddings(model, x, spec=pre, precision=precision)
    f_test = infer.embeddings(model, test_x, spec=pre, precision=precision)
    f_train = infer.embeddings(model, ds.train_x[train_sub], spec=pre, precision=precision)
    fid = gm.frechet_distance(f_gen, f_test)
    floor = gm.frechet_distance(f_train, f_test)
    test_probs = softmax(infer.logits(model, test_x, spec=pre, precision=precision))

    q = min(nn_samples, n, m)
    nn_gen = gm.nearest_neighbour_distances(x[:q], ds.train_x)
    nn_test = gm.nearest_neighbour_distances(test_x[:q], ds.train_x)
    out: dict[str, Any] = {
        "run": str(run_dir), "classifier": str(classifier.dir), "dataset": ds.name,
        "conditional": bool(requested is not None),
        "n": n, "seed": seed, "precision": precision,
        "checkpoint_step": spec.get("checkpoint_step"),  # None: the final generator, else an unfinished run
        "mnist_score": gm.mnist_score(probs), "mnist_score_splits": [score_mean, score_std],
        "mnist_score_real_test": gm.mnist_score(test_probs),
        "classifier_test_accuracy": accuracy(np.log(test_probs + 1e-12), test_y),
        "fid": fid, "fid_floor_train_vs_test": floor, "fid_ratio_to_floor": fid / max(floor, 1e-12),
        "class_histogram": gm.class_histogram(preds, k),
        "nn_distance_generated_median": float(np.median(nn_gen)),
        "nn_distance_test_median": float(np.median(nn_test)),
        "nn_distance_generated_min": float(nn_gen.min()),
        "nn_samples": q,
    }
    if requested is not None:
        out.update({f"conditional_{k2}": v for k2, v in
                    gm.conditional_agreement(preds, requested.numpy(), k).items()})
    return out
