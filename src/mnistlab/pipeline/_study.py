"""The brief's parameter studies (Part 2, Q1.6–7, Q2, Q3) as sweeps of `supervised` runs: `run_study_kind(cfg, out)`.

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import api, fileio
from mnistlab.data import load_dataset
from mnistlab.errors import MnistlabError
from mnistlab.report import plots
from mnistlab.report.files import save_png
from mnistlab.report.rejection_plots import cost_curves, study_curves

KINDS = ("iterations", "lr", "hidden", "cv", "priors")
LABELS = {"iterations": "epochs", "lr": "learning rate", "hidden": "hidden units"}


@dataclass
class StudyConfig:
    """One study. None = the budget's value in `GRIDS`; every point is a `supervised` run of these settings."""

    study: str
    budget: str = "quick"  # each point's training budget, and the default grid
    dataset: str | None = None  # None: supervised's default (mnist)
    model: str = "mlp"
    split: str = "60/40"  # iterations / lr / hidden protocol; cv always uses 60/20/20
    values: list[float] | None = None  # the studied parameter's values (iterations / lr / hidden)
    epochs: float | None = None  # epochs of each point (lr / hidden studies)
    lr: float | None = None  # learning rate of each point (iterations / hidden studies)
    hidden: int | None = None  # MLP hidden size of each point (iterations / lr studies)
    hiddens: list[int] | None = None  # cv: hidden sizes to select from
    lrs: list[float] | None = None  # cv: learning rates to select from
    epochs_list: list[float] | None = None  # cv: epoch counts to select from
    k: int | None = None  # cv: folds of the k-fold cross-validation (0 = none)
    seed: int | None = None
    split_seed: int | None = None
    precision: str | None = None
    device: str | None = None  # None: auto
    threads: int = 0
    sets: dict[str, Any] = field(default_factory=dict)  # any other supervised config field

    def __post_init__(self) -> None:
        if self.study not in KINDS:
            raise MnistlabError(f"unknown study {self.study!r}; valid: {', '.join(KINDS)}")
        if self.study == "cv" and self.split != "60/40":
            raise MnistlabError("study cv always uses the 60/20/20 split; --split applies to iterations / lr / hidden")
        if self.study == "hidden" and self.values:
            if any(v != int(v) for v in self.values):
                raise MnistlabError(f"--values of the hidden study are whole numbers, got {self.values}")
            self.values = [int(v) for v in self.values]


# the grid per budget: smoke = seconds (tests), quick = minutes on 2 cores, full = the report
GRIDS: dict[str, dict[str, Any]] = {
    "smoke": {"iterations": [0.25, 0.5, 1, 2, 3], "lr": [1e-4, 1e-3, 3e-3, 1e-2, 1e-1], "hidden": [8, 16, 32, 64, 128],
              "epochs": 1, "cv_hidden": [16, 32], "cv_lr": [3e-3], "cv_epochs": [1], "k": 3},
    "quick": {"iterations": [1, 2, 4, 8, 16], "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
              "hidden": [16, 32, 64, 128, 256, 512, 1024], "epochs": 4,
              "cv_hidden": [128, 512], "cv_lr": [1e-3, 3e-3], "cv_epochs": [4, 8], "k": 5},
    "full": {"iterations": [1, 2, 4, 8, 16, 32], "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
             "hidden": [16, 32, 64, 128, 256, 512, 1024, 2048], "epochs": 8,
             "cv_hidden": [128, 256, 512, 1024], "cv_lr": [1e-3, 3e-3], "cv_epochs": [8, 16], "k": 5},
}


def _fmt(v: float) -> str:
    return f"{v:g}".replace("+", "")


def train_point(cfg: StudyConfig, out: Path, name: str, settings: dict[str, Any], *, split: str) -> dict:
    """One supervised run under out/points/name (a finished one is reused); returns its metrics + history."""
    base = {"dataset": cfg.dataset, "model": cfg.model, "split": split, "seed": cfg.seed,
            "split_seed": cfg.split_seed, "precision": cfg.precision, "device": cfg.device,
            "threads": cfg.threads or None}
    over = {**{k: v for k, v in base.items() if v is not None}, **cfg.sets, **settings}
    run_dir, m = api.train("supervised", command="study", out=out / "points" / name, resume=True,
                           budget=cfg.budget, overrides=over)
    history = fileio.read_json(run_dir / "history.json", list) if (run_dir / "history.json").exists() else []
    last = history[-1] if history else {}
    return {"run": str(run_dir), "test_accuracy": m.get("test_accuracy"), "test_loss": m.get("test_loss"),
            "val_accuracy": m.get("val_accuracy"), "val_loss": m.get("val_loss"),
            "train_accuracy": last.get("train_acc"), "train_loss": last.get("train_loss"),
            "params": m.get("params"), "wall_seconds": m.get("wall_seconds"), "history": history}


def md_table(rows: list[dict], cols: list[str]) -> str:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
        return "" if v is None else str(v)

    return head + "".join("| " + " | ".join(cell(r.get(c)) for c in cols) + " |\n" for r in rows)


