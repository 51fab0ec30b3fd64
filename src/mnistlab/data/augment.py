"""Augmentations as pure functions of a float batch (B, C, H, W) in [0, 1] and a torch.Generator.

Each keeps shape, dtype and range and is the identity at strength 0. Digit-safe: no flips, no 90° turns (6 ↔ 9);
datasets that allow flips say so (`Dataset.hflip_safe`) and methods ask.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def affine_matrices(n: int, gen: torch.Generator, *, degrees: float = 0.0, translate: float = 0.0,
                    scale: tuple[float, float] = (1.0, 1.0), shear: float = 0.0) -> torch.Tensor:
    """(n, 2, 3) matrices for `F.affine_grid`: rotation ±degrees, shift ±translate (fraction of size), zoom, shear°."""
    a = _uniform(gen, n, -degrees, degrees) * math.pi / 180
    s = _uniform(gen, n, scale[0], scale[1])
    sh = _uniform(gen, n, -shear, shear) * math.pi / 180
    tx, ty = (_uniform(gen, n, -translate, translate) * 2 for _ in range(2))  # grid units: [-1, 1] spans the image
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    m = torch.zeros(n, 2, 3)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = cos, -sin + torch.tan(sh) * cos, tx
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = sin, cos, ty
    return m


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample (B, C, H, W) with affine matrices (B, 2, 3); outside the image is background 0."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_affine(x: torch.Tensor, gen: torch.Generator, *, degrees: float = 10.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1), shear: float = 0.0) -> torch.Tensor:
    if degrees == 0 and translate == 0 and scale == (1.0, 1.0) and shear == 0:
        return x
    return warp(x, affine_matrices(len(x), gen, degrees=degrees, translate=translate, scale=scale, shear=shear))


def random_shift(x: torch.Tensor, gen: torch.Generator, *, pixels: int = 2) -> torch.Tensor:
    """Integer translation by up to ±pixels with zero padding (exact, no interpolation blur)."""
    if pixels == 0:
        return x
    b, c, h, w = x.shape
    pad = F.pad(x, (pixels,) * 4)
    dx = torch.randint(0, 2 * pixels + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * pixels + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None]).view(b, 1, h, 1).expand(b, c, h, w + 2 * pixels)
    out = pad.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None]).view(b, 1, 1, w).expand(b, c, h, w)
    return out.gather(3, cols)


def elastic(x: torch.Tensor, gen: torch.Generator, *, alpha: float = 0.0, sigma: float = 4.0) -> torch.Tensor:
    """Elastic deformation (Simard et al. 2003): a random displacement field, Gaussian-smoothed; alpha in pixels."""
    if alpha == 0:
        return x
    b, _, h, w = x.shape
    field = torch.rand(b, 2, h, w, generator=gen) * 2 - 1
    k = int(2 * round(3 * sigma) + 1)
    g = torch.exp(-((torch.arange(k) - k // 2) ** 2) / (2 * sigma**2))
    g = (g / g.sum()).to(x.dtype)
    field = F.conv2d(field.reshape(-1, 1, h, w), g.view(1, 1, 1, k), padding=(0, k // 2))
    field = F.conv2d(field, g.view(1, 1, k, 1), padding=(k // 2, 0)).view(b, 2, h, w)
    field = field / field.abs().amax(dim=(2, 3), keepdim=True).clamp_min(1e-6) * alpha
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack([xs, ys], -1)[None] + field.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h])
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def cutout(x: torch.Tensor, gen: torch.Generator, *, size: int = 0) -> torch.Tensor:
    """Zero a size×size square at a random place (may overlap the border)."""
    if size == 0:
        return x
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1, 1), generator=gen)
    cx = torch.randint(0, w, (b, 1, 1), generator=gen)
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    mask = ((ys - cy).abs() <= size // 2) & ((xs - cx).abs() <= size // 2)
    return x * (~mask).unsqueeze(1).to(x.dtype)


def hflip(x: torch.Tensor, gen: torch.Generator, *, p: float = 0.5) -> torch.Tensor:
    """Left-right mirror with probability p — only for datasets whose `hflip_safe` is True."""
    if p == 0:
        return x
    flip = (torch.rand(len(x), generator=gen) < p).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(3), x)
