"""Best of several training seeds per label draw, kept without labels → benchmarks/results/<name>.md/.json.

Reads finished `fewlabel` run folders: one `--runs` folder per training seed, as `fewlabel.py --seed S --runs DIR`
writes them. Each run's final model predicts its own unlabelled pool (the `unlabelled` indices of its splits.npz).
The share of the least-predicted class, × K (`smallest_class_share`: 1 = even, 0 = a class never predicted), is the
score; per draw the run with the largest is kept, ties to the lower seed. No label is read for the choice. A run that
has lost a class shows it as a class almost nobody is given (benchmarks/notes/fewlabel-10-probes.md).

    python benchmarks/restarts.py --runs /work/fl10rot /work/fl10rot-s1 /work/fl10rot-s2 /work/fl10rot-s3 \\
        --incumbent benchmarks/results/fewlabel-l10-da-zen5.json --name restarts-l10-rotnet-zen5

The rule (`reselect.py`'s): the kept runs replace the incumbent only if their paired mean pool accuracy beats the
incumbent's by more than max(0.1 point, 2 paired SE) over the draws both have. Pool accuracy needs the pool's labels,
which a user lacks: it only measures. Test accuracy is written beside and never read for a choice.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from _machine import ROOT, cpu_flags, cpu_name, cpu_tag, git_sha, run_devices, run_git
from reselect import merged_classes, ms
from mnistlab import infer
from mnistlab.data import load_dataset
from mnistlab.evaluate.metrics import smallest_class_share
from mnistlab.runs import load_run


def score_run(folder: Path) -> dict:
    """One finished run: its pool and test accuracy (from metrics.json) and the label-free balance score."""
    run = load_run(folder)
    ds = load_dataset(run.config["dataset"])
    with np.load(folder / "splits.npz") as sp:
        pool = sp["unlabelled"]
    preds = infer.logits(run.model, ds.train_x[pool], spec=run.spec.get("preprocess") or {},
                         precision=run.metrics.get("precision", "fp32")).argmax(1)
    m = run.metrics
    return {"run": str(folder), "labels": m["labels"], "split_seed": m["split_seed"], "seed": m["seed"],
            "balance": smallest_class_share(preds, ds.num_classes), "ulb_accuracy": m["ulb_accuracy"],
            "test_accuracy": m["test_accuracy"], "wall_seconds": m["wall_seconds"], "git": run_git(folder),
            "merged": merged_classes(folder)}


def collect(dirs: list[Path]) -> list[dict]:
    folders = sorted(f for d in dirs for f in d.iterdir() if (f / "metrics.json").exists())
    if not folders:
        raise SystemExit(f"no finished run folder under {', '.join(map(str, dirs))}")
    rows = []
    for f in folders:
        print(f"scoring {f}", flush=True)
        rows.append(score_run(f))
    return rows


def keep(rows: list[dict], score: str = "balance") -> dict[tuple[int, int], dict]:
    """Per (labels, draw): the run with the largest `score`, ties to the lower training seed."""
    best: dict[tuple[int, int], dict] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        k = (r["labels"], r["split_seed"])
        if k not in best or r[score] > best[k][score]:
            best[k] = r
    return best


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, list[int]]:
    """Mean and 2 SE of a − b over the draws both have (2 SE nan under two draws)."""
    draws = sorted(set(a) & set(b))
    d = [a[k] - b[k] for k in draws]
    if not d:
        return float("nan"), float("nan"), []
    two_se = 2 * statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
    return statistics.mean(d), two_se, draws


def verdict(gain: float, two_se: float, margin: float = 0.001) -> str:
    bar = max(margin, two_se) if two_se == two_se else float("inf")
    return "passed" if gain > bar else "not passed"


def incumbent_pool(path: Path | None) -> dict[int, float]:
    if path is None:
        return {}
    return {r["split_seed"]: r["ulb_accuracy"] for r in json.loads(path.read_text())["runs"]}


def summary(name: str, rows: list[dict]) -> str:
    test = [r["test_accuracy"] for r in rows]
    return (f"| {name} | {len(rows)} | {ms([r['ulb_accuracy'] for r in rows])} | {ms(test)} | "
            f"{100 * min(test):.2f} |")


def render(args, rows: list[dict]) -> tuple[str, dict]:
    from scipy.stats import spearmanr  # scikit-learn's dependency

    kept, oracle = keep(rows), keep(rows, "ulb_accuracy")
    first = keep([r for r in rows if r["seed"] == min(x["seed"] for x in rows)])
    inc = incumbent_pool(args.incumbent)
    pool = lambda sel: {k[1]: r["ulb_accuracy"] for k, r in sel.items()}  # noqa: E731
    vs_inc, vs_first = paired(pool(kept), inc), paired(pool(kept), pool(first))
    rho = spearmanr([r["balance"] for r in rows], [r["ulb_accuracy"] for r in rows])[0] if len(rows) > 2 else None
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"# Best of {len(seeds)} training seeds per draw, kept by the balance of the predicted classes "
             f"({datetime.now(timezone.utc):%Y-%m-%d})", "",
             f"- machine: {cpu_name()}; CPU flags: {' '.join(cpu_flags()) or '?'}; device: "
             f"{run_devices(r['run'] for r in rows)}; git {git_sha()}",
             f"- command: `python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`",
             f"- training seeds {', '.join(map(str, seeds))}; the runs' own commands are in their folders. Balance = "
             "the least-predicted class's share of the run's own unlabelled pool × K (reads no label). Pool % needs "
             "the pool's labels: it measures, it does not choose. Test % is never read for a choice.", "",
             "| | runs | pool % | test % (mean ± std) | worst test % |", "|---|---|---|---|---|",
             summary("kept by balance (the candidate)", list(kept.values())),
             summary(f"seed {seeds[0]} alone", list(first.values())),
             summary("every run", rows),
             summary("pool oracle (needs labels: the ceiling of any choice)", list(oracle.values())), ""]
    if inc:
        lines.append(f"- kept vs incumbent (`{args.incumbent.name}`), pool, paired over draws "
                     f"{', '.join(map(str, vs_inc[2]))}: {100 * vs_inc[0]:+.2f} points, 2 SE {100 * vs_inc[1]:.2f}: "
                     f"**{verdict(*vs_inc[:2])}**")
    lines += [f"- kept vs seed {seeds[0]} alone, pool, paired over draws {', '.join(map(str, vs_first[2]))}: "
              f"{100 * vs_first[0]:+.2f} points, 2 SE {100 * vs_first[1]:.2f} (reported, not a rule)",
              f"- Spearman ρ of balance against pool accuracy over the {len(rows)} runs: "
              + (f"{rho:.2f}" if rho is not None else "n/a"), "",
              "| labels | draw | seed | balance | pool % | test % | kept | merged classes (test confusion, described "
              "only) | wall s | git |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["labels"], r["split_seed"], r["seed"])):
        mark = "**kept**" if kept[(r["labels"], r["split_seed"])] is r else ""
        lines.append(f"| {r['labels']} | {r['split_seed']} | {r['seed']} | {r['balance']:.3f} | "
                     f"{100 * r['ulb_accuracy']:.2f} | {100 * r['test_accuracy']:.2f} | {mark} | {r['merged']} | "
                     f"{r['wall_seconds']:.0f} | {r['git']} |")
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_sha": git_sha(), "cpu": cpu_name(),
            "cpu_flags": cpu_flags(), "device": run_devices(r["run"] for r in rows), "command": " ".join(sys.argv),
            "kept_vs_incumbent": {"gain": vs_inc[0], "two_se": vs_inc[1], "draws": vs_inc[2],
                                  "verdict": verdict(*vs_inc[:2])} if inc else None,
            "kept_vs_first_seed": {"gain": vs_first[0], "two_se": vs_first[1], "draws": vs_first[2]},
            "spearman_balance_pool": rho}
    return "\n".join(lines) + "\n", {"meta": meta, "runs": rows, "kept": [r["run"] for r in kept.values()]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="one folder of fewlabel runs per seed")
    p.add_argument("--incumbent", type=Path, help="a fewlabel.py results .json whose pool accuracy is the rule's bar")
    p.add_argument("--name", default=f"restarts-{cpu_tag()}", help="results file stem")
    args = p.parse_args()
    md, js = render(args, collect(args.runs))
    out = ROOT / "benchmarks" / "results" / args.name
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps(js, indent=1))
    print(md)


if __name__ == "__main__":
    main()
