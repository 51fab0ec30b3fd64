"""Re-select few-label settings without the test set → benchmarks/results/reselect-<grid>-<cpu>.md/.json.

A grid's candidates each run as `mnistlab fewlabel --method fixmatch` on the same label draws and are ranked on the
accuracy over each run's own *unlabelled* images (`ulb_accuracy`, the teacher before refine). The test accuracy is
written beside it and never read for the choice. Grids (`GRIDS`):
- `strong-view` (issue 26): `strong_affine`, the strong view's affine scale, and the `extra_stroke` op (a stroke of
  5–12 px added to the digit), both first chosen on test figures; 100 labels. `no-stroke-ops` drops both stroke
  ops (`extra_stroke` and the ±1 px `stroke`). `no-bn-recal` checks `bn_recalibrate`, adopted on test evidence.
- `balance` (issue 28): Sinkhorn–Knopp balanced pseudo-labels against distribution alignment alone; 10 labels.

    python benchmarks/reselect.py                            # the strong-view grid, draws 0 and 1
    python benchmarks/reselect.py --grid balance --split-seeds 0 1 2 --runs runs/bench-balance
    python benchmarks/reselect.py --report-only              # rebuild the tables from the run folders

The rule, fixed before the runs: the grid's incumbent (the default) is replaced only by a candidate whose mean pool
accuracy beats it by more than MARGIN or by two paired standard errors over the draws, whichever is larger;
otherwise it stays, and the table is the evidence. A probe is shorter than the full recipe (--model, --steps; no
refine), so it ranks settings at probe size; the result file says so.
"""
from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

from _machine import ROOT, check_reuse, cpu_flags, cpu_name, cpu_tag, git_sha, record_code, run_cli, run_git

RESULTS = ROOT / "benchmarks" / "results"
NO_EXTRA_STROKE = "elastic,stroke,contrast,blur,noise"  # every op of data/randaugment.OPS but `extra_stroke`
NO_STROKE_OPS = "elastic,contrast,blur,noise"  # without both stroke ops: `stroke` (±1 px) and `extra_stroke`
MARGIN = 0.001  # 0.1 point of pool accuracy
# grid → (its incumbent, its label count, candidate name → --set fields)
GRIDS = {
    "strong-view": ("affine-0.25", 100, {
        "affine-0": {"strong_affine": 0.0}, "affine-0.25": {"strong_affine": 0.25},
        "affine-0.5": {"strong_affine": 0.5}, "affine-1": {"strong_affine": 1.0},
        "affine-0.25-no-extra-stroke": {"strong_affine": 0.25, "strong_ops": NO_EXTRA_STROKE},
        "affine-0.25-no-stroke-ops": {"strong_affine": 0.25, "strong_ops": NO_STROKE_OPS},
        "affine-0.25-no-bn-recal": {"strong_affine": 0.25, "bn_recalibrate": 0}}),
    # issue 28: balanced pseudo-labels (Sinkhorn–Knopp per batch) against distribution alignment alone, 10 labels
    "balance": ("da", 10, {"da": {}, "sinkhorn-3": {"sinkhorn": 3}}),
}


def run_one(args, name: str, draw: int) -> dict | None:
    out = Path(args.runs) / f"{name}-d{draw}"
    fields = {"model": args.model, "steps": args.steps, "refine_rounds": 0, **GRIDS[args.grid][2][name]}
    cmd = ["fewlabel", "--method", "fixmatch", "--labels", str(labels(args)), "--split-seed", str(draw), "--seed", "0",
           "--out", str(out), "--json", "--threads", str(args.threads)]
    cmd += [w for k, v in fields.items() for w in ("--set", f"{k}={v}")]
    if not args.report_only:
        check_reuse(out, rerun=args.rerun_stale)
        if not (out / "metrics.json").exists():
            metrics, _ = run_cli(cmd + (["--resume"] if (out / "config.json").exists() else []))
            if metrics is None:
                return None
            record_code(out)
    if not (out / "metrics.json").exists():
        return None
    m = json.loads((out / "metrics.json").read_text())
    return {"candidate": name, "split_seed": draw, "ulb_accuracy": m["ulb_accuracy"], "test_accuracy":
            m["test_accuracy"], "wall_seconds": m["wall_seconds"], "git": run_git(out), "run": str(out),
            "merged": merged_classes(out)}


