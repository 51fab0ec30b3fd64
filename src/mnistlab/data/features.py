"""The seed report's 112 hand-made features (projections and profiles), vectorised over a whole batch.

For a (B, C, H, W) float batch in [0, 1] (28 × 28 for MNIST), ink = pixel ≥ 34/255 (the report's threshold; a
binarised input gives the same ink). The feature vector, in this order, each part H or W long:

    column ink counts   (W)  ink pixels in each column, 0..H
    row ink counts      (H)  ink pixels in each row, 0..W
    left profile        (H)  per row, column of the first ink pixel (0 = ink touches the left border)
    right profile       (H)  per row, distance of the last ink pixel from the right edge (0 = touches the border)

An empty row has no first ink pixel: `profile112` gives it W (28, "ink beyond the far edge"), so it is told apart
from ink touching the border; `profile112-report` gives 0 like the report's code. `profile112` divides every value
by 28, so features lie in [0, 1] (a fixed rescaling; the MLP needs no data-dependent normalisation);
`profile112-report` keeps the report's raw counts and positions. The whole 70k set takes about a second.
"""
from __future__ import annotations

from typing import Callable

import torch

from mnistlab.registry import Registry

# name → function (B, C, H, W) float in [0, 1] → (B, D) float; `preprocess` applies the one a model's spec names
FEATURES: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry("feature set")
THRESHOLD = 34  # ink = raw pixel ≥ 34 / 255 (the report's value)


def ink_mask(x: torch.Tensor, threshold: int = THRESHOLD) -> torch.Tensor:
    """(B, C, H, W) float in [0, 1] → (B, H, W) bool ink, channels averaged. Half-level tolerance for float error."""
    return x.float().mean(1) >= (threshold - 0.5) / 255.0


def profile_features(x: torch.Tensor, *, threshold: int = THRESHOLD, empty: str = "far",
                     scale: float = 28.0) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] → (B, W + 3H) float32 features / `scale`; `empty` = "far" (row → W) or "zero"."""
    ink = ink_mask(x, threshold)  # (B, H, W)
    _, h, w = ink.shape
    inkf = ink.float()
    cols = inkf.sum(1)  # (B, W)
    rows = inkf.sum(2)  # (B, H)
    has = ink.any(2)  # (B, H) row has ink
    empty_value = torch.tensor(float(w) if empty == "far" else 0.0)
    left = torch.where(has, inkf.argmax(2).float(), empty_value)  # argmax returns the first maximum
    right = torch.where(has, inkf.flip(2).argmax(2).float(), empty_value)  # = W - 1 - last ink column
    return torch.cat([cols, rows, left, right], 1) / scale  # (B, 112) for 28 × 28


@FEATURES.register("profile112")
def profile112(x: torch.Tensor) -> torch.Tensor:
    """The report's 112 features; an empty row's profiles are 28 (see the module docstring)."""
    return profile_features(x, empty="far")


@FEATURES.register("profile112-report")
def profile112_report(x: torch.Tensor) -> torch.Tensor:
    """As the report's code: raw counts and positions (0..28, not rescaled); an empty row's profiles are 0, the same
    as ink touching the border."""
    return profile_features(x, empty="zero", scale=1.0)
