"""The semi-supervised framework of the FixMatch family: config, state, views, loss, and the run as setup / step /
finish. A member (fixmatch.py, freematch.py) is one small file: its `ThresholdRule`, its config defaults, a
registration.

Per step: labelled batch `x_lb` (B, weak view) + unlabelled batch of μB images seen twice, weak `x_ulb_w` and
strong `x_ulb_s`. The teacher (the EMA of the student by default, or the student itself as in the paper) labels the
weak view; the member's threshold rule decides which pseudo-labels count; the student must predict those on the
strong view. Options: distribution alignment of the teacher's probabilities (ReMixMatch), a mild strong warp, BN
statistics recomputed on clean images after training, and a self-training refine pass (methods/_refine.py). The
measurements behind the defaults: benchmarks/notes/recipe-history.md.

Model selection: none. The EMA model after the last step is evaluated and saved — never a checkpoint chosen on the
test set; with `val_labels` > 0 a validation split carved from the labels is reported beside it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.config import TrainConfig
from mnistlab.data.preprocess import as_tensor
from mnistlab.data.randaugment import OPS, strong_view, weak_view
from mnistlab.data.splits import labelled_split
from mnistlab.errors import MnistlabError
from mnistlab.infer import tta_rule
from mnistlab.methods import METHODS
from mnistlab.methods._common import (Setup, classifier_outputs, cosine_lr, eval_split, pool_measures, recalibrate_bn,
                                     setup)
from mnistlab.methods._ema import EMA, teacher_batch_stats
from mnistlab.methods._refine import self_train
from mnistlab.methods._restarts import best_of
from mnistlab.methods.rotnet import pretrained_pretext, transfer_weights
from mnistlab.models import MODELS, config_options, count_params, create_model, model_spec
from mnistlab.precision import channels_last, prepare_module
from mnistlab.train import Batcher, fit, step_generator


@dataclass
class SSLConfig(TrainConfig):
    model: str = "cnn"
    width: int = 0  # >0: first conv width of a CNN, doubled at each stage (w, 2w, 4w); 0 = the model's default
    labels: int = 100  # labelled images, class-balanced (val_labels of them held out for validation)
    split_seed: int = 0  # which images are labelled (independent of the training seed)
    val_labels: int = 0  # labels carved out as a validation split (reported, never used to choose anything)
    augment: bool = True  # augment the labelled batch (in `labelled_view`)
    # the labelled batch's view: weak | strong (the unlabelled strong view: each copy of a labelled image a new view)
    labelled_view: str = "weak"
    # >1: that many training seeds (seed, seed + 1, …), the start with the most even predictions on the pool kept
    restarts: int = 1
    batch_size: int = 32  # labelled images per step (B)
    mu: int = 7  # unlabelled images per step = mu × B
    epochs: float = 13.0  # passes over the unlabelled set (steps = epochs × N_unlabelled / (mu B)); 13 ≈ 3500 steps
    steps: int = 0  # optimiser steps; 0 = from epochs
    lr: float = 0.05  # SGD nesterov, momentum 0.9, cosine decay to 0 after a short warm-up
    weight_decay: float = 5e-4
    lambda_u: float = 1.0  # weight of the unlabelled loss
    threshold: float = 0.95  # confidence a pseudo-label needs (fixed rule); the cap of the adaptive rule
    threshold_mode: str = "fixed"  # the threshold rule: fixed (fixmatch.py) | adaptive (freematch.py)
    dist_align: bool = True  # ReMixMatch distribution alignment of the teacher's probabilities to uniform
    sinkhorn: int = 0  # > 0: that many Sinkhorn–Knopp iterations balance each batch's pseudo-labels over the classes
    teacher: str = "ema"  # ema | student: which model labels the weak view
    # EMA teacher's batch norm: "running" = the student's running statistics (mostly strong views); "batch" = each weak
    # batch normalised by its own statistics (no gain once BN is recalibrated: benchmarks/notes/recipe-history.md)
    teacher_bn: str = "running"
    ema: float = 0.999  # EMA decay of the evaluated (and teacher) model, warmed up as min(ema, (1+t)/(10+t))
    stats_momentum: float = 0.99  # running means of DA and adaptive thresholds (0.999 is too slow for ~10³ steps)
    n_ops: int = 2  # strong-view ops per image on average
    cutout: int = 10  # strong-view cutout square side (pixels)
    strong_ops: str = "all"  # the strong view's ops: all of data/randaugment.OPS, or a comma-separated subset
    # scale of the strong view's warp (1 = ±25°, shear ±15°, shift ±15 %, zoom 0.8–1.15); a strong warp turns crossed
    # 7s into 2s and 4s on MNIST (benchmarks/notes/recipe-history.md)
    strong_affine: float = 0.25
    eval_points: int = 4  # evaluations (learning-curve points) per run
    curve_test_size: int = 2000  # test images in the learning curve (shown only; the final test uses all)
    init: str = "random"  # random | rotnet: start from the rotation-pretext trunk (cached; needs a pretext model)
    # weak view: warp (±5°, ±2 px, ×0.95–1.05) | shift (exact ±2 px) | auto = shift where the dataset is `aligned`
    weak: str = "auto"
    # prediction: hflip (true) = mean logits of the image and its mirror (saved in the model spec, so predict / serve
    # do the same) | none (false) | auto = hflip where the dataset's classes survive a mirror (`infer.tta_rule`).
    # Fixed before training, never chosen on the test set; the other choice is reported beside it (`test_no_tta_accuracy`)
    tta: str = "auto"
    bn_recalibrate: int = 8192  # clean unlabelled images to recompute the EMA model's BN statistics on (0 = off)
    # self-training after the SSL stage (methods/_refine.py): rounds of (label the clean unlabelled images, fine-tune)
    refine_rounds: int = 3
    refine_epochs: float = 2.0  # passes over the unlabelled images per round
    refine_lr: float = 0.01
    refine_batch: int = 256
    selection: str = "final-ema"  # the reported model: the EMA weights after the last step (no selection)
    # EMA teacher only: strong views whose pseudo-label does not count (their loss is exactly 0) skip the student's
    # forward and backward — the same objective for fewer FLOPs; only BN's batch statistics see fewer images
    skip_unconfident: bool = False
    fewlabel_recipe: str = ""  # the recipe `fewlabel` picked without --method (methods/recipes.py); "" = none

    # what a run started before `weak`, `tta` and refine existed did: a resume checks it (Run.start)
    LEGACY = {"weak": "warp", "tta": "none", "refine_epochs": 0.0, "refine_rounds": 0}
    RANGES = {"threshold": (0, 1), "ema": (0, 1), "stats_momentum": (0, 1), "mu": (1, 64), "lambda_u": (0, 100),
              "strong_affine": (0, 4), "sinkhorn": (0, 100), "n_ops": (0, 16), "cutout": (0, 28),
              "bn_recalibrate": (0, 10 ** 6), "width": (0, 512), "refine_epochs": (0, 100), "refine_rounds": (0, 20),
              "refine_lr": (0, 10), "refine_batch": (1, 65536)}


BUDGETS = {
    # smoke: 16 steps; 3000 training images so that --labels 1000 (the study's Fashion-MNIST row) still draws
    "smoke": {"model": "cnn-small", "labels": 20, "train_subset": 3000, "test_subset": 300, "batch_size": 8,
              "mu": 2, "steps": 16, "curve_test_size": 100, "threshold": 0.5, "refine_rounds": 1},
    "quick": {},
    "full": {"epochs": 30},
}


# ------------------------------------------------------------------------------------------------ threshold rules


class ThresholdRule(Protocol):
    """Which pseudo-labels count. `buffers` are running statistics, kept in the state (so checkpointed)."""

    name: str

    def buffers(self, num_classes: int) -> dict[str, torch.Tensor]: ...

    def update(self, state: SSLState, probs: torch.Tensor, momentum: float) -> None: ...

    def select(self, state: SSLState, probs: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(labels (N,), mask (N,) float in {0, 1}) from teacher probabilities (N, K)."""