def merged_classes(out: Path, below: float = 0.5) -> str:
    """Why a run fails, described from its test confusion (never used to choose): each class recalled below `below`,
    and the class that took most of it, e.g. "2→7 (38 %)"."""
    try:
        conf = json.loads((out / "confusion.json").read_text())
    except (OSError, ValueError):
        return "?"
    cm, names = conf["matrix"], conf["classes"]
    lost = []
    for i, row in enumerate(cm):
        total = sum(row) or 1
        if row[i] / total < below:
            j = max((k for k in range(len(row)) if k != i), key=lambda k: row[k])
            lost.append(f"{names[i]}→{names[j]} ({100 * row[i] / total:.0f} % kept)")
    return ", ".join(lost) or "none"


def ms(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * statistics.mean(xs):.2f} ± {100 * sd:.2f}"


def render(args, rows: list[dict]) -> str:
    by = {c: [r for r in rows if r["candidate"] == c] for c in GRIDS[args.grid][2]}
    ranked = sorted((c for c in by if by[c]), key=lambda c: -statistics.mean(r["ulb_accuracy"] for r in by[c]))
    lines = [f"# Re-selecting on the unlabelled pool: grid `{args.grid}`, {datetime.now(timezone.utc):%Y-%m-%d}",
             "", f"- machine: {cpu_name()}; CPU flags: {' '.join(cpu_flags()) or '?'}; git {git_sha()}",
             f"- probe: MNIST, {labels(args)} labels, `fixmatch --set model={args.model} --set steps={args.steps} "
             f"--set refine_rounds=0`, seed 0, draws {' '.join(map(str, args.split_seeds))}, {args.threads} thread(s)",
             "- **selection measure: accuracy on each run's unlabelled images (teacher, before refine)**; test accuracy "
             "is shown, never used", "- caveat: probe-size schedule, not the full recipe; a ranking, not a headline",
             "", "| candidate | pool % (selection) | test % (not used) | runs (git) |", "|---|---|---|---|"]
    for c in ranked:
        rs = by[c]
        lines.append(f"| {c} | {ms([r['ulb_accuracy'] for r in rs])} | {ms([r['test_accuracy'] for r in rs])} | "
                     f"{len(rs)} ({', '.join(sorted({r['git'] for r in rs}))}) |")
    lines += ["", "Per run (the merged classes are read from the test confusion to describe failures, never to choose: "
                  "a class recalled below 50 % and where most of it went):", "",
              "| candidate | draw | pool % | test % | merged classes | git |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['candidate']} | {r['split_seed']} | {100 * r['ulb_accuracy']:.2f} | {100 * r['test_accuracy']:.2f} | "
              f"{r.get('merged', '?')} | {r['git']} |" for r in sorted(rows, key=lambda r: (r["candidate"], r["split_seed"]))]
    return "\n".join(lines + ["", decide(by, GRIDS[args.grid][0])]) + "\n"


def labels(args) -> int:
    return args.labels or GRIDS[args.grid][1]


def decide(by: dict[str, list[dict]], incumbent: str) -> str:
    """The module docstring's rule: a candidate replaces the incumbent only by a clear paired margin on the pool."""
    base = {r["split_seed"]: r["ulb_accuracy"] for r in by.get(incumbent, [])}
    best, gain = incumbent, 0.0
    for c, rs in by.items():
        diffs = [r["ulb_accuracy"] - base[r["split_seed"]] for r in rs if r["split_seed"] in base]
        if c == incumbent or not diffs:
            continue
        se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("inf")
        if statistics.mean(diffs) > max(MARGIN, 2 * se) and statistics.mean(diffs) > gain:
            best, gain = c, statistics.mean(diffs)
    if not base:
        return "No incumbent runs: no decision."
    if best == incumbent:
        return (f"Decision (rule above): **{incumbent} stays** — no candidate beats it on the pool by more than "
                f"max({100 * MARGIN:.1f} point, 2 paired SE).")
    return f"Decision (rule above): **{best}** replaces {incumbent} (+{100 * gain:.2f} points on the pool, paired)."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--grid", choices=list(GRIDS), default="strong-view")
    p.add_argument("--labels", type=int, default=0, help="labelled images (default: the grid's)")
    p.add_argument("--model", default="cnn-small")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="+", help="candidates of the grid to run (default: all)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "bench-reselect"))
    p.add_argument("--rerun-stale", action="store_true", help="move aside finished runs made by other code and rerun")
    p.add_argument("--report-only", action="store_true", help="tabulate the finished runs; train nothing")
    args = p.parse_args()
    rows = [r for d in args.split_seeds for c in args.only or GRIDS[args.grid][2] if (r := run_one(args, c, d))]
    name = f"reselect-{args.grid}-{cpu_tag()}"
    (RESULTS / f"{name}.json").write_text(json.dumps({"cpu_flags": cpu_flags(), "git": git_sha(), "rows": rows},
                                                     indent=1))
    (RESULTS / f"{name}.md").write_text(render(args, rows))
    print((RESULTS / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
