"""FixMatch (Sohn et al. 2020) for few-label digits, with the pieces that make it converge fast on a CPU.

Per step: labelled batch `x_lb` (B, weak view) + unlabelled batch of μB images seen twice, weak `x_ulb_w` and
strong `x_ulb_s`. The teacher (the EMA of the student by default, or the student itself as in the paper) labels the
weak view; where its confidence passes the threshold, the student must predict that label on the strong view.
Options: distribution alignment of the teacher's probabilities (ReMixMatch), and FreeMatch's self-adaptive
class thresholds (`threshold_mode="adaptive"`, registered as the `freematch` method in methods/freematch.py).

Digit-specific choices, measured on MNIST with 100 labels (benchmarks/results/fewlabel.md): a mild strong warp
(`strong_affine`), an extra-stroke op in the strong view (data/randaugment.py), and BN statistics recomputed on clean
images after training (`bn_recalibrate`, the strong views skew them).

Model selection: none. The EMA model after the last step is evaluated and saved — never a checkpoint chosen on the
test set; with `val_labels` > 0 a validation split carved from the labels is reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.config import TrainConfig
from mnistlab.data.preprocess import as_tensor
from mnistlab.data.randaugment import strong_view, weak_view
from mnistlab.data.splits import labelled_split
from mnistlab.errors import MnistlabError
from mnistlab.infer import tta_rule
from mnistlab.methods import METHODS
from mnistlab.methods._common import classifier_outputs, cosine_lr, eval_split, recalibrate_bn, setup
from mnistlab.methods._ema import EMA, teacher_batch_stats
from mnistlab.methods._refine import self_train
from mnistlab.models import config_options, count_params, create_model, model_spec
from mnistlab.train import Batcher, channels_last, fit, prepare_module, step_generator


@dataclass
class FixMatchConfig(TrainConfig):
    model: str = "cnn"
    width: int = 0  # >0: first conv width of a CNN, doubled at each stage (w, 2w, 4w); 0 = the model's default
    labels: int = 100  # labelled images, class-balanced (val_labels of them held out for validation)
    split_seed: int = 0  # which images are labelled (independent of the training seed)
    val_labels: int = 0  # labels carved out as a validation split (reported, never used to choose anything)
    augment: bool = True  # weak view on the labelled batch
    batch_size: int = 32  # labelled images per step (B)
    mu: int = 7  # unlabelled images per step = mu × B
    epochs: float = 13.0  # passes over the unlabelled set (steps = epochs × N_unlabelled / (mu B)); 13 ≈ 3500 steps
    steps: int = 0  # optimiser steps; 0 = from epochs
    lr: float = 0.05  # SGD nesterov, momentum 0.9, cosine decay to 0 after a short warm-up
    weight_decay: float = 5e-4
    lambda_u: float = 1.0  # weight of the unlabelled loss
    threshold: float = 0.95  # confidence a pseudo-label needs (fixed mode); upper scale in adaptive mode
    threshold_mode: str = "fixed"  # fixed | adaptive (FreeMatch self-adaptive global × class thresholds)
    dist_align: bool = True  # ReMixMatch distribution alignment of the teacher's probabilities to uniform
    teacher: str = "ema"  # ema | student: which model labels the weak view
    # EMA teacher's batch norm: "running" = the student's running statistics (mostly strong views); "batch" = each weak
    # batch normalised by its own statistics, the teacher keeping running statistics of weak views. Measured on the
    # unlabelled pool: no gain once BN is recalibrated (benchmarks/results/fixmatch-teacher-bn.md)
    teacher_bn: str = "running"
    ema: float = 0.999  # EMA decay of the evaluated (and teacher) model, warmed up as min(ema, (1+t)/(10+t))
    stats_momentum: float = 0.99  # running means of DA and adaptive thresholds (0.999 is too slow for ~10³ steps)
    n_ops: int = 2  # strong-view ops per image on average
    cutout: int = 10  # strong-view cutout square side (pixels)
    # scale of the strong view's warp (1 = ±25°, shear ±15°, shift ±15 %, zoom 0.8–1.15). 0.25 because a strong warp
    # lets crossed 7s drift to 2 and 4 on MNIST with 100 labels: 1000 steps, split 0 → 97.45 % at 1, 98.62 % at 0.25
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
    # self-training pass after the SSL stage (methods/_refine.py): the EMA model fine-tuned on its own hard labels of the
    # clean unlabelled images, weak view, lr refine_lr cosine; 0 = off
    refine_rounds: int = 3  # label, fine-tune; label again with the better model, fine-tune again
    refine_epochs: float = 2.0  # passes over the unlabelled images per round
    refine_lr: float = 0.01
    refine_batch: int = 256
    selection: str = "final-ema"  # the reported model: the EMA weights after the last step (no selection)

    # what a run started before `weak` and `tta` existed did (a resume then checks it, see Run.start): "auto" would
    # turn an interrupted Fashion-MNIST run into a hybrid of two recipes
    LEGACY = {"weak": "warp", "tta": "none", "refine_epochs": 0.0, "refine_rounds": 0}
    RANGES = {"threshold": (0, 1), "ema": (0, 1), "stats_momentum": (0, 1), "mu": (1, 64), "lambda_u": (0, 100),
              "strong_affine": (0, 4), "n_ops": (0, 16), "cutout": (0, 28), "bn_recalibrate": (0, 10 ** 6),
              "width": (0, 512), "refine_epochs": (0, 100), "refine_rounds": (0, 20), "refine_lr": (0, 10), "refine_batch": (1, 65536)}


BUDGETS = {
    # smoke: 16 steps; 3000 training images so that --labels 1000 (the study's Fashion-MNIST row) still draws
    "smoke": {"model": "cnn-small", "labels": 20, "train_subset": 3000, "test_subset": 300, "batch_size": 8,
              "mu": 2, "steps": 16, "curve_test_size": 100, "threshold": 0.5, "refine_rounds": 1},
    "quick": {},
    "full": {"epochs": 30},
}


def strong_geometry(a: float) -> dict:
    """The strong view's warp ranges scaled by `a` (1 = the defaults of `strong_view`)."""
    return {"degrees": 25.0 * a, "shear": 15.0 * a, "translate": 0.15 * a, "scale": (1 - 0.2 * a, 1 + 0.15 * a)}


