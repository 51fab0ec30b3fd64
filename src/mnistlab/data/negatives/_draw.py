"""Drawing helpers shared by the negative families: anti-aliased segments, Bézier polylines, random draws."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from mnistlab.errors import MnistlabError

SIZE = 28
_GRID = torch.stack(torch.meshgrid(torch.arange(SIZE, dtype=torch.float32), torch.arange(SIZE, dtype=torch.float32),
                                   indexing="ij")[::-1], -1).reshape(1, 1, SIZE * SIZE, 2)  # (1, 1, 784, 2) as (x, y)


def _u(rng: np.random.Generator, lo, hi, size) -> torch.Tensor:
    return torch.from_numpy(rng.uniform(lo, hi, size).astype(np.float32))


def _segments(p0: torch.Tensor, p1: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Anti-aliased segments p0→p1 (n, k, 2) in pixels, one pen width (n,) px per image → ink (n, 28, 28).

    A segment placed far outside the frame (see `_off`) draws nothing."""
    gx, gy = _GRID[0, :, :, 0], _GRID[0, :, :, 1]  # (1, 784)
    x0, y0 = p0[..., :1], p0[..., 1:]  # (n, k, 1)
    dx, dy = p1[..., :1] - x0, p1[..., 1:] - y0
    rx, ry = gx - x0, gy - y0  # (n, k, 784)
    t = ((rx * dx + ry * dy) / (dx * dx + dy * dy).clamp_min(1e-6)).clamp_(0, 1)
    dist = ((rx - t * dx).square_() + (ry - t * dy).square_()).amin(1).sqrt_()  # (n, 784) to the nearest segment
    return (width[:, None] / 2 + 0.5 - dist).clamp_(0, 1).view(-1, SIZE, SIZE)


def _off(p: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """Move the points of primitives that are not drawn (on (n, k) False) far outside the frame."""
    return torch.where(on[..., None], p, torch.full_like(p, -1000.0))


def _bezier(ctrl: torch.Tensor, steps: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Quadratic Bézier curves, control points (n, k, 3, 2) → polyline segments (n, k*steps, 2) start and end."""
    t = torch.linspace(0, 1, steps + 1).view(1, 1, -1, 1)
    pts = (1 - t) ** 2 * ctrl[:, :, :1] + 2 * (1 - t) * t * ctrl[:, :, 1:2] + t**2 * ctrl[:, :, 2:]
    n = ctrl.shape[0]
    return pts[:, :, :-1].reshape(n, -1, 2), pts[:, :, 1:].reshape(n, -1, 2)


def _count_mask(rng: np.random.Generator, n: int, lo: int, hi: int) -> torch.Tensor:
    """(n, hi) bool: the first k ∈ [lo, hi] primitives of each image are drawn."""
    k = rng.integers(lo, hi + 1, n)
    return torch.from_numpy(np.arange(hi)[None] < k[:, None])


def _stretch(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Per-image contrast stretch to [0, 1] (1st–99th percentile), then a random gain in [0.6, 1]."""
    flat = x.reshape(len(x), -1)
    k = max(1, round(0.01 * flat.shape[1]))
    lo, hi = flat.kthvalue(k, dim=1).values, flat.kthvalue(flat.shape[1] + 1 - k, dim=1).values
    y = (x - lo.view(-1, 1, 1)) / (hi - lo).clamp_min(1e-3).view(-1, 1, 1)
    return y.clamp(0, 1) * _u(rng, 0.6, 1.0, len(x)).view(-1, 1, 1)




def _width(rng: np.random.Generator, n: int) -> torch.Tensor:
    return _u(rng, 1.5, 3.5, n)  # one pen per image, like a writer's


def _ink_level(x: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
    return (x * _u(rng, 0.75, 1.0, len(x)).view(-1, 1, 1)).numpy()


def _pick(digits: np.ndarray, rng: np.random.Generator, n: int) -> torch.Tensor:
    return torch.from_numpy(digits[np.sort(rng.integers(0, len(digits), n))][:, 0].astype(np.float32) / 255)


def _redraw(make: Callable[[int], tuple[torch.Tensor, torch.Tensor]], n: int, tries: int = 8) -> torch.Tensor:
    """Call make(m) → (images (m, 28, 28), ok (m,)) and re-draw the images that fail the "no digit" test."""
    x, ok = make(n)
    for _ in range(tries):
        bad = torch.nonzero(~ok).flatten()
        if len(bad) == 0:
            break
        x[bad], ok[bad] = make(len(bad))
    return x[ok] if not ok.all() else x  # the rare image still failing after `tries` re-draws is dropped …


def _hard(make: Callable[[int], tuple[torch.Tensor, torch.Tensor]], n: int) -> np.ndarray:
    x = _redraw(make, n)
    for _ in range(8):  # … and replaced
        if len(x) >= n:
            return x.numpy()
        x = torch.cat([x, _redraw(make, n - len(x))])
    raise MnistlabError("these digits cannot be broken into valid hard negatives (too little ink?)")


_YS, _XS = torch.meshgrid(torch.arange(SIZE, dtype=torch.float32), torch.arange(SIZE, dtype=torch.float32),
                          indexing="ij")


def _recentre(x: torch.Tensor) -> torch.Tensor:
    """Shift each image (n, 28, 28) by whole pixels so that its centre of mass is the frame's centre."""
    mass = x.sum((1, 2)).clamp_min(1e-6)
    cy, cx = (x * _YS).sum((1, 2)) / mass, (x * _XS).sum((1, 2)) / mass
    out = torch.zeros_like(x)
    for i in range(len(x)):
        out[i] = torch.roll(x[i], (int(round(13.5 - float(cy[i]))), int(round(13.5 - float(cx[i])))), (0, 1))
    return out
