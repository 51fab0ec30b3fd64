"""Is the self-training refine stage worth it? Measured on unlabelled images it never trains on — not the test set.

Takes finished few-label run folders (fixmatch / freematch, trained without refine or with it: the SSL model is read
back from the run's EMA weights as saved) and, for each, keeps 10 000 of its unlabelled images out; refines a copy of
the model with `methods/_refine.self_train` (the shipped code) on the rest, one round at a time, and reports the
accuracy on the held-out images before and after each round. The held-out images were seen, unlabelled, by the SSL
stage, as every unlabelled image is; the refine stage never sees them. Nothing here reads the test set.

    python benchmarks/refine_probe.py runs/bench/mnist-fixmatch-l100-d0 [more runs] --rounds 3 [--set refine_lr=0.02]

Writes a Markdown table to stdout (and --out FILE.json with the figures).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mnistlab import infer  # noqa: E402
from mnistlab.config import merge, parse_sets  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402
from mnistlab.data.preprocess import as_tensor  # noqa: E402
from mnistlab.methods._refine import self_train  # noqa: E402
from mnistlab.methods.fixmatch import FixMatchConfig  # noqa: E402
from mnistlab.runs import Run, load_run  # noqa: E402
from mnistlab.precision import resolve_precision, setup_threads  # noqa: E402

HELD_OUT = 10_000


def probe(folder: Path, *, rounds: int, sets: dict, precision: str) -> dict:
    r = load_run(folder)
    ds = load_dataset(r.config["dataset"])
    spec = r.spec.get("preprocess") or {}
    with np.load(folder / "splits.npz") as sp:
        ulb, lab = sp["unlabelled"], sp["labelled"]
    perm = np.random.default_rng(123).permutation(ulb)  # a fixed held-out part of the pool, the same for every probe
    n_held = min(HELD_OUT, len(ulb) // 5)  # a smoke run has a few thousand
    held, rest = perm[:n_held], perm[n_held:]
    cfg = merge(FixMatchConfig, sets, {"refine_rounds": 1})  # typed like --set on the command line
    x_all, y_all = as_tensor(ds.train_x), torch.from_numpy(np.array(ds.train_y))
    bn_x = x_all[rest[:8192]].float() / 255

    def held_acc() -> float:
        lg = infer.logits(r.model, ds.train_x[held], spec=spec, precision=precision)
        return 100 * float((lg.argmax(1) == ds.train_y[held]).mean())

    row = {"run": str(folder), "dataset": ds.name, "labels": len(lab), "held_out": [held_acc()], "seconds": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):  # one round per call: each call labels with the model as it now is
            t0 = time.time()
            self_train(r.model, run=Run(Path(tmp) / f"round{k}"), x_all=x_all, y_all=y_all, lab_idx=lab,
                       ulb_idx=rest, cfg=dataclasses.replace(cfg, seed=cfg.seed + k), spec=spec,
                       precision=precision, flip=ds.hflip_safe, shift_only=ds.aligned, bn_x=bn_x, resume=False)
            row["seconds"].append(round(time.time() - t0, 1))
            row["held_out"].append(held_acc())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], help="refine setting, e.g. refine_lr=0.02")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    setup_threads(a.threads)
    precision = resolve_precision("auto")
    rows = [probe(f, rounds=a.rounds, sets=parse_sets(a.set), precision=precision) for f in a.runs]
    print(f"| run | labels | held-out % before | {' | '.join(f'after round {k + 1}' for k in range(a.rounds))} "
          "| s / round |")
    print("|---|---|---|" + "---|" * a.rounds + "---|")
    for w in rows:
        acc = " | ".join(f"{v:.2f}" for v in w["held_out"])
        print(f"| {w['run']} | {w['labels']} | {acc} | {np.mean(w['seconds']):.0f} |")
    if a.out:
        a.out.write_text(json.dumps({"precision": precision, "sets": a.set, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
