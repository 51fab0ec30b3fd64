"""Training FLOPs of a finished few-label run, from its config and log: per-image costs counted by
`torch.utils.flop_counter` on the run's own model, times the images each stage pushed through it.

What is counted (the issue's "flop_counter on one step × steps, plus refine"):
    SSL step      B labelled fwd+bwd, μB weak fwd (EMA teacher), μB strong fwd+bwd (× mask rate with skip_unconfident)
    refine round  N_ulb fwd to label (×2 with mirror TTA), steps × refine_batch fwd+bwd, BN re-estimation fwd
Evaluation passes (learning-curve points, final test) are left out: they do not change with the recipe's length.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mnistlab.models import create_model


def per_image_flops(model: str, *, in_shape=(1, 28, 28), num_classes: int = 10, kwargs: dict | None = None,
                    batch: int = 64) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per image of `model` in training mode (1 multiply-add = 2 FLOPs)."""
    net = create_model(model, in_shape=tuple(in_shape), num_classes=num_classes, **(kwargs or {}))
    x = torch.rand(batch, *in_shape)
    with FlopCounterMode(display=False) as fwd:
        net(x)
    with FlopCounterMode(display=False) as both:
        net(x).sum().backward()
    return fwd.get_total_flops() / batch, both.get_total_flops() / batch


def _ssl_images(cfg: dict, history: list[dict], n_ulb: int) -> tuple[float, float]:
    """(fwd images, fwd+bwd images) of the semi-supervised stage."""
    b, bu = cfg["batch_size"], cfg["mu"] * cfg["batch_size"]
    steps = cfg["steps"] or max(1, round(cfg["epochs"] * n_ulb / bu))
    strong = float(steps * bu)
    if cfg.get("skip_unconfident") and cfg.get("teacher", "ema") == "ema":
        strong, last = 0.0, 0  # the mean mask rate of each logged interval × that interval's strong images
        for rec in history:
            if "train_mask" in rec:
                strong += rec["train_mask"] * (rec["step"] - last) * bu
                last = rec["step"]
    return float(steps * bu), steps * b + strong


def _refine_images(cfg: dict, n_lab: int, n_ulb: int, tta: bool) -> tuple[float, float]:
    rounds = cfg.get("refine_rounds", 0) if cfg.get("refine_epochs", 0) > 0 else 0
    repeat = max(1, round(0.04 * n_ulb / max(1, n_lab)))  # methods/_refine.LABEL_SHARE
    size = n_ulb + repeat * n_lab
    steps = max(1, round(cfg.get("refine_epochs", 0) * size / cfg.get("refine_batch", 256)))
    bn = min(cfg.get("bn_recalibrate", 0), n_ulb)
    fwd = rounds * (n_ulb * (2 if tta else 1) + bn) + bn  # + the BN re-estimation after the SSL stage
    return float(fwd), float(rounds * steps * cfg.get("refine_batch", 256))


def run_flops(folder: str | Path) -> dict:
    """{'ssl': FLOPs, 'refine': FLOPs, 'total': FLOPs, 'fwd_per_image', 'fwdbwd_per_image'} of a finished run."""
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    history = [h for h in history if "train_mask" in h]  # the SSL stage's log (refine logs carry no mask)
    with np.load(folder / "splits.npz") as sp:
        n_lab, n_ulb = len(sp["labelled"]), len(sp["unlabelled"])
    kwargs = {"widths": [cfg["width"], 2 * cfg["width"], 4 * cfg["width"]]} if cfg.get("width") else {}
    f1, f2 = per_image_flops(cfg["model"], kwargs=kwargs)
    s_fwd, s_both = _ssl_images(cfg, history, n_ulb)
    r_fwd, r_both = _refine_images(cfg, n_lab, n_ulb, tta=metrics.get("tta") == "hflip")
    ssl, refine = s_fwd * f1 + s_both * f2, r_fwd * f1 + r_both * f2
    return {"ssl": ssl, "refine": refine, "total": ssl + refine, "fwd_per_image": f1, "fwdbwd_per_image": f2}
