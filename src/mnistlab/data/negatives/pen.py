"""Pen family: handwriting-like trajectories — one or two strokes of a pen whose direction drifts and swings, with a
digit's stroke length, width and placement, but no digit's shape."""
from __future__ import annotations

import numpy as np
import torch

from mnistlab.data.negatives import FAMILIES
from mnistlab.data.negatives._draw import SIZE, _ink_level, _recentre, _segments, _width

STEPS = 24  # polyline segments per stroke


def _trajectories(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2·STEPS, 2) segment starts and ends on a 28-px canvas: two strokes (the second is off for a third of the
    images), each a random walk in heading whose turning rate itself drifts (loops, hooks, zig-zags)."""
    k = 2
    turn0 = rng.uniform(-0.5, 0.5, (n, k, 1))  # rad per step
    dturn = rng.normal(0, 0.12, (n, k, STEPS)).cumsum(-1)  # the turning rate drifts
    flips = np.where(rng.random((n, k, STEPS)) < 0.06, -1.0, 1.0).cumprod(-1)  # sudden reversals: zig-zags
    heading = rng.uniform(0, 2 * np.pi, (n, k, 1)) + ((turn0 + dturn) * flips).cumsum(-1)
    step = rng.uniform(0.9, 1.8, (n, k, 1))  # px per step: strokes of 20–45 px, as a digit's
    start = rng.uniform(6, 22, (n, k, 1, 2))
    d = np.stack([np.cos(heading), np.sin(heading)], -1) * step[..., None]
    pts = np.concatenate([start, start + d.cumsum(2)], 2)  # (n, k, STEPS+1, 2)
    p0, p1 = torch.from_numpy(pts[:, :, :-1]).float(), torch.from_numpy(pts[:, :, 1:]).float()
    second = torch.from_numpy(rng.random(n) < 2 / 3)
    p0[:, 1][~second] = -1000.0  # far outside: not drawn
    p1[:, 1][~second] = -1000.0
    return p0.reshape(n, -1, 2), p1.reshape(n, -1, 2)


def _straightness(p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
    """(n,) end-to-end distance / path length of the first stroke: ≈ 1 for a straight bar (a "1")."""
    a, b = p0[:, :STEPS], p1[:, :STEPS]
    length = (b - a).norm(dim=-1).sum(1)
    return (b[:, -1] - a[:, 0]).norm(dim=-1) / length.clamp_min(1e-6)


@FAMILIES.register("pen-strokes", kind="ink", about="1–2 drifting pen trajectories, digit-like length/width, placed as MNIST")
def pen_strokes(n: int, rng: np.random.Generator) -> np.ndarray:
    p0, p1 = _trajectories(n, rng)
    # a nearly straight single stroke is a "1", a closed smooth loop a "0": redraw those
    for _ in range(8):
        closed = (p1[:, STEPS - 1] - p0[:, 0]).norm(dim=-1) < 3
        bad = (_straightness(p0, p1) > 0.85) | closed
        if not bad.any():
            break
        q0, q1 = _trajectories(int(bad.sum()), rng)
        p0[bad], p1[bad] = q0, q1
    # MNIST placement: the drawn points' bounding box scaled to fit 18 px (+ the pen ≈ 20 px), centre of mass centred
    drawn = p0[:, :, 0] > -500  # (n, 2·STEPS)
    on = torch.cat([drawn, drawn], 1)[..., None]
    pts = torch.cat([p0, p1], 1)
    lo = torch.where(on, pts, torch.full_like(pts, 1e4)).amin(1, keepdim=True)  # (n, 1, 2)
    hi = torch.where(on, pts, torch.full_like(pts, -1e4)).amax(1, keepdim=True)
    scale = 18 / (hi - lo).amax(-1, keepdim=True).clamp_min(1.0)
    centre = (lo + hi) / 2

    def place(q: torch.Tensor) -> torch.Tensor:
        return torch.where(drawn[..., None], (q - centre) * scale + SIZE / 2, q)

    ink = _segments(place(p0), place(p1), _width(rng, n))
    return _ink_level(_recentre(ink), rng)
