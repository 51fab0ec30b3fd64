"""Ink families: several anti-aliased pen strokes (lines, Bézier curves, shapes) spread over the whole frame."""
from __future__ import annotations

import numpy as np
import torch

from mnistlab.data.negatives import FAMILIES
from mnistlab.data.negatives._draw import SIZE, _GRID, _bezier, _count_mask, _off, _ink_level, _segments, _u, _width

@FAMILIES.register("lines", kind="ink", about="5–8 straight strokes anywhere in the frame")
def lines(n: int, rng: np.random.Generator) -> np.ndarray:
    k = 8
    p0, p1 = _u(rng, 0, SIZE - 1, (n, k, 2)), _u(rng, 0, SIZE - 1, (n, k, 2))
    on = _count_mask(rng, n, 5, k)
    return _ink_level(_segments(_off(p0, on), _off(p1, on), _width(rng, n)), rng)


@FAMILIES.register("curves", kind="ink", about="4–6 quadratic Bézier scribbles")
def curves(n: int, rng: np.random.Generator) -> np.ndarray:
    k, steps = 6, 6
    ctrl = _u(rng, -2, SIZE + 1, (n, k, 3, 2))
    on = _count_mask(rng, n, 4, k).repeat_interleave(steps, 1)
    p0, p1 = _bezier(ctrl, steps)
    return _ink_level(_segments(_off(p0, on), _off(p1, on), _width(rng, n)), rng)


@FAMILIES.register("shapes", kind="ink", about="3–5 rectangles or triangles (filled or outlined), filled ellipses")
def shapes(n: int, rng: np.random.Generator) -> np.ndarray:
    k = 5
    on = _count_mask(rng, n, 3, k)
    sides = torch.from_numpy(rng.choice([3, 4, 0], (n, k)))[..., None]  # 0 = ellipse, always filled (no rings)
    filled = torch.from_numpy(rng.random((n, k)) < 0.4)[..., None] | (sides == 0)
    c = _u(rng, 3, SIZE - 4, (n, k, 1, 2))
    r = _u(rng, 2.5, 9.0, (n, k, 1))
    aspect = _u(rng, 0.45, 1.0, (n, k, 1))
    a = _u(rng, 0, 2 * np.pi, (n, k, 1))
    w = _width(rng, n).view(n, 1, 1)
    rel = _GRID - c  # (n, k, 784, 2) → local frame: rotate by -a, stretch the minor axis
    u = rel[..., 0] * a.cos() + rel[..., 1] * a.sin()
    v = (-rel[..., 0] * a.sin() + rel[..., 1] * a.cos()) / aspect
    # regular polygon with circumradius r: signed distance ≈ max over edge normals of the projection − apothem
    m = sides.clamp_min(3).float()
    j = torch.arange(4).view(1, 1, 1, 4)
    normal = (j + 0.5) * 2 * np.pi / m[..., None]  # (n, k, 1, 4); triangles repeat their first normal
    normal = torch.where(j < m[..., None], normal, normal[..., :1])
    proj = (u[..., None] * normal.cos() + v[..., None] * normal.sin()).amax(-1)  # (n, k, 784)
    sd = torch.where(sides == 0, (u.square() + v.square()).sqrt() - r, proj - r * torch.cos(np.pi / m))
    ink = torch.where(filled, (0.5 - sd).clamp(0, 1), (w / 2 + 0.5 - sd.abs()).clamp(0, 1))
    ink = ink * on[..., None]
    return _ink_level(ink.amax(1).view(n, SIZE, SIZE), rng)


