"""Patch families: crops of scikit-learn's bundled photos and their edges."""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.data.negatives import FAMILIES
from mnistlab.data.negatives._draw import SIZE, _GRID, _stretch, _u

@functools.lru_cache(maxsize=1)
def _pyramid() -> tuple[tuple[torch.Tensor, ...], ...]:
    """scikit-learn's two bundled photos as grey float (1, 1, H, W) in [0, 1] (ITU-R 601 luma), each with its
    2×, 4× and 8× area-downsampled levels."""
    from sklearn.datasets import load_sample_images

    out = []
    for im in load_sample_images().images:
        g = torch.from_numpy((im.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255)[None, None]
        out.append(tuple(F.avg_pool2d(g, 2**lv) if lv else g for lv in range(4)))
    return tuple(out)


_BASE = (_GRID[0, 0].view(SIZE, SIZE, 2) + 0.5) / SIZE * 2 - 1  # (28, 28, 2) pixel centres in [-1, 1]


def _crops(n: int, rng: np.random.Generator) -> torch.Tensor:
    """n random square crops, side 28–200 px (log-uniform), resized to 28 → (n, 28, 28).

    A crop of side s is read from the pyramid level 2^L ≤ s/28 < 2^(L+1), so bilinear resampling shrinks by < 2×
    (no aliasing to speak of)."""
    photos = _pyramid()
    which = rng.integers(0, len(photos), n)
    side = np.exp(rng.uniform(np.log(SIZE), np.log(200), n))
    level = np.clip(np.floor(np.log2(side / SIZE)), 0, 3).astype(int)
    h, w = photos[0][0].shape[-2:]
    cy = rng.uniform(side / 2, h - side / 2)  # crop centre, in full-resolution pixels
    cx = rng.uniform(side / 2, w - side / 2)
    out = torch.empty(n, SIZE, SIZE)
    for p in range(len(photos)):
        for lv in range(4):
            idx = np.flatnonzero((which == p) & (level == lv))
            if not len(idx):
                continue
            img = photos[p][lv]
            H, W = img.shape[-2:]
            # sampling grid in the level's [-1, 1] coordinates (align_corners=False): centre ± half side
            half = torch.from_numpy(side[idx] / 2).float().view(-1, 1, 1)
            gx = (torch.from_numpy(cx[idx]).float().view(-1, 1, 1) + half * _BASE[..., 0]) / w * 2 - 1
            gy = (torch.from_numpy(cy[idx]).float().view(-1, 1, 1) + half * _BASE[..., 1]) / h * 2 - 1
            grid = torch.stack([gx, gy], -1)  # (m, 28, 28, 2)
            out[idx] = F.grid_sample(img.expand(len(idx), 1, H, W), grid, mode="bilinear",
                                     align_corners=False)[:, 0]
    return out


@FAMILIES.register("natural-patches", kind="patch", about="grey crops of sklearn's photos, stretched, half inverted")
def natural_patches(n: int, rng: np.random.Generator) -> np.ndarray:
    x = _stretch(_crops(n, rng), rng)
    inv = torch.from_numpy(rng.random(n) < 0.5).view(-1, 1, 1)
    gain = x.amax((1, 2), keepdim=True)
    return torch.where(inv, gain - x, x).numpy()


@FAMILIES.register("natural-edges", kind="patch", about="gradient magnitude (Sobel) of photo crops: ink-like edges")
def natural_edges(n: int, rng: np.random.Generator) -> np.ndarray:
    x = _crops(n, rng)[:, None]
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx = F.conv2d(F.pad(x, (1,) * 4, mode="replicate"), kx)
    gy = F.conv2d(F.pad(x, (1,) * 4, mode="replicate"), kx.transpose(2, 3))
    return _stretch((gx**2 + gy**2).sqrt()[:, 0], rng).numpy()


