"""Shifted digit test sets — a user's digits are not MNIST's — as pure functions of MNIST *test* images, and the random
training view built from the same operations.

Every builder maps uint8 (N, 1, 28, 28) → uint8 (N, 1, 28, 28), labels unchanged; per-image parameters follow the
image's index (no random state), so a set is a function of the images alone. `printed` renders the digits 0–9 from the
held-out font files instead (data/fonts.py). `inverted` is dark ink on light paper: it is read with `--invert`
(`data.images.load_npy(..., invert=True)`), which must give back the MNIST test images.

The training view (`random_view`) draws the same kinds of change at random, with its own ranges; because the sets
probe the shifts that were anticipated, they measure robustness to *these* shifts, not to every shift.
"""
from __future__ import annotations

import math
import random
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.data import fonts as fontlib
from mnistlab.errors import MnistlabError

SIZE = 28


# ------------------------------------------------------------------------------------------------ operations
# float (B, 1, 28, 28) in [0, 1] → same; per-image parameters are (B,) tensors or a scalar.


def down_up(x: torch.Tensor, side: int) -> torch.Tensor:
    """Low resolution: area-downsample to side×side, then bilinear back to 28×28 (a coarse scan, upscaled)."""
    small = F.adaptive_avg_pool2d(x, side)
    return F.interpolate(small, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


def dilate(x: torch.Tensor) -> torch.Tensor:
    """Thicker pen: 3×3 grey dilation (≈ +1 px each side), as a row then a column max (x ≥ 0, so zero padding is
    neutral); several times faster on a CPU than a 3×3 max_pool2d at stride 1."""
    p = F.pad(x, (1, 1, 0, 0))
    rows = p[..., :-2].maximum(p[..., 1:-1]).maximum(p[..., 2:])
    p = F.pad(rows, (0, 0, 1, 1))
    return p[..., :-2, :].maximum(p[..., 1:-1, :]).maximum(p[..., 2:, :])


def erode(x: torch.Tensor) -> torch.Tensor:
    """Thinner pen: grey erosion with a plus-shaped (4-neighbour) element, milder than 3×3 on 2-px strokes."""
    p = F.pad(x, (1, 1, 1, 1))
    out = x.minimum(p[..., :-2, 1:-1])
    for nb in (p[..., 2:, 1:-1], p[..., 1:-1, :-2], p[..., 1:-1, 2:]):
        torch.minimum(out, nb, out=out)
    return out


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor | float, *, radius: int | None = None) -> torch.Tensor:
    """Gaussian blur, sigma in pixels per image (B,) or one for all. The kernel reaches 3σ of the largest sigma, or
    `radius` pixels when given (then no value is read back from the device)."""
    b = len(x)
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(b).clamp_min(1e-3)
    r = radius if radius is not None else max(1, int(math.ceil(3 * float(s.max()))))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t[None] ** 2) / (2 * s[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)  # (B, 2r+1)
    y = F.conv2d(F.pad(x.reshape(1, b, SIZE, SIZE), (r, r, 0, 0)), k.view(b, 1, 1, -1), groups=b)
    y = F.conv2d(F.pad(y, (0, 0, r, r)), k.view(b, 1, -1, 1), groups=b)
    return y.view(b, 1, SIZE, SIZE)


def affine(x: torch.Tensor, *, scale: torch.Tensor | float = 1.0, shear: torch.Tensor | float = 0.0,
           dx: torch.Tensor | float = 0.0, dy: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Scale about the centre, slant (x += shear·y, top leaning right for shear > 0), shift by (dx, dy) pixels."""
    b = len(x)

    def col(v):
        return torch.as_tensor(v, dtype=x.dtype, device=x.device).expand(b)

    s, k, tx, ty = col(scale), col(shear), col(dx), col(dy)
    # p_out = A p_in + t with A = s·[[1, −k], [0, 1]] (y grows downwards); affine_grid wants p_in = A⁻¹ (p_out − t)
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 1] = 1 / s, k / s, 1 / s
    theta[:, 0, 2] = -(tx * 2 / SIZE + k * ty * 2 / SIZE) / s
    theta[:, 1, 2] = -(ty * 2 / SIZE) / s
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ------------------------------------------------------------------------------------------------ test sets


def _alternate(n: int, a: float, b: float) -> torch.Tensor:
    """a, b, a, b, … (n,): per-image parameters from the index, so that a set has both directions."""
    return torch.where(torch.arange(n) % 2 == 0, torch.tensor(a), torch.tensor(b))


def _signs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit directions cycling over the 8 compass points, by index."""
    a = torch.arange(n) % 8 * (math.pi / 4)
    return a.cos(), a.sin()


SETS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    "lowres-12": (lambda x: down_up(x, 12), "area-down to 12×12, bilinear up to 28×28"),
    "lowres-8": (lambda x: down_up(x, 8), "area-down to 8×8, bilinear up to 28×28"),
    "thick": (dilate, "stroke +1 px each side (3×3 dilation)"),
    "thin": (erode, "stroke −1 px (plus-shaped erosion)"),
    "blur": (lambda x: gaussian_blur(x, 1.2), "Gaussian blur σ = 1.2 px"),
    "slant": (lambda x: affine(x, shear=_alternate(len(x), 0.35, -0.35)), "slant ±0.35 (≈ ±19°), alternating"),
    "off-centre": (lambda x: affine(x, dx=4 * _signs(len(x))[0], dy=4 * _signs(len(x))[1]),
                   "shifted 4 px in one of 8 directions"),
    "small": (lambda x: affine(x, scale=0.6), "scaled ×0.6 about the centre (12-px digits)"),
    "large": (lambda x: affine(x, scale=1.2), "scaled ×1.2 about the centre"),
    "inverted": (lambda x: 1 - x, "dark ink on light paper, read with --invert"),
}
PRINTED = "printed"  # built from fonts, not from MNIST
NAMES = (*SETS, PRINTED)


def _to_float(x: np.ndarray) -> torch.Tensor:
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (1, SIZE, SIZE):
        raise MnistlabError(f"shifted sets need uint8 (N, 1, 28, 28) images, got {x.dtype} {x.shape}")
    return torch.as_tensor(np.array(x, np.float32)) / 255  # a copy: the input stays untouched


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def shift(name: str, x: np.ndarray) -> np.ndarray:
    """The shifted version `name` of uint8 images (N, 1, 28, 28); the labels are those of `x`."""
    if name not in SETS:
        raise MnistlabError(f"unknown shifted set {name!r}; valid: {', '.join(NAMES)}")
    return _to_uint8(SETS[name][0](_to_float(x)))


def printed(n: int, *, seed: int = 0, fonts: str = "held-out") -> tuple[np.ndarray, np.ndarray]:
    """`n` printed digits from the `fonts` split (upright, plain stroke, no jitter) → (uint8 (n, 1, 28, 28), labels)."""
    x, y = fontlib.render(n, np.random.default_rng([seed, 31]), chars=fontlib.DIGITS,
                          fonts=fontlib.font_files(fonts), stroke=(0, 2), slant=0.0, elastic=0.0)
    return _to_uint8(torch.from_numpy(x)[:, None]), y.astype(np.int64)


# ------------------------------------------------------------------------------------------------ training view


def random_view(x: torch.Tensor, gen: torch.Generator, *, p: float = 0.5) -> torch.Tensor:
    """A fraction `p` of the batch (B, 1, 28, 28) gets one random change: resolution 7–16 px, stroke ±1, blur σ
    0.5–1.5, slant ±0.4, scale 0.55–1.25 with a shift up to ±4 px. The rest is returned unchanged.

    Each of the five changes is computed for the whole batch and every image keeps the one it drew: a few cheap
    28×28 operations more than needed, but no shape depends on the draws (no host↔device sync on a GPU). The
    resolution is one per call, drawn on the host from the generator's seed (the training loops make a generator per
    step), which keeps it one pooling op."""
    if p <= 0:
        return x
    b, dev = len(x), gen.device  # draws on the generator's device (the batch's, in training)
    kind = torch.randint(0, 5, (b,), generator=gen, device=dev).to(x.device)
    changed = (torch.rand(b, generator=gen, device=dev) < p).to(x.device)
    u = torch.rand(b, 4, generator=gen, device=dev).to(x.device, x.dtype)
    views = torch.stack([
        down_up(x, random.Random(gen.initial_seed()).randrange(7, 17)),
        torch.where((u[:, 0] < 0.5).view(-1, 1, 1, 1), dilate(x), erode(x)),
        gaussian_blur(x, 0.5 + u[:, 0], radius=5),  # 3 × the largest σ (1.5), rounded up
        affine(x, shear=0.8 * u[:, 0] - 0.4),
        affine(x, scale=0.55 + 0.7 * u[:, 0], dx=8 * u[:, 1] - 4, dy=8 * u[:, 2] - 4),
    ])  # (5, B, 1, 28, 28)
    picked = views[kind, torch.arange(b, device=x.device)]
    return torch.where(changed.view(-1, 1, 1, 1), picked, x).clamp(0, 1)


# ------------------------------------------------------------------------------------------------ test-time views


def tta_views(x: torch.Tensor) -> list[torch.Tensor]:
    """Label-preserving views of a batch (B, 1, 28, 28) for a test-time agreement score: the image, 1-px shifts in 4
    directions, ×0.9 and ×1.1 scale, and ±0.15 slant (9 views)."""
    return [x, affine(x, dx=1.0), affine(x, dx=-1.0), affine(x, dy=1.0), affine(x, dy=-1.0), affine(x, scale=0.9),
            affine(x, scale=1.1), affine(x, shear=0.15), affine(x, shear=-0.15)]