RULES: dict[str, ThresholdRule] = {}


def register_rule(rule: ThresholdRule) -> ThresholdRule:
    RULES[rule.name] = rule
    return rule


def all_rules() -> dict[str, ThresholdRule]:
    METHODS.names()  # imports every method file, so every member's rule is registered
    return RULES


def rule_for(mode: str) -> ThresholdRule:
    rules = all_rules()
    if mode not in rules:
        raise MnistlabError(f"unknown threshold_mode {mode!r}; valid: {', '.join(sorted(rules))}")
    return rules[mode]


class SSLState(nn.Module):
    """Everything a resume must restore, in one module for the loop's checkpoint: student, EMA, running statistics.

    It holds the buffers of every registered rule (a few floats each): a checkpoint's layout does not depend on the
    rule, so runs checkpointed before the family was split still resume."""

    def __init__(self, student: nn.Module, num_classes: int):
        super().__init__()
        self.student = student
        self.ema = EMA(student)
        k = num_classes
        self.register_buffer("p_model", torch.full((k,), 1.0 / k))  # running mean teacher probabilities (DA)
        for rule in all_rules().values():
            for name, value in rule.buffers(k).items():
                self.register_buffer(name, value)


def align(probs: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    """Distribution alignment to a uniform class prior: p ← normalise(p / p_model). (N, K) → (N, K)."""
    p = probs / p_model.clamp_min(1e-6)
    return p / p.sum(1, keepdim=True)


def sinkhorn(probs: torch.Tensor, iters: int = 3) -> torch.Tensor:
    """Balanced soft assignment (Sinkhorn–Knopp, as SeLa / SwAV): rescale the batch's probabilities so that every
    class receives the same total mass N/K and every row still sums to 1. (N, K) → (N, K); one class cannot then
    take the pseudo-labels of another within a batch."""
    q = probs.clamp_min(1e-8).t()  # (K, N)
    k, n = q.shape
    q = q / q.sum()
    for _ in range(iters):
        q = q / (k * q.sum(1, keepdim=True))  # each class: 1/K of the mass
        q = q / (n * q.sum(0, keepdim=True))  # each image: 1/N
    return (q * n).t()


def strong_geometry(a: float) -> dict:
    """The strong view's warp ranges scaled by `a` (1 = the defaults of `strong_view`)."""
    return {"degrees": 25.0 * a, "shear": 15.0 * a, "translate": 0.15 * a, "scale": (1 - 0.2 * a, 1 + 0.15 * a)}


@torch.no_grad()
def ema_logits(state: SSLState, cfg: SSLConfig, x_w: torch.Tensor) -> torch.Tensor:
    """The EMA teacher's logits on the weak view, (μB, K)."""
    if cfg.teacher_bn == "batch":
        with teacher_batch_stats(state.ema.module) as teacher:
            return teacher(x_w).float()  # BN on the weak batch's own statistics
    return state.ema.module(x_w).float()  # eval-mode teacher


def teacher_logits(state: SSLState, cfg: SSLConfig, x_lb, x_w, x_s) -> tuple[torch.Tensor, ...]:
    """(labelled, weak, strong) logits: an EMA teacher labels the weak view apart; a student teacher sees one batch."""
    student, b = state.student, len(x_lb)
    if cfg.teacher == "ema":
        logits_w = ema_logits(state, cfg, x_w)
        logits = student(torch.cat([x_lb, x_s])).float()
        return logits[:b], logits_w, logits[b:]
    logits = student(torch.cat([x_lb, x_w, x_s])).float()  # the paper: one batch, the weak logits detached
    logits_w, logits_s = logits[b:].chunk(2)
    return logits[:b], logits_w.detach(), logits_s


@torch.no_grad()
def teacher_targets(state: SSLState, cfg: SSLConfig, logits_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pseudo-labels (μB,), mask (μB,) in {0, 1}) from the weak logits; updates DA's and the rule's statistics."""
    rule = rule_for(cfg.threshold_mode)
    probs = logits_w.softmax(1)
    m = cfg.stats_momentum
    if cfg.dist_align:
        state.p_model.mul_(m).add_(probs.mean(0), alpha=1 - m)
        probs = align(probs, state.p_model)
    if cfg.sinkhorn > 0:
        probs = sinkhorn(probs, cfg.sinkhorn)
    rule.update(state, probs, m)
    return rule.select(state, probs, cfg.threshold)


def ssl_loss(state: SSLState, cfg: SSLConfig, x_lb, y_lb, x_w, x_s) -> dict:
    """The FixMatch-family objective on one batch; updates the running statistics (DA, the rule's) in place."""
    if cfg.skip_unconfident and cfg.teacher == "ema":
        lab, mask = teacher_targets(state, cfg, ema_logits(state, cfg, x_w))
        keep = mask.nonzero().squeeze(1)  # (M,): the strong views whose pseudo-label counts
        logits = state.student(torch.cat([x_lb, x_s[keep]])).float()
        loss_x = F.cross_entropy(logits[:len(x_lb)], y_lb)
        # the same value as the masked mean below: the skipped views add 0, the mean stays over all μB
        loss_u = F.cross_entropy(logits[len(x_lb):], lab[keep], reduction="sum") / len(x_s)
    else:
        logits_lb, logits_w, logits_s = teacher_logits(state, cfg, x_lb, x_w, x_s)
        loss_x = F.cross_entropy(logits_lb, y_lb)
        lab, mask = teacher_targets(state, cfg, logits_w)
        loss_u = (F.cross_entropy(logits_s, lab, reduction="none") * mask).mean()
    return {"loss": loss_x + cfg.lambda_u * loss_u, "loss_x": loss_x.detach(), "loss_u": loss_u.detach(),
            "mask": mask.mean(), "_lab": lab, "_mask": mask}


def init_weights(net: nn.Module, cfg: SSLConfig, *, budget: str) -> dict:
    """Random init, or the trunk of the rotation-pretext model of the same architecture (RotNet initialisation)."""
    if cfg.init == "random":
        return {}
    if cfg.init != "rotnet":
        raise MnistlabError(f"unknown init {cfg.init!r}; valid: random, rotnet")
    if cfg.width:
        raise MnistlabError("init=rotnet takes the cached pretext model at its own widths; leave width at 0")
    if not MODELS.info(cfg.model).get("pretext"):
        raise MnistlabError(f"init=rotnet needs a model with a rotation pretext (e.g. rotnet-cnn), not {cfg.model!r}")
    pretext, info = pretrained_pretext(cfg.model, budget="smoke" if budget == "smoke" else "full",
                                       dataset=cfg.dataset, precision=cfg.precision, device=cfg.device)
    copied = transfer_weights(pretext, net)
    return {"pretext_key": info["key"], "pretext_test_accuracy": info["pretext_test_accuracy"],
            "transferred_tensors": len(copied)}


# ------------------------------------------------------------------------------------------------ the run


@dataclass
class SSLRun:
    """What setup builds and step / finish use: data on the device, the split, the model state, the batchers."""

    s: Setup
    state: SSLState
    spec: dict  # model.json
    pre: dict  # the preprocess spec (tta)
    weak: str
    tta: str
    lab_idx: np.ndarray
    val_idx: np.ndarray
    ulb_idx: np.ndarray
    x_all: torch.Tensor  # (N, C, H, W) uint8 on the device
    y_all: torch.Tensor  # (N,) on the device
    total: int
    info: dict  # the init's record (pretext key…)


def check_options(cfg: SSLConfig) -> None:
    rule_for(cfg.threshold_mode)
    if cfg.teacher not in ("ema", "student"):
        raise MnistlabError(f"unknown teacher {cfg.teacher!r}; valid: ema, student")
    if cfg.teacher_bn not in ("batch", "running"):
        raise MnistlabError(f"unknown teacher_bn {cfg.teacher_bn!r}; valid: batch, running")
    if cfg.teacher_bn == "batch" and cfg.teacher != "ema":
        raise MnistlabError("teacher_bn=batch is for the EMA teacher (teacher=ema); the student uses batch statistics")
    if cfg.labelled_view not in ("weak", "strong"):
        raise MnistlabError(f"unknown labelled_view {cfg.labelled_view!r}; valid: weak, strong")
    if cfg.weak not in ("auto", "warp", "shift"):
        raise MnistlabError(f"unknown weak {cfg.weak!r}; valid: auto, warp, shift")
    strong_ops(cfg)


def strong_ops(cfg: SSLConfig) -> tuple[str, ...] | None:
    """The strong view's op names (None = all of OPS); an unknown name is one line."""
    if cfg.strong_ops == "all":
        return None
    ops = tuple(o.strip() for o in cfg.strong_ops.split(",") if o.strip())
    if not ops or not set(ops) <= set(OPS):
        raise MnistlabError(f"unknown strong_ops {cfg.strong_ops!r}; valid: all, or a subset of {', '.join(OPS)}")
    return ops


def ssl_setup(cfg: SSLConfig, run) -> SSLRun:
    """Options checked, labelled split drawn and saved, student built (and initialised), data on the device."""
    s = setup(cfg)
    check_options(cfg)
    weak = cfg.weak if cfg.weak != "auto" else ("shift" if s.ds.aligned else "warp")
    tta = tta_rule(cfg.tta, s.ds)
    pre = {"tta": "hflip"} if tta == "hflip" else {}  # the model's preprocess spec
    sp = labelled_split(s.train_y, cfg.labels, seed=cfg.split_seed, n_val=cfg.val_labels,
                        num_classes=s.ds.num_classes)
    run.save_splits(**sp)
    in_shape, k = s.ds.shape, s.ds.num_classes
    kw = config_options(cfg)  # width
    net = create_model(cfg.model, in_shape=in_shape, num_classes=k, **kw)
    info = init_weights(net, cfg, budget=cfg.budget)
    state = SSLState(prepare_module(net, s.runtime), k)
    spec = model_spec(cfg.model, in_shape=in_shape, num_classes=k, preprocess=pre, **kw)
    x_all = as_tensor(s.train_x).to(s.device)  # (N, C, H, W) uint8, moved once
    y_all = torch.from_numpy(s.train_y).to(s.device)
    total = cfg.steps or max(1, round(cfg.epochs * len(sp["unlabelled"]) / (cfg.mu * cfg.batch_size)))
    return SSLRun(s, state, spec, pre, weak, tta, sp["labelled"], sp["val"], sp["unlabelled"], x_all, y_all,
                  total, info)


def label_prior(s: Setup, r: SSLRun) -> np.ndarray:
    """(K,) the labelled images' class shares: the share each class is expected to hold of the predictions."""
    return np.bincount(s.train_y[r.lab_idx], minlength=s.ds.num_classes) / max(1, len(r.lab_idx))


def ssl_step(cfg: SSLConfig, r: SSLRun):
    """(batch_at, loss_fn, after_step) for the loop: views drawn on the device, a function of the step only."""
    s, dev = r.s, r.s.device
    lab_t, ulb_t = torch.from_numpy(r.lab_idx).to(dev), torch.from_numpy(r.ulb_idx).to(dev)
    lab_b = Batcher(len(r.lab_idx), cfg.batch_size, seed=cfg.seed, rank=s.rank, world=s.world)
    ulb_b = Batcher(len(r.ulb_idx), cfg.mu * cfg.batch_size, seed=cfg.seed + 7919, rank=s.rank, world=s.world)
    flip, shift_only = s.ds.hflip_safe, r.weak == "shift"
    strong = functools.partial(strong_view, n_ops=cfg.n_ops, cutout=cfg.cutout, hflip=flip, ops=strong_ops(cfg),
                               **strong_geometry(cfg.strong_affine))

    def batch_at(step: int):
        gen = step_generator(cfg.seed, step, device=dev)
        il, iu = lab_t[lab_b(step).to(dev)], ulb_t[ulb_b(step).to(dev)]
        x_lb = r.x_all[il].float() / 255
        if cfg.augment:
            x_lb = strong(x_lb, gen) if cfg.labelled_view == "strong" else weak_view(x_lb, gen, hflip=flip,
                                                                                      shift_only=shift_only)
        x_u = r.x_all[iu].float() / 255
        x_w = weak_view(x_u, gen, hflip=flip, shift_only=shift_only)
        x_s = strong(x_u, gen)
        x_lb, x_w, x_s = (channels_last(t) for t in (x_lb, x_w, x_s))
        return x_lb, r.y_all[il], x_w, x_s, r.y_all[iu]

    def loss_fn(batch, step):
        x_lb, y_lb, x_w, x_s, y_u = batch
        out = ssl_loss(r.state, cfg, x_lb, y_lb, x_w, x_s)
        lab, mask = out.pop("_lab"), out.pop("_mask")
        # monitoring only (the unlabelled labels never reach the loss): how right the kept pseudo-labels are
        mask = mask * (y_u >= 0)  # user data: images without a label (-1) cannot be scored
        out["pl_acc"] = ((lab == y_u).float() * mask).sum() / mask.sum().clamp_min(1)
        return out

    def after_step(step: int) -> None:
        # a batch-statistics teacher keeps running statistics of its own (of weak views); otherwise copy the student's
        own_stats = cfg.teacher == "ema" and cfg.teacher_bn == "batch"
        r.state.ema.update(r.state.student, decay=min(cfg.ema, (1 + step) / (10 + step)), copy_buffers=not own_stats)

    return batch_at, loss_fn, after_step


def ssl_train(cfg: SSLConfig, run, r: SSLRun, *, resume: bool) -> list[dict]:
    """The loop over `ssl_step`, with the EMA model's validation and test curve (shown, never used to choose)."""
    s, ema = r.s, r.state.ema.module
    n_curve = min(cfg.curve_test_size, len(s.test_y)) if cfg.curve_test_size else len(s.test_y)
    pool = r.ulb_idx[:: max(1, len(r.ulb_idx) // max(1, n_curve))][:n_curve]  # a fixed spread of the pool

    def evaluate(step: int) -> dict:
        out = eval_split(ema, s.train_x[r.val_idx], s.train_y[r.val_idx], spec=r.pre, precision=s.precision,
                         prefix="val")
        out.update(eval_split(ema, s.test_x[:n_curve], s.test_y[:n_curve], spec=r.pre, precision=s.precision,
                              prefix="test"))
        # the label-free balance curve: when a class stops being predicted (its hidden labels are not read)
        return {**out, **pool_measures(ema, s.train_x[pool], np.full(len(pool), -1), prior=label_prior(s, r),
                                       spec=r.pre, precision=s.precision)}

    batch_at, loss_fn, after_step = ssl_step(cfg, r)
    opt = torch.optim.SGD(r.state.student.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    return fit(r.state, opt, run=run, total_steps=r.total, batch_at=batch_at, loss_fn=loss_fn, evaluate=evaluate,
               eval_every=max(1, r.total // max(1, cfg.eval_points)), after_step=after_step,
               lr_at=cosine_lr(r.total, warmup=min(50, r.total // 20)), precision=s.precision, seed=cfg.seed,
               ckpt_every=cfg.ckpt_every, resume=resume, world=s.world, desc=f"{cfg.threshold_mode} {cfg.model}")


def ssl_polish(cfg: SSLConfig, run, r: SSLRun, *, resume: bool) -> tuple[dict, dict, int]:
    """After the loop: BN statistics recomputed on clean unlabelled images, then the refine rounds. Returns (refine
    record, ablations shown beside the result — not choices, the config fixes the reported model —, BN images)."""
    s, ema = r.s, r.state.ema.module
    n_bn = min(cfg.bn_recalibrate, len(r.ulb_idx))
    ablation, refined, bn_x = {}, {}, None
    if n_bn:
        ablation = eval_split(ema, s.test_x, s.test_y, spec=r.pre, precision=s.precision, prefix="test_running_bn")
        # the unlabelled images, clean, in a seeded order (no label used)
        order = torch.randperm(len(r.ulb_idx), generator=torch.Generator().manual_seed(cfg.seed))[:n_bn]
        bn_x = r.x_all[torch.from_numpy(r.ulb_idx[order.numpy()]).to(s.device)].float() / 255
        recalibrate_bn(ema, bn_x, precision=s.precision)
    if cfg.refine_epochs > 0 and cfg.refine_rounds > 0:
        ablation.update(eval_split(ema, s.test_x, s.test_y, spec=r.pre, precision=s.precision,
                                   prefix="test_before_refine"))
        refined = self_train(ema, run=run, x_all=r.x_all, y_all=r.y_all, lab_idx=r.lab_idx, ulb_idx=r.ulb_idx,
                             cfg=cfg, spec=r.pre, precision=s.precision, flip=s.ds.hflip_safe,
                             shift_only=r.weak == "shift", bn_x=bn_x, resume=resume, rank=s.rank, world=s.world)
    return refined, ablation, n_bn


def ssl_finish(cfg: SSLConfig, run, r: SSLRun, history: list[dict], *, resume: bool) -> dict:
    """BN recalibration and refine, then the saved model, the standard outputs and the metrics."""
    s, ema = r.s, r.state.ema.module
    refined, ablation, n_bn = ssl_polish(cfg, run, r, resume=resume)
    run.save_model(ema, r.spec)
    metrics = classifier_outputs(run, ema, spec=r.pre, ds=s.ds, test_x=s.test_x, test_y=s.test_y, history=history,
                                 precision=s.precision)
    val = eval_split(ema, s.train_x[r.val_idx], s.train_y[r.val_idx], spec=r.pre, precision=s.precision,
                     prefix="val")
    # transductive accuracy on the unlabelled images: a development measurement (it needs labels a real user lacks),
    # never used inside a run; without the mirror averaging (half the cost). After refine, compare recipes on
    # refine_pseudo_accuracy: the model has been fitted to these images' pseudo-labels
    ulb = pool_measures(ema, s.train_x[r.ulb_idx], s.train_y[r.ulb_idx], prior=label_prior(s, r), spec={},
                        precision=s.precision)
    if r.pre:  # the other prediction rule, shown beside (the config fixed which one is reported)
        ablation.update(eval_split(ema, s.test_x, s.test_y, spec={}, precision=s.precision, prefix="test_no_tta"))
    last = history[-1] if history else {}
    return {**metrics, "val_accuracy": val.get("val_accuracy"), "ulb_accuracy": ulb.get("ulb_accuracy"),
            "pool_balance": ulb.get("pool_balance"), "pool_rarest_class": ulb.get("pool_rarest_class"),
            "labels": cfg.labels, "split_seed": cfg.split_seed, "seed": cfg.seed, "steps": r.total,
            "params": count_params(ema), "precision": s.precision, "device": str(s.device),
            "final_mask_rate": last.get("train_mask"), "final_pl_acc": last.get("train_pl_acc"),
            "selection": cfg.selection, "init": cfg.init, "bn_recalibrated_on": n_bn, "weak_view": r.weak,
            "tta": r.tta, "refine_epochs": cfg.refine_epochs, "refine_rounds": cfg.refine_rounds, **refined,
            **ablation, **r.info}


def run_ssl(cfg: SSLConfig, run, *, resume: bool = False) -> dict:
    """The entry point every member registers: setup, the loop, finish (or that, once per start: _restarts.py)."""
    if cfg.restarts != 1:
        return best_of(cfg, run, run_ssl)
    r = ssl_setup(cfg, run)
    history = ssl_train(cfg, run, r, resume=resume)
    return ssl_finish(cfg, run, r, history, resume=resume)


def ssl_member_info(config: type) -> dict[str, Any]:
    """The METHODS.register keywords every member shares (budgets, task, model options)."""
    return {"config": config, "budgets": BUDGETS, "task": "fewlabel", "model_options": config_options}
