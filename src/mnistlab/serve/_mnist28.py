"""Stand-in for `mnistlab.data.images.to_mnist_28` until that module lands: any grey image → a 28×28 MNIST-style digit.

MNIST's recipe (LeCun et al.): fit the ink's bounding box in 20×20 keeping the aspect ratio (anti-aliased), then
place it in 28×28 so that the centre of mass is at the centre.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def to_mnist_28(gray: np.ndarray) -> np.ndarray:
    """(H, W) grey image, ink bright on dark, any numeric dtype in 0..255 → (28, 28) uint8. No ink → all zeros."""
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {g.shape}")
    g = np.clip(g, 0, 255)
    ink = g > 0.1 * g.max() if g.max() > 0 else np.zeros(g.shape, bool)
    if not ink.any():
        return np.zeros((28, 28), np.uint8)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = g[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    h, w = crop.shape
    s = 20.0 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.LANCZOS), np.float32)
    small = np.clip(small, 0, 255)
    out = np.zeros((28, 28), np.float32)
    # centre of mass of the 20×20 box → pixel (14, 14) of the 28×28 canvas, clipped so that the box stays inside
    total = small.sum()
    cy = (small.sum(1) @ np.arange(nh)) / total if total > 0 else (nh - 1) / 2
    cx = (small.sum(0) @ np.arange(nw)) / total if total > 0 else (nw - 1) / 2
    top = int(np.clip(round(14 - cy), 0, 28 - nh))
    left = int(np.clip(round(14 - cx), 0, 28 - nw))
    out[top: top + nh, left: left + nw] = small
    return np.rint(out).astype(np.uint8)
