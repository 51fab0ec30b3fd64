"""Name the clusters of a trained model's embedding by elimination → benchmarks/results/<name>.md/.json.

For each finished `fewlabel` run folder: k-means (k = classes, `n_init` 4, seed 0) on the L2-normalised embeddings of
its final model over its own unlabelled pool; the clusters named one-to-one (Hungarian) by the cosine of each
labelled image's embedding to each centroid, so that nine names given force the tenth. Only the run's labelled images
are read for the naming. Pool accuracy (the pool's hidden labels) measures; test images go to the nearest centroid.
Nothing is chosen here: every run is reported, beside its model's own predictions.

    python benchmarks/cluster_naming.py --runs /work/fl10rot /work/fl10rot-s1 --name cluster-naming-l10-zen5
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from _machine import ROOT, cpu_flags, cpu_name, git_sha, run_devices, run_git
from reselect import ms
from restarts import paired
from mnistlab import infer
from mnistlab.data import load_dataset
from mnistlab.runs import load_run


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def name_clusters(centroids: np.ndarray, emb_lab: np.ndarray, y_lab: np.ndarray) -> np.ndarray:
    """(K,) the class of each centroid (K, D): the one-to-one assignment of labelled embeddings (L, D) to centroids
    of largest total cosine (Hungarian); a centroid no labelled image takes keeps class -1."""
    rows, cols = linear_sum_assignment(-unit(emb_lab) @ unit(centroids).T)
    names = np.full(len(centroids), -1)
    names[cols] = y_lab[rows]
    return names


def score_run(folder: Path) -> dict:
    run = load_run(folder)
    ds = load_dataset(run.config["dataset"])
    with np.load(folder / "splits.npz") as sp:
        pool, lab = sp["unlabelled"], sp["labelled"]
    prec = run.metrics.get("precision", "fp32")
    emb = lambda x: unit(infer.embeddings(run.model, x, precision=prec))  # noqa: E731
    e, el, et = emb(ds.train_x[pool]), emb(ds.train_x[lab]), emb(ds.test_x)
    km = KMeans(ds.num_classes, n_init=4, random_state=0).fit(e)
    names = name_clusters(km.cluster_centers_, el, ds.train_y[lab])
    m = run.metrics
    return {"run": str(folder), "split_seed": m["split_seed"], "seed": m["seed"], "model_pool": m["ulb_accuracy"],
            "model_test": m["test_accuracy"], "named_pool": float((names[km.labels_] == ds.train_y[pool]).mean()),
            "named_test": float((names[(et @ unit(km.cluster_centers_).T).argmax(1)] == ds.test_y).mean()),
            "git": run_git(folder)}


def render(rows: list[dict]) -> str:
    gain, two_se, _ = paired({i: r["named_pool"] for i, r in enumerate(rows)},
                             {i: r["model_pool"] for i, r in enumerate(rows)})
    lines = [f"# Clusters of the trained embedding named by elimination ({datetime.now(timezone.utc):%Y-%m-%d})", "",
             f"- machine: {cpu_name()}; CPU flags: {' '.join(cpu_flags()) or '?'}; device: "
             f"{run_devices(r['run'] for r in rows)}; git {git_sha()}",
             f"- command: `python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`", "",
             "| | pool % | test % (mean ± std) | worst test % |", "|---|---|---|---|"]
    for what in ("model", "named"):
        test = [r[f"{what}_test"] for r in rows]
        lines.append(f"| {'the model' if what == 'model' else 'clusters named'} ({len(rows)} runs) | "
                     f"{ms([r[f'{what}_pool'] for r in rows])} | {ms(test)} | {100 * min(test):.2f} |")
    lines += ["", f"- named − model, pool, paired over the {len(rows)} runs: {100 * gain:+.2f} points, "
                  f"2 SE {100 * two_se:.2f}", "",
              "| draw | seed | model pool % | named pool % | model test % | named test % | git |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['split_seed']} | {r['seed']} | {100 * r['model_pool']:.2f} | {100 * r['named_pool']:.2f} | "
              f"{100 * r['model_test']:.2f} | {100 * r['named_test']:.2f} | {r['git']} |"
              for r in sorted(rows, key=lambda r: (r["split_seed"], r["seed"]))]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="folders of finished fewlabel runs")
    p.add_argument("--name", default="cluster-naming", help="results file stem")
    args = p.parse_args()
    folders = sorted(f for d in args.runs for f in d.iterdir() if (f / "metrics.json").exists())
    rows = []
    for f in folders:
        print(f"scoring {f}", flush=True)
        rows.append(score_run(f))
    out = ROOT / "benchmarks" / "results" / args.name
    out.with_suffix(".md").write_text(render(rows))
    out.with_suffix(".json").write_text(json.dumps({"meta": {"date": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "git_sha": git_sha(), "cpu": cpu_name(), "cpu_flags": cpu_flags(),
        "command": " ".join(sys.argv)}, "runs": rows}, indent=1))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
