"""Confidence scores that rank a classifier's mistakes last, fitted on validation only (issue 31), as pure functions of
logits, view logits and feature distances.

Scores (higher = surer), each from arrays the caller computed with the model:
    msp        max softmax probability p1 (Hendrycks & Gimpel)
    msp-t      p1 of softmax(logits / T), T fitted on validation by NLL (Guo et al. 2017)
    margin-t   p1 − p2 at temperature T
    views      mean over V small shifts of the image (data.shifts.tta_views) of p(predicted class) at temperature T:
               a mistake rarely survives every view (test-time augmentation as a free ensemble)
    views+dist `views` log-odds minus α × (Mahalanobis distance / its validation median): far-from-every-class images
               lose confidence; α chosen on validation
`fit_selector` fits T and α and picks the rule with the lowest *validation* AURC; test labels are only ever passed to
`rejection.selective_summary` to measure.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import softmax
from mnistlab.evaluate.rejection import aurc

RULES = ("msp", "msp-t", "margin-t", "views", "views+dist")
ALPHAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] minimising the NLL of softmax(logits / T) on (validation) labels."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels)
    if y.dtype.kind not in "iu" or len(y) != len(z) or len(y) == 0:
        raise MnistlabError(f"temperature needs integer labels for each of the {len(z)} logits, got {y.dtype} "
                            f"{y.shape}")

    def nll(log_t: float) -> float:
        s = z / math.exp(log_t)
        s = s - s.max(1, keepdims=True)
        return float(-(s[np.arange(len(y)), y] - np.log(np.exp(s).sum(1))).mean())

    res = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(res.x))


def _p(logits: np.ndarray, t: float) -> np.ndarray:
    return softmax(np.asarray(logits, np.float64) / t)


def scores(logits: np.ndarray, *, t: float = 1.0, view_logits: np.ndarray | None = None,
           distance: np.ndarray | None = None, alpha: float = 0.0, dist_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Every rule's score for N images: logits (N, K); view_logits (V, N, K); distance (N,) min Mahalanobis."""
    p1 = _p(logits, 1.0).max(1)
    pt = _p(logits, t)
    top2 = np.sort(pt, 1)[:, -2:]
    out = {"msp": p1, "msp-t": top2[:, 1], "margin-t": top2[:, 1] - top2[:, 0]}
    if view_logits is not None:
        pv = np.stack([_p(v, t) for v in np.asarray(view_logits)]).mean(0)  # (N, K) mean over views
        pred = pt.argmax(1)
        out["views"] = pv[np.arange(len(pred)), pred]
        if distance is not None:
            q = np.clip(out["views"], 1e-12, 1 - 1e-12)
            out["views+dist"] = np.log(q) - np.log1p(-q) - alpha * np.asarray(distance, np.float64) / dist_scale
    return out


@dataclass
class Selector:
    """The fitted rule: which score, its temperature / α, and the threshold that accepts `coverage` of validation."""

    rule: str
    t: float
    alpha: float = 0.0
    dist_scale: float = 1.0
    threshold: float = 0.0
    info: dict = field(default_factory=dict)

    def score(self, logits: np.ndarray, *, view_logits=None, distance=None) -> np.ndarray:
        return scores(logits, t=self.t, view_logits=view_logits, distance=distance, alpha=self.alpha,
                      dist_scale=self.dist_scale)[self.rule]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "Selector":
        if not isinstance(obj, dict) or obj.get("rule") not in RULES:
            raise MnistlabError(f"selector: unknown rule {obj.get('rule') if isinstance(obj, dict) else obj!r}")
        vals = {k: obj.get(k) for k in ("t", "alpha", "dist_scale", "threshold")}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals.values()):
            raise MnistlabError("selector: t, alpha, dist_scale and threshold must be finite numbers")
        return cls(obj["rule"], **{k: float(v) for k, v in vals.items()}, info=dict(obj.get("info") or {}))


def fit_selector(logits: np.ndarray, labels: np.ndarray, *, view_logits: np.ndarray | None = None,
                 distance: np.ndarray | None = None, coverage: float = 0.95,
                 rules: tuple[str, ...] = RULES) -> Selector:
    """Fit on VALIDATION arrays: T by NLL, α by AURC, then the rule with the lowest validation AURC and its
    threshold (accepting `coverage` of the validation images). Ties keep the simpler rule (earlier in RULES)."""
    y = np.asarray(labels)
    t = fit_temperature(logits, y)
    correct = np.asarray(logits).argmax(1) == y
    scale = float(np.median(distance)) if distance is not None and len(distance) else 1.0
    alpha, val_aurc = 0.0, {}
    if distance is not None and view_logits is not None and "views+dist" in rules:
        by_alpha = {a: aurc(scores(logits, t=t, view_logits=view_logits, distance=distance, alpha=a,
                                   dist_scale=scale)["views+dist"], correct) for a in ALPHAS}
        alpha = min(by_alpha, key=lambda a: (by_alpha[a], a))
    sc = scores(logits, t=t, view_logits=view_logits, distance=distance, alpha=alpha, dist_scale=scale)
    for r in rules:
        if r in sc:
            val_aurc[r] = aurc(sc[r], correct)
    best = min(val_aurc, key=lambda r: (val_aurc[r], RULES.index(r)))
    thr = float(np.quantile(sc[best], 1 - coverage, method="lower"))
    return Selector(best, t, alpha, scale, thr, info={"chosen_on": "validation", "validation_images": int(len(y)),
                                                      "validation_aurc": val_aurc, "coverage_target": coverage})


def reason(*, rule: str, score: float, threshold: float, pred: str, second: str, p2: float) -> str:
    """Why an image was rejected, in one line a user can read."""
    what = {"msp": "confidence", "msp-t": "calibrated confidence", "margin-t": "calibrated margin",
            "views": "agreement under small shifts", "views+dist": "agreement under shifts and nearness to the digits"}
    return (f"not sure: {what.get(rule, rule)} {score:.3g} below {threshold:.3g} for '{pred}' "
            f"(next best '{second}', p={p2:.2f})")
