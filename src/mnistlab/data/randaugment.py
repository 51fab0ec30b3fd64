"""Weak and strong views for semi-supervised learning, built from the pure batch functions of `data.augment`.

Vocabulary of USB/FixMatch: the weak view (`x_ulb_w`) is what the teacher labels, the strong view (`x_ulb_s`) is what
the student must get right. Both are digit-safe: no flips (unless the dataset is `hflip_safe`), no 90° turns.
The strong view is RandAugment-style with random magnitudes (FixMatch's RA-MC), vectorised over the batch: every
image gets a strong geometric warp, then each photometric/shape op fires on a random subset of the batch
(`n_ops` of the `OPS` on average), then cutout. All functions: float (B, C, H, W) in [0, 1] → same shape and range.
"""
from __future__ import annotations

import torch

from mnistlab.data import augment

# op name → (fn, kwargs at magnitude 1). The affine warp is applied to every strong view; these fire at random.
OPS = {
    "elastic": (augment.elastic, {"alpha": 2.0, "sigma": 4.0}),  # alpha in pixels
    "stroke": (augment.stroke, {"radius": 1}),  # ±1 px dilation/erosion
    "contrast": (augment.contrast, {"gain": (0.5, 1.0), "gamma": (0.5, 2.0)}),
    "blur": (augment.blur, {"sigma": (0.3, 1.0)}),
    "noise": (augment.noise, {"std": 0.2}),
    "extra_stroke": (augment.extra_stroke, {"length": (5.0, 12.0), "width": 2.0}),  # pixels
}


def weak_view(x: torch.Tensor, gen: torch.Generator, *, hflip: bool = False, shift_only: bool = False) -> torch.Tensor:
    """Small shift and wobble: ±2 px, ±5°, ×0.95–1.05 — the view whose prediction becomes the pseudo-label.

    shift_only: an exact ±2 px shift instead (a padded random crop, FixMatch's own weak view), for images that are
    upright and centred (`Dataset.aligned`), where a rotation or zoom is off the data's distribution.
    """
    if shift_only:
        x = augment.random_shift(x, gen, pixels=2)
    else:
        x = augment.random_affine(x, gen, degrees=5, translate=2 / 28, scale=(0.95, 1.05))
    return augment.hflip(x, gen) if hflip else x


def strong_view(x: torch.Tensor, gen: torch.Generator, *, n_ops: int = 2, cutout: int = 10,
                degrees: float = 25.0, shear: float = 15.0, translate: float = 0.15,
                scale: tuple[float, float] = (0.8, 1.15), hflip: bool = False,
                ops: tuple[str, ...] | None = None) -> torch.Tensor:
    """Strong geometric warp, `n_ops` random ops from `OPS` (or its subset `ops`) per image on average, then a cutout
    square of side `cutout`.

    Each op runs once, on the sub-batch whose per-image coins came up: no per-image Python loop, and an op costs in
    proportion to the images it touches.
    """
    b = len(x)
    x = augment.random_affine(x, gen, degrees=degrees, translate=translate, scale=scale, shear=shear)
    chosen = [OPS[k] for k in ops] if ops is not None else list(OPS.values())
    p = min(1.0, n_ops / len(chosen))
    x = x.clone()  # written in place below; never the caller's tensor
    for fn, kw in chosen:
        fire = torch.rand(b, generator=gen, device=gen.device) < p
        if fire.any():
            x[fire] = fn(x[fire], gen, **kw)
    x = augment.cutout(x, gen, size=cutout)
    if hflip:
        x = augment.hflip(x, gen)
    return x.clamp(0, 1)
