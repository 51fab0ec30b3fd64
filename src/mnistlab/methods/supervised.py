"""Supervised training on all labelled training images (the brief's Part 2): MLP or CNN, cross-entropy."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.data import augment
from mnistlab.data.preprocess import input_shape, preprocess
from mnistlab.data.splits import holdout
from mnistlab.methods import METHODS
from mnistlab.methods._common import classifier_outputs, cosine_lr, eval_split, setup
from mnistlab.models import count_params, create_model, model_spec
from mnistlab.config import TrainConfig
from mnistlab.train import Batcher, fit, prepare_module, step_generator


@dataclass
class SupervisedConfig(TrainConfig):
    model: str = "cnn"
    hidden: int = 0  # MLP hidden size (one layer); 0 = the model's default layers
    dropout: float = -1.0  # <0: the model's default
    epochs: float = 12.0
    batch_size: int = 128
    lr: float = 2e-3  # AdamW, per batch of `batch_size`, cosine-decayed
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: bool = True  # random affine: ±10°, ±10 % shift, ×0.9–1.1 zoom (+ flips where the dataset allows)
    val_size: int = 0  # training images held out (stratified) to monitor generalisation; 0 = train on all
    split_seed: int = 0
    binarize: int = -1  # ≥0: ink = pixel ≥ threshold (the seed report used 34)


BUDGETS = {
    "smoke": {"model": "cnn-small", "epochs": 1, "train_subset": 512, "test_subset": 500, "batch_size": 64},
    "quick": {},
    "full": {"epochs": 20},
}


def model_kwargs(cfg: SupervisedConfig) -> dict:
    kw = {}
    if cfg.hidden > 0:
        kw["hidden"] = [cfg.hidden]
    if cfg.dropout >= 0:
        kw["dropout"] = cfg.dropout
    return kw


def augment_batch(x: torch.Tensor, gen: torch.Generator, *, hflip: bool) -> torch.Tensor:
    x = augment.random_affine(x, gen, degrees=10, translate=0.1, scale=(0.9, 1.1))
    return augment.hflip(x, gen) if hflip else x


@METHODS.register("supervised", config=SupervisedConfig, budgets=BUDGETS, task="supervised")
def run(cfg: SupervisedConfig, run, *, resume: bool = False) -> dict:
    s = setup(cfg)
    x_all, y_all = s.train_x, s.train_y
    train_idx, val_idx = np.arange(len(y_all)), np.array([], dtype=np.int64)
    if cfg.val_size:
        frac = cfg.val_size / len(y_all)
        train_idx, val_idx = holdout(len(y_all), (1 - frac, frac), seed=cfg.split_seed, labels=y_all)
    run.save_splits(train=train_idx, val=val_idx)
    spec_pre = {"binarize": cfg.binarize} if cfg.binarize >= 0 else {}
    in_shape = input_shape(spec_pre, s.ds.shape)
    kwargs = model_kwargs(cfg)
    model = prepare_module(create_model(cfg.model, in_shape=in_shape, num_classes=s.ds.num_classes, **kwargs),
                           s.precision)
    spec = model_spec(cfg.model, in_shape=in_shape, num_classes=s.ds.num_classes, preprocess=spec_pre, **kwargs)

    x_tr = torch.from_numpy(np.ascontiguousarray(x_all[train_idx]))  # (N, C, H, W) uint8, kept in memory
    y_tr = torch.from_numpy(y_all[train_idx])
    batcher = Batcher(len(y_tr), cfg.batch_size, seed=cfg.seed, rank=s.rank, world=s.world)
    total = max(1, round(cfg.epochs * batcher.steps_per_epoch))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    is_image = len(in_shape) == 3

    def batch_at(step: int):
        idx = batcher(step)
        x = preprocess(x_tr[idx], spec_pre)
        if cfg.augment and is_image:
            x = augment_batch(x, step_generator(cfg.seed, step), hflip=s.ds.hflip_safe)
        if s.precision == "bf16" and is_image:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y_tr[idx]

    def loss_fn(batch, step):
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean()}

    def evaluate(step):
        out = eval_split(model, x_all[val_idx], y_all[val_idx], spec=spec_pre, precision=s.precision, prefix="val")
        # the test curve is shown, never used to choose anything: the final model is the one reported
        out.update(eval_split(model, s.test_x, s.test_y, spec=spec_pre, precision=s.precision, prefix="test"))
        return out

    history = fit(model, opt, run=run, total_steps=total, batch_at=batch_at, loss_fn=loss_fn, evaluate=evaluate,
                  steps_per_epoch=batcher.steps_per_epoch, lr_at=cosine_lr(total, warmup=min(200, total // 10)),
                  precision=s.precision, seed=cfg.seed, ckpt_every=cfg.ckpt_every, resume=resume,
                  world=s.world, desc=f"supervised {cfg.model}")
    run.save_model(model, spec)
    metrics = classifier_outputs(run, model, spec=spec_pre, ds=s.ds, test_x=s.test_x,
                                 test_y=s.test_y, history=history, precision=s.precision)
    last = history[-1] if history else {}
    return {**metrics, "val_accuracy": last.get("val_accuracy"), "train_images": int(len(train_idx)),
            "params": count_params(model), "precision": s.precision, "steps": total, "epochs": cfg.epochs}
