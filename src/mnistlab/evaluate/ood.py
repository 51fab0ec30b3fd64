"""Detection / out-of-distribution metrics on scores (higher = more "in", e.g. a digit): AUROC, FPR at 95 % TPR,
and a decision threshold chosen on validation scores. Pure functions of arrays (scikit-learn's ROC)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from mnistlab.errors import MnistlabError


def _pair(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray]:
    s_in, s_out = np.asarray(scores_in, np.float64).ravel(), np.asarray(scores_out, np.float64).ravel()
    if not len(s_in) or not len(s_out):
        raise MnistlabError("OOD metrics need at least one in-distribution and one out-of-distribution score")
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise MnistlabError("OOD scores must be finite")
    return s_in, s_out


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve: the probability that an "in" image scores above an "out" one (ties count ½)."""
    s_in, s_out = _pair(scores_in, scores_out)
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    return float(roc_auc_score(y, np.r_[s_in, s_out]))


def fpr_at_tpr(scores_in, scores_out, tpr: float = 0.95) -> float:
    """Fraction of "out" images accepted at the strictest threshold that still accepts ≥ `tpr` of the "in" ones."""
    s_in, s_out = _pair(scores_in, scores_out)
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    fprs, tprs, _ = roc_curve(y, np.r_[s_in, s_out], drop_intermediate=False)
    return float(fprs[np.searchsorted(tprs, tpr - 1e-12, side="left")])


def ood_report(scores_in, scores_out, *, threshold: float | None = None) -> dict:
    """AUROC, FPR at 95 % TPR, and — given the deployed threshold — the accepted fractions of both sides."""
    out = {"auroc": auroc(scores_in, scores_out), "fpr95": fpr_at_tpr(scores_in, scores_out)}
    if threshold is not None:
        s_in, s_out = _pair(scores_in, scores_out)
        out["accepted_in"] = float((s_in >= threshold).mean())
        out["accepted_out"] = float((s_out >= threshold).mean())
    return out


def choose_threshold(scores: np.ndarray, labels: np.ndarray, *, default: float = 0.0) -> float:
    """The threshold t (predict "in" when score ≥ t) with the best accuracy on these (validation) scores.

    Candidates are midpoints between consecutive distinct scores; among equally accurate ones the closest to
    `default` (the plain argmax decision for a logit margin) wins, so a separable validation set keeps the default.
    """
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if len(s) != len(y) or not len(s):
        raise MnistlabError("choose_threshold needs as many labels as scores (and at least one)")
    u = np.unique(s)
    cands = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2, u[-1] + 1.0, default]
    order = np.sort(s)
    pos = np.sort(s[y])
    # correct(t) = #positives with s ≥ t + #negatives with s < t
    pos_above = len(pos) - np.searchsorted(pos, cands, side="left")
    neg_below = np.searchsorted(order, cands, side="left") - (len(pos) - pos_above)
    correct = pos_above + neg_below
    best = np.flatnonzero(correct == correct.max())
    return float(cands[best[np.argmin(np.abs(cands[best] - default))]])
