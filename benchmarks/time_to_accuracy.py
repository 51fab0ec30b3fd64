"""Time to accuracy: the pinned old few-label recipe and the new default, side by side, on the same label draws, in one
invocation on this machine → benchmarks/results/time-to-accuracy-<cpu>.md/.json.

    python benchmarks/time_to_accuracy.py                                   # 100 labels, draws 0-4, old and new
    python benchmarks/time_to_accuracy.py --split-seeds 0 --arms new        # one arm only (no ratio then)
    python benchmarks/time_to_accuracy.py --new-set model=cnn-small --new-set skip_unconfident=true   # a candidate
    python benchmarks/time_to_accuracy.py --report-only                     # rebuild the tables from the run folders

For each draw the arms run one after the other (old, then new), each in its own `mnistlab fewlabel` process, so both
see the same machine state as nearly as a shared machine allows; the load average is recorded around every run.
Per run: test accuracy, wall seconds, training FLOPs (benchmarks/flops.py), achieved GFLOP/s, and beside them the
CPU's peak estimate. Nothing is chosen on the test set: each run reports its final model.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

from _machine import ROOT, cpu_flags, cpu_name, cpu_tag, git_sha, peak_gflops, run_cli
from mnistlab.runs import git_info
from flops import run_flops

RESULTS = ROOT / "benchmarks" / "results"
# fixmatch-v1, the 100-label recipe of 2026-12 pinned field by field, so that a later change of the defaults leaves it
# as it was; "new" is `mnistlab fewlabel`'s default recipe plus any --new-set (a candidate under test)
FIXMATCH_V1 = {"model": "cnn", "width": 0, "batch_size": 32, "mu": 7, "epochs": 13.0, "steps": 0, "lr": 0.05,
               "threshold": 0.95, "dist_align": True, "ema": 0.999, "strong_affine": 0.25, "strong_ops": "all",
               "skip_unconfident": False, "bn_recalibrate": 8192, "refine_rounds": 3, "refine_epochs": 2.0,
               "refine_lr": 0.01, "refine_batch": 256}
ARMS = {"old": "fixmatch-v1", "new": "default"}


def run_arm(args, arm: str, draw: int) -> dict | None:
    out = Path(args.runs) / f"{arm}-l{args.labels}-d{draw}"
    cmd = ["fewlabel", "--labels", str(args.labels), "--split-seed", str(draw), "--seed", str(args.seed),
           "--out", str(out), "--json", "--threads", str(args.threads)]
    sets = [f"{k}={v}" for k, v in FIXMATCH_V1.items()] if arm == "old" else list(args.new_set or [])
    cmd += ["--method", "fixmatch"] + [w for kv in sets for w in ("--set", kv)]
    if (out / "metrics.json").exists():  # reused only when made by this very source (else stale numbers)
        made_by = json.loads((out / "env.json").read_text()).get("git_sha")
        if made_by != git_info()["git_sha"] or git_info()["git_dirty"]:
            raise SystemExit(f"{out} was made by {str(made_by)[:7]}, not by this source: remove it to rerun, "
                             "or --report-only to tabulate it as it is")
        if recorded_sets(out) != sets:  # another candidate ran here: its numbers are not this one's
            raise SystemExit(f"{out} ran with --set {' '.join(recorded_sets(out)) or '(none)'}, not with these "
                             "settings: use another --runs folder for this candidate")
    else:
        metrics, entry = run_cli(cmd + (["--resume"] if (out / "config.json").exists() else []))
        if metrics is None:
            return None
        (out / "bench_record.json").write_text(json.dumps(entry, indent=1))
    return collect(out, arm)


def recorded_sets(out: Path) -> list[str]:
    """The `--set key=value` pairs of the command that made a run (bench_record.json), in order."""
    rec = json.loads((out / "bench_record.json").read_text()) if (out / "bench_record.json").exists() else {}
    words = rec.get("command", "").split()
    return [w for k, w in zip(words, words[1:]) if k == "--set"]


def collect(out: Path, arm: str) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    env = json.loads((out / "env.json").read_text())
    rec = json.loads((out / "bench_record.json").read_text()) if (out / "bench_record.json").exists() else {}
    fl = run_flops(out)
    sets = recorded_sets(out)
    recipe = ARMS[arm] + (" + " + ", ".join(sets) if arm == "new" and sets else "")  # the candidate, as it ran
    return {"arm": arm, "recipe": recipe, "split_seed": m["split_seed"], "run": str(out),
            "git_sha": (env.get("git_sha") or "?")[:7], "model": json.loads((out / "config.json").read_text())["model"],
            "test_accuracy": m["test_accuracy"], "ulb_accuracy_before_refine": m.get("refine_pseudo_accuracy"),
            "wall_seconds": m["wall_seconds"], "train_tflop": fl["total"] / 1e12, "ssl_tflop": fl["ssl"] / 1e12,
            "refine_tflop": fl["refine"] / 1e12, "gflops_achieved": fl["total"] / 1e9 / m["wall_seconds"],
            "precision": m.get("precision"), **{k: rec.get(k) for k in ("load_avg_before", "load_avg_after")}}


def summary(rows: list[dict]) -> dict:
    def ms(xs):
        return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)

    out = {}
    for arm in sorted({r["arm"] for r in rows}):
        rs = [r for r in rows if r["arm"] == arm]
        out[arm] = {"draws": [r["split_seed"] for r in rs], "test_accuracy": ms([r["test_accuracy"] for r in rs]),
                    "wall_seconds": ms([r["wall_seconds"] for r in rs]), "train_tflop": ms([r["train_tflop"] for r in rs])}
    if {"old", "new"} <= set(out):  # ratios on the draws both arms ran, pairwise
        pairs = [(o, n) for o in rows if o["arm"] == "old" for n in rows
                 if n["arm"] == "new" and n["split_seed"] == o["split_seed"]]
        if pairs:
            out["ratio_old_over_new"] = {
                "wall": ms([o["wall_seconds"] / n["wall_seconds"] for o, n in pairs]),
                "flops": ms([o["train_tflop"] / n["train_tflop"] for o, n in pairs]), "draws": [o["split_seed"] for o, _ in pairs]}
    return out


def write(args, rows: list[dict]) -> Path:
    flags, tag = cpu_flags(), cpu_tag()
    res = {"machine": {"cpu": cpu_name(), "flags": flags, "peak_gflops": peak_gflops()}, "git_sha": git_sha(),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
           "labels": args.labels, "rows": rows, "summary": summary(rows)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"time-to-accuracy-{tag}.json").write_text(json.dumps(res, indent=1))
    path = RESULTS / f"time-to-accuracy-{tag}.md"
    path.write_text(markdown(res))
    return path


def markdown(res: dict) -> str:
    m, s = res["machine"], res["summary"]
    peak = ", ".join(f"{k} ≈ {v:.0f} GFLOP/s" for k, v in m["peak_gflops"].items())
    lines = [f"# Time to accuracy: MNIST, {res['labels']} labels — old recipe (`fixmatch-v1`) vs the new arm (the default recipe, plus the candidate's settings)", "",
             f"Machine: {m['cpu']}, flags: {' '.join(m['flags']) or 'none of avx2/avx512_bf16/amx_bf16'}; peak estimate {peak}.",
             f"Source {res['git_sha']}, {res['date']}. Command: `{res['command']}`.", "",
             "| arm | recipe | draw | model | test % | pool % before refine | wall s | train TFLOP | achieved GFLOP/s | load before→after | sha |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        ulb = f"{100 * r['ulb_accuracy_before_refine']:.2f}" if r.get("ulb_accuracy_before_refine") else "–"
        load = f"{(r.get('load_avg_before') or ['?'])[0]}→{(r.get('load_avg_after') or ['?'])[0]}"
        lines.append(f"| {r['arm']} | {r['recipe']} | {r['split_seed']} | {r['model']} | {100 * r['test_accuracy']:.2f} | "
                     f"{ulb} | {r['wall_seconds']:.0f} | {r['train_tflop']:.1f} | {r['gflops_achieved']:.0f} | {load} | {r['git_sha']} |")
    lines += ["", "| arm | draws | test % (mean ± std) | wall s | train TFLOP |", "|---|---|---|---|---|"]
    for arm in ("old", "new"):
        if arm in s:
            a = s[arm]
            lines.append(f"| {arm} | {a['draws']} | {100 * a['test_accuracy'][0]:.2f} ± {100 * a['test_accuracy'][1]:.2f} | "
                         f"{a['wall_seconds'][0]:.0f} ± {a['wall_seconds'][1]:.0f} | {a['train_tflop'][0]:.1f} |")
    if "ratio_old_over_new" in s:
        r = s["ratio_old_over_new"]
        lines += ["", f"Old / new, pairwise on draws {r['draws']}: wall time {r['wall'][0]:.2f} ± {r['wall'][1]:.2f}×, "
                      f"training FLOPs {r['flops'][0]:.2f} ± {r['flops'][1]:.2f}×."]
    lines += ["", "FLOPs: torch.utils.flop_counter per image × the images each stage trains on (benchmarks/flops.py); "
                  "evaluation passes are not counted. Wall time includes evaluation and, on a shared machine, other work "
                  "(load averages beside each run)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, default=100, help="labelled images per draw (default 100)")
    p.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="label draws (default 0-4)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=["old", "new"], help="default: old new")
    p.add_argument("--threads", type=int, default=2, help="torch threads per run (default 2)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "bench-tta"), help="where the run folders go")
    p.add_argument("--new-set", action="append", metavar="KEY=VALUE",
                   help="a config field of the new arm (repeatable; default: the default recipe as it is)")
    p.add_argument("--report-only", action="store_true", help="rebuild the tables from finished run folders")
    args = p.parse_args()
    rows = []
    for draw in args.split_seeds:
        for arm in args.arms:
            out = Path(args.runs) / f"{arm}-l{args.labels}-d{draw}"
            row = collect(out, arm) if args.report_only and (out / "metrics.json").exists() else \
                None if args.report_only else run_arm(args, arm, draw)
            if row:
                rows.append(row)
                print(f"  {arm} draw {draw}: {100 * row['test_accuracy']:.2f} % in {row['wall_seconds']:.0f} s, "
                      f"{row['train_tflop']:.1f} TFLOP", flush=True)
    print(f"wrote {write(args, rows)}")


if __name__ == "__main__":
    main()
