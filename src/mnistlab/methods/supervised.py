"""Supervised training on all labelled training images (the brief's Part 2): MLP or CNN, cross-entropy."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.data import augment, shifts
from mnistlab.data.preprocess import input_shape, preprocess
from mnistlab.data.splits import holdout, kfold
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import softmax
from mnistlab.infer import tta_rule
from mnistlab.methods import METHODS
from mnistlab.methods._common import classifier_outputs, cosine_lr, eval_split, setup
from mnistlab.models import config_options, count_params, create_model, model_spec
from mnistlab.report import plots
from mnistlab.config import TrainConfig
from mnistlab.train import Batcher, fit, step_generator
from mnistlab.precision import channels_last, prepare_module


@dataclass
class SupervisedConfig(TrainConfig):
    model: str = "cnn"
    hidden: int = 0  # MLP hidden size (one layer); 0 = the model's default layers
    dropout: float = -1.0  # <0: the model's default
    width: int = 0  # >0: first conv width of a CNN, doubled at each stage (w, 2w, 4w); 0 = the model's default
    epochs: float = 12.0
    batch_size: int = 128
    lr: float = 2e-3  # AdamW, per batch of `batch_size`, cosine-decayed
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: bool = True  # random affine (below) + flips where the dataset allows
    degrees: float = 10.0  # with augment: rotation range ±degrees
    translate: float = 0.1  # with augment: shift range ± this fraction of the side (0.1 ≈ ±2.8 px at 28 px)
    zoom: float = 0.1  # with augment: scale in 1 ± zoom
    shift: int = 0  # with augment: then an exact integer shift of up to ±shift px (a padded random crop)
    cutout: int = 0  # with augment: zero a random square of this side (pixels) in every image (random erasing)
    robust: float = 0.0  # with augment: this fraction of each batch gets one user-like change (data.shifts.random_view)
    tta: bool = False  # predict with the mean logits of the image and its mirror (datasets whose classes survive flips)
    val_size: int = 0  # training images held out (stratified) to monitor generalisation; 0 = train on all
    split_seed: int = 0
    binarize: int = -1  # ≥0: ink = pixel ≥ threshold (the seed report used 34)
    # protocol: "official" = 60k train / 10k test; "60/40" and "60/20/20" re-split all 70k images (stratified by
    # split_seed) into train / test and train / val / test (the brief's Q1.6 and Q2)
    split: str = "official"
    folds: int = 0  # k > 1: k-fold cross-validation of the training part; this run trains on the others…
    fold: int = 0  # …and validates on fold `fold` (0 ≤ fold < folds)
    figures: bool = True  # False: JSON / npy outputs only (the parameter studies' points)

    # checked when the config is built, before a run folder exists (-1 = "the model's default" where it applies)
    RANGES = {"dropout": (-1, 0.95), "label_smoothing": (0, 0.99), "width": (0, 512), "hidden": (0, 65536),
              "robust": (0, 1), "degrees": (0, 180), "translate": (0, 0.5), "zoom": (0, 0.9), "shift": (0, 14), "cutout": (0, 28)}


BUDGETS = {
    "smoke": {"model": "cnn-small", "epochs": 1, "train_subset": 512, "test_subset": 500, "batch_size": 64},
    "quick": {},
    "full": {"epochs": 20},
}


def augment_batch(x: torch.Tensor, gen: torch.Generator, cfg: SupervisedConfig, *, hflip: bool) -> torch.Tensor:
    """Label-preserving training view: random affine, a mirror where the dataset allows it, then cutout."""
    x = augment.random_affine(x, gen, degrees=cfg.degrees, translate=cfg.translate,
                              scale=(1 - cfg.zoom, 1 + cfg.zoom))
    x = augment.random_shift(x, gen, pixels=cfg.shift)
    x = augment.hflip(x, gen) if hflip else x
    x = shifts.random_view(x, gen, p=cfg.robust) if cfg.robust > 0 and x.shape[1:] == (1, 28, 28) else x
    return augment.cutout(x, gen, size=cfg.cutout)


SPLITS = {"official": None, "60/40": (0.6, 0.4), "60/20/20": (0.6, 0.2, 0.2)}


def make_splits(cfg: SupervisedConfig, train_y: np.ndarray, test_y: np.ndarray) -> dict[str, np.ndarray]:
    """Index sets of the protocol. "official": train/val index the training set, test the test set; otherwise all
    three index the base = training set followed by test set (70k images). Disjoint; together they cover the base."""
    if cfg.split not in SPLITS:
        raise MnistlabError(f"unknown split {cfg.split!r}; valid: {', '.join(SPLITS)}")
    if cfg.split == "official":
        train, val, test = np.arange(len(train_y)), np.array([], dtype=np.int64), np.arange(len(test_y))
        if cfg.val_size:
            if not 0 < cfg.val_size < len(train_y):
                raise MnistlabError(f"val_size must be between 1 and {len(train_y) - 1}")
            frac = cfg.val_size / len(train_y)
            train, val = holdout(len(train_y), (1 - frac, frac), seed=cfg.split_seed, labels=train_y)
        labels = train_y
    else:
        labels = np.concatenate([train_y, test_y])
        parts = holdout(len(labels), SPLITS[cfg.split], seed=cfg.split_seed, labels=labels)
        train, test = parts[0], parts[-1]
        val = parts[1] if len(parts) == 3 else np.array([], dtype=np.int64)
    if cfg.folds:
        if not 0 <= cfg.fold < cfg.folds:
            raise MnistlabError(f"fold must be in 0..{cfg.folds - 1}, got {cfg.fold}")
        # k-fold over the development images (train + val): the test part is never touched
        dev = np.sort(np.concatenate([train, val]))
        tr, va = kfold(len(dev), cfg.folds, seed=cfg.split_seed, labels=labels[dev])[cfg.fold]
        train, val = dev[tr], dev[va]
    return {"train": train.astype(np.int64), "val": val.astype(np.int64), "test": test.astype(np.int64)}


@METHODS.register("supervised", config=SupervisedConfig, budgets=BUDGETS, task="supervised",
                  model_options=config_options)
def run(cfg: SupervisedConfig, run, *, resume: bool = False) -> dict:
    s = setup(cfg)
    sp = make_splits(cfg, s.train_y, s.test_y)
    run.save_splits(**sp)
    if cfg.split == "official":
        x_base, y_base = s.train_x, s.train_y
        test_x, test_y = s.test_x, s.test_y
    else:  # the brief's re-split of all images: base = train then test
        x_base, y_base = np.concatenate([s.train_x, s.test_x]), np.concatenate([s.train_y, s.test_y])
        test_x, test_y = x_base[sp["test"]], y_base[sp["test"]]
    train_idx, val_idx = sp["train"], sp["val"]
    spec_pre = {"binarize": cfg.binarize} if cfg.binarize >= 0 else {}
    if tta_rule(cfg.tta, s.ds) == "hflip":
        spec_pre["tta"] = "hflip"  # saved with the model: predict, reject and serve average the mirror too
    in_shape = input_shape(spec_pre, s.ds.shape)
    kwargs = config_options(cfg)
    model = prepare_module(create_model(cfg.model, in_shape=in_shape, num_classes=s.ds.num_classes, **kwargs),
                           s.runtime)
    spec = model_spec(cfg.model, in_shape=in_shape, num_classes=s.ds.num_classes, preprocess=spec_pre, **kwargs)

    x_tr = torch.from_numpy(np.ascontiguousarray(x_base[train_idx])).to(s.device)  # (N, C, H, W) uint8, on the device
    y_tr = torch.from_numpy(y_base[train_idx]).to(s.device)
    x_val, y_val = x_base[val_idx], y_base[val_idx]
    batcher = Batcher(len(y_tr), cfg.batch_size, seed=cfg.seed, rank=s.rank, world=s.world)
    total = max(1, round(cfg.epochs * batcher.steps_per_epoch))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    is_image = len(in_shape) == 3

    def batch_at(step: int):
        idx = batcher(step).to(s.device)
        x = preprocess(x_tr[idx], spec_pre)
        if cfg.augment and is_image:
            x = augment_batch(x, step_generator(cfg.seed, step, device=s.device), cfg, hflip=s.ds.hflip_safe)
        return (channels_last(x) if is_image else x), y_tr[idx]

    def loss_fn(batch, step):
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean()}

    def evaluate(step):
        out = eval_split(model, x_val, y_val, spec=spec_pre, precision=s.precision, prefix="val")
        # the test curve is shown, never used to choose anything: the final model is the one reported
        out.update(eval_split(model, test_x, test_y, spec=spec_pre, precision=s.precision, prefix="test"))
        return out

    history = fit(model, opt, run=run, total_steps=total, batch_at=batch_at, loss_fn=loss_fn, evaluate=evaluate,
                  steps_per_epoch=batcher.steps_per_epoch, lr_at=cosine_lr(total, warmup=min(200, total // 10)),
                  precision=s.precision, seed=cfg.seed, ckpt_every=cfg.ckpt_every, resume=resume,
                  world=s.world, desc=f"supervised {cfg.model}")
    run.save_model(model, spec)
    metrics = classifier_outputs(run, model, spec=spec_pre, ds=s.ds, test_x=test_x,
                                 test_y=test_y, history=history, precision=s.precision, figures=cfg.figures)
    if run.writer:
        run.save_json("history.json", history)
        if cfg.figures:
            mistakes_grid(run, test_x, test_y, s.ds.classes)
    last = history[-1] if history else {}
    return {**metrics, "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss"),
            "train_images": int(len(train_idx)), "val_images": int(len(val_idx)), "test_images": int(len(test_y)),
            "split": cfg.split, "params": count_params(model), "precision": s.precision, "device": str(s.device),
            "steps": total, "epochs": cfg.epochs}


def mistakes_grid(run, test_x: np.ndarray, test_y: np.ndarray, classes, n: int = 24) -> None:
    """The n most confident test mistakes (from the saved test logits): image, true → predicted (confidence)."""
    lg = np.load(run.path("test_logits.npy"))
    p = softmax(lg.astype(np.float64))
    pred = p.argmax(1)
    wrong = np.flatnonzero(pred != test_y)
    if not len(wrong):
        return
    wrong = wrong[np.argsort(-p[wrong, pred[wrong]], kind="stable")][:n]
    titles = [f"{classes[test_y[i]]}→{classes[pred[i]]} {p[i, pred[i]]:.2f}" for i in wrong]
    run.save_figure("mistakes.png", plots.image_grid(test_x[wrong], titles, cols=8))
