"""GAN sample quality as pure functions of arrays (classifier probabilities, features, pixels).

TF-GAN's MNIST evaluation: an MNIST classifier stands in for Inception — the "MNIST score" (Inception-score form,
maximum = number of classes) and the Fréchet distance between the classifier's features of generated and real images.
"""
from __future__ import annotations

import numpy as np


def mnist_score(probs: np.ndarray, *, eps: float = 1e-12) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) for class probabilities (N, K): 1 (one class, or unsure) … K (confident, uniform)."""
    p = np.asarray(probs, np.float64)
    marginal = p.mean(axis=0, keepdims=True)  # p(y), (1, K)
    kl = (p * (np.log(p + eps) - np.log(marginal + eps))).sum(axis=1)  # (N,)
    return float(np.exp(kl.mean()))


def mnist_score_splits(probs: np.ndarray, *, splits: int = 10) -> tuple[float, float]:
    """Mean ± std of the score over `splits` equal parts (the Inception-score convention)."""
    parts = np.array_split(np.asarray(probs), splits)
    scores = [mnist_score(q) for q in parts if len(q)]
    return float(np.mean(scores)), float(np.std(scores))


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D), (M, D):
    ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½). Symmetric eigen-decompositions keep it real and ≥ 0."""
    a, b = np.asarray(feat_a, np.float64), np.asarray(feat_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two (N≥2, D) feature sets of the same D, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    s = _sqrt_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(s @ cov_b @ s), 0, None)).sum()  # tr((Σa^½ Σb Σa^½)^½)
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross))


def class_histogram(preds: np.ndarray, num_classes: int) -> dict:
    """Share of samples per predicted class, and mode-coverage summaries (min / max share, classes seen, KL to
    uniform)."""
    counts = np.bincount(np.asarray(preds, np.int64), minlength=num_classes)[:num_classes]
    frac = counts / max(1, counts.sum())
    nz = frac[frac > 0]
    return {"fractions": frac.round(5).tolist(), "min_fraction": float(frac.min()), "max_fraction": float(frac.max()),
            "classes_covered": int((counts > 0).sum()),
            "kl_to_uniform": float((nz * np.log(nz * num_classes)).sum())}


def conditional_agreement(preds: np.ndarray, requested: np.ndarray, num_classes: int) -> dict:
    """How often the classifier sees the digit the conditional generator was asked for: overall and per class."""
    preds, requested = np.asarray(preds), np.asarray(requested)
    hit = preds == requested
    per = [float(hit[requested == c].mean()) if (requested == c).any() else None for c in range(num_classes)]
    return {"agreement": float(hit.mean()) if len(hit) else float("nan"), "per_class": per}


def nearest_neighbour_distances(queries: np.ndarray, reference: np.ndarray, *, chunk: int = 1024) -> np.ndarray:
    """Euclidean distance from each query image to its nearest reference image, in [0, 1] pixel units: (N,)."""
    import torch

    q = torch.as_tensor(np.asarray(queries).reshape(len(queries), -1), dtype=torch.float32) / 255.0
    r = torch.as_tensor(np.asarray(reference).reshape(len(reference), -1), dtype=torch.float32) / 255.0
    r2 = (r * r).sum(1)  # (M,)
    out = []
    for i in range(0, len(q), chunk):
        qb = q[i: i + chunk]
        best = torch.full((len(qb),), float("inf"))
        arg = torch.zeros(len(qb), dtype=torch.long)
        for j in range(0, len(r), 8192):
            d2 = r2[j: j + 8192] - 2 * qb @ r[j: j + 8192].T  # (n, m): ‖q−r‖² − ‖q‖², fast but float32-rounded
            v, a = d2.min(1)
            better = v < best
            best, arg = torch.where(better, v, best), torch.where(better, a + j, arg)
        out.append((qb - r[arg]).norm(dim=1))  # exact distance to the chosen neighbour
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)
