"""Robustness benchmark (issue 31): letters, shifted digits and confident mistakes — run by hand, sized for ≤ 25 min.

Trains, through the CLI (complete run folders), with the training split only:
  cnn-base    `mnistlab supervised` — the current recipe, 5000 training images held out for validation
  cnn-robust  the same + `robust=0.5` (half of each batch gets one user-like change: data.shifts.random_view)
  det-base    `mnistlab detect train` on every negative family (letters from the training fonts), no robust view
  det-robust  the same + `robust=0.5`, with leave-one-family-out detectors for the four near-OOD families
then measures, from the saved models (nothing chosen on test):
  - each CNN's accuracy on MNIST test and on every shifted set (data/shifts.py; `inverted` read with --invert);
  - rejection: each rule of evaluate/selective.py, temperature / α / rule / threshold fitted on the CNN's validation
    images; AURC and AURC / oracle on MNIST test and each shifted set; the 2-CNN ensemble for reference;
  - each detector: MNIST test accepted, each shifted set accepted, letters from the HELD-OUT fonts rejected, Fashion-
    MNIST AUROC (its run), LOFO. Writes benchmarks/results/robustness.md|json.

    python benchmarks/robustness.py                 # the 25-min budget (defaults below)
    python benchmarks/robustness.py --smoke         # seconds: the plumbing, writes robustness-smoke.*
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mnistlab import fileio, infer  # noqa: E402
from mnistlab.data import load_dataset, shifts  # noqa: E402
from mnistlab.data import negatives as neg  # noqa: E402
from mnistlab.data.images import load_npy  # noqa: E402
from mnistlab.evaluate import selective  # noqa: E402
from mnistlab.evaluate.rejection import fit_gaussians, mahalanobis, selective_summary  # noqa: E402
from mnistlab.evaluate.ood import ood_report  # noqa: E402
from mnistlab.runs import load_model  # noqa: E402
from _machine import cpu_flags, cpu_name, git_sha, run_cli  # noqa: E402

NEAR_OOD = neg.NEAR
TARGETS = {"letters_rejected": 0.95, "mnist_accepted": 0.995, "shift_accepted": 0.97, "auroc_fashion": 0.999,
           "cnn_shift_accuracy": 0.95, "cnn_mnist_accuracy": 0.996, "aurc_ratio": 1.5}


def jobs(args) -> dict[str, list[str]]:
    """name → CLI arguments of each training run."""
    sup = ["supervised", "--model", args.cnn_model, "--epochs", str(args.cnn_epochs), "--seed", str(args.seed), "--threads",
           "1", "--set", "val_size=5000"]
    det = ["detect", "train", "--budget", "quick", "--seed", str(args.seed), "--threads", "1",
           "--epochs", str(args.det_epochs), "--set", f"positives={args.positives}",
           "--set", f"negatives={args.positives}", "--set", f"lofo_epochs={args.lofo_epochs}",
           *[w for k, v in (("near_share", args.det_near_share), ("model", args.det_model)) if v is not None
             for w in ("--set", f"{k}={v}")]]
    if args.smoke:
        sup = ["supervised", "--budget", "smoke", "--seed", "0", "--threads", "1", "--set", "val_size=200"]
        det = ["detect", "train", "--budget", "smoke", "--seed", "0", "--threads", "1",
               "--set", "families=" + ",".join(["uniform", "lines", *NEAR_OOD])]
    # the base runs say robust=0: MNIST's supervised recipe sets 0.5 (mnist-robust), which would make base = robust
    return {"cnn-base": [*sup, "--set", "robust=0"], "cnn-robust": [*sup, "--set", "robust=0.5"],
            "det-base": [*det, "--set", "robust=0", "--no-lofo"],
            "det-robust": [*det, "--set", "robust=0.5", "--set", "lofo_families=" + ",".join(NEAR_OOD)]}


def train(args, runs: Path) -> dict[str, dict]:
    """Run the jobs, `args.jobs` at a time (one torch thread each); finished runs are reused (--resume)."""
    todo = jobs(args)

    def one(name: str):
        return name, run_cli([*todo[name], "--out", str(runs / name), "--resume", "--json"])

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        return {name: {"metrics": m, "log": e} for name, (m, e) in pool.map(one, todo)}


def shifted_sets(n: int, *, seed: int, test_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST test (the first test_size) and every shifted set (the first n test images; printed: n renders from
    held-out fonts)."""
    ds = load_dataset("mnist")
    sets = {"mnist-test": (ds.test_x[:test_size], ds.test_y[:test_size])}
    x, y = ds.test_x[:n], ds.test_y[:n]
    tmp = ROOT / "runs" / "bench-robustness" / "inverted.npy"
    for name in shifts.SETS:
        xs = shifts.shift(name, x)
        if name == "inverted":  # through the real --invert path
            tmp.parent.mkdir(parents=True, exist_ok=True)
            np.save(tmp, xs[:, 0])
            xs = load_npy(tmp, invert=True)
        sets[name] = (xs, y)
    sets[shifts.PRINTED] = shifts.printed(n, seed=seed)
    return sets


