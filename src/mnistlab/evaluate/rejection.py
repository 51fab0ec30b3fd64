"""Classification with a reject option, as pure functions of saved logits and features (never by retraining).

Three rules, each a per-image *score* and a threshold t:
    chow       max posterior p1                      reject when p1 < t      (ambiguity, Chow 1970)
    margin     top-1 − top-2 posterior p1 − p2       reject when p1 − p2 < t (ambiguity)
    distance   min_k Mahalanobis distance of the     reject when d > t       (distance, Dubuisson & Masson 1993)
               penultimate features to class k's mean, one covariance shared by the classes (Lee et al. 2018)
The Gaussian model and every threshold are fitted on training/validation data only; test data are only measured.

Selective-classification metrics (Geifman, Uziel & El-Yaniv 2019): the risk–coverage curve ranks images from the most
to the least confident; AURC is the mean risk over all coverages; for an overall error r the oracle ranking (all
errors last) has AURC* = r + (1 − r) ln(1 − r), and E-AURC = AURC − AURC*.

`Rejector` bundles the fitted model and the chosen thresholds; `mnistlab reject` saves it in the run folder as
`rejector.safetensors` + `rejector.json`, and `load_rejector(run_dir).decide(logits, features)` applies it (web page).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import softmax

RULES = ("chow", "margin", "distance")
# which side of the threshold is rejected: confidences are rejected below, distances above
REJECT_BELOW = {"chow": True, "margin": True, "distance": False}
COVERAGES = (0.99, 0.95, 0.90)
# ≥ 12 thresholds for the posterior rules; dense near 1 where a good network's posteriors live
POSTERIOR_GRID = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999)
# distance thresholds are quantiles of the calibration distances (the distance scale depends on the network)
DISTANCE_QUANTILES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 1.0)


# ------------------------------------------------------------------------------------------------ scores


def posterior_scores(logits: np.ndarray) -> dict[str, np.ndarray]:
    """{"chow": p1, "margin": p1 − p2} from (N, K) logits, in float64."""
    p = softmax(np.asarray(logits, np.float64))
    top2 = np.sort(p, axis=1)[:, -2:]  # (N, 2): p2, p1
    return {"chow": top2[:, 1], "margin": top2[:, 1] - top2[:, 0]}


def fit_gaussians(features: np.ndarray, labels: np.ndarray, num_classes: int, *,
                  shrinkage: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Class means (K, D) and the precision matrix (D, D) of the covariance shared by the classes.

    The pooled within-class covariance is shrunk towards (trace / D)·I by `shrinkage` so that it is invertible even
    with dead ReLU units.
    """
    f = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    if f.ndim != 2 or len(f) != len(labels):
        raise MnistlabError(f"features {f.shape} and labels {labels.shape} do not match")
    missing = [c for c in range(num_classes) if not np.any(labels == c)]
    if missing:
        raise MnistlabError(f"cannot fit the distance model: no calibration image of class(es) {missing}")
    means = np.stack([f[labels == c].mean(0) for c in range(num_classes)])  # (K, D)
    centred = f - means[labels]
    cov = centred.T @ centred / max(1, len(f) - num_classes)  # (D, D)
    d = cov.shape[0]
    cov = (1 - shrinkage) * cov + shrinkage * (np.trace(cov) / d + 1e-12) * np.eye(d)
    return means, np.linalg.pinv(cov, hermitian=True)


