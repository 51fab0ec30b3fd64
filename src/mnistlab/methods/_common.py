"""Pieces every classifier method uses: set-up, schedules, evaluation, and the standard classifier outputs."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mnistlab import infer
from mnistlab.data import Dataset, load_dataset
from mnistlab.evaluate.metrics import (accuracy, class_shares, confusion, confused_pairs, most_confused, nll,
                                      per_class_report, softmax)
from mnistlab.report import plots
from mnistlab.precision import Runtime, autocast, resolve_runtime
from mnistlab.runs import Run


@dataclass
class Setup:
    ds: Dataset
    train_x: np.ndarray  # (N, C, H, W) uint8 — possibly a subset (cfg.train_subset)
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    runtime: Runtime  # device, precision, rank, world: resolved once here, passed down

    @property
    def precision(self) -> str:
        return self.runtime.precision

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def rank(self) -> int:
        return self.runtime.rank

    @property
    def world(self) -> int:
        return self.runtime.world


def setup(cfg) -> Setup:
    """Threads, distributed group, device and precision, dataset (with the smoke-test subsets applied)."""
    runtime = resolve_runtime(cfg)
    torch.manual_seed(cfg.seed)
    ds = load_dataset(cfg.dataset)
    tx, ty, vx, vy = ds.train_x, ds.train_y, ds.test_x, ds.test_y
    if cfg.train_subset:
        tx, ty = tx[: cfg.train_subset], ty[: cfg.train_subset]
    if cfg.test_subset:
        vx, vy = vx[: cfg.test_subset], vy[: cfg.test_subset]
    return Setup(ds, tx, ty, vx, vy, runtime)


def cosine_lr(total_steps: int, warmup: int = 0, final: float = 0.0):
    """Multiplier of the base lr at each step: linear warm-up, then cosine decay to `final`."""
    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))
    return lr_at


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, x: torch.Tensor, *, precision: str, batch: int = 512) -> int:
    """Recompute every batch-norm layer's running mean/variance on clean images x (N, C, H, W) float in [0, 1].

    Why: a semi-supervised student normalises mostly strongly augmented batches, so its running statistics (which
    the EMA model copies) describe strong views, not the images it is evaluated on. An exact average over clean
    training images (momentum None) fixes that; no label is used. Runs under the precision the model is evaluated
    in (bf16 convs give slightly different statistics). Returns the number of layers recalibrated.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or len(x) == 0:
        return 0
    was_training = model.training
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    dtype = next(model.parameters()).dtype
    cl = next((p for p in model.parameters() if p.dim() == 4), None)
    for i in range(0, len(x), batch):
        xb = x[i:i + batch].to(device=next(model.parameters()).device, dtype=dtype)
        if cl is not None and cl.is_contiguous(memory_format=torch.channels_last):
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(precision, xb.device):
            model(xb)
    for m, (mom, tr) in zip(bns, saved):
        m.momentum = mom
        m.train(tr)
    model.train(was_training)
    return len(bns)


def eval_split(model, x, y, *, spec, precision, prefix: str) -> dict:
    """{prefix_accuracy, prefix_loss} on uint8 images (images labelled -1, user data without a label, left out)."""
    if (np.asarray(y) < 0).any():
        keep = np.flatnonzero(np.asarray(y) >= 0)
        x, y = x[keep], y[keep]
    if len(y) == 0:
        return {}
    lg = infer.logits(model, x, spec=spec, precision=precision)
    return {f"{prefix}_accuracy": accuracy(lg, y), f"{prefix}_loss": nll(lg, y)}


def pool_measures(model, x, y, *, prior: np.ndarray, spec, precision, prefix: str = "ulb") -> dict:
    """On the unlabelled pool, one forward: the label-free balance (`pool_balance`: the least-predicted class's share
    over its share of the labels, `pool_rarest_class`), and the accuracy on the images that hide a label
    (`prefix_accuracy`, a development measure; images labelled -1 are left out of it only)."""
    lg = infer.logits(model, x, spec=spec, precision=precision)
    if not len(lg):
        return {}
    shares = class_shares(lg.argmax(1), lg.shape[1], prior)
    out = {"pool_balance": float(shares.min()), "pool_rarest_class": int(shares.argmin())}
    known = np.asarray(y) >= 0
    if known.any():
        out.update({f"{prefix}_accuracy": accuracy(lg[known], y[known]), f"{prefix}_loss": nll(lg[known], y[known])})
    return out


def classifier_outputs(run: Run, model, *, spec: dict, ds: Dataset, test_x, test_y, history: list[dict],
                       precision: str, prefix: str = "", figures: bool = True) -> dict:
    """The standard outputs of a classifier run: test logits, curves, confusion matrix, per-class report (and their
    figures unless `figures` is False: a study's many points save the ≈ 3 s of plotting each).

    Returns the test metrics (the final model is the one evaluated: no checkpoint is chosen on the test set).
    """
    lg = infer.logits(model, test_x, spec=spec, precision=precision)
    preds = lg.argmax(1)
    cm = confusion(test_y, preds, ds.num_classes)
    report = per_class_report(test_y, preds, ds.classes)
    run.save_array(f"{prefix}test_logits.npy", lg.astype(np.float32))
    run.save_array(f"{prefix}test_labels.npy", np.asarray(test_y, np.int64))
    run.save_json(f"{prefix}classification_report.json", report)
    run.save_json(f"{prefix}confusion.json", {"classes": list(ds.classes), "matrix": cm.tolist(),
                                              "most_confused": most_confused(cm, ds.classes),
                                              "confused_pairs": confused_pairs(cm, ds.classes)})
    if history and figures:
        run.save_figure(f"{prefix}learning_curves.png", plots.learning_curves(history))
    if figures:
        run.save_figure(f"{prefix}confusion.png", plots.confusion_heatmap(cm, ds.classes))
    probs = softmax(lg)
    wrong = np.flatnonzero(preds != test_y)[:4]
    for i, idx in enumerate((list(np.arange(min(2, len(test_y)))) + list(wrong)[:2]) if figures else []):
        run.save_figure(f"{prefix}prediction_{i}.png",
                        plots.prediction_view(test_x[idx], probs[idx], ds.classes, true=int(test_y[idx])))
    return {"test_accuracy": accuracy(lg, test_y), "test_loss": nll(lg, test_y),
            "test_macro_f1": report["macro avg"]["f1-score"]}
