"""Should the default recipes train with the robust view? Decided on VALIDATION images only (issue 31).

robustness.py measures its shifted sets on MNIST *test* images, so its tables cannot choose a default. This script
reads the same four runs (cnn-base / cnn-robust, det-base / det-robust) and builds every shifted set again from each
run's own validation images, carved from the training split; the printed set is rendered from the *training* fonts.
It writes benchmarks/results/robust-choice-<cpu>.md/.json.

    python benchmarks/robust_choice.py --runs RUNS/s0      # the folder robustness.py trained into
    python benchmarks/robust_choice.py --runs R --only det --name robust-choice-det-cnn   # one kind, another file

The rule, fixed before this script first ran: the robust variant becomes the default when, on validation,
  - its mean over the shifted sets beats the base by more than 1 point (CNN: accuracy; detector: digits accepted), and
  - it loses at most 0.1 point of clean validation accuracy (CNN) or of validation accuracy at the threshold
    (detector: validation digits and negatives, threshold.json).
One seed each: the 1-point margin stands in for the seed spread, which is not measured here.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from _machine import ROOT, cpu_flags, cpu_name, cpu_tag, git_sha
from mnistlab import fileio, infer
from mnistlab.data import load_dataset, shifts
from mnistlab.runs import load_model

MARGIN_SHIFTED, MAX_CLEAN_LOSS = 0.01, 0.001
VAL_SETS = [s for s in shifts.SETS if s != "inverted"]  # inverted is undone by --invert before any model sees it


def validation_sets(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Clean validation images, each shift of them, and as many printed digits from the training fonts."""
    out = {"clean": (x, y), **{s: (shifts.shift(s, x), y) for s in VAL_SETS}}
    out[shifts.PRINTED] = shifts.printed(len(y), seed=seed + 500, fonts="train")
    return out


def cnn_figures(run: Path) -> dict[str, float]:
    """Accuracy of a supervised run on its validation images, clean and shifted."""
    model, spec = load_model(run)
    ds = load_dataset("mnist")
    idx = np.load(run / "splits.npz")["val"]
    sets = validation_sets(ds.train_x[idx], ds.train_y[idx])
    return {k: float((infer.logits(model, x, spec=spec.get("preprocess")).argmax(1) == y).mean())
            for k, (x, y) in sets.items()}


def detector_figures(run: Path) -> dict[str, float]:
    """Digits accepted at the run's validation threshold, on its validation digits clean and shifted; `clean` is
    the validation accuracy over digits and negatives that threshold.json records."""
    model, spec = load_model(run)
    ds = load_dataset("mnist")
    idx = np.load(run / "splits.npz")["val"]
    sets = validation_sets(ds.train_x[idx], ds.train_y[idx])
    thr = float(spec["threshold"])

    def accepted(x):
        lg = infer.logits(model, x, spec=spec.get("preprocess")).astype(np.float64)
        return float((1 / (1 + np.exp(-(lg[:, 1] - lg[:, 0]))) >= thr).mean())

    out = {k: accepted(x) for k, (x, _) in sets.items() if k != "clean"}
    return {"clean": fileio.read_json(run / "threshold.json")["val_accuracy"], "digits": accepted(sets["clean"][0]),
            **out}


def decide(base: dict, robust: dict) -> tuple[bool, float, float]:
    """(adopt?, gain in the shifted mean, loss on clean) under the module's rule."""
    shifted = [k for k in base if k not in ("clean", "digits")]
    gain = statistics.mean(robust[k] for k in shifted) - statistics.mean(base[k] for k in shifted)
    loss = base["clean"] - robust["clean"]
    return gain > MARGIN_SHIFTED and loss <= MAX_CLEAN_LOSS, gain, loss


def recipe_line(run: Path) -> str:
    """The settings that tell the runs apart, and the code that made them."""
    cfg, env = fileio.read_json(run / "config.json"), fileio.read_json(run / "env.json")
    keys = ("model", "epochs", "near_share", "robust")
    return " ".join(f"{k}={cfg[k]}" for k in keys if k in cfg) + f" (git {str(env.get('git_sha'))[:7]})"


def render(res: dict) -> str:
    lines = [f"# Robust view as the default? Chosen on validation ({res['date'][:10]})", "",
             f"- machine: {res['cpu']}; CPU flags: {' '.join(res['flags'])}; git {res['git_sha']}",
             *[f"- {kind} runs: {', '.join(f'{k} `{v}`' for k, v in res[kind]['recipes'].items())}"
               for kind in ("cnn", "det") if kind in res],
             f"- command: `{res['command']}`; runs: `{res['runs']}`",
             "- every figure is on validation images carved from the training split (the printed digits: training "
             "fonts); the test set is not read", "- rule (fixed before the first run of this script): adopt when the "
             "shifted mean gains > 1 point and the clean figure loses ≤ 0.1 point", ""]
    for kind, what in (("cnn", "accuracy"), ("det", "digits accepted (clean: validation accuracy at the threshold)")):
        if kind not in res:
            continue
        b, r = res[kind]["base"], res[kind]["robust"]
        lines += [f"## {'Supervised CNN' if kind == 'cnn' else 'Detector'}: {what}", "",
                  "| validation set | base | robust=0.5 |", "|---|---:|---:|"]
        lines += [f"| {k} | {100 * b[k]:.2f} % | {100 * r[k]:.2f} % |" for k in b]
        adopt, gain, loss = res[kind]["decision"]
        lines += ["", f"Shifted mean: {gain * 100:+.2f} points; clean: {-loss * 100:+.2f} points → "
                      f"**{'adopt robust=0.5' if adopt else 'the base stays'}**.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True, help="robustness.py's run folder for one seed (…/s0)")
    p.add_argument("--only", choices=("cnn", "det"), help="decide for one kind only (its base and robust runs)")
    p.add_argument("--name", default="robust-choice", help="results file name, before -<cpu> (default robust-choice)")
    args = p.parse_args(argv)
    runs = Path(args.runs)
    res = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_name(), "flags": cpu_flags(),
           "git_sha": git_sha(), "runs": str(runs),
           "command": " ".join(["python benchmarks/robust_choice.py", *sys.argv[1:]])}
    for kind, fn in (("cnn", cnn_figures), ("det", detector_figures)):
        if args.only and kind != args.only:
            continue
        base, robust = fn(runs / f"{kind}-base"), fn(runs / f"{kind}-robust")
        res[kind] = {"base": base, "robust": robust, "decision": decide(base, robust),
                     "recipes": {v: recipe_line(runs / f"{kind}-{v}") for v in ("base", "robust")}}
    out = ROOT / "benchmarks" / "results" / f"{args.name}-{cpu_tag()}"
    fileio.write_json(out.with_suffix(".json"), res)
    fileio.write_text(out.with_suffix(".md"), render(res))
    print(out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
