"""The rejection study of a classifier (the brief's Q5) from its scores: arrays in, dicts out.

`rule_results` sweeps each rule's thresholds on the test images and summarises its risk–coverage curve;
`outlier_results` says what each rule rejects of other inputs (outlier datasets, noise) and how well each score
separates them from the test images.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from mnistlab.evaluate import rejection as R


def confidences(scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-rule confidence, higher = surer (the distance score is lower = nearer, so it is negated)."""
    return {"chow": scores["chow"], "margin": scores["margin"], "distance": -scores["distance"]}


def rule_results(rej: R.Rejector, scores: dict[str, np.ndarray], correct: np.ndarray) -> tuple[dict, dict]:
    """Each rule's sweep over its threshold grid, selective summary and rates at the rejector's operating threshold
    → ({rule: results}, {rule: risk-coverage curve})."""
    conf = confidences(scores)
    dq = rej.info["calibration_distance_quantiles"]
    grids = {"chow": R.POSTERIOR_GRID, "margin": R.POSTERIOR_GRID,
             "distance": [dq[f"{q:g}"] for q in R.DISTANCE_QUANTILES]}
    rules: dict[str, dict] = {}
    curves = {}
    for rule in R.RULES:
        sw = R.sweep(scores[rule], correct, grids[rule], reject_below=R.REJECT_BELOW[rule])
        summ = R.selective_summary(conf[rule], correct)
        op = R.sweep(scores[rule], correct, [rej.thresholds[rule]], reject_below=R.REJECT_BELOW[rule])
        rules[rule] = {**sw, **summ, "threshold": rej.thresholds[rule], "how": rej.info["how"][rule],
                       "at_threshold": {k: v[0] for k, v in op.items() if k != "thresholds"}}
        if rule == "distance":
            rules[rule]["threshold_quantiles"] = list(R.DISTANCE_QUANTILES)
        curves[rule] = R.risk_coverage(conf[rule], correct)
    return rules, curves


def outlier_results(conf_in: dict[str, np.ndarray], decisions: dict[str, dict[str, Any]], *,
                    in_name: str) -> tuple[dict, dict, dict]:
    """`decisions` {source: Rejector.decide(...)}, the in-distribution test set named `in_name` among them →
    (fraction rejected per source and rule, per-outlier-source AUROC and TNR at 99 % TPR, distance scores)."""
    fractions, ood, dist = {}, {}, {}
    for name, d in decisions.items():
        fractions[name] = {r: float(d[r]["reject"].mean()) for r in R.RULES}
        fractions[name]["any"] = float(d["reject_any"].mean())
        dist[name] = d["distance"]["score"]
        if name == in_name:
            continue
        auroc, tnr = {}, {}
        for r in R.RULES:
            s_in, s_out = conf_in[r], (-d[r]["score"] if r == "distance" else d[r]["score"])
            auroc[r] = float(roc_auc_score(np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out]))
            # evaluation metric (TNR at 99 % TPR), not an operating point: the threshold that keeps 99 % of the
            # in-distribution test images is computed on them for this number only and is never used to reject
            tnr[r] = float((s_out < np.quantile(s_in, 0.01)).mean())
        ood[name] = {"images": int(len(d["pred"])), "rejected": fractions[name], "auroc_in_vs_out": auroc,
                     "rejected_when_99pct_of_test_kept": tnr}
    return fractions, ood, dist


def outlier_lines(fractions: dict[str, dict], in_name: str) -> list[str]:
    """One sentence per input source: what the chosen thresholds reject of it."""
    lines = []
    for name, f in fractions.items():
        if name == in_name:
            lines.append(f"On {name} the chosen thresholds reject {100 * f['chow']:.2f} % (Chow), "
                         f"{100 * f['margin']:.2f} % (margin) and {100 * f['distance']:.2f} % (distance).")
        else:
            lines.append(f"{name}: Chow rejects {100 * f['chow']:.1f} %, distance rejects {100 * f['distance']:.1f} %"
                         + (" — distance rejection catches what ambiguity rejection misses." if
                            f["distance"] > f["chow"] + 0.1 else "."))
    return lines