def mahalanobis(features: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(N, K) Mahalanobis distances (not squared) of each feature vector to each class mean."""
    f = np.asarray(features, np.float64)
    fp = f @ precision  # (N, D)
    mp = means @ precision  # (K, D)
    sq = (fp * f).sum(1)[:, None] - 2 * fp @ means.T + (mp * means).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


# ------------------------------------------------------------------------------------------------ curves


def sweep(scores: np.ndarray, correct: np.ndarray, thresholds, *, reject_below: bool = True) -> dict[str, list]:
    """Per threshold: rejection rate, recognition rate on the accepted, error rate on the accepted, and the
    recognition / error rates over all images (recognition + error + rejection = 1).

    The accepted accuracy of an empty accepted set is undefined: NaN.
    """
    s = np.asarray(scores, np.float64)
    ok = np.asarray(correct, bool)
    n = max(1, len(s))
    out: dict[str, list] = {k: [] for k in ("thresholds", "rejection_rate", "accuracy_accepted", "error_accepted",
                                             "recognition_rate", "error_rate", "accepted")}
    for t in thresholds:
        acc = s >= t if reject_below else s <= t
        k = int(acc.sum())
        right = int((acc & ok).sum())
        out["thresholds"].append(float(t))
        out["accepted"].append(k)
        out["rejection_rate"].append(1 - k / n)
        out["accuracy_accepted"].append(right / k if k else math.nan)
        out["error_accepted"].append(1 - right / k if k else math.nan)
        out["recognition_rate"].append(right / n)
        out["error_rate"].append((k - right) / n)
    return out


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage k/N and selective risk (error rate of the k most confident), k = 1..N.

    Tied confidences are accepted together in an arbitrary order, so within a tie group the expected number of
    errors grows linearly: the curve (and AURC) does not depend on how ties happen to be sorted.
    """
    c = np.asarray(confidence, np.float64)
    err = ~np.asarray(correct, bool)
    n = len(c)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-c, kind="stable")
    c, err = c[order], err[order].astype(np.float64)
    # group boundaries of equal confidence
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    ends = np.r_[starts[1:], n]
    cum_err = np.zeros(n)
    before = 0.0
    for s, e in zip(starts, ends):
        m = e - s
        group_err = err[s:e].sum()
        cum_err[s:e] = before + group_err * np.arange(1, m + 1) / m
        before += group_err
    k = np.arange(1, n + 1)
    return k / n, cum_err / k


