"""`mnistlab data stats|show`: sizes, class counts and priors; a labelled grid of examples."""
from __future__ import annotations

import json

import numpy as np

from mnistlab.data import load_dataset
from mnistlab.errors import MnistlabError


def stats(name: str) -> dict:
    """Sizes, class counts and a-priori class probabilities (class frequencies) on train, test and all."""
    ds = load_dataset(name)
    k = ds.num_classes
    tr, te = np.bincount(ds.train_y, minlength=k), np.bincount(ds.test_y, minlength=k)
    allc = tr + te
    return {"dataset": name, "classes": list(ds.classes), "shape": list(ds.shape),
            "train_size": int(len(ds.train_y)), "test_size": int(len(ds.test_y)),
            "train_class_counts": tr.tolist(), "test_class_counts": te.tolist(),
            "priors": {"train": (tr / tr.sum()).round(6).tolist(), "test": (te / te.sum()).round(6).tolist(),
                       "all": (allc / allc.sum()).round(6).tolist()},
            "pixel_mean": round(ds.mean, 6), "pixel_std": round(ds.std, 6)}


def _stats(args) -> int:
    s = stats(args.dataset)
    if args.json:
        print(json.dumps(s))
        return 0
    print(f"{s['dataset']}: {s['train_size']} train / {s['test_size']} test, images {tuple(s['shape'])}")
    print(f"{'class':>14} {'train':>7} {'test':>6} {'prior(all)':>10}")
    for c, a, b, p in zip(s["classes"], s["train_class_counts"], s["test_class_counts"], s["priors"]["all"]):
        print(f"{c:>14} {a:>7} {b:>6} {p:>10.4f}")
    return 0


def _show(args) -> int:
    from mnistlab import fileio
    from mnistlab.report import plots

    if args.n <= 0 or args.n > 1024:
        raise MnistlabError("--n must be between 1 and 1024")
    if not args.out.lower().endswith(".png"):
        raise MnistlabError("--out must be a .png file")
    ds = load_dataset(args.dataset)
    x, y = (ds.train_x, ds.train_y) if args.split == "train" else (ds.test_x, ds.test_y)
    idx = np.random.default_rng(args.seed).choice(len(y), size=min(args.n, len(y)), replace=False)
    fig = plots.image_grid(x[idx], [ds.classes[int(c)] for c in y[idx]], cols=min(args.n, 16))
    with fileio.atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    print(args.out)
    return 0


def register(sub) -> None:
    p = sub.add_parser("data", help="dataset statistics and example grids")
    dsub = p.add_subparsers(dest="data_command", metavar="{stats,show}", required=True)
    s = dsub.add_parser("stats", help="sizes, class counts, priors")
    s.add_argument("--dataset", default="mnist")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_stats)
    w = dsub.add_parser("show", help="a labelled grid of examples as PNG")
    w.add_argument("--dataset", default="mnist")
    w.add_argument("--n", type=int, default=64)
    w.add_argument("--split", choices=("train", "test"), default="train")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--out", required=True)
    w.set_defaults(func=_show)
