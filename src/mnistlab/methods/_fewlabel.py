"""Few-label classification shared by `mlp-features`, `cnn` and `rotnet`: the label split, the two training recipes
(the seed report's and ours), augmentation (on the fly or offline ×N), evaluation and the standard outputs.

Validation: `val_labels` (20 of the 100, class-balanced, like the report) are carved from the labels, never from the
test set; they are only watched (curves), never used to choose: the model of the LAST step is the one reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab import infer
from mnistlab.config import TrainConfig, to_dict
from mnistlab.data import augment
from mnistlab.data.features import FEATURES, THRESHOLD, ink_mask, profile_features
from mnistlab.data.preprocess import input_shape
from mnistlab.data.splits import labelled_split
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import accuracy, confusion, most_confused, nll, per_class_report
from mnistlab.methods._common import Setup, classifier_outputs, cosine_lr, eval_split, setup
from mnistlab.models import count_params, create_model, model_spec
from mnistlab.report import plots
from mnistlab.runs import Run
from mnistlab.train import Batcher, fit, step_generator
from mnistlab.precision import channels_last, prepare_module


@dataclass
class FewLabelConfig(TrainConfig):
    labels: int = 100  # labelled training images, class-balanced (train + validation)
    val_labels: int = 20  # carved from `labels` (the report: 80 train / 20 validation); watched, never selected on
    split_seed: int = 0  # which images are labelled (independent of `seed`, the training seed)
    augment: bool = False
    augment_mode: str = "online"  # online: fresh `digit_augment` per batch | offline: ×(expand+1) once (the report)
    expand: int = 10  # offline copies per labelled image (the report: 10)
    aug_strength: float = 1.0  # `augment.digit_augment` strength (1 = ±15°, ±10 % shift, stroke ±1 px, elastic/persp.)
    # ours | report (Adam lr 0.01, 20 full-batch epochs, binarised at 34, offline ×10) | auto: report for seed-* models
    recipe: str = "auto"
    binarize: int = -1  # ≥0: ink = pixel ≥ threshold before the model (the report: 34); -1 = grey levels
    steps: int = 0  # optimiser steps; 0 = epochs × steps per epoch
    label_smoothing: float = 0.0
    eval_points: int = 20  # points on the learning curves (validation is 20 images: cheap)
    figures: bool = True  # False: JSON/npy outputs only (benchmarks over many label draws save the PNG time)


def resolve_recipe(cfg: FewLabelConfig) -> FewLabelConfig:
    """The report's recipe overrides the optimisation settings. Applied after config.json is written, so the methods
    save the settings actually used as config_resolved.json."""
    recipe = cfg.recipe if cfg.recipe != "auto" else ("report" if cfg.model.startswith("report-") else "ours")
    if recipe not in ("ours", "report"):
        raise MnistlabError(f"unknown recipe {cfg.recipe!r}; valid: auto, ours, report")
    if cfg.augment_mode not in ("online", "offline"):
        raise MnistlabError(f"unknown augment_mode {cfg.augment_mode!r}; valid: online, offline")
    cfg.recipe = recipe
    if recipe == "report":
        # the report's batch is the whole training set ("80 lots … soit l'entièreté des données"): batch_size 0
        cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.steps, cfg.label_smoothing = 0.01, 0.0, 0, 0, 0.0
        cfg.binarize = 34 if cfg.binarize < 0 else cfg.binarize
        cfg.augment_mode = "offline"
        if cfg.budget != "smoke":
            cfg.epochs = 20
    return cfg


@dataclass
class FewLabelData:
    s: Setup
    split: dict[str, np.ndarray]
    x_lab: np.ndarray  # (N, C, H, W) uint8 labelled training images (80)
    y_lab: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_split(cfg: FewLabelConfig, run: Run) -> FewLabelData:
    """The label draw of `split_seed` (saved as splits.npz) with the smoke subsets applied."""
    if cfg.labels < 2 or cfg.val_labels < 0:
        raise MnistlabError(f"--labels must be ≥ 2 (got {cfg.labels}) and val_labels ≥ 0 (got {cfg.val_labels})")
    run.save_json("config_resolved.json", to_dict(cfg))
    s = setup(cfg)
    split = labelled_split(s.train_y, cfg.labels, seed=cfg.split_seed, n_val=cfg.val_labels,
                           num_classes=s.ds.num_classes)
    run.save_splits(**split)
    lab, val = split["labelled"], split["val"]
    return FewLabelData(s, split, s.train_x[lab], s.train_y[lab], s.train_x[val], s.train_y[val])


def to_input(x: torch.Tensor, pre: dict) -> torch.Tensor:
    """Float images in [0, 1] (possibly augmented) → model input, exactly as `preprocess` does for uint8."""
    if pre.get("binarize") is not None:
        x = (x >= (int(pre["binarize"]) - 0.5) / 255.0).float()
    if pre.get("features"):
        x = FEATURES.get(pre["features"])(x)
    return x


def save_data_figures(run: Run, d: FewLabelData, cfg: FewLabelConfig, pre: dict) -> None:
    """Binarisation before/after and one row per digit: original then its augmented variants (the report's Fig. 4)."""
    first = [int(np.flatnonzero(d.y_lab == c)[0]) for c in range(d.s.ds.num_classes) if (d.y_lab == c).any()]
    imgs = torch.from_numpy(np.ascontiguousarray(d.x_lab[first])).float() / 255  # (K, C, H, W)
    if pre.get("binarize") is not None:
        binar = (imgs >= (pre["binarize"] - 0.5) / 255).float()
        both = torch.cat([imgs, binar]).numpy()
        titles = ["grey"] * len(imgs) + [f"ink ≥ {pre['binarize']}"] * len(imgs)
        run.save_figure("binarization.png", plots.image_grid(both, titles, cols=len(imgs)))
    if str(pre.get("features", "")).startswith("profile112"):
        # the report's §4.2: what the 112 numbers are, drawn on three digits (raw pixels: counts and positions)
        few = imgs[:3]
        ink = THRESHOLD if pre.get("binarize") is None else int(pre["binarize"])  # the model's binarisation, if any
        run.save_figure("features.png", plots.feature_view(ink_mask(few, ink).float().numpy(),
                                                           profile_features(few, threshold=ink, scale=1.0).numpy(),
                                                           titles=[f"digit {d.s.ds.classes[int(d.y_lab[i])]}"
                                                                   for i in first[:3]]))
    if cfg.augment:
        gen = torch.Generator().manual_seed(cfg.seed)
        k = 7
        variants = [augment.digit_augment(imgs, gen, strength=cfg.aug_strength) for _ in range(k)]
        grid = torch.stack([imgs] + variants, 1).flatten(0, 1).numpy()  # row = digit: original, k variants
        titles = [("original" if j == 0 else f"aug {j}") for _ in range(len(imgs)) for j in range(k + 1)]
        run.save_figure("augmentation_examples.png", plots.image_grid(grid, titles, cols=k + 1))


def train_classifier(cfg: FewLabelConfig, run: Run, d: FewLabelData, *, model: torch.nn.Module, spec: dict,
                     pre: dict, resume: bool, desc: str, params: list | None = None,
                     train_mode: Callable[[torch.nn.Module], None] | None = None) -> dict:
    """Train `model` on the labelled images with cross-entropy, then write every output; returns the metrics.

    `params`: the parameters to optimise (default all; RotNet's frozen transfer passes the head's). `train_mode`
    runs before each step (RotNet's frozen transfer keeps the frozen convs' batch-norm in eval mode).
    """
    s = d.s
    is_image = len(spec["in_shape"]) == 3
    x_tr = torch.from_numpy(np.ascontiguousarray(d.x_lab)).float() / 255  # (N, C, H, W) in [0, 1]
    y_tr = torch.from_numpy(d.y_lab)
    online = cfg.augment and cfg.augment_mode == "online"
    if cfg.augment and not online:  # offline ×(expand + 1), seeded by the training seed, done once
        x_tr = augment.expand(x_tr, torch.Generator().manual_seed(cfg.seed + 7919), copies=cfg.expand,
                              strength=cfg.aug_strength)
        y_tr = y_tr.repeat(cfg.expand + 1)
    x_in = None if online else to_input(x_tr, pre).to(s.device)  # fixed inputs: preprocessed once, on the device
    x_tr, y_tr = (x_tr.to(s.device) if online else None), y_tr.to(s.device)
    bs = min(cfg.batch_size, len(y_tr)) if cfg.batch_size > 0 else len(y_tr)  # 0 = full batch
    batcher = Batcher(len(y_tr), bs, seed=cfg.seed, rank=s.rank, world=s.world)
    total = cfg.steps or max(1, round(cfg.epochs * batcher.steps_per_epoch))
    params = params if params is not None else list(model.parameters())
    if cfg.recipe == "report":
        opt = torch.optim.Adam(params, lr=cfg.lr)
        lr_at = None
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        lr_at = cosine_lr(total, warmup=min(50, total // 10))

    def batch_at(step: int):
        idx = batcher(step).to(s.device)
        if online:
            gen = step_generator(cfg.seed, step, device=s.device)
            x = augment.digit_augment(x_tr[idx], gen, strength=cfg.aug_strength)
            if s.ds.hflip_safe:  # mirror images keep their class only where the dataset says so (clothes, not digits)
                x = augment.hflip(x, gen)
            x = to_input(x, pre)
        else:
            x = x_in[idx]
        return (channels_last(x) if is_image else x), y_tr[idx]

    def loss_fn(batch, step):
        if train_mode is not None:
            train_mode(model)
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean()}

    def evaluate(step):
        return eval_split(model, d.x_val, d.y_val, spec=pre, precision=s.precision, prefix="val")

    eval_every = max(1, total // max(1, cfg.eval_points))
    history = fit(model, opt, run=run, total_steps=total, batch_at=batch_at, loss_fn=loss_fn, evaluate=evaluate,
                  eval_every=eval_every, steps_per_epoch=batcher.steps_per_epoch, lr_at=lr_at,
                  precision=s.precision, seed=cfg.seed, ckpt_every=cfg.ckpt_every, resume=resume, world=s.world,
                  desc=desc)
    run.save_model(model, spec)
    if cfg.figures:
        save_data_figures(run, d, cfg, pre)
        metrics = classifier_outputs(run, model, spec=pre, ds=s.ds, test_x=s.test_x, test_y=s.test_y,
                                     history=history, precision=s.precision)
    else:
        metrics = lean_outputs(run, model, pre=pre, s=s, precision=s.precision)
    last = history[-1] if history else {}
    return {**metrics, "val_accuracy": last.get("val_accuracy"), "labels": cfg.labels, "split_seed": cfg.split_seed,
            "train_labels": int(len(d.y_lab)), "val_labels": int(len(d.y_val)), "augment": cfg.augment,
            "recipe": cfg.recipe, "model": cfg.model, "params": count_params(model),
            "trainable_params": int(sum(p.numel() for p in params)), "precision": s.precision, "device": str(s.device), "steps": total}


def lean_outputs(run: Run, model: torch.nn.Module, *, pre: dict, s: Setup, precision: str) -> dict:
    """The JSON half of `classifier_outputs` (logits, report, confusion), without figures."""
    lg = infer.logits(model, s.test_x, spec=pre, precision=precision)
    preds = lg.argmax(1)
    report = per_class_report(s.test_y, preds, s.ds.classes)
    cm = confusion(s.test_y, preds, s.ds.num_classes)
    run.save_array("test_logits.npy", lg.astype(np.float32))
    run.save_json("classification_report.json", report)
    run.save_json("confusion.json", {"classes": list(s.ds.classes), "matrix": cm.tolist(),
                                     "most_confused": most_confused(cm, s.ds.classes)})
    return {"test_accuracy": accuracy(lg, s.test_y), "test_loss": nll(lg, s.test_y),
            "test_macro_f1": report["macro avg"]["f1-score"]}


def build_model(cfg: FewLabelConfig, d: FewLabelData, pre: dict, **kwargs) -> tuple[torch.nn.Module, dict]:
    """The classifier and its model.json spec (with the preprocessing, so predict/serve reuse it)."""
    in_shape = input_shape(pre, d.s.ds.shape)
    model = create_model(cfg.model, in_shape=in_shape, num_classes=d.s.ds.num_classes, **kwargs)
    spec = model_spec(cfg.model, in_shape=in_shape, num_classes=d.s.ds.num_classes, preprocess=pre, **kwargs)
    model = prepare_module(model, d.s.runtime) if len(in_shape) == 3 else model.to(d.s.device)
    return model, spec


def preprocessing(cfg: FewLabelConfig, features: str | None = None) -> dict:
    pre: dict = {}
    if cfg.binarize >= 0:
        pre["binarize"] = int(cfg.binarize)
    if features:
        pre["features"] = features
    return pre