def cnn_report(run: Path, sets: dict, *, views: bool, val_max: int) -> tuple[dict, dict]:
    """Accuracy and selective metrics of one CNN on every set; the selector is fitted on the run's validation split."""
    model, spec = load_model(run)
    pre = spec.get("preprocess")
    ds = load_dataset("mnist")
    val_idx = np.load(run / "splits.npz")["val"][:val_max]  # the budget: the selector sees val_max of them
    vx, vy = ds.train_x[val_idx], ds.train_y[val_idx]
    tr_idx = np.load(run / "splits.npz")["train"][:5000]

    def arrays(x):  # one pass for features and logits (eval mode: dropout is the identity, logits = head(features))
        f = infer.embeddings(model, x, spec=pre)
        with torch.no_grad():
            lg = model.head(torch.from_numpy(f)).numpy()
        vl = infer.view_logits(model, x, views=shifts.tta_views, spec=pre) if views else None
        return lg, vl, f

    means, prec = fit_gaussians(infer.embeddings(model, ds.train_x[tr_idx], spec=pre), ds.train_y[tr_idx], 10)
    v_lg, v_vl, v_f = arrays(vx)
    sel = selective.fit_selector(v_lg, vy, view_logits=v_vl, distance=mahalanobis(v_f, means, prec).min(1))
    out, logits = {}, {}
    for name, (x, y) in sets.items():
        lg, vl, f = arrays(x)
        logits[name] = (lg, y)
        sc = selective.scores(lg, t=sel.t, view_logits=vl, distance=mahalanobis(f, means, prec).min(1),
                              alpha=sel.alpha, dist_scale=sel.dist_scale)
        ok = lg.argmax(1) == y
        out[name] = {"accuracy": float(ok.mean()), "n": int(len(y)),
                     "rules": {r: selective_summary(s, ok) for r, s in sc.items()}}
    return {"selector": sel.to_json(), "sets": out}, logits


def det_report(run: Path, sets: dict, *, n: int, seed: int) -> dict:
    """Accepted fractions at the run's validation threshold; letters from held-out fonts rejected."""
    model, spec = load_model(run)
    thr = float(spec["threshold"])

    def accepted(x):
        lg = infer.logits(model, x, spec=spec.get("preprocess"))
        return float((1 / (1 + np.exp(-(lg[:, 1].astype(np.float64) - lg[:, 0]))) >= thr).mean())

    acc = {name: accepted(x) for name, (x, _) in sets.items()}
    held = neg.generate("letters", n, seed=seed + 777, fonts="held-out")
    m = fileio.read_json(run / "metrics.json")
    val = fileio.read_json(run / "threshold.json")
    return {"accepted": acc, "letters_heldout_rejected": 1 - accepted(held),
            "family_rejected": m.get("family_accuracy"), "lofo_rejected": m.get("lofo_accuracy"),
            "auroc_fashion": m.get("auroc_fashion"), "threshold_p_digit": thr,
            "lofo_digit_recall_min": m.get("lofo_digit_recall_min"),
            "val_digit_recall": val.get("val_digit_recall"), "val_family_rejected": val.get("val_family_rejected")}


