"""Non-digit noise inputs for the rejection study: uniform pixel noise and smooth Gaussian blobs of ink."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

NOISE_KINDS = ("noise-uniform", "noise-gaussian")


def noise_images(kind: str, n: int, shape: tuple[int, ...], *, seed: int) -> np.ndarray:
    """(n, *shape) uint8: uniform pixel noise, or smooth Gaussian blobs of ink (a harder, digit-like intensity)."""
    rng = np.random.default_rng([seed, NOISE_KINDS.index(kind)])
    if kind == "noise-uniform":
        return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    z = torch.from_numpy(rng.normal(size=(n, *shape)).astype(np.float32))
    k = torch.exp(-torch.arange(-4, 5, dtype=torch.float32) ** 2 / 4.5)
    k = (k / k.sum()).view(1, 1, 1, -1)
    c = shape[0]
    z = F.conv2d(z, k.expand(c, 1, 1, -1), padding=(0, 4), groups=c)
    z = F.conv2d(z, k.transpose(2, 3).expand(c, 1, -1, 1), padding=(4, 0), groups=c)
    z = (z - z.mean(dim=(1, 2, 3), keepdim=True)) / z.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (255 * (z > 1.0).float()).numpy().astype(np.uint8)  # ~16 % ink in random smooth blobs