def aurc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Area under the risk–coverage curve: the mean selective risk over the N coverages k/N."""
    _, risk = risk_coverage(confidence, correct)
    return float(risk.mean()) if len(risk) else math.nan


def aurc_optimal(error_rate: float) -> float:
    """AURC* = r + (1 − r) ln(1 − r): the AURC of an oracle that accepts every correct image before any error."""
    r = float(error_rate)
    if not 0 <= r <= 1:
        raise ValueError(f"error rate {r} outside [0, 1]")
    return 1.0 if r == 1 else r + (1 - r) * math.log1p(-r)


def selective_accuracy(confidence: np.ndarray, correct: np.ndarray, coverages=COVERAGES) -> dict[str, float]:
    """Accuracy on the ⌈c·N⌉ most confident images for each coverage c (ties resolved in expectation)."""
    cov, risk = risk_coverage(confidence, correct)
    n = len(cov)
    out = {}
    for c in coverages:
        k = min(n, max(1, math.ceil(c * n - 1e-9)))
        out[f"{c:g}"] = float(1 - risk[k - 1]) if n else math.nan
    return out


def selective_summary(confidence: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    """AURC, AURC*, E-AURC, their ratio and the selective accuracy at 99/95/90 % coverage."""
    ok = np.asarray(correct, bool)
    r = float(1 - ok.mean()) if len(ok) else math.nan
    a, a_opt = aurc(confidence, ok), aurc_optimal(r) if len(ok) else math.nan
    return {"error_rate": r, "aurc": a, "aurc_optimal": a_opt, "e_aurc": a - a_opt,
            "aurc_ratio": a / a_opt if a_opt > 0 else (1.0 if a == 0 else math.inf),
            "selective_accuracy": selective_accuracy(confidence, ok)}


def interpret(results: dict[str, dict]) -> list[str]:
    """A few sentences that read the curves: what each rule buys, and what distance rejection adds on outliers."""
    lines = []
    base = next(iter(results.values()), {})
    if "error_rate" in base:
        lines.append(f"Without rejection the classifier errs on {100 * base['error_rate']:.2f} % of the test images.")
    for rule, r in results.items():
        if "aurc" not in r:
            continue
        sa = r["selective_accuracy"]
        ratio = r["aurc_ratio"]
        quality = ("close to the oracle ordering" if ratio <= 1.5 else
                   "reasonably ordered" if ratio <= 3 else "a weak ordering of errors")
        lines.append(f"{rule}: AURC {1000 * r['aurc']:.3f}‰ vs oracle {1000 * r['aurc_optimal']:.3f}‰ "
                     f"({ratio:.2f}×, {quality}); rejecting the 5 % least confident leaves "
                     f"{100 * (1 - sa['0.95']):.3f} % error on the accepted.")
    for rule, r in results.items():
        acc = [a for a in r.get("accuracy_accepted", []) if a == a]  # NaN = nothing accepted
        rej = r.get("rejection_rate", [])
        if len(acc) >= 2 and rej:
            # sweeps run from accepting most to accepting least (posterior grids rise, distance grids are reversed)
            first, last = (acc[-1], acc[0]) if not REJECT_BELOW.get(rule, True) else (acc[0], acc[-1])
            verdict = ("rejecting buys accuracy with coverage" if last > first + 1e-12 else
                       "here rejection does not buy accuracy: this score does not separate errors from successes")
            lines.append(f"{rule}: over the swept thresholds the rejection rate spans {100 * min(rej):.2f}–"
                         f"{100 * max(rej):.2f} % while the recognition rate on the accepted goes "
                         f"{100 * first:.2f} % → {100 * last:.2f} %; {verdict}.")
    ranked = sorted((r["aurc"], k) for k, r in results.items() if "aurc" in r)
    if len(ranked) >= 2:
        lines.append(f"Ordering of the test errors, best first (AURC): {', '.join(k for _, k in ranked)}. The posterior "
                     f"rules target ambiguity (images between two classes); distance rejection targets inputs far "
                     f"from every class, so it is expected to rank ordinary test errors worse and outliers better.")
    return lines


# ------------------------------------------------------------------------------------------------ the rejector


@dataclass
class Rejector:
    """A fitted reject option: Gaussian class model in feature space + one threshold per rule.

    `thresholds[rule]` is the operating point; `info` records how each was chosen (on which data, which target).
    """

    means: np.ndarray  # (K, D) class means of the penultimate features
    precision: np.ndarray  # (D, D) inverse of the shared (shrunk) covariance
    thresholds: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)

    def scores(self, logits: np.ndarray, features: np.ndarray) -> dict[str, np.ndarray]:
        """Per-rule scores of N images: chow p1, margin p1 − p2 (higher = surer), distance (lower = nearer)."""
        logits, features = np.asarray(logits), np.asarray(features)
        if logits.ndim != 2 or logits.shape[1] != len(self.means):
            raise MnistlabError(f"logits must be (N, {len(self.means)}), got {logits.shape}")
        if features.ndim != 2 or features.shape[1] != self.means.shape[1] or len(features) != len(logits):
            raise MnistlabError(f"features must be ({len(logits)}, {self.means.shape[1]}), got {features.shape}")
        out = posterior_scores(logits)
        out["distance"] = mahalanobis(features, self.means, self.precision).min(1)
        return out

    def decide(self, logits: np.ndarray, features: np.ndarray) -> dict[str, Any]:
        """Apply every rule to N images.

        logits (N, K) and features (N, D) come from `infer.logits` / `infer.embeddings` of the run's model. Returns
        {"pred": (N,) WTA class, "probs": (N, K), "reject_any": (N,) bool,
         rule: {"score": (N,), "threshold": float, "reject_below": bool, "reject": (N,) bool} for rule in RULES}.
        """
        sc = self.scores(logits, features)
        out: dict[str, Any] = {"pred": np.asarray(logits).argmax(1), "probs": softmax(np.asarray(logits, np.float64))}
        any_rej = np.zeros(len(out["pred"]), bool)
        for rule in RULES:
            t = float(self.thresholds[rule])
            below = REJECT_BELOW[rule]
            rej = sc[rule] < t if below else sc[rule] > t
            out[rule] = {"score": sc[rule], "threshold": t, "reject_below": below, "reject": rej}
            any_rej |= rej
        out["reject_any"] = any_rej
        return out

    def save(self, folder: str | Path) -> None:
        """rejector.safetensors (means, precision) + rejector.json (rules, thresholds, how they were chosen)."""
        import torch
        from safetensors.torch import save_file

        folder = Path(folder)
        tensors = {"means": torch.from_numpy(np.ascontiguousarray(self.means, np.float64)),
                   "precision": torch.from_numpy(np.ascontiguousarray(self.precision, np.float64))}
        with fileio.atomic_path(folder / "rejector.safetensors") as tmp:
            save_file(tensors, str(tmp))
        fileio.write_json(folder / "rejector.json", {
            "rules": list(RULES), "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "reject_below": REJECT_BELOW, "num_classes": int(self.means.shape[0]),
            "feature_dim": int(self.means.shape[1]), **self.info})


def load_rejector(run_dir: str | Path) -> Rejector:
    """The rejector saved by `mnistlab reject --run DIR` in that run folder."""
    d = Path(run_dir)
    meta = fileio.read_json(d / "rejector.json")
    t, _ = fileio.read_safetensors(d / "rejector.safetensors",
                                   missing=f"{d} has no rejector.safetensors; run `mnistlab reject --run {d}` first")
    t = {k: v.numpy() for k, v in t.items()}
    thr = meta.get("thresholds", {})
    if not isinstance(thr, dict):
        raise MnistlabError(f"{d / 'rejector.json'}: thresholds must be an object")
    missing = [r for r in RULES if r not in thr]
    if missing or "means" not in t or "precision" not in t:
        raise MnistlabError(f"{d / 'rejector.json'}: incomplete rejector (missing {missing or 'tensors'})")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in thr.values()):
        raise MnistlabError(f"{d / 'rejector.json'}: thresholds must be finite numbers")
    means, prec = t["means"], t["precision"]
    if means.ndim != 2 or prec.shape != (means.shape[1], means.shape[1]):
        raise MnistlabError(f"{d / 'rejector.safetensors'}: means {means.shape} and precision {prec.shape} are not "
                            f"(K, D) and (D, D)")
    info = {k: v for k, v in meta.items()
            if k not in ("rules", "thresholds", "reject_below", "num_classes", "feature_dim")}
    return Rejector(means, prec, {k: float(v) for k, v in thr.items()}, info)


def fit_rejector(logits: np.ndarray, features: np.ndarray, labels: np.ndarray, *, num_classes: int,
                 coverage: float = 0.95, keep: float = 0.998, shrinkage: float = 1e-3,
                 chosen_on: str = "train") -> Rejector:
    """Fit the class Gaussians and choose the thresholds on calibration data (training or validation images).

    chow / margin: the threshold that accepts a fraction `coverage` of the calibration images;
    distance: the `keep` quantile of the calibration distances (in-distribution images kept at that rate).
    """
    if not 0 < coverage <= 1 or not 0 < keep <= 1:
        raise MnistlabError("coverage and keep must be in (0, 1]")
    means, prec = fit_gaussians(features, labels, num_classes, shrinkage=shrinkage)
    post = posterior_scores(logits)
    dist = mahalanobis(features, means, prec).min(1)
    thresholds = {rule: float(np.quantile(post[rule], 1 - coverage, method="lower")) for rule in ("chow", "margin")}
    thresholds["distance"] = float(np.quantile(dist, keep, method="higher"))
    info = {"chosen_on": chosen_on, "calibration_images": int(len(labels)), "shrinkage": shrinkage,
            "how": {"chow": f"accepts {coverage:.0%} of the {chosen_on} images",
                    "margin": f"accepts {coverage:.0%} of the {chosen_on} images",
                    "distance": f"{keep:.2%} quantile of the {chosen_on} distances (keeps {keep:.2%} of them); "
                                f"Mahalanobis to class means, shared covariance fitted on the {chosen_on} images"},
            "coverage_target": coverage, "keep_target": keep,
            "calibration_distance_quantiles": {f"{q:g}": float(np.quantile(dist, q)) for q in DISTANCE_QUANTILES}}
    return Rejector(means, prec, thresholds, info)


def to_json(obj: Any) -> Any:
    """NaN/inf → None so that reject.json is valid JSON."""
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist())
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(to_json(obj), indent=2, sort_keys=True)
