"""Hard families: MNIST digits broken beyond recognition (shuffled tiles, heavy occlusion, three-digit overlays)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.data.augment import random_shift
from mnistlab.data.negatives import FAMILIES
from mnistlab.data.negatives._draw import SIZE, _hard, _pick

@FAMILIES.register("digit-tiles", kind="hard", about="an MNIST digit's 7×7 tiles shuffled; < 35 % of ink in place")
def digit_tiles(n: int, rng: np.random.Generator, *, digits: np.ndarray) -> np.ndarray:
    t = SIZE // 4

    def make(m: int):
        d = _pick(digits, rng, m)
        tiles = d.view(m, 4, t, 4, t).permute(0, 1, 3, 2, 4).reshape(m, 16, t, t)
        perm = torch.from_numpy(np.argsort(rng.random((m, 16)), axis=1))
        shuffled = tiles.gather(1, perm.view(m, 16, 1, 1).expand(m, 16, t, t))
        x = shuffled.view(m, 4, 4, t, t).permute(0, 1, 3, 2, 4).reshape(m, SIZE, SIZE)
        kept = torch.minimum(x, d).sum((1, 2)) / d.sum((1, 2)).clamp_min(1e-6)
        return x, kept < 0.35

    return _hard(make, n)


@FAMILIES.register("digit-occluded", kind="hard", about="all of a digit but a 7–11 px window blacked out; ≤ 25 % ink")
def digit_occluded(n: int, rng: np.random.Generator, *, digits: np.ndarray) -> np.ndarray:
    def make(m: int):
        d = _pick(digits, rng, m)
        side = torch.from_numpy(rng.integers(7, 12, (m, 1, 1)))
        y0 = torch.from_numpy(rng.integers(2, SIZE - 9, (m, 1, 1)))
        x0 = torch.from_numpy(rng.integers(2, SIZE - 9, (m, 1, 1)))
        ys, xs = torch.arange(SIZE).view(1, SIZE, 1), torch.arange(SIZE).view(1, 1, SIZE)
        window = (ys >= y0) & (ys < y0 + side) & (xs >= x0) & (xs < x0 + side)
        x = d * window
        kept = x.sum((1, 2)) / d.sum((1, 2)).clamp_min(1e-6)
        return x, (kept <= 0.25) & (x.amax((1, 2)) > 0.5)  # some ink must remain, or it is just a black image

    return _hard(make, n)


@FAMILIES.register("digit-overlay", kind="hard", about="3 dissimilar digits superposed (max), ±2 px, none dominant")
def digit_overlay(n: int, rng: np.random.Generator, *, digits: np.ndarray) -> np.ndarray:
    # labels are not needed (any uint8 digits may be given): "different" = pairwise dissimilar images
    def make(m: int):
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        shifted = [random_shift(_pick(digits, rng, m)[:, None], gen, pixels=2)[:, 0] for _ in range(3)]
        x = torch.stack(shifted).amax(0)
        # every pair must differ: a digit over a near-copy of itself is still that digit
        flat = [s.reshape(m, -1) for s in shifted]
        ink = x.sum((1, 2)).clamp_min(1e-6)
        ok = torch.ones(m, dtype=torch.bool)
        for i in range(3):
            ok &= torch.minimum(shifted[i], x).sum((1, 2)) / ink < 0.6  # no digit dominates the overlay
            for j in range(i + 1, 3):
                ok &= F.cosine_similarity(flat[i], flat[j], dim=1) < 0.5
        return x, ok

    return _hard(make, n)
