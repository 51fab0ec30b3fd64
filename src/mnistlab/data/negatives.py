"""Non-digit image generators for the digit detector: seeded, batched, registered families of uint8 (N, 1, 28, 28).

Every family draws `n` images from a `numpy.random.Generator`; `generate(family, n, seed=…)` seeds it from
(seed, family name), so a family's images depend on nothing but the seed. Images use MNIST polarity: bright ink on
a dark background. Four kinds:

- distribution: pixel values drawn from a probability law — `uniform`, `gaussian`, `salt-pepper` (Bernoulli),
  `smooth-noise` (low-frequency noise), `blobs` (isotropic Gaussian blobs);
- ink: anti-aliased strokes 1.5–3.5 px wide like MNIST's pen — `lines`, `curves` (Bézier scribbles), `shapes`
  (rectangles, triangles, filled ellipses). Each image composites several primitives (5–8 lines, 4–6 curves,
  3–5 shapes) spread over the whole frame: a single straight stroke *is* a legitimate "1", two crossing strokes are
  often a "4" or a "7", and a ring a "0" (two rings an "8") — so strokes never come alone or in pairs and rings are
  not drawn at all (a first version with 2–4 primitives and rings produced such digits, which the detector rightly
  accepted);
- patch: random crops of scikit-learn's bundled photos (china.jpg, flower.jpg) at scales 28–200 px, resized to 28,
  grey, contrast-stretched, randomly inverted — `natural-patches` — and their gradient magnitude (edges look like
  ink) — `natural-edges`;
- hard: MNIST digits broken beyond recognition. What counts as "no digit" here is "no single readable digit", the
  condition under which a digit classifier should refuse to answer:
    `digit-tiles`    the 4×4 grid of 7×7 tiles randomly permuted, re-drawn until < 35 % of the ink stays in place:
                     the ink statistics of a digit, the shape of none;
    `digit-occluded` everything but a random 7–11 px window is blacked out, re-drawn until ≤ 25 % of the ink is
                     visible: a fragment of stroke that cannot be named (a half-occluded digit often can, so milder
                     occlusion is NOT used as a negative);
    `digit-overlay`  three pairwise-dissimilar digits (cosine similarity < 0.5, in practice three different
                     classes) superposed (pixel-wise max) with ±2 px jitter, none of which covers ≥ 60 % of the
                     result's ink: no single digit is readable (two superposed digits, or a bold digit over two
                     thin ones, are often read as one — 1 over 7 is a 7 — so those are not used).
  Hard families take their digits from `digits=` (default: MNIST train); the detector builds its test negatives from
  MNIST *test* digits so that they are unseen.
"""
from __future__ import annotations

import contextlib
import functools
import zlib
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.data.augment import random_shift
from mnistlab.errors import MnistlabError
from mnistlab.registry import Registry

SIZE = 28
CHUNK = 512  # images rendered at once (bounds the (chunk, segments, 784) distance tensors to ≈ 50 MB)
KINDS = ("distribution", "ink", "patch", "hard")

# name → fn(n, rng, digits) -> float32 (n, 28, 28) in [0, 1]
FAMILIES: Registry[Callable[..., np.ndarray]] = Registry("negative family")


def family_names(kind: str | None = None) -> list[str]:
    """Registered families (of one kind)."""
    return [n for n in FAMILIES.names() if kind is None or FAMILIES.info(n)["kind"] == kind]


def generate(family: str, n: int, *, seed: int, digits: np.ndarray | None = None) -> np.ndarray:
    """`n` images of `family` as uint8 (n, 1, 28, 28), a pure function of (family, n, seed, digits)."""
    fn = FAMILIES.get(family)
    if n < 0:
        raise MnistlabError(f"cannot generate {n} images")
    rng = np.random.default_rng([seed, zlib.crc32(family.encode())])
    kw = {}
    if FAMILIES.info(family)["kind"] == "hard":
        kw["digits"] = _digits(digits)
    with _one_thread():
        outs = [fn(min(CHUNK, n - i), rng, **kw) for i in range(0, n, CHUNK)]
    x = np.concatenate(outs) if outs else np.zeros((0, SIZE, SIZE), np.float32)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)[:, None]


