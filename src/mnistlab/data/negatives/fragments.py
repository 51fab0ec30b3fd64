"""Fragment families: pieces and pairs of MNIST *training* digits — the strokes of real handwriting, but not one whole
digit. They read only the training split (`train_digits`, default MNIST train): never a test digit."""
from __future__ import annotations

import numpy as np
import torch

from mnistlab.data.fonts import mnist_place
from mnistlab.data.negatives import FAMILIES
from mnistlab.data.negatives._draw import _XS, _YS, SIZE, _hard, _pick, _recentre

@FAMILIES.register("digit-fragments", kind="fragment", about="a training digit cut by a line through its centre: 30–60 % of its ink, re-centred")
def digit_fragments(n: int, rng: np.random.Generator, *, digits: np.ndarray) -> np.ndarray:
    def make(m: int):
        d = _pick(digits, rng, m)
        mass = d.sum((1, 2)).clamp_min(1e-6)
        cy, cx = (d * _YS).sum((1, 2)) / mass, (d * _XS).sum((1, 2)) / mass
        a = torch.from_numpy(rng.uniform(0, 2 * np.pi, m)).float()
        off = torch.from_numpy(rng.uniform(-3, 3, m)).float()  # the cut passes within ±3 px of the centre of mass
        side = ((_XS - cx.view(-1, 1, 1)) * a.cos().view(-1, 1, 1) + (_YS - cy.view(-1, 1, 1)) * a.sin().view(-1, 1, 1)
                > off.view(-1, 1, 1))
        x = d * side
        kept = x.sum((1, 2)) / mass
        return _recentre(x), (kept >= 0.3) & (kept <= 0.6)

    return _hard(make, n)


def _crop(img: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(img.max(1) > 0.05), np.flatnonzero(img.max(0) > 0.05)
    return img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


@FAMILIES.register("digit-pairs", kind="fragment", about="two training digits side by side (or stacked), placed as MNIST")
def digit_pairs(n: int, rng: np.random.Generator, *, digits: np.ndarray) -> np.ndarray:
    a, b = _pick(digits, rng, n).numpy(), _pick(digits, rng, n).numpy()
    out = np.zeros((n, SIZE, SIZE), np.float32)
    for i in range(n):
        p, q = _crop(a[i]), _crop(b[i])
        gap = int(rng.integers(0, 4))
        if rng.random() < 0.8:  # side by side, bottoms aligned
            h = max(len(p), len(q))
            canvas = np.zeros((h, p.shape[1] + gap + q.shape[1]), np.float32)
            canvas[h - len(p):, :p.shape[1]] = p
            canvas[h - len(q):, p.shape[1] + gap:] = q
        else:  # stacked
            w = max(p.shape[1], q.shape[1])
            canvas = np.zeros((len(p) + gap + len(q), w), np.float32)
            canvas[:len(p), :p.shape[1]] = p
            canvas[len(p) + gap:, :q.shape[1]] = q
        out[i] = mnist_place(canvas)
    return out
