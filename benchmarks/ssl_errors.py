"""Where a few-label run goes wrong on its *unlabelled* images: the development view that never touches the test set.

For each run folder (fixmatch / freematch / any run with splits.npz): accuracy on its unlabelled pool, the predicted
class shares beside the true ones, and the largest confusion cells. With --cell T,P it also draws the run's labelled
images of class T above the first unlabelled images of class T that it predicts as P (a PNG), to see what the
labelled set lacks.

    python benchmarks/ssl_errors.py runs/bench/mnist-fixmatch-l100-d0 [more runs] [--cell 1,2 --png ones.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mnistlab import infer  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402
from mnistlab.report import plots  # noqa: E402
from mnistlab.runs import load_run  # noqa: E402
from mnistlab.precision import resolve_precision  # noqa: E402


def pool_errors(folder: Path, *, precision: str) -> dict:
    """Predictions of a run's model on its unlabelled pool (plain, un-mirrored) → accuracy, shares, confusion."""
    r = load_run(folder)
    ds = load_dataset(r.config["dataset"])
    with np.load(folder / "splits.npz") as sp:
        ulb, lab = sp["unlabelled"], sp["labelled"]
    k = ds.num_classes
    pred = infer.logits(r.model, ds.train_x[ulb], precision=precision).argmax(1)  # (N_ulb,)
    y = ds.train_y[ulb]
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)  # rows = true class, columns = predicted
    return {"ds": ds, "ulb": ulb, "lab": lab, "pred": pred, "y": y, "cm": cm,
            "accuracy": float((pred == y).mean()), "pred_share": np.bincount(pred, minlength=k) / len(y),
            "true_share": np.bincount(y, minlength=k) / len(y)}


def top_cells(cm: np.ndarray, n: int = 8) -> list[tuple[int, int, int]]:
    """The n largest off-diagonal cells as (true, predicted, count)."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off.ravel(), kind="stable")[:n]
    return [(int(i // len(cm)), int(i % len(cm)), int(off.flat[i])) for i in flat if off.flat[i] > 0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--cell", help="T,P: draw labelled class-T images above unlabelled T images predicted as P")
    p.add_argument("--png", type=Path, default=Path("ssl_errors.png"))
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precision = resolve_precision("auto")
    for folder in args.runs:
        e = pool_errors(folder, precision=precision)
        print(f"{folder}: unlabelled-pool accuracy {100 * e['accuracy']:.2f} % ({len(e['y'])} images)")
        print("  predicted share " + " ".join(f"{v:.3f}" for v in e["pred_share"]))
        print("  true share      " + " ".join(f"{v:.3f}" for v in e["true_share"]))
        print("  largest cells (true→predicted: count) " + ", ".join(f"{t}→{q}: {c}" for t, q, c in top_cells(e["cm"])))
        if args.cell:
            t, q = (int(v) for v in args.cell.split(","))
            ds = e["ds"]
            shown = e["lab"][ds.train_y[e["lab"]] == t]  # the labelled images of class t
            wrong = e["ulb"][(e["y"] == t) & (e["pred"] == q)][:40]
            imgs = np.concatenate([ds.train_x[shown], ds.train_x[wrong]])[:, 0]  # (n, H, W) uint8
            titles = [f"label {t}"] * len(shown) + [f"→ {q}"] * len(wrong)
            fig = plots.image_grid(imgs, titles, cols=10)
            fig.savefig(args.png, dpi=80, bbox_inches="tight")
            print(f"  wrote {args.png}: {len(shown)} labelled {t}s, then {len(wrong)} unlabelled {t}s predicted {q}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
