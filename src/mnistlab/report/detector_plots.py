"""The detector's figures: arrays in, matplotlib Figure out (no training, no generation, no file I/O)."""
from __future__ import annotations

import numpy as np

from mnistlab.report.plots import image_grid


def prediction_grid(x: np.ndarray, y: np.ndarray, margin: np.ndarray, thr: float, fams: list[str],
                    fam: np.ndarray, n_pos: int, *, per_side: int = 16):
    """Test images (N, 1, 28, 28), digits first (y = 1, the first `n_pos`), then non-digits of family index `fam`
    (N − n_pos,), with p(digit) = sigmoid(margin): correct digits, correct non-digits (one per family first), then
    the most confident mistakes."""
    pred = margin >= thr
    ok = pred == y.astype(bool)
    rng = np.random.default_rng(0)
    right_pos = rng.permutation(np.flatnonzero(ok & (y == 1)))[:per_side]
    right_neg = [n_pos + rng.choice(np.flatnonzero(fam == i)) for i in range(len(fams))
                 if ok[n_pos:][fam == i].any() and (fam == i).any()]
    right_neg = [j for j in right_neg if ok[j]]
    more = np.setdiff1d(np.flatnonzero(ok & (y == 0)), right_neg)
    right_neg = list(right_neg) + list(rng.permutation(more)[: max(0, per_side - len(right_neg))])
    wrong = np.flatnonzero(~ok)
    wrong = wrong[np.argsort(-np.abs(margin[wrong] - thr))][: 2 * per_side]  # most confident mistakes first
    idx = np.r_[right_pos, right_neg, wrong].astype(int)
    p = 1.0 / (1.0 + np.exp(-np.asarray(margin[idx], np.float64)))

    def title(j: int, pj: float) -> str:
        kind = "digit" if y[j] == 1 else fams[fam[j - n_pos]]
        return f"{'WRONG ' if not ok[j] else ''}{kind}\np={pj:.3f}"

    return image_grid(x[idx], [title(j, pj) for j, pj in zip(idx, p)], cols=16, size=1.0)


def families_grid(samples: dict[str, np.ndarray]):
    """One row per generator family: {family: images (n, 1, 28, 28)}, the same n for all, each row titled."""
    n = len(next(iter(samples.values())))
    titles = [t for f in samples for t in [f] + [""] * (n - 1)]
    return image_grid(np.concatenate(list(samples.values())), titles, cols=n, size=0.9)