def generate_mix(n: int, *, seed: int, families: list[str] | tuple[str, ...] | None = None,
                 digits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`n` images spread evenly over `families` (default: all) → (uint8 (n, 1, 28, 28), family index (n,) into
    `families`), shuffled by `seed`."""
    families = list(families) if families is not None else family_names()
    if not families:
        raise MnistlabError("no negative family to generate from")
    counts = [n // len(families) + (i < n % len(families)) for i in range(len(families))]
    xs = [generate(f, c, seed=seed, digits=digits) for f, c in zip(families, counts)]
    fam = np.repeat(np.arange(len(families)), counts)
    perm = np.random.default_rng([seed, 7]).permutation(n)
    return np.concatenate(xs)[perm], fam[perm].astype(np.int64)


@contextlib.contextmanager
def _one_thread():
    """Small tensor ops run fastest on one thread, and far faster on one than on two when the cores are shared
    (measured 0.35 s vs 10.7 s for 2000 `natural-edges` under a load of 12 on 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _digits(digits: np.ndarray | None) -> np.ndarray:
    if digits is None:
        from mnistlab.data import load_dataset

        ds = load_dataset("mnist")
        return ds.train_x
    digits = np.asarray(digits)
    if digits.dtype != np.uint8 or digits.ndim != 4 or digits.shape[1:] != (1, SIZE, SIZE) or len(digits) < 3:
        raise MnistlabError(f"hard negatives need ≥ 3 uint8 digits (N, 1, 28, 28), got {digits.dtype} {digits.shape}")
    return digits


# ------------------------------------------------------------------------------------------------ rendering helpers

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


# ------------------------------------------------------------------------------------------------ distributions


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


# ------------------------------------------------------------------------------------------------ ink


def _width(rng: np.random.Generator, n: int) -> torch.Tensor:
    return _u(rng, 1.5, 3.5, n)  # one pen per image, like a writer's


def _ink_level(x: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
    return (x * _u(rng, 0.75, 1.0, len(x)).view(-1, 1, 1)).numpy()


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


# ------------------------------------------------------------------------------------------------ photo patches


@functools.lru_cache(maxsize=1)
def _pyramid() -> tuple[tuple[torch.Tensor, ...], ...]:
    """scikit-learn's two bundled photos as grey float (1, 1, H, W) in [0, 1] (ITU-R 601 luma), each with its
    2×, 4× and 8× area-downsampled levels."""
    from sklearn.datasets import load_sample_images

    out = []
    for im in load_sample_images().images:
        g = torch.from_numpy((im.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255)[None, None]
        out.append(tuple(F.avg_pool2d(g, 2**lv) if lv else g for lv in range(4)))
    return tuple(out)


_BASE = (_GRID[0, 0].view(SIZE, SIZE, 2) + 0.5) / SIZE * 2 - 1  # (28, 28, 2) pixel centres in [-1, 1]


def _crops(n: int, rng: np.random.Generator) -> torch.Tensor:
    """n random square crops, side 28–200 px (log-uniform), resized to 28 → (n, 28, 28).

    A crop of side s is read from the pyramid level 2^L ≤ s/28 < 2^(L+1), so bilinear resampling shrinks by < 2×
    (no aliasing to speak of)."""
    photos = _pyramid()
    which = rng.integers(0, len(photos), n)
    side = np.exp(rng.uniform(np.log(SIZE), np.log(200), n))
    level = np.clip(np.floor(np.log2(side / SIZE)), 0, 3).astype(int)
    h, w = photos[0][0].shape[-2:]
    cy = rng.uniform(side / 2, h - side / 2)  # crop centre, in full-resolution pixels
    cx = rng.uniform(side / 2, w - side / 2)
    out = torch.empty(n, SIZE, SIZE)
    for p in range(len(photos)):
        for lv in range(4):
            idx = np.flatnonzero((which == p) & (level == lv))
            if not len(idx):
                continue
            img = photos[p][lv]
            H, W = img.shape[-2:]
            # sampling grid in the level's [-1, 1] coordinates (align_corners=False): centre ± half side
            half = torch.from_numpy(side[idx] / 2).float().view(-1, 1, 1)
            gx = (torch.from_numpy(cx[idx]).float().view(-1, 1, 1) + half * _BASE[..., 0]) / w * 2 - 1
            gy = (torch.from_numpy(cy[idx]).float().view(-1, 1, 1) + half * _BASE[..., 1]) / h * 2 - 1
            grid = torch.stack([gx, gy], -1)  # (m, 28, 28, 2)
            out[idx] = F.grid_sample(img.expand(len(idx), 1, H, W), grid, mode="bilinear",
                                     align_corners=False)[:, 0]
    return out


@FAMILIES.register("natural-patches", kind="patch", about="grey crops of sklearn's photos, stretched, half inverted")
def natural_patches(n: int, rng: np.random.Generator) -> np.ndarray:
    x = _stretch(_crops(n, rng), rng)
    inv = torch.from_numpy(rng.random(n) < 0.5).view(-1, 1, 1)
    gain = x.amax((1, 2), keepdim=True)
    return torch.where(inv, gain - x, x).numpy()


@FAMILIES.register("natural-edges", kind="patch", about="gradient magnitude (Sobel) of photo crops: ink-like edges")
def natural_edges(n: int, rng: np.random.Generator) -> np.ndarray:
    x = _crops(n, rng)[:, None]
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx = F.conv2d(F.pad(x, (1,) * 4, mode="replicate"), kx)
    gy = F.conv2d(F.pad(x, (1,) * 4, mode="replicate"), kx.transpose(2, 3))
    return _stretch((gx**2 + gy**2).sqrt()[:, 0], rng).numpy()


# ------------------------------------------------------------------------------------------------ broken digits


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