class SSLState(nn.Module):
    """Everything a resume must restore, in one module for the loop's checkpoint: student, EMA, running statistics."""

    def __init__(self, student: nn.Module, num_classes: int):
        super().__init__()
        self.student = student
        self.ema = EMA(student)
        k = num_classes
        self.register_buffer("p_model", torch.full((k,), 1.0 / k))  # running mean teacher probabilities (DA)
        self.register_buffer("time_p", torch.tensor(1.0 / k))  # FreeMatch global confidence τ_t
        self.register_buffer("p_local", torch.full((k,), 1.0 / k))  # FreeMatch per-class mean probabilities p̃_t


def align(probs: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    """Distribution alignment to a uniform class prior: p ← normalise(p / p_model). (N, K) → (N, K)."""
    p = probs / p_model.clamp_min(1e-6)
    return p / p.sum(1, keepdim=True)


def pseudo_labels(probs: torch.Tensor, *, mode: str, threshold: float, time_p: torch.Tensor | None = None,
                  p_local: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (N,), mask (N,) float in {0, 1}) from teacher probabilities (N, K).

    fixed: max p ≥ threshold. adaptive (FreeMatch): max p ≥ τ_t · p̃_t(c) / max_c p̃_t, c = argmax.
    """
    conf, lab = probs.max(1)
    if mode == "fixed":
        tau = torch.full_like(conf, threshold)
    elif mode == "adaptive":
        tau = time_p * (p_local / p_local.max())[lab]
    else:
        raise ValueError(f"threshold_mode {mode!r}")
    return lab, (conf >= tau).float()


def ssl_loss(state: SSLState, cfg: FixMatchConfig, x_lb, y_lb, x_w, x_s) -> dict:
    """The FixMatch objective on one batch; updates the running statistics (DA, adaptive thresholds) in place."""
    student, b = state.student, len(x_lb)
    if cfg.teacher == "ema":
        with torch.no_grad():
            if cfg.teacher_bn == "batch":
                with teacher_batch_stats(state.ema.module) as teacher:
                    logits_w = teacher(x_w).float()  # (μB, K), BN on the weak batch's own statistics
            else:
                logits_w = state.ema.module(x_w).float()  # eval-mode teacher: (μB, K)
        logits = student(torch.cat([x_lb, x_s])).float()
        logits_lb, logits_s = logits[:b], logits[b:]
    else:  # the paper: one batch through the student, the weak logits detached
        logits = student(torch.cat([x_lb, x_w, x_s])).float()
        logits_lb, (logits_w, logits_s) = logits[:b], logits[b:].chunk(2)
        logits_w = logits_w.detach()
    loss_x = F.cross_entropy(logits_lb, y_lb)
    with torch.no_grad():
        probs = logits_w.softmax(1)
        m = cfg.stats_momentum
        if cfg.dist_align:
            state.p_model.mul_(m).add_(probs.mean(0), alpha=1 - m)
            probs = align(probs, state.p_model)
        if cfg.threshold_mode == "adaptive":
            state.time_p.mul_(m).add_(probs.max(1).values.mean(), alpha=1 - m)
            state.p_local.mul_(m).add_(probs.mean(0), alpha=1 - m)
        lab, mask = pseudo_labels(probs, mode=cfg.threshold_mode, threshold=cfg.threshold,
                                  time_p=state.time_p.clamp(max=cfg.threshold), p_local=state.p_local)
    loss_u = (F.cross_entropy(logits_s, lab, reduction="none") * mask).mean()
    return {"loss": loss_x + cfg.lambda_u * loss_u, "loss_x": loss_x.detach(), "loss_u": loss_u.detach(),
            "mask": mask.mean(), "_lab": lab, "_mask": mask}


def init_weights(net: nn.Module, cfg: FixMatchConfig, *, budget: str) -> dict:
    """Random init, or the trunk of the rotation-pretext model of the same architecture (RotNet initialisation)."""
    if cfg.init == "random":
        return {}
    if cfg.init != "rotnet":
        raise MnistlabError(f"unknown init {cfg.init!r}; valid: random, rotnet")
    from mnistlab.methods.rotnet import pretrained_pretext, transfer_weights
    from mnistlab.models import MODELS

    if cfg.width:
        raise MnistlabError("init=rotnet takes the cached pretext model at its own widths; leave width at 0")
    if not MODELS.info(cfg.model).get("pretext"):
        raise MnistlabError(f"init=rotnet needs a model with a rotation pretext (e.g. rotnet-cnn), not {cfg.model!r}")
    pretext, info = pretrained_pretext(cfg.model, budget="smoke" if budget == "smoke" else "full",
                                       dataset=cfg.dataset, precision=cfg.precision)
    copied = transfer_weights(pretext, net)
    return {"pretext_key": info["key"], "pretext_test_accuracy": info["pretext_test_accuracy"],
            "transferred_tensors": len(copied)}


def run_ssl(cfg: FixMatchConfig, run, *, resume: bool = False) -> dict:
    """Shared entry point of fixmatch / freematch."""
    s = setup(cfg)
    if cfg.teacher not in ("ema", "student"):
        raise MnistlabError(f"unknown teacher {cfg.teacher!r}; valid: ema, student")
    if cfg.teacher_bn not in ("batch", "running"):
        raise MnistlabError(f"unknown teacher_bn {cfg.teacher_bn!r}; valid: batch, running")
    if cfg.teacher_bn == "batch" and cfg.teacher != "ema":
        raise MnistlabError("teacher_bn=batch is for the EMA teacher (teacher=ema); the student uses batch statistics")
    if cfg.threshold_mode not in ("fixed", "adaptive"):
        raise MnistlabError(f"unknown threshold_mode {cfg.threshold_mode!r}; valid: fixed, adaptive")
    weak = cfg.weak if cfg.weak != "auto" else ("shift" if s.ds.aligned else "warp")
    if weak not in ("warp", "shift"):
        raise MnistlabError(f"unknown weak {cfg.weak!r}; valid: auto, warp, shift")
    tta = tta_rule(cfg.tta, s.ds)
    pre = {"tta": "hflip"} if tta == "hflip" else {}  # the model's preprocess spec
    sp = labelled_split(s.train_y, cfg.labels, seed=cfg.split_seed, n_val=cfg.val_labels,
                        num_classes=s.ds.num_classes)
    run.save_splits(**sp)
    lab_idx, val_idx, ulb_idx = sp["labelled"], sp["val"], sp["unlabelled"]
    in_shape, k = s.ds.shape, s.ds.num_classes
    kw = config_options(cfg)  # width
    net = create_model(cfg.model, in_shape=in_shape, num_classes=k, **kw)
    info = init_weights(net, cfg, budget=cfg.budget)
    student = prepare_module(net, s.precision)
    spec = model_spec(cfg.model, in_shape=in_shape, num_classes=k, preprocess=pre, **kw)
    state = SSLState(student, k)

    x_all = as_tensor(s.train_x)  # (N, C, H, W) uint8, kept in memory
    y_all = torch.from_numpy(s.train_y)
    b, bu = cfg.batch_size, cfg.mu * cfg.batch_size
    lab_b = Batcher(len(lab_idx), b, seed=cfg.seed, rank=s.rank, world=s.world)
    ulb_b = Batcher(len(ulb_idx), bu, seed=cfg.seed + 7919, rank=s.rank, world=s.world)
    total = cfg.steps or max(1, round(cfg.epochs * len(ulb_idx) / bu))
    flip, shift_only = s.ds.hflip_safe, weak == "shift"

    def batch_at(step: int):
        gen = step_generator(cfg.seed, step)
        il, iu = lab_idx[lab_b(step).numpy()], ulb_idx[ulb_b(step).numpy()]
        x_lb = x_all[il].float() / 255
        x_lb = weak_view(x_lb, gen, hflip=flip, shift_only=shift_only) if cfg.augment else x_lb
        x_u = x_all[iu].float() / 255
        x_w = weak_view(x_u, gen, hflip=flip, shift_only=shift_only)
        x_s = strong_view(x_u, gen, n_ops=cfg.n_ops, cutout=cfg.cutout, hflip=flip,
                          **strong_geometry(cfg.strong_affine))
        x_lb, x_w, x_s = (channels_last(t) for t in (x_lb, x_w, x_s))
        return x_lb, y_all[il], x_w, x_s, y_all[iu]

    def loss_fn(batch, step):
        x_lb, y_lb, x_w, x_s, y_u = batch
        out = ssl_loss(state, cfg, x_lb, y_lb, x_w, x_s)
        lab, mask = out.pop("_lab"), out.pop("_mask")
        # monitoring only (the unlabelled labels never reach the loss): how right the kept pseudo-labels are
        out["pl_acc"] = ((lab == y_u).float() * mask).sum() / mask.sum().clamp_min(1)
        return out

    def after_step(step: int) -> None:
        # a batch-statistics teacher keeps running statistics of its own (of weak views); otherwise copy the student's
        own_stats = cfg.teacher == "ema" and cfg.teacher_bn == "batch"
        state.ema.update(student, decay=min(cfg.ema, (1 + step) / (10 + step)), copy_buffers=not own_stats)

    n_curve = min(cfg.curve_test_size, len(s.test_y)) if cfg.curve_test_size else len(s.test_y)

    def evaluate(step: int) -> dict:
        ema = state.ema.module
        out = eval_split(ema, s.train_x[val_idx], s.train_y[val_idx], spec=pre, precision=s.precision, prefix="val")
        # shown as a curve, never used to choose anything: the final EMA model is the one reported
        out.update(eval_split(ema, s.test_x[:n_curve], s.test_y[:n_curve], spec=pre, precision=s.precision,
                              prefix="test"))
        return out

    opt = torch.optim.SGD(student.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    history = fit(state, opt, run=run, total_steps=total, batch_at=batch_at, loss_fn=loss_fn, evaluate=evaluate,
                  eval_every=max(1, total // max(1, cfg.eval_points)), after_step=after_step,
                  lr_at=cosine_lr(total, warmup=min(50, total // 20)), precision=s.precision, seed=cfg.seed,
                  ckpt_every=cfg.ckpt_every, resume=resume, world=s.world, desc=f"{cfg.threshold_mode} {cfg.model}")
    ema = state.ema.module
    n_bn = min(cfg.bn_recalibrate, len(ulb_idx))
    ablation = {}
    if n_bn:
        # shown beside the result (an ablation, not a choice: the config fixes which model is reported)
        ablation = eval_split(ema, s.test_x, s.test_y, spec=pre, precision=s.precision, prefix="test_running_bn")
        # the unlabelled images, clean, in a seeded order (no label used)
        pick = ulb_idx[torch.randperm(len(ulb_idx), generator=torch.Generator().manual_seed(cfg.seed))[:n_bn].numpy()]
        recalibrate_bn(ema, x_all[pick].float() / 255, precision=s.precision)
    refined = {}
    if cfg.refine_epochs > 0 and cfg.refine_rounds > 0:
        # the model before the self-training pass, shown beside (the config fixes which one is reported)
        ablation.update(eval_split(ema, s.test_x, s.test_y, spec=pre, precision=s.precision, prefix="test_before_refine"))
        refined = self_train(ema, run=run, x_all=x_all, y_all=y_all, lab_idx=lab_idx, ulb_idx=ulb_idx, cfg=cfg,
                             spec=pre, precision=s.precision, flip=flip, shift_only=shift_only,
                             bn_x=x_all[pick].float() / 255 if n_bn else None, resume=resume, rank=s.rank,
                             world=s.world)
    run.save_model(ema, spec)
    metrics = classifier_outputs(run, ema, spec=pre, ds=s.ds, test_x=s.test_x, test_y=s.test_y, history=history,
                                 precision=s.precision)
    val = eval_split(ema, s.train_x[val_idx], s.train_y[val_idx], spec=pre, precision=s.precision, prefix="val")
    # transductive accuracy on the unlabelled training images: a development measurement (it needs the labels a real
    # user lacks), reported to compare recipes without touching the test set; never used inside a run. Without the
    # mirror averaging: half the cost on ~59k images, and comparable with the runs made before it existed. After a
    # refine pass the model has been fitted to these images' pseudo-labels: compare recipes on refine_pseudo_accuracy (the
    # same model before the pass, with the run's prediction rule)
    ulb = eval_split(ema, s.train_x[ulb_idx], s.train_y[ulb_idx], spec={}, precision=s.precision, prefix="ulb")
    if pre:  # the other prediction rule, shown beside (the config fixed which one is reported)
        ablation.update(eval_split(ema, s.test_x, s.test_y, spec={}, precision=s.precision, prefix="test_no_tta"))
    last = history[-1] if history else {}
    return {**metrics, "val_accuracy": val.get("val_accuracy"), "ulb_accuracy": ulb.get("ulb_accuracy"),
            "labels": cfg.labels, "split_seed": cfg.split_seed,
            "seed": cfg.seed, "steps": total, "params": count_params(ema), "precision": s.precision,
            "final_mask_rate": last.get("train_mask"), "final_pl_acc": last.get("train_pl_acc"),
            "selection": cfg.selection, "init": cfg.init, "bn_recalibrated_on": n_bn, "weak_view": weak, "tta": tta,
            "refine_epochs": cfg.refine_epochs, "refine_rounds": cfg.refine_rounds, **refined, **ablation, **info}


@METHODS.register("fixmatch", config=FixMatchConfig, budgets=BUDGETS, task="fewlabel", model_options=config_options)
def run(cfg: FixMatchConfig, run, *, resume: bool = False) -> dict:
    return run_ssl(cfg, run, resume=resume)
