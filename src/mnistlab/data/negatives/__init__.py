"""Non-digit image generators for the digit detector: seeded, batched, registered families of uint8 (N, 1, 28, 28).

Every family draws `n` images from a `numpy.random.Generator`; `generate(family, n, seed=…)` seeds it from
(seed, family name), so a family's images depend on nothing but the seed (and, for the kinds below that take them, the
given digits or font split). Images use MNIST polarity: bright ink on a dark background. One file per kind, found by
the registry:

- distribution.py: pixel values drawn from a probability law (`uniform`, `gaussian`, `salt-pepper`, `smooth-noise`,
  `blobs`);
- ink.py: anti-aliased strokes 1.5–3.5 px wide like MNIST's pen spread over the whole frame (`lines`, `curves`,
  `shapes`); pen.py: handwriting-like pen trajectories at MNIST placement (`pen-strokes`);
- patch.py: crops of scikit-learn's bundled photos and their edges (`natural-patches`, `natural-edges`);
- font.py: letters and symbols rendered from system fonts at MNIST placement (`letters`); `fonts="train"` (default)
  draws from the training font files, `"held-out"` from the others (leave-fonts-out, data/fonts.py);
- hard.py, fragments.py: MNIST digits broken beyond a single readable digit (`digit-tiles`, `digit-occluded`,
  `digit-overlay`, `digit-fragments`, `digit-pairs`). Hard families take their digits from `digits=` (default: MNIST
  *train*); the detector builds its test negatives from MNIST *test* digits so that they are unseen.
"""
from __future__ import annotations

import contextlib
import zlib
from typing import Callable

import numpy as np
import torch

from mnistlab.data import load_dataset
from mnistlab.data.fonts import font_files
from mnistlab.errors import MnistlabError
from mnistlab.registry import Registry
from mnistlab.data.negatives._draw import SIZE

CHUNK = 512  # images rendered at once (bounds the (chunk, segments, 784) distance tensors to ≈ 50 MB)
KINDS = ("distribution", "ink", "patch", "font", "hard", "fragment")
FONT_SPLITS = ("train", "held-out", "all")
# the families that look like writing (near out-of-distribution for a digit detector), the hard ones to reject
NEAR = ("letters", "pen-strokes", "digit-fragments", "digit-pairs")

# name → fn(n, rng[, digits= | fonts=]) -> float32 (n, 28, 28) in [0, 1]
FAMILIES: Registry[Callable[..., np.ndarray]] = Registry("negative family", package=__name__)


def family_names(kind: str | None = None) -> list[str]:
    """Registered families (of one kind)."""
    return [n for n in FAMILIES.names() if kind is None or FAMILIES.info(n)["kind"] == kind]


def generate(family: str, n: int, *, seed: int, digits: np.ndarray | None = None,
             train_digits: np.ndarray | None = None, fonts: str = "train") -> np.ndarray:
    """`n` images of `family` as uint8 (n, 1, 28, 28), a pure function of its arguments.

    `digits` feed the "hard" kind (default MNIST train), `train_digits` the "fragment" kind (MNIST *training* digits
    only; default all of them), `fonts` the "font" kind (a split of data/fonts.py: train, held-out or all)."""
    fn = FAMILIES.get(family)
    if n < 0:
        raise MnistlabError(f"cannot generate {n} images")
    rng = np.random.default_rng([seed, zlib.crc32(family.encode())])
    kind = FAMILIES.info(family)["kind"]
    kw = {}
    if kind == "hard":
        kw["digits"] = _digits(digits)
    elif kind == "fragment":
        kw["digits"] = _digits(train_digits)
    elif kind == "font":
        kw["fonts"] = font_files(fonts)
    with _one_thread():
        outs = [fn(min(CHUNK, n - i), rng, **kw) for i in range(0, n, CHUNK)]
    x = np.concatenate(outs) if outs else np.zeros((0, SIZE, SIZE), np.float32)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)[:, None]


def available(family: str) -> bool:
    """False when the family cannot draw on this machine (a font family without font files)."""
    if FAMILIES.info(family)["kind"] != "font":
        return True
    try:
        font_files("train")
        return True
    except MnistlabError:
        return False


def mix_counts(n: int, families: list[str], weights: dict[str, float] | None = None) -> list[int]:
    """`n` split over `families` in proportion to `weights` (missing names weigh 1; default: evenly), by largest
    remainder, ties to the earlier family: the counts sum to n."""
    w = np.array([float((weights or {}).get(f, 1.0)) for f in families])
    if not len(w) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise MnistlabError(f"family weights must be finite, ≥ 0 and not all 0: {weights}")
    share = n * w / w.sum()
    counts = np.floor(share).astype(int)
    extra = np.argsort(-(share - counts), kind="stable")[: n - counts.sum()]
    counts[extra] += 1
    return counts.tolist()


def near_weights(families: list[str], share: float) -> dict[str, float] | None:
    """Weights for generate_mix: `share` of the mass spread over the NEAR families present, the rest over the others;
    None (evenly) when share is 0 or when only one of the two groups is present."""
    near = [f for f in families if f in NEAR]
    if share == 0 or not near or len(near) == len(families):
        return None
    return {f: share / len(near) if f in near else (1 - share) / (len(families) - len(near)) for f in families}


def generate_mix(n: int, *, seed: int, families: list[str] | tuple[str, ...] | None = None,
                 digits: np.ndarray | None = None, train_digits: np.ndarray | None = None,
                 fonts: str = "train", weights: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`n` images spread over `families` (default: all; evenly unless `weights`) → (uint8 (n, 1, 28, 28), family
    index (n,) into `families`), shuffled by `seed`."""
    families = list(families) if families is not None else [f for f in family_names() if available(f)]
    if not families:
        raise MnistlabError("no negative family to generate from")
    counts = mix_counts(n, families, weights)
    xs = [generate(f, c, seed=seed, digits=digits, train_digits=train_digits, fonts=fonts)
          for f, c in zip(families, counts)]
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
        ds = load_dataset("mnist")
        return ds.train_x
    digits = np.asarray(digits)
    if digits.dtype != np.uint8 or digits.ndim != 4 or digits.shape[1:] != (1, SIZE, SIZE) or len(digits) < 3:
        raise MnistlabError(f"digit-based negatives need ≥ 3 uint8 digits (N, 1, 28, 28), got {digits.dtype} {digits.shape}")
    return digits


