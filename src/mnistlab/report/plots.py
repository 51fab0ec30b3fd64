"""Plot functions: arrays in, matplotlib Figure out. No training, no file I/O (the run folder saves them)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def image_grid(images: np.ndarray, titles: list[str] | None = None, *, cols: int = 8, size: float = 1.1):
    """images (N, C, H, W) or (N, H, W), uint8 or [0, 1] float → a grid figure with optional titles."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1)
        if images.shape[-1] == 1:
            images = images[..., 0]
    n = len(images)
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * (1.25 if titles else 1.0)))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255 if images.dtype == np.uint8 else 1)
            if titles:
                ax.set_title(titles[i], fontsize=7)
    fig.tight_layout(pad=0.2)
    return fig


def learning_curves(history: list[dict], *, x: str = "epoch"):
    """Loss and accuracy per epoch: every `*loss*` and `*acc*` key of the history, one line each (a `*balance` key,
    in [0, 1], beside the accuracies)."""
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 3.6))
    xs = [h.get(x, h.get("step")) for h in history]
    keys = sorted({k for h in history for k in h})
    for k in keys:
        ys = [h.get(k) for h in history]
        if all(v is None for v in ys):
            continue
        if "loss" in k:
            ax_l.plot(xs, ys, marker=".", label=k)
        elif "acc" in k or k.endswith("balance"):
            ax_a.plot(xs, ys, marker=".", label=k)
    for ax, t in ((ax_l, "loss"), (ax_a, "accuracy")):
        ax.set_xlabel(x)
        ax.set_title(t)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_heatmap(cm: np.ndarray, classes, *, title: str = "confusion (row-normalised)"):
    """Row-normalised confusion matrix with the counts written in each cell."""
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(0.55 * k + 2.5, 0.55 * k + 2))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=45 if max(len(c) for c in classes) > 2 else 0, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def prediction_view(image: np.ndarray, probs: np.ndarray, classes, *, true: int | None = None):
    """An input image beside the bar chart of its class probabilities, the winner-takes-all class highlighted."""
    fig, (ax_i, ax_p) = plt.subplots(1, 2, figsize=(6, 2.4), gridspec_kw={"width_ratios": [1, 2]})
    img = np.asarray(image)
    if img.ndim == 3:  # (C, H, W): grey → (H, W); colour → (H, W, C), as imshow wants
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    ax_i.imshow(img, cmap="gray")
    ax_i.axis("off")
    ax_i.set_title(f"true: {classes[true]}" if true is not None else "input", fontsize=9)
    win = int(np.argmax(probs))
    colors = ["tab:orange" if i == win else "tab:blue" for i in range(len(probs))]
    ax_p.bar(range(len(probs)), probs, color=colors)
    ax_p.set_xticks(range(len(probs)), classes, fontsize=7, rotation=45 if len(str(classes[0])) > 2 else 0)
    ax_p.set_ylim(0, 1)
    ax_p.set_title(f"WTA: {classes[win]} ({probs[win]:.3f})", fontsize=9)
    fig.tight_layout()
    return fig


def bar_chart(values, labels, *, title: str = "", ylabel: str = ""):
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(values) + 1), 3))
    ax.bar(range(len(values)), values)
    ax.set_xticks(range(len(values)), labels, fontsize=8, rotation=45 if max(len(str(l)) for l in labels) > 2 else 0)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def score_histograms(groups: dict, *, threshold: float | None = None, xlabel: str = "score", bins: int = 60):
    """Overlaid histograms of 1-D scores, one per named group (log counts), with the decision threshold marked."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    vals = [np.asarray(v, np.float64) for v in groups.values() if len(v)]
    lo, hi = (min(v.min() for v in vals), max(v.max() for v in vals)) if vals else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    for name, v in groups.items():
        if len(v):
            ax.hist(np.asarray(v, np.float64), bins=edges, histtype="step", linewidth=1.4, label=f"{name} ({len(v)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def feature_view(images: np.ndarray, feats: np.ndarray, *, titles: list[str] | None = None):
    """The seed report's 112 features of a few digits: images (N, H, W) in [0, 1] (ink shown), feats (N, W + 3H)
    in pixels (column counts, row counts, left profile, right profile — the order of `data.features`).

    Per digit: column ink counts above the image, row ink counts to its right, and on the image the left profile
    (first ink column of each row, orange) and the right one (last ink column, blue); a row with no ink has no mark.
    """
    images, feats = np.asarray(images, float), np.asarray(feats, float)
    n, h, w = images.shape
    cols, rows, left, right = feats[:, :w], feats[:, w:w + h], feats[:, w + h:w + 2 * h], feats[:, w + 2 * h:]
    fig = plt.figure(figsize=(3.2 * n, 3.4))
    grid = fig.add_gridspec(2, 2 * n, width_ratios=[4, 1] * n, height_ratios=[1, 4], wspace=0.05, hspace=0.05)
    r = np.arange(h)
    for i in range(n):
        top, img, side = fig.add_subplot(grid[0, 2 * i]), fig.add_subplot(grid[1, 2 * i]), fig.add_subplot(grid[1, 2 * i + 1])
        img.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
        has = rows[i] > 0  # rows with ink: the profiles are defined there
        img.plot(left[i][has], r[has], ".", color="tab:orange", ms=4, label="left profile")
        img.plot(w - 1 - right[i][has], r[has], ".", color="tab:blue", ms=4, label="right profile")
        img.set_xticks([])
        img.set_yticks([])
        top.bar(np.arange(w), cols[i], color="0.4", width=0.9)
        top.set_xlim(-0.5, w - 0.5)
        top.axis("off")
        top.set_title((titles[i] if titles else "") + "  column / row ink counts, profiles", fontsize=7)
        side.barh(r, rows[i], color="0.4", height=0.9)
        side.set_ylim(h - 0.5, -0.5)
        side.axis("off")
        if i == 0:
            img.legend(fontsize=6, loc="lower left", framealpha=0.6)
    return fig


def priors_vs_posteriors(priors: np.ndarray, mean_post: np.ndarray, classes):
    """priors (K,) class frequencies beside the mean network posterior (K,): a grouped bar chart."""
    fig, ax = plt.subplots(figsize=(6, 3))
    xs = np.arange(len(priors))
    ax.bar(xs - 0.2, priors, 0.4, label="a-priori P(class) = frequency")
    ax.bar(xs + 0.2, mean_post, 0.4, label="mean network posterior")
    ax.set_xticks(xs, classes, fontsize=8)
    ax.set_ylabel("probability")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
