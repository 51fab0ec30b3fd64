"""`mnistlab posteriors --run DIR`: the network's a-posteriori probabilities for every image of the base (Q3–Q5.1).

Writes posteriors.npy (N, K) float32 — the softmax the network outputs, training images then test images —,
posteriors_labels.npy, posteriors.json (max |row sum − 1|, recognition rates on train / test / all, mean posterior
per class beside the a-priori class frequencies) and priors.png; `--show i,j` adds prediction views of test images.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mnistlab import fileio, infer
from mnistlab.commands._args import threads_arg
from mnistlab.commands._artefacts import save_npy, save_png
from mnistlab.errors import MnistlabError


def posteriors(logits: np.ndarray) -> np.ndarray:
    """Softmax in float32, as the network's output layer computes it (so the row sums show float32 rounding)."""
    import torch

    return torch.softmax(torch.from_numpy(np.asarray(logits, np.float32)), dim=1).numpy()


def sum_check(p: np.ndarray, tol: float = 1e-5) -> dict:
    """How far each row is from summing to 1."""
    dev = np.abs(p.astype(np.float64).sum(1) - 1)
    return {"max_abs_sum_error": float(dev.max()) if len(dev) else 0.0,
            "mean_abs_sum_error": float(dev.mean()) if len(dev) else 0.0,
            "rows_off_by_more_than": {"tol": tol, "count": int((dev > tol).sum())},
            "all_rows_sum_to_one": bool((dev <= tol).all())}


def _run(args) -> int:
    from mnistlab.data import load_dataset
    from mnistlab.report import plots
    from mnistlab.runs import load_run
    from mnistlab.precision import resolve_precision

    run_dir = Path(args.run)
    if not (run_dir / "model.json").exists():
        raise MnistlabError(f"{run_dir} is not a finished run folder (no model.json)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    lr = load_run(run_dir)
    cfg, pre = lr.config, lr.spec.get("preprocess", {})
    ds = load_dataset(cfg.get("dataset", "mnist"))
    tx, ty, vx, vy = ds.train_x, ds.train_y, ds.test_x, ds.test_y
    subset = bool(cfg.get("train_subset") or cfg.get("test_subset"))
    if cfg.get("train_subset"):  # a smoke run: its base is the subset it was trained and tested on
        tx, ty = tx[: cfg["train_subset"]], ty[: cfg["train_subset"]]
    if cfg.get("test_subset"):
        vx, vy = vx[: cfg["test_subset"]], vy[: cfg["test_subset"]]
    x, y = np.concatenate([tx, vx]), np.concatenate([ty, vy])
    prec = resolve_precision(args.precision)
    lg = infer.logits(lr.model, x, spec=pre, precision=prec)
    p = posteriors(lg)
    pred = p.argmax(1)
    k = ds.num_classes
    priors = np.bincount(y, minlength=k) / len(y)
    ntr = len(ty)
    res = {"run": str(run_dir), "dataset": ds.name, "images": int(len(y)), "order": "train then test",
           "train_images": int(ntr), "test_images": int(len(vy)), "subset_of_the_base": subset, "precision": prec,
           **sum_check(p),
           "recognition_rate": {"train": float((pred[:ntr] == ty).mean()), "test": float((pred[ntr:] == vy).mean()),
                                "all": float((pred == y).mean())},
           "classes": list(ds.classes), "priors": priors.tolist(), "mean_posterior": p.mean(0).tolist(),
           "predicted_frequency": (np.bincount(pred, minlength=k) / len(y)).tolist()}
    if cfg.get("split", "official") != "official":
        res["note"] = (f"this run re-split the base ({cfg['split']}): its own test part is inside these "
                       f"{len(y)} images; recognition rates on train/test here follow the official split")
    out = Path(args.out) if args.out else run_dir
    out.mkdir(parents=True, exist_ok=True)
    save_npy(out / "posteriors.npy", p)
    save_npy(out / "posteriors_labels.npy", y.astype(np.int64))
    fileio.write_json(out / "posteriors.json", res)
    save_png(out / "priors.png", _priors_figure(priors, p.mean(0), ds.classes))
    for i in _parse_show(args.show, len(vy)):
        save_png(out / f"posterior_test_{i}.png", plots.prediction_view(vx[i], p[ntr + i], ds.classes,
                                                                              true=int(vy[i])))
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{out / 'posteriors.npy'}: {len(y)} × {k} posteriors ({res['order']})")
        print(f"  max |sum − 1| = {res['max_abs_sum_error']:.3g}  (rows off by > 1e-5: "
              f"{res['rows_off_by_more_than']['count']})")
        rr = res["recognition_rate"]
        print(f"  WTA recognition rate: train {100 * rr['train']:.2f} %, test {100 * rr['test']:.2f} %, "
              f"all {100 * rr['all']:.2f} %")
    return 0


def _priors_figure(priors: np.ndarray, mean_post: np.ndarray, classes):
    import matplotlib.pyplot as plt

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


def _parse_show(text: str | None, n: int) -> list[int]:
    if not text:
        return []
    try:
        idx = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise MnistlabError(f"--show expects test indices like 0,7,42; got {text!r}") from None
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise MnistlabError(f"--show: test indices must be in 0..{n - 1}, got {bad}")
    return idx


def register(sub) -> None:
    p = sub.add_parser("posteriors", help="posterior probabilities of a trained classifier for every image")
    p.add_argument("--run", required=True, help="a finished classifier run folder")
    p.add_argument("--out", help="output folder (default: the run folder)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32")
    p.add_argument("--show", help="comma-separated test indices: save image + class-probability views")
    p.add_argument("--threads", type=threads_arg, help="torch threads")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