def ensemble_report(a: dict, b: dict) -> dict:
    """Mean softmax of the two CNNs: accuracy and AURC (msp of the mean) per set — for reference only."""
    out = {}
    for name in a:
        (la, y), (lb, _) = a[name], b[name]
        p = (selective._p(la, 1.0) + selective._p(lb, 1.0)) / 2
        ok = p.argmax(1) == y
        out[name] = {"accuracy": float(ok.mean()), **selective_summary(p.max(1), ok)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cnn-model", default="cnn", help="cnn (default recipe) or cnn-small (a quarter of the compute)")
    p.add_argument("--cnn-epochs", type=float, default=4.0)
    p.add_argument("--det-epochs", type=float, default=2.0)
    p.add_argument("--positives", type=int, default=15000, help="detector: MNIST digits (and as many negatives)")
    p.add_argument("--lofo-epochs", type=float, default=0.5)
    p.add_argument("--det-near-share", type=float,
                   help="detector: share of negatives from the families that look like writing (default: the recipe's)")
    p.add_argument("--det-model", help="detector backbone (default: the recipe's)")
    p.add_argument("--shift-size", type=int, default=1000, help="images per shifted set")
    p.add_argument("--test-size", type=int, default=10000, help="MNIST test images")
    p.add_argument("--val-max", type=int, default=5000, help="validation images the selector is fitted on")
    p.add_argument("--jobs", type=int, default=2, help="training runs at once (one thread each)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "bench-robustness"))
    p.add_argument("--name", default="robustness", help="results file stem")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.shift_size, args.test_size = 100, 300
    name = "robustness-smoke" if args.smoke else args.name
    runs = Path(args.runs) / ("smoke" if args.smoke else f"s{args.seed}")
    started, t0 = dt.datetime.now(dt.timezone.utc), time.time()
    trained = train(args, runs)
    failed = {k: v["log"].get("error") for k, v in trained.items() if v["metrics"] is None}
    if failed:
        print(f"failed runs: {failed}", file=sys.stderr)
        return 1
    sets = shifted_sets(args.shift_size, seed=args.seed, test_size=args.test_size)
    cnn, logits = {}, {}
    for k in ("cnn-base", "cnn-robust"):
        cnn[k], logits[k] = cnn_report(runs / k, sets, views=True, val_max=args.val_max)
    det = {k: det_report(runs / k, sets, n=args.shift_size, seed=args.seed) for k in ("det-base", "det-robust")}
    res = {"benchmark": name, "date": started.isoformat(timespec="seconds"), "git_sha": git_sha(),
           "machine": {"cpu": cpu_name(), "flags": cpu_flags(), "cores": os.cpu_count(),
                       "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
           "command": " ".join(["python benchmarks/robustness.py", *map(shlex.quote, sys.argv[1:])]),
           "budget": vars(args), "wall_seconds": round(time.time() - t0), "targets": TARGETS,
           "runs": {k: v["log"] for k, v in trained.items()}, "cnn": cnn, "detector": det,
           "ensemble": ensemble_report(logits["cnn-base"], logits["cnn-robust"])}
    out = ROOT / "benchmarks" / "results"
    fileio.write_json(out / f"{name}.json", res)
    fileio.write_text(out / f"{name}.md", render(res))
    if not args.smoke and name == "robustness":  # detector.md keeps its own runs; this replaces its near-OOD section
        from robustness_md import MARKER, detector_section

        old = (out / "detector.md").read_text() if (out / "detector.md").exists() else ""
        keep = old.split(MARKER)[0].rstrip()
        fileio.write_text(out / "detector.md", (keep + "\n\n" if keep else "") + detector_section(res, pct=_pct))
    print(out / f"{name}.md")
    return 0


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.2f} %"


def render(r: dict) -> str:
    """The results as markdown: budget, detector table, CNN table, rejection tables, targets."""
    from robustness_md import render_md  # the table layout lives next door (keeps this file short)


    return render_md(r, pct=_pct)


if __name__ == "__main__":
    sys.exit(main())
