"""Distribution families: pixel values drawn from a probability law (uniform, Gaussian, Bernoulli, smooth noise, blobs)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.data.negatives import FAMILIES
from mnistlab.data.negatives._draw import SIZE, _GRID, _count_mask, _stretch, _u

@FAMILIES.register("uniform", kind="distribution", about="i.i.d. U(a, b) pixels, a < b drawn per image")
def uniform(n: int, rng: np.random.Generator) -> np.ndarray:
    a, b = np.sort(rng.uniform(0, 1, (2, n, 1, 1)), axis=0)
    b = np.maximum(b, a + 0.1)
    return (a + (b - a) * rng.random((n, SIZE, SIZE))).astype(np.float32)


@FAMILIES.register("gaussian", kind="distribution", about="i.i.d. N(μ, σ²) pixels, clipped; μ, σ per image")
def gaussian(n: int, rng: np.random.Generator) -> np.ndarray:
    mu, sd = rng.uniform(0, 0.8, (n, 1, 1)), rng.uniform(0.05, 0.5, (n, 1, 1))
    return (mu + sd * rng.standard_normal((n, SIZE, SIZE))).astype(np.float32)


@FAMILIES.register("salt-pepper", kind="distribution", about="Bernoulli(p) white dots on a grey level, p 2–50 %")
def salt_pepper(n: int, rng: np.random.Generator) -> np.ndarray:
    p = rng.uniform(0.02, 0.5, (n, 1, 1))
    base = rng.uniform(0, 0.3, (n, 1, 1)) * (rng.random((n, 1, 1)) < 0.5)
    pepper = rng.random((n, SIZE, SIZE)) < p * rng.uniform(0, 0.5, (n, 1, 1))  # some black dots on the grey
    x = np.where(rng.random((n, SIZE, SIZE)) < p, 1.0, base)
    return np.where(pepper, 0.0, x).astype(np.float32)


@FAMILIES.register("smooth-noise", kind="distribution", about="Gaussian noise on a 2–8 px grid, bicubic upsampled")
def smooth_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    out = torch.empty(n, SIZE, SIZE)
    res = rng.integers(2, 9, n)
    for r in np.unique(res):
        idx = np.flatnonzero(res == r)
        z = torch.from_numpy(rng.standard_normal((len(idx), 1, r, r)).astype(np.float32))
        out[idx] = F.interpolate(z, size=(SIZE, SIZE), mode="bicubic", align_corners=False)[:, 0]
    x = _stretch(out, rng)
    gamma = _u(rng, 0.5, 3.0, n).view(-1, 1, 1)  # > 1: dark background with bright islands, like ink on paper
    return x.clamp_min(0).pow(gamma).numpy()


@FAMILIES.register("blobs", kind="distribution", about="1–6 isotropic Gaussian blobs, σ 1.5–6 px")
def blobs(n: int, rng: np.random.Generator) -> np.ndarray:
    k = 6
    on = _count_mask(rng, n, 1, k).float()
    c = _u(rng, 2, SIZE - 3, (n, k, 1, 2))
    sigma = _u(rng, 1.5, 6.0, (n, k, 1))
    amp = _u(rng, 0.5, 1.0, (n, k, 1)) * on[..., None]
    d2 = ((_GRID[:, 0] - c) ** 2).sum(-1)  # (n, k, 784)
    x = (amp * torch.exp(-d2 / (2 * sigma**2))).sum(1)
    return x.clamp(0, 1).view(n, SIZE, SIZE).numpy()


