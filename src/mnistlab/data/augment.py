"""Augmentations as pure functions of a float batch (B, C, H, W) in [0, 1] and a torch.Generator.

Random numbers are drawn on the generator's device and constants made on the batch's: give a batch on the GPU a
generator on the GPU (`train.step_generator(..., device=)`), and nothing leaves the device.

Each keeps shape, dtype and range and is the identity at strength 0. Digit-safe: no flips, no 90° turns (6 ↔ 9);
datasets that allow flips say so (`Dataset.hflip_safe`) and methods ask.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=gen.device) * (hi - lo) + lo


def affine_matrices(n: int, gen: torch.Generator, *, degrees: float = 0.0, translate: float = 0.0,
                    scale: tuple[float, float] = (1.0, 1.0), shear: float = 0.0) -> torch.Tensor:
    """(n, 2, 3) matrices for `F.affine_grid`: rotation ±degrees, shift ±translate (fraction of size), zoom, shear°."""
    a = _uniform(gen, n, -degrees, degrees) * math.pi / 180
    s = _uniform(gen, n, scale[0], scale[1])
    sh = _uniform(gen, n, -shear, shear) * math.pi / 180
    tx, ty = (_uniform(gen, n, -translate, translate) * 2 for _ in range(2))  # grid units: [-1, 1] spans the image
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    m = torch.zeros(n, 2, 3, device=gen.device)
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
    dx = torch.randint(0, 2 * pixels + 1, (b,), generator=gen, device=gen.device)
    dy = torch.randint(0, 2 * pixels + 1, (b,), generator=gen, device=gen.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None]).view(b, 1, h, 1).expand(b, c, h, w + 2 * pixels)
    out = pad.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None]).view(b, 1, 1, w).expand(b, c, h, w)
    return out.gather(3, cols)


def elastic(x: torch.Tensor, gen: torch.Generator, *, alpha: float = 0.0, sigma: float = 4.0) -> torch.Tensor:
    """Elastic deformation (Simard et al. 2003): a random displacement field, Gaussian-smoothed; alpha in pixels."""
    if alpha == 0:
        return x
    b, _, h, w = x.shape
    field = torch.rand(b, 2, h, w, generator=gen, device=gen.device) * 2 - 1
    k = int(2 * round(3 * sigma) + 1)
    g = torch.exp(-((torch.arange(k, device=x.device) - k // 2) ** 2) / (2 * sigma**2))
    g = (g / g.sum()).to(x.dtype)
    field = F.conv2d(field.reshape(-1, 1, h, w), g.view(1, 1, 1, k), padding=(0, k // 2))
    field = F.conv2d(field, g.view(1, 1, k, 1), padding=(k // 2, 0)).view(b, 2, h, w)
    field = field / field.abs().amax(dim=(2, 3), keepdim=True).clamp_min(1e-6) * alpha
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device), torch.linspace(-1, 1, w, device=x.device),
                            indexing="ij")
    grid = torch.stack([xs, ys], -1)[None] + field.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h], device=x.device)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def cutout(x: torch.Tensor, gen: torch.Generator, *, size: int = 0) -> torch.Tensor:
    """Zero a size×size square at a random place (may overlap the border)."""
    if size == 0:
        return x
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1, 1), generator=gen, device=gen.device)
    cx = torch.randint(0, w, (b, 1, 1), generator=gen, device=gen.device)
    ys, xs = torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)
    mask = ((ys - cy).abs() <= size // 2) & ((xs - cx).abs() <= size // 2)
    return x * (~mask).unsqueeze(1).to(x.dtype)


def hflip(x: torch.Tensor, gen: torch.Generator, *, p: float = 0.5) -> torch.Tensor:
    """Left-right mirror with probability p — only for datasets whose `hflip_safe` is True."""
    if p == 0:
        return x
    flip = (torch.rand(len(x), generator=gen, device=gen.device) < p).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(3), x)


# ------------------------------------------------------------------------------------------------ stroke & shape
# Added for the seed report's augmentations (rotation, translation, dilation / shrink, deformation).


def stroke(x: torch.Tensor, gen: torch.Generator, *, radius: int = 0) -> torch.Tensor:
    """Random stroke thickness: per image, dilate (r > 0) or erode (r < 0) by r pixels, r uniform in ±radius.

    Grey-level morphology with a (2|r|+1)² square: dilation = max filter, erosion = min filter. radius 0–2 is sensible
    on 28 × 28 digits (erosion by 2 can erase thin strokes).
    """
    if radius == 0:
        return x
    r = torch.randint(-radius, radius + 1, (len(x),), generator=gen, device=gen.device)
    out = x.clone()
    for k in range(1, radius + 1):  # at most 2·radius passes over the batch, never one per image
        for sign in (1, -1):
            sel = r == sign * k
            if sel.any():
                xs = x[sel]
                pooled = F.max_pool2d(xs if sign > 0 else -xs, 2 * k + 1, stride=1, padding=k)
                out[sel] = pooled if sign > 0 else -pooled
    return out


def perspective(x: torch.Tensor, gen: torch.Generator, *, distortion: float = 0.0) -> torch.Tensor:
    """Random perspective: each corner moves by up to ±distortion × half the image size (0–0.3 is sensible)."""
    if distortion == 0:
        return x
    b = len(x)
    dst = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], device=x.device).expand(b, 4, 2)
    src = dst + (torch.rand(b, 4, 2, generator=gen, device=gen.device) * 2 - 1) * distortion  # where they sample from
    # homography H (8 unknowns) with H(dst) = src, solved for the whole batch at once
    xd, yd, xs, ys = dst[..., 0], dst[..., 1], src[..., 0], src[..., 1]
    zeros, ones = torch.zeros_like(xd), torch.ones_like(xd)
    rows_x = torch.stack([xd, yd, ones, zeros, zeros, zeros, -xd * xs, -yd * xs], -1)  # (B, 4, 8)
    rows_y = torch.stack([zeros, zeros, zeros, xd, yd, ones, -xd * ys, -yd * ys], -1)
    a = torch.cat([rows_x, rows_y], 1)  # (B, 8, 8)
    h = torch.linalg.solve(a, torch.cat([xs, ys], 1))  # (B, 8)
    hh, ww = x.shape[-2:]
    gy, gx = torch.meshgrid(torch.linspace(-1 + 1 / hh, 1 - 1 / hh, hh, device=x.device),
                            torch.linspace(-1 + 1 / ww, 1 - 1 / ww, ww, device=x.device), indexing="ij")  # pixel centres, align_corners=False convention
    gx, gy = gx.reshape(1, -1), gy.reshape(1, -1)
    den = h[:, 6:7] * gx + h[:, 7:8] * gy + 1
    sx = (h[:, 0:1] * gx + h[:, 1:2] * gy + h[:, 2:3]) / den
    sy = (h[:, 3:4] * gx + h[:, 4:5] * gy + h[:, 5:6]) / den
    grid = torch.stack([sx, sy], -1).view(b, hh, ww, 2)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)


def digit_augment(x: torch.Tensor, gen: torch.Generator, *, strength: float = 1.0) -> torch.Tensor:
    """The seed report's family for digits, at full strength: rotation ±15°, shift ±10 %, zoom ×0.85–1.1, shear ±10°,
    stroke thickness ±1 px, elastic (alpha 1.5 px, sigma 4) or perspective (0.15), half each. 0 = identity.

    Used both on the fly (one call per batch) and offline (`expand`)."""
    if strength == 0:
        return x
    s = strength
    x = random_affine(x, gen, degrees=15 * s, translate=0.1 * s, scale=(1 - 0.15 * s, 1 + 0.1 * s), shear=10 * s)
    x = stroke(x, gen, radius=1 if s >= 0.5 else 0)
    half = torch.rand(len(x), generator=gen, device=gen.device) < 0.5
    el, pe = elastic(x, gen, alpha=1.5 * s, sigma=4.0), perspective(x, gen, distortion=0.15 * s)
    return torch.where(half.view(-1, 1, 1, 1), el, pe).clamp_(0, 1)


def expand(x: torch.Tensor, gen: torch.Generator, *, copies: int, fn=digit_augment, **kw) -> torch.Tensor:
    """Offline ×(copies + 1) expansion (the report used 10 copies): the originals, then `copies` augmented variants of
    each, as one batch (B·(copies + 1), C, H, W); row i·B + j is a variant of image j."""
    return torch.cat([x] + [fn(x, gen, **kw) for _ in range(copies)])


# ---------------------------------------------------------------------------------------------- photometric / stroke
# Per-image magnitudes are drawn inside each function; all keep (B, C, H, W), dtype and the [0, 1] range.


def contrast(x: torch.Tensor, gen: torch.Generator, *, gain: tuple[float, float] = (1.0, 1.0),
             gamma: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """Ink intensity: x ** gamma * gain, clipped (background 0 stays 0; gamma < 1 brightens faint strokes)."""
    if gain == (1.0, 1.0) and gamma == (1.0, 1.0):
        return x
    b = len(x)
    g = _uniform(gen, b, *gain).view(b, 1, 1, 1).to(x.dtype)
    lg = torch.log(torch.tensor(gamma, dtype=torch.float32, device=x.device))  # gamma is log-uniform: symmetric around 1
    gm = torch.exp(_uniform(gen, b, float(lg[0]), float(lg[1]))).view(b, 1, 1, 1).to(x.dtype)
    return (x.clamp_min(0).pow(gm) * g).clamp(0, 1)


def blur(x: torch.Tensor, gen: torch.Generator, *, sigma: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """Gaussian blur with a per-image sigma (pixels) drawn in `sigma`; one grouped separable convolution."""
    if sigma[1] <= 0:
        return x
    b, c, h, w = x.shape
    s = _uniform(gen, b, *sigma).clamp_min(1e-3)
    r = max(1, int(math.ceil(2 * sigma[1])))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-(t[None] ** 2) / (2 * s[:, None] ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0).to(x.dtype)  # (B*C, 2r+1)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0)), k.view(b * c, 1, 1, -1), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r)), k.view(b * c, 1, -1, 1), groups=b * c)
    return y.view(b, c, h, w)


def noise(x: torch.Tensor, gen: torch.Generator, *, std: float = 0.0) -> torch.Tensor:
    """Additive Gaussian noise, per-image std drawn in [0, std], clipped to [0, 1]."""
    if std == 0:
        return x
    b = len(x)
    s = _uniform(gen, b, 0.0, std).view(b, 1, 1, 1)
    return (x + torch.randn(x.shape, generator=gen, device=gen.device) * s).clamp(0, 1).to(x.dtype)


def extra_stroke(x: torch.Tensor, gen: torch.Generator, *, length: tuple[float, float] = (0.0, 0.0),
                 width: float = 1.5, centre: float = 0.25) -> torch.Tensor:
    """Draw one straight stroke (a bar, a serif, a crossing) of `length` pixels at any angle across each image.

    Why: handwriting varies by extra strokes — crossed 7s and Z's, serifs on 1s, closed 4s. With few labels a class
    whose labelled images lack such a stroke loses its stroked members to another class; a strong view that adds a
    stroke teaches the student that one more bar does not change the class. The bar's centre lies within ±`centre`
    (fraction of the size) of the image centre, where the digit is; ink = max(image, antialiased bar).
    """
    if length[1] <= 0:
        return x
    b, _, h, w = x.shape
    ln = _uniform(gen, b, *length)
    ang = _uniform(gen, b, 0.0, math.pi)
    cx = w / 2 + _uniform(gen, b, -centre, centre) * w
    cy = h / 2 + _uniform(gen, b, -centre, centre) * h
    dx, dy = torch.cos(ang) * ln / 2, torch.sin(ang) * ln / 2
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=x.device) + 0.5,
                            torch.arange(w, dtype=torch.float32, device=x.device) + 0.5, indexing="ij")  # (H, W)
    px, py = xs[None] - (cx - dx).view(b, 1, 1), ys[None] - (cy - dy).view(b, 1, 1)  # from the segment's start
    sx, sy = (2 * dx).view(b, 1, 1), (2 * dy).view(b, 1, 1)
    t = ((px * sx + py * sy) / (sx * sx + sy * sy).clamp_min(1e-6)).clamp(0, 1)  # projection onto the segment
    dist = torch.hypot(px - t * sx, py - t * sy)  # (B, H, W) pixels from the segment
    bar = (width / 2 + 0.5 - dist).clamp(0, 1).unsqueeze(1).to(x.dtype)  # 1 inside, antialiased edge
    return torch.maximum(x, bar)
