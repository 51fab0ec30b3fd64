"""`mnistlab study iterations|lr|hidden|cv|priors`: the brief's parameter studies (Part 2, Q1.6–7, Q2, Q3).

Each study point is an ordinary `supervised` run folder under OUT/points/ (so a study resumes: finished points are
reused), and the study writes OUT/study.json, OUT/study.md and OUT/study.png.

    iterations  training length (epochs, full schedule each) on the 60/40 split of all 70k images, + the per-epoch
                train/test curves of the longest run
    lr          log-spaced learning-rate sweep, same protocol
    hidden      MLP hidden-layer size, same protocol (the brief's Q1.6)
    cv          Q2: 60/20/20 split — every candidate (hidden × lr × epochs) trains on the 60 %, the best validation
                accuracy selects one, whose 20 % test accuracy is reported once; then k-fold cross-validation of the
                selected candidate on the 80 % development part (mean ± std)
    priors      Q3: a-priori class probabilities = class frequencies over the whole base
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio
from mnistlab.commands._args import out_arg, threads_arg
from mnistlab.commands._artefacts import save_png
from mnistlab.config import BUDGETS, parse_sets
from mnistlab.errors import MnistlabError

# default values per budget: smoke = seconds (tests), quick = minutes on 2 cores, full = the report
DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": {"iterations": [0.5, 1], "lr": [1e-3, 1e-2], "hidden": [16, 64], "epochs": 1,
              "cv_hidden": [16, 32], "cv_lr": [3e-3], "cv_epochs": [1], "k": 2},
    "quick": {"iterations": [1, 2, 4, 8, 16], "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
              "hidden": [16, 32, 64, 128, 256, 512, 1024], "epochs": 4,
              "cv_hidden": [128, 512], "cv_lr": [1e-3, 3e-3], "cv_epochs": [4, 8], "k": 5},
    "full": {"iterations": [1, 2, 4, 8, 16, 32], "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
             "hidden": [16, 32, 64, 128, 256, 512, 1024, 2048], "epochs": 8,
             "cv_hidden": [128, 256, 512, 1024], "cv_lr": [1e-3, 3e-3], "cv_epochs": [8, 16], "k": 5},
}
LABELS = {"iterations": "epochs", "lr": "learning rate", "hidden": "hidden units"}


def _floats(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise MnistlabError(f"--{name} expects comma-separated numbers, got {text!r}") from None
    if not vals or any(not math.isfinite(v) or v <= 0 for v in vals):
        raise MnistlabError(f"--{name} values must be positive numbers, got {text!r}")
    return vals


def _ints(text: str | None, name: str) -> list[int] | None:
    vals = _floats(text, name)
    if vals is not None and any(v != int(v) for v in vals):
        raise MnistlabError(f"--{name} expects whole numbers, got {text!r}")
    return None if vals is None else [int(v) for v in vals]


def _fmt(v: float) -> str:
    return f"{v:g}".replace("+", "")


def train_point(out: Path, name: str, args, overrides: dict[str, Any]) -> dict:
    """One supervised run under out/points/name (a finished one is reused); returns its metrics + history."""
    from mnistlab import api

    base = {"dataset": args.dataset, "model": args.model, "split": args.split, "seed": args.seed, "split_seed": args.split_seed}
    if args.threads:
        base["threads"] = args.threads
    if args.precision:
        base["precision"] = args.precision
    cfg = {**{k: v for k, v in base.items() if v is not None}, **parse_sets(args.set), **overrides}
    run_dir, m = api.train("supervised", command="study", out=out / "points" / name, resume=True,
                           budget=args.budget, overrides=cfg)
    history = fileio.read_json(run_dir / "history.json", list) if (run_dir / "history.json").exists() else []
    last = history[-1] if history else {}
    return {"run": str(run_dir), "test_accuracy": m.get("test_accuracy"), "test_loss": m.get("test_loss"),
            "val_accuracy": m.get("val_accuracy"), "val_loss": m.get("val_loss"),
            "train_accuracy": last.get("train_acc"), "train_loss": last.get("train_loss"),
            "params": m.get("params"), "wall_seconds": m.get("wall_seconds"), "history": history}


def _table(rows: list[dict], cols: list[str]) -> str:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
        return "" if v is None else str(v)

    return head + "".join("| " + " | ".join(cell(r.get(c)) for c in cols) + " |\n" for r in rows)


def _write(out: Path, result: dict, md: str, fig) -> None:
    fileio.write_json(out / "study.json", result)
    fileio.write_text(out / "study.md", md)
    save_png(out / "study.png", fig)


def sweep_study(kind: str, args, out: Path) -> dict:
    """iterations / lr / hidden: one run per value, table + plot of train and test loss/accuracy."""
    from mnistlab.report import plots
    from mnistlab.report.rejection_plots import study_curves

    d = DEFAULTS[args.budget]
    if kind == "hidden" and args.model != "mlp":
        raise MnistlabError(f"the hidden-size study needs --model mlp (got {args.model!r})")
    values = (_ints if kind == "hidden" else _floats)(args.values, "values") or d[kind]
    rows = []
    for v in values:
        over: dict[str, Any] = {}
        if kind == "iterations":
            over["epochs"] = v
        else:
            over["epochs"] = args.epochs or d["epochs"]
            over["lr" if kind == "lr" else "hidden"] = v
        if kind != "lr" and args.lr:
            over["lr"] = args.lr
        r = train_point(out, f"{kind}-{_fmt(v)}", args, over)
        rows.append({"value": v, **r})
    xs = [r["value"] for r in rows]
    series = {"train accuracy": [r["train_accuracy"] for r in rows],
              "test accuracy": [r["test_accuracy"] for r in rows]}
    fig = study_curves(xs, series, xlabel=LABELS[kind], ylabel="accuracy", logx=True,
                       title=f"{args.model}: influence of the {LABELS[kind]} ({args.split} split)")
    best = max(rows, key=lambda r: r["test_accuracy"] or 0)
    result = {"study": kind, "model": args.model, "split": args.split, "budget": args.budget,
              "rows": [{k: v for k, v in r.items() if k != "history"} for r in rows],
              "note": "train accuracy/loss are the running means over the last epoch (augmented, dropout on); "
                      "test = the held-out part of the split. This study describes, it selects nothing "
                      "(selection on validation data: `study cv`)."}
    if kind == "iterations":
        longest = max(rows, key=lambda r: r["value"])
        if longest["history"]:
            save_png(out / "study_history.png", plots.learning_curves(longest["history"]))
            result["history_of_longest"] = longest["history"]
    cols = ["value", "train_loss", "test_loss", "train_accuracy", "test_accuracy", "params", "wall_seconds"]
    md = (f"# study {kind}: {args.model}, {args.split} split, budget {args.budget}\n\n" + _table(result["rows"], cols)
          + f"\nHighest test accuracy at {LABELS[kind]} = {best['value']:g} ({100 * best['test_accuracy']:.2f} %).\n")
    result["highest_test_accuracy_at"] = best["value"]
    _write(out, result, md, fig)
    return result


def cv_study(args, out: Path) -> dict:
    """Q2: select on the 20 % validation part of a 60/20/20 split, report its test once; then k-fold CV."""
    from mnistlab.report.rejection_plots import study_curves

    d = DEFAULTS[args.budget]
    hidden = _ints(args.hidden, "hidden") or d["cv_hidden"]
    if args.model != "mlp":  # only the MLP has a hidden size; other models keep their own layers
        if args.hidden:
            raise MnistlabError(f"--hidden needs --model mlp (got {args.model!r})")
        hidden = [0]
    lrs = _floats(args.lrs, "lrs") or d["cv_lr"]
    epochs = _floats(args.epochs_list, "epochs-list") or d["cv_epochs"]
    k = d["k"] if args.k is None else args.k
    if k == 1 or k < 0:
        raise MnistlabError("--k must be 0 (no k-fold) or ≥ 2")
    args.split = "60/20/20"
    cands = []
    for h in hidden:
        for lr in lrs:
            for ep in epochs:
                name = f"h{h}-lr{_fmt(lr)}-ep{_fmt(ep)}"
                r = train_point(out, f"select-{name}", args, {"hidden": h, "lr": lr, "epochs": ep})
                cands.append({"hidden": h, "lr": lr, "epochs": ep, "name": name, "val_accuracy": r["val_accuracy"],
                              "val_loss": r["val_loss"], "train_accuracy": r["train_accuracy"],
                              "_test": r["test_accuracy"], "run": r["run"]})
    best = max(cands, key=lambda c: (c["val_accuracy"], -c["val_loss"]))  # chosen on validation only
    result: dict[str, Any] = {
        "study": "cv", "model": args.model, "budget": args.budget, "protocol": "60/20/20 (stratified, all images)",
        "candidates": [{k2: v for k2, v in c.items() if k2 != "_test"} for c in cands],
        "selected": {k2: best[k2] for k2 in ("hidden", "lr", "epochs", "name", "val_accuracy")},
        "selected_test_accuracy": best["_test"],
        "note": "candidates are compared on the validation part only; the test part is reported once, for the "
                "selected candidate"}
    fold_rows = []
    if k:
        for i in range(k):
            r = train_point(out, f"fold{i}-of{k}-{best['name']}", args,
                            {"hidden": best["hidden"], "lr": best["lr"], "epochs": best["epochs"], "folds": k,
                             "fold": i})
            fold_rows.append({"fold": i, "val_accuracy": r["val_accuracy"], "test_accuracy": r["test_accuracy"],
                              "run": r["run"]})
        va = np.array([f["val_accuracy"] for f in fold_rows])
        te = np.array([f["test_accuracy"] for f in fold_rows])
        result["kfold"] = {"k": k, "on": "the 80 % development part (train + val of the 60/20/20 split)",
                           "folds": fold_rows, "val_accuracy_mean": float(va.mean()),
                           "val_accuracy_std": float(va.std(ddof=1)), "test_accuracy_mean": float(te.mean()),
                           "test_accuracy_std": float(te.std(ddof=1))}
    # plot: validation accuracy of every candidate (+ the k-fold estimate of the selected one)
    fig = study_curves(list(range(len(cands))), {"val accuracy (60/20/20)": [c["val_accuracy"] for c in cands]},
                       xlabel="candidate", ylabel="accuracy", title="model selection on the validation part")
    ax = fig.axes[0]
    ax.set_xticks(range(len(cands)), [c["name"] for c in cands], rotation=45, ha="right", fontsize=7)
    ax.axvline(cands.index(best), color="tab:green", ls=":", lw=1)
    if fold_rows:
        kf = result["kfold"]
        ax.errorbar([cands.index(best)], [kf["val_accuracy_mean"]], yerr=[kf["val_accuracy_std"]], fmt="s",
                    color="tab:red", capsize=4, label=f"{k}-fold CV of the selected")
        ax.legend(fontsize=7)
    md = (f"# study cv: {args.model}, budget {args.budget}\n\n## 60/20/20: selection on validation\n\n"
          + _table(result["candidates"], ["name", "train_accuracy", "val_accuracy", "val_loss"])
          + f"\nSelected **{best['name']}** (validation accuracy {100 * best['val_accuracy']:.2f} %); its test "
            f"accuracy, reported once: **{100 * best['_test']:.2f} %**.\n")
    if fold_rows:
        kf = result["kfold"]
        md += (f"\n## {k}-fold cross-validation of the selected candidate\n\n"
               + _table(fold_rows, ["fold", "val_accuracy", "test_accuracy"])
               + f"\nvalidation accuracy {100 * kf['val_accuracy_mean']:.2f} ± {100 * kf['val_accuracy_std']:.2f} % "
                 f"(mean ± std over {k} folds); test {100 * kf['test_accuracy_mean']:.2f} ± "
                 f"{100 * kf['test_accuracy_std']:.2f} %.\n")
    _write(out, result, md, fig)
    return result


def priors_study(args, out: Path) -> dict:
    """Q3: P(class) estimated by the class frequencies over the whole base (train + test)."""
    from mnistlab.data import load_dataset
    from mnistlab.report import plots

    ds = load_dataset(args.dataset or "mnist")
    y = np.concatenate([ds.train_y, ds.test_y])
    counts = np.bincount(y, minlength=ds.num_classes)
    p = counts / counts.sum()
    rows = [{"class": c, "count": int(n), "prior": float(q)} for c, n, q in zip(ds.classes, counts, p)]
    result = {"study": "priors", "dataset": ds.name, "images": int(len(y)), "rows": rows,
              "sum": float(p.sum()), "uniform": 1 / ds.num_classes}
    md = (f"# a-priori class probabilities: {ds.name}, {len(y)} images\n\n" + _table(rows, ["class", "count", "prior"])
          + f"\nmost frequent: {ds.classes[int(p.argmax())]} ({p.max():.4f}); least: {ds.classes[int(p.argmin())]} "
            f"({p.min():.4f}); uniform would be {1 / ds.num_classes:.4f}.\n")
    fig = plots.bar_chart(p, list(ds.classes), title=f"{ds.name}: a-priori class probabilities", ylabel="P(class)")
    fig.axes[0].axhline(1 / ds.num_classes, color="k", ls="--", lw=1)
    _write(out, result, md, fig)
    return result


def _run(args) -> int:
    from datetime import datetime

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out or f"runs/study-{args.study}-{datetime.now():%Y%m%d-%H%M%S}")
    if out.exists() and not out.is_dir():
        raise MnistlabError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if args.study == "priors":
        res = priors_study(args, out)
    elif args.study == "cv":
        res = cv_study(args, out)
    else:
        res = sweep_study(args.study, args, out)
    if args.json:
        print(json.dumps({"out": str(out), **res}, default=float))
    else:
        print((out / "study.md").read_text())
        print(f"study folder: {out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("study", help="parameter studies: iterations, learning rate, hidden size, CV, priors")
    p.add_argument("study", choices=("iterations", "lr", "hidden", "cv", "priors"))
    p.add_argument("--out", type=out_arg, help="study folder (default runs/study-<name>-<time>); finished points are reused")
    p.add_argument("--budget", choices=BUDGETS, default="quick", help="training budget of each point and default grid")
    p.add_argument("--dataset", help="dataset (default mnist)")
    p.add_argument("--model", default="mlp", help="model of every point (default mlp)")
    p.add_argument("--split", default="60/40", choices=("60/40", "official"),
                   help="iterations/lr/hidden protocol (default 60/40 of all 70k images)")
    p.add_argument("--values", help="comma-separated values of the studied parameter")
    p.add_argument("--epochs", type=float, help="epochs of each point (lr / hidden studies)")
    p.add_argument("--lr", type=float, help="learning rate of each point (iterations / hidden studies)")
    p.add_argument("--hidden", help="cv: comma-separated hidden sizes to select from")
    p.add_argument("--lrs", help="cv: comma-separated learning rates to select from")
    p.add_argument("--epochs-list", help="cv: comma-separated epoch counts to select from")
    p.add_argument("--k", type=int, help="cv: folds of the k-fold cross-validation (0 = none)")
    p.add_argument("--seed", type=int, help="training seed")
    p.add_argument("--split-seed", type=int, help="seed of the 60/40 and 60/20/20 splits")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"))
    p.add_argument("--threads", type=threads_arg, help="torch threads")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any supervised config field")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