def write_study(out: Path, result: dict, md: str, fig) -> None:
    fileio.write_json(out / "study.json", result)
    fileio.write_text(out / "study.md", md)
    save_png(out / "study.png", fig)


def sweep_study(cfg: StudyConfig, out: Path) -> dict:
    """iterations / lr / hidden: one run per value, table + plot of train and test loss/accuracy."""
    kind, grid = cfg.study, GRIDS[cfg.budget]
    if kind == "hidden" and cfg.model != "mlp":
        raise MnistlabError(f"the hidden-size study needs --model mlp (got {cfg.model!r})")
    rows = []
    for v in cfg.values or grid[kind]:
        over: dict[str, Any] = {"epochs": v} if kind == "iterations" else {
            "epochs": cfg.epochs or grid["epochs"], ("lr" if kind == "lr" else "hidden"): v}
        if kind != "lr" and cfg.lr:
            over["lr"] = cfg.lr
        if kind != "hidden" and cfg.hidden:
            over["hidden"] = cfg.hidden
        rows.append({"value": v, **train_point(cfg, out, f"{kind}-{_fmt(v)}", over, split=cfg.split)})
    series = {"train accuracy": [r["train_accuracy"] for r in rows],
              "test accuracy": [r["test_accuracy"] for r in rows]}
    fig = study_curves([r["value"] for r in rows], series, xlabel=LABELS[kind], ylabel="accuracy", logx=True,
                       title=f"{cfg.model}: influence of the {LABELS[kind]} ({cfg.split} split)")
    best = max(rows, key=lambda r: r["test_accuracy"] or 0)
    result = {"study": kind, "model": cfg.model, "split": cfg.split, "budget": cfg.budget,
              "rows": [{k: v for k, v in r.items() if k != "history"} for r in rows],
              "note": "train accuracy/loss are the running means over the last epoch (augmented, dropout on); "
                      "test = the held-out part of the split. This study describes, it selects nothing "
                      "(selection on validation data: `study cv`)."}
    if any(r["history"] for r in rows):  # the cost per epoch of every value, overlaid
        save_png(out / "study_costs.png", cost_curves([(f"{LABELS[kind]} {r['value']:g}", r["history"]) for r in rows],
                                                      title=LABELS[kind], held_out="held-out part"))
    if kind == "iterations":
        longest = max(rows, key=lambda r: r["value"])
        if longest["history"]:
            save_png(out / "study_history.png", plots.learning_curves(longest["history"]))
            result["history_of_longest"] = longest["history"]
    cols = ["value", "train_loss", "test_loss", "train_accuracy", "test_accuracy", "params", "wall_seconds"]
    md = (f"# study {kind}: {cfg.model}, {cfg.split} split, budget {cfg.budget}\n\n" + md_table(result["rows"], cols)
          + f"\nHighest test accuracy at {LABELS[kind]} = {best['value']:g} ({100 * best['test_accuracy']:.2f} %).\n")
    result["highest_test_accuracy_at"] = best["value"]
    write_study(out, result, md, fig)
    return result


def select_candidates(cfg: StudyConfig, out: Path) -> list[dict]:
    """cv, step 1: every (hidden × lr × epochs) candidate trained on the 60 % part of a 60/20/20 split."""
    grid = GRIDS[cfg.budget]
    hiddens = cfg.hiddens or ([cfg.hidden] if cfg.hidden else grid["cv_hidden"])
    if cfg.model != "mlp":  # only the MLP has a hidden size; other models keep their own layers
        if cfg.hiddens or cfg.hidden:
            raise MnistlabError(f"--hidden / --hiddens need --model mlp (got {cfg.model!r})")
        hiddens = [0]
    cands = []
    for h in hiddens:
        for lr in cfg.lrs or grid["cv_lr"]:
            for ep in cfg.epochs_list or grid["cv_epochs"]:
                name = f"h{h}-lr{_fmt(lr)}-ep{_fmt(ep)}"
                r = train_point(cfg, out, f"select-{name}", {"hidden": h, "lr": lr, "epochs": ep}, split="60/20/20")
                cands.append({"hidden": h, "lr": lr, "epochs": ep, "name": name, "val_accuracy": r["val_accuracy"],
                              "val_loss": r["val_loss"], "train_accuracy": r["train_accuracy"],
                              "_test": r["test_accuracy"], "run": r["run"]})
    return cands


def kfold(cfg: StudyConfig, out: Path, best: dict, k: int) -> dict:
    """cv, step 2: k-fold cross-validation of the selected candidate on the 80 % development part."""
    rows = []
    for i in range(k):
        r = train_point(cfg, out, f"fold{i}-of{k}-{best['name']}",
                        {"hidden": best["hidden"], "lr": best["lr"], "epochs": best["epochs"], "folds": k, "fold": i},
                        split="60/20/20")
        rows.append({"fold": i, "val_accuracy": r["val_accuracy"], "test_accuracy": r["test_accuracy"],
                     "run": r["run"]})
    va, te = np.array([f["val_accuracy"] for f in rows]), np.array([f["test_accuracy"] for f in rows])
    return {"k": k, "on": "the 80 % development part (train + val of the 60/20/20 split)", "folds": rows,
            "val_accuracy_mean": float(va.mean()), "val_accuracy_std": float(va.std(ddof=1)),
            "test_accuracy_mean": float(te.mean()), "test_accuracy_std": float(te.std(ddof=1))}


