"""Plots of the reject option and of the parameter studies: arrays/dicts in, matplotlib Figure out (no file I/O)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mnistlab.evaluate.rejection import REJECT_BELOW  # noqa: E402

RULE_TITLES = {"chow": "Chow: max posterior p1", "margin": "margin p1 − p2", "distance": "Mahalanobis distance"}


def _threshold_axis(ax, rule: str, thresholds: np.ndarray) -> np.ndarray:
    """Posterior thresholds crowd near 1: show them on a logit axis (0 and 1 cannot be drawn there)."""
    keep = np.ones(len(thresholds), bool)
    if rule in ("chow", "margin"):
        keep = (thresholds > 0) & (thresholds < 1)
        ax.set_xscale("logit")
    ax.set_xlabel(f"threshold ({'reject below' if REJECT_BELOW.get(rule, True) else 'reject above'})")
    return keep


def rates_vs_threshold(sweeps: dict[str, dict], keys: tuple[str, ...], *, title: str, ylabel: str):
    """One panel per rule: the chosen sweep quantities (e.g. rejection_rate) against the threshold."""
    rules = list(sweeps)
    fig, axes = plt.subplots(1, len(rules), figsize=(4.2 * len(rules), 3.4), squeeze=False)
    for ax, rule in zip(axes[0], rules):
        s = sweeps[rule]
        t = np.asarray(s["thresholds"], float)
        keep = _threshold_axis(ax, rule, t)
        for k in keys:
            y = np.asarray(s[k], float)
            ax.plot(t[keep], 100 * y[keep], marker="o", ms=3, label=k.replace("_", " "))
        ax.set_title(RULE_TITLES.get(rule, rule), fontsize=9)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def risk_coverage(curves: dict[str, tuple[np.ndarray, np.ndarray]], summaries: dict[str, dict]):
    """Selective risk (% error on the accepted) against coverage, per rule, with the oracle curve for reference."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    r = None
    for rule, (cov, risk) in curves.items():
        s = summaries.get(rule, {})
        r = s.get("error_rate", r)
        ax.plot(cov, 100 * risk, label=f"{rule} (AURC {1000 * s.get('aurc', np.nan):.3f}‰)")
    if r is not None and r > 0:
        cov = np.linspace(1e-3, 1, 400)
        oracle = np.maximum(0, 1 - (1 - r) / cov)  # all errors accepted last
        ax.plot(cov, 100 * oracle, "k--", lw=1, label=f"oracle (AURC* {1000 * (r + (1 - r) * np.log1p(-r)):.3f}‰)")
    ax.set_xlabel("coverage (fraction accepted)")
    ax.set_ylabel("risk: error on accepted (%)")
    ax.set_xlim(0.5, 1.0)
    top = max([100 * float(risk[len(risk) // 2:].max()) for _, risk in curves.values() if len(risk)] + [1e-3])
    ax.set_ylim(0, top * 1.1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("risk–coverage (test)", fontsize=10)
    fig.tight_layout()
    return fig


def score_histograms(scores: dict[str, np.ndarray], *, threshold: float | None = None, rule: str = "distance"):
    """Distribution of one rule's score per image source (test digits, Fashion-MNIST, noise), with the threshold."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    allv = np.concatenate([np.asarray(v, float) for v in scores.values()])
    hi = np.quantile(allv, 0.995) if len(allv) else 1.0
    bins = np.linspace(min(0.0, allv.min()) if len(allv) else 0, hi, 60)
    for name, v in scores.items():
        ax.hist(np.clip(v, bins[0], bins[-1]), bins=bins, histtype="step", density=True, label=name)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    ax.set_xlabel(RULE_TITLES.get(rule, rule))
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def rejected_fractions(table: dict[str, dict[str, float]]):
    """Grouped bars: fraction rejected by each rule (bars) for each image source (groups)."""
    sources = list(table)
    rules = sorted({r for v in table.values() for r in v})
    fig, ax = plt.subplots(figsize=(1.6 * len(sources) + 2.5, 3.2))
    w = 0.8 / max(1, len(rules))
    for i, rule in enumerate(rules):
        ax.bar(np.arange(len(sources)) + i * w, [100 * table[s].get(rule, np.nan) for s in sources], w, label=rule)
    ax.set_xticks(np.arange(len(sources)) + w * (len(rules) - 1) / 2, sources, fontsize=8)
    ax.set_ylabel("rejected (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("rejected at the chosen thresholds", fontsize=10)
    fig.tight_layout()
    return fig


def study_curves(xs, series: dict[str, list], *, xlabel: str, ylabel: str, title: str, logx: bool = False,
                 errors: dict[str, list] | None = None):
    """A parameter study: one line per series (e.g. train / val accuracy) against the studied value."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, ys in series.items():
        err = (errors or {}).get(name)
        ax.errorbar(xs, ys, yerr=err, marker="o", ms=4, capsize=3, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cost_curves(histories: list[tuple[str, list[dict]]], *, title: str, held_out: str = "held-out"):
    """Per-epoch cost of several runs overlaid, one colour each: training loss (solid, running mean over the epoch)
    and held-out loss (dashed) on the left, held-out accuracy on the right."""
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(histories), 1)))
    for (label, hist), c in zip(histories, colours):
        ep = [h.get("epoch") for h in hist]
        ax_l.plot(ep, [h.get("train_loss") for h in hist], color=c, marker=".", label=f"{label}: train")
        ax_l.plot(ep, [h.get("test_loss") for h in hist], color=c, ls="--", marker=".", label=f"{label}: {held_out}")
        ax_a.plot(ep, [h.get("test_accuracy") for h in hist], color=c, marker=".", label=label)
    for ax, t in ((ax_l, "cost (cross-entropy): solid train, dashed " + held_out), (ax_a, f"{held_out} accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(t, fontsize=9)
        ax.grid(alpha=0.3)
    ax_l.set_yscale("log")
    ax_a.legend(fontsize=7, title=title, title_fontsize=7)
    fig.tight_layout()
    return fig


def rejection_figures(rules: dict[str, dict], curves: dict, fractions: dict[str, dict], distance_scores: dict, *,
                      distance_threshold: float) -> dict[str, object]:
    """The rejection study's figures by file name: rates and recognition vs threshold, risk–coverage, the fraction
    of each input source rejected, and the histogram of distance scores."""
    return {"reject_rates.png": rates_vs_threshold(rules, ("rejection_rate",), title="rejection rate vs threshold "
                                                   "(test)", ylabel="%"),
            "reject_recognition.png": rates_vs_threshold(
                rules, ("accuracy_accepted", "recognition_rate"),
                title="recognition rate vs threshold (test): on the accepted, and over all images", ylabel="%"),
            "risk_coverage.png": risk_coverage(curves, rules),
            "reject_ood.png": rejected_fractions(fractions),
            "distance_hist.png": score_histograms(distance_scores, threshold=distance_threshold)}
