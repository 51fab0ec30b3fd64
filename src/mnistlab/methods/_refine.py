"""Self-training refinement: after a semi-supervised run, the model fine-tuned on its own hard pseudo-labels.

Why: the FixMatch / FreeMatch student learns the unlabelled images only through *strong* views (a warp, two ops and a
cutout), and clean images only through the ten-a-class labelled batch. The EMA model's labels on the clean unlabelled
images are already ≈ 99 % right on MNIST with 100 labels; a short supervised pass over them in the weak view (the
view a supervised digit classifier trains on) fits the clean-image distribution the test set comes from, and a
second and third round, labelled by the improved model, correct some of the first round's targets. Confirmation of
the teacher's own mistakes is the risk: each round is short (2 epochs), at a fifth of the SSL learning rate, starting
from the current weights, and the true labels are mixed in (repeated, so that they are ≈ 4 % of the refine set).

Adopted on held-out unlabelled images, never the test set: the figures are in benchmarks/notes/recipe-history.md.

This is pseudo-label self-training (Lee 2013) / noisy student (Xie et al. 2020) reduced to fine-tuning the same
network: no new model, no ensemble.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab import infer
from mnistlab.data.randaugment import weak_view
from mnistlab.evaluate.metrics import softmax
from mnistlab.methods._common import cosine_lr, recalibrate_bn
from mnistlab.train import Batcher, fit, step_generator
from mnistlab.precision import channels_last

LABEL_SHARE = 0.04  # fraction of the refine set that is true labels (×20 repeats at 100 labels, as measured)


def refine_set(pseudo: np.ndarray, ulb_idx: np.ndarray, lab_idx: np.ndarray, y_lab: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """(indices into the training images (M,), targets (M,)): every unlabelled image with its pseudo-label, plus the
    labelled images with their true labels, repeated so that they make ≈ LABEL_SHARE of the set."""
    repeat = max(1, round(LABEL_SHARE * len(ulb_idx) / max(1, len(lab_idx))))
    idx = np.concatenate([ulb_idx, np.tile(lab_idx, repeat)])
    y = np.concatenate([pseudo, np.tile(y_lab, repeat)]).astype(np.int64)
    return idx, y


def self_train(model: torch.nn.Module, *, run, x_all: torch.Tensor, y_all: torch.Tensor, lab_idx: np.ndarray,
               ulb_idx: np.ndarray, cfg, spec: dict, precision: str, flip: bool, shift_only: bool,
               bn_x: torch.Tensor | None, resume: bool, rank: int = 0, world: int = 1) -> dict:
    """Fine-tune `model` in place: cfg.refine_rounds rounds of (label, then cfg.refine_epochs passes). Returns what
    the run reports.

    x_all: (N, C, H, W) uint8 training images; y_all: (N,) labels, of which only y_all[lab_idx] is trained on.
    Each round's pseudo-labels are the model's argmax on the clean unlabelled images (with the run's test-time rule
    `spec`), computed once before the round: the targets do not drift with the student within a round, and the next
    round starts from a better labeller. bn_x: clean images (float, [0, 1]) to recompute the batch-norm statistics
    on after each round, as after the SSL stage (None = keep the running ones).
    """
    for p in model.parameters():  # an EMA copy is frozen; this pass trains it
        p.requires_grad_(True)
    out, total = {}, 0
    x_ulb = x_all[torch.from_numpy(ulb_idx).to(x_all.device)].cpu().numpy()  # the labeller's input, once
    y_host = y_all.cpu().numpy()
    for r in range(cfg.refine_rounds):
        lg = infer.logits(model, x_ulb, spec=spec, precision=precision)  # (N_ulb, K)
        pseudo = lg.argmax(1)
        if r == 0:
            # monitoring only, like FixMatch's pl_acc (the unlabelled images' labels never reach the loss): how right
            # the first targets are — the unlabelled-pool accuracy of the SSL model
            truth = y_host[ulb_idx]
            known = truth >= 0  # user data: images without a label (-1) cannot be scored
            out["refine_pseudo_accuracy"] = float((pseudo[known] == truth[known]).mean()) if known.any() else None
            out["refine_pseudo_confidence"] = float(softmax(lg).max(1).mean())
        idx, y = refine_set(pseudo, ulb_idx, lab_idx, y_host[lab_idx])
        total = _one_round(model, run=run, x_all=x_all, idx=idx, y=torch.from_numpy(y), cfg=cfg, round_=r,
                           precision=precision, flip=flip, shift_only=shift_only, resume=resume, rank=rank,
                           world=world)
        if bn_x is not None:
            recalibrate_bn(model, bn_x, precision=precision)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return {"refine_steps": total * cfg.refine_rounds, "refine_set": len(idx), **out}


def _one_round(model, *, run, x_all, idx, y, cfg, round_: int, precision, flip, shift_only, resume, rank,
               world) -> int:
    """cfg.refine_epochs passes over (x_all[idx], y) in the weak view, SGD with a cosine decay; returns the steps."""
    bs, dev = cfg.refine_batch, x_all.device
    order = Batcher(len(idx), bs, seed=cfg.seed + 104_729 + round_, rank=rank, world=world)
    total = max(1, round(cfg.refine_epochs * len(idx) / bs))
    idx_t, y = torch.from_numpy(idx).to(dev), y.to(dev)

    def batch_at(step: int):
        j = order(step).to(dev)
        x = x_all[idx_t[j]].float() / 255
        gen = step_generator(cfg.seed, step, stream=1 + round_, device=dev)
        x = weak_view(x, gen, hflip=flip, shift_only=shift_only)
        return channels_last(x), y[j]

    def loss_fn(batch, step):
        x, t = batch
        return {"loss": F.cross_entropy(model(x).float(), t)}

    opt = torch.optim.SGD(model.parameters(), lr=cfg.refine_lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    fit(model, opt, run=run, total_steps=total, batch_at=batch_at, loss_fn=loss_fn, eval_every=total,
        lr_at=cosine_lr(total, warmup=min(50, total // 20)), precision=precision, seed=cfg.seed + 1 + round_,
        ckpt_every=cfg.ckpt_every, resume=resume, world=world, desc=f"refine {round_ + 1}/{cfg.refine_rounds}",
        ckpt_name=f"refine{round_ + 1}.safetensors")
    return total