def cv_figure(cands: list[dict], best: dict, kf: dict | None):
    """Validation accuracy of every candidate (+ the k-fold estimate of the selected one)."""
    fig = study_curves(list(range(len(cands))), {"val accuracy (60/20/20)": [c["val_accuracy"] for c in cands]},
                       xlabel="candidate", ylabel="accuracy", title="model selection on the validation part")
    ax = fig.axes[0]
    ax.set_xticks(range(len(cands)), [c["name"] for c in cands], rotation=45, ha="right", fontsize=7)
    ax.axvline(cands.index(best), color="tab:green", ls=":", lw=1)
    if kf:
        ax.errorbar([cands.index(best)], [kf["val_accuracy_mean"]], yerr=[kf["val_accuracy_std"]], fmt="s",
                    color="tab:red", capsize=4, label=f"{kf['k']}-fold CV of the selected")
        ax.legend(fontsize=7)
    return fig


def cv_study(cfg: StudyConfig, out: Path) -> dict:
    """Q2: select on the 20 % validation part of a 60/20/20 split, report its test once; then k-fold CV."""
    k = GRIDS[cfg.budget]["k"] if cfg.k is None else cfg.k
    if k == 1 or k < 0:
        raise MnistlabError("--k must be 0 (no k-fold) or ≥ 2")
    cands = select_candidates(cfg, out)
    best = max(cands, key=lambda c: (c["val_accuracy"], -c["val_loss"]))  # chosen on validation only
    result: dict[str, Any] = {
        "study": "cv", "model": cfg.model, "budget": cfg.budget, "protocol": "60/20/20 (stratified, all images)",
        "candidates": [{k2: v for k2, v in c.items() if k2 != "_test"} for c in cands],
        "selected": {k2: best[k2] for k2 in ("hidden", "lr", "epochs", "name", "val_accuracy")},
        "selected_test_accuracy": best["_test"],
        "note": "candidates are compared on the validation part only; the test part is reported once, for the "
                "selected candidate"}
    if k:
        result["kfold"] = kfold(cfg, out, best, k)
    md = (f"# study cv: {cfg.model}, budget {cfg.budget}\n\n## 60/20/20: selection on validation\n\n"
          + md_table(result["candidates"], ["name", "train_accuracy", "val_accuracy", "val_loss"])
          + f"\nSelected **{best['name']}** (validation accuracy {100 * best['val_accuracy']:.2f} %); its test "
            f"accuracy, reported once: **{100 * best['_test']:.2f} %**.\n")
    if k:
        kf = result["kfold"]
        md += (f"\n## {k}-fold cross-validation of the selected candidate\n\n"
               + md_table(kf["folds"], ["fold", "val_accuracy", "test_accuracy"])
               + f"\nvalidation accuracy {100 * kf['val_accuracy_mean']:.2f} ± {100 * kf['val_accuracy_std']:.2f} % "
                 f"(mean ± std over {k} folds); test {100 * kf['test_accuracy_mean']:.2f} ± "
                 f"{100 * kf['test_accuracy_std']:.2f} %.\n")
    write_study(out, result, md, cv_figure(cands, best, result.get("kfold")))
    return result


def priors_study(cfg: StudyConfig, out: Path) -> dict:
    """Q3: P(class) estimated by the class frequencies over the whole base (train + test)."""
    ds = load_dataset(cfg.dataset or "mnist")
    y = np.concatenate([ds.train_y, ds.test_y])
    counts = np.bincount(y, minlength=ds.num_classes)
    p = counts / counts.sum()
    rows = [{"class": c, "count": int(n), "prior": float(q)} for c, n, q in zip(ds.classes, counts, p)]
    result = {"study": "priors", "dataset": ds.name, "images": int(len(y)), "rows": rows,
              "sum": float(p.sum()), "uniform": 1 / ds.num_classes}
    md = (f"# a-priori class probabilities: {ds.name}, {len(y)} images\n\n" + md_table(rows, ["class", "count", "prior"])
          + f"\nmost frequent: {ds.classes[int(p.argmax())]} ({p.max():.4f}); least: {ds.classes[int(p.argmin())]} "
            f"({p.min():.4f}); uniform would be {1 / ds.num_classes:.4f}.\n")
    fig = plots.bar_chart(p, list(ds.classes), title=f"{ds.name}: a-priori class probabilities", ylabel="P(class)")
    fig.axes[0].axhline(1 / ds.num_classes, color="k", ls="--", lw=1)
    write_study(out, result, md, fig)
    return result


def run_study_kind(cfg: StudyConfig, out: Path) -> dict:
    """Run one study into folder `out` (made if needed; finished points reused) → its study.json record."""
    if out.exists() and not out.is_dir():
        raise MnistlabError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if cfg.study == "priors":
        return priors_study(cfg, out)
    return cv_study(cfg, out) if cfg.study == "cv" else sweep_study(cfg, out)
