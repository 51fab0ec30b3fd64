"""Few-label benchmark: `mnistlab fewlabel` over label counts × label draws → benchmarks/results/<name>.md/.json/.png.

    python benchmarks/fewlabel.py                                  # 10 20 50 100 250 1000 labels, 5 draws at 100, 3 else
    python benchmarks/fewlabel.py --labels 100 --draws 5 --set steps=400   # a reduced run (say so in the results)
    python benchmarks/fewlabel.py --report-only                    # rebuild the tables from the finished run folders
    python benchmarks/fewlabel.py --labels 100 --threads 1 --jobs 2  # two draws at a time, one core each
    python benchmarks/fewlabel.py --labels 100 --split-seeds 3 4       # just these draws (the rest from elsewhere)
    python benchmarks/fewlabel.py --report-only --include benchmarks/results/fewlabel-headline.json  # + runs done elsewhere

Each run is its own `mnistlab fewlabel … --resume --json` process (a killed benchmark continues where it stopped).
A finished run folder is reused only if it ran with this code (its source fingerprint, else its git sha, clean) —
otherwise the driver stops, or with --rerun-stale moves it aside and runs it again — and with these settings
(`mnistlab … --resume` refuses a finished run started with others). Each run's own git sha is in the runs table.
The split seed is the draw number; the training seed is fixed. Nothing is chosen on the test set: every run reports its
final EMA model. The CPU is shared, so the load average is recorded around every run, and steps/s (optimiser steps per
wall second) is reported beside wall time so an uncontended time can be estimated.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from _machine import (check_reuse, code_version, cpu_flags, cpu_name, git_sha, record_code, run_devices,  # noqa: E402
                      run_git)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LABELS = (10, 20, 50, 100, 250, 1000)
REPORT_FLAGS = ("report_only", "runs", "name", "notes", "include")  # what --report-only reads
# MNIST, 100 labels, test error % (sources: /work/shared/ANCHORS.md)
LITERATURE = [("Ladder networks (Rasmus et al. 2015)", 1.06, 0.37), ("Improved GAN (Salimans et al. 2016)", 0.93, 0.065),
              ("Triple-GAN (Li et al. 2017)", 0.91, 0.58), ("Bad GAN (Dai et al. 2017)", 0.795, 0.098),
              ("IIC, no labels (Ji et al. 2019)", 0.77, None)]
# MNIST with fewer labels or none, test error % (ANCHORS.md): the 10- and 20-label rows stand beside these
LITERATURE_FEW = [(0, "IIC, clustering (Ji et al. 2019)", "0.7–0.8", None), (0, "IMSAT (Hu et al. 2017)", "1.6", None),
                  (20, "Triple-GAN (Li et al. 2017)", "4.81", "4.95"),
                  (20, "Improved GAN, feature matching (Salimans et al. 2016)", "16.8", None)]


def run_one(args, labels: int, draw: int) -> dict:
    out = Path(args.runs) / f"{args.dataset}-{args.method or 'default'}-l{labels}-d{draw}"
    cmd = [sys.executable, "-m", "mnistlab", "fewlabel", "--dataset", args.dataset, "--labels", str(labels),
           "--split-seed", str(draw), "--seed", str(args.seed), "--budget", args.budget, "--out", str(out),
           "--resume", "--json"]
    if args.method:
        cmd += ["--method", args.method]
    check_reuse(out, rerun=args.rerun_stale, now=args.code)
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    for s in args.set or []:
        cmd += ["--set", s]
    load0 = os.getloadavg()[0]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MNISTLAB_QUIET": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    rec = {"labels": labels, "split_seed": draw, "run": str(out), "command": " ".join(cmd[1:]),
           "load_start": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
           "process_seconds": round(time.time() - t0, 1)}
    (out / "bench_record.json").write_text(json.dumps(rec, indent=1))
    record_code(out, args.code)
    return collect_one(out) or rec


def collect_one(folder: Path) -> dict | None:
    mpath = folder / "metrics.json"
    if not mpath.exists():
        return None
    m = json.loads(mpath.read_text())
    rec = json.loads((folder / "bench_record.json").read_text()) if (folder / "bench_record.json").exists() else {}
    cfg = json.loads((folder / "config.json").read_text())
    env = json.loads((folder / "env.json").read_text()) if (folder / "env.json").exists() else {}
    wall = m["wall_seconds"]
    return {**rec, "run": str(folder), "method": m.get("method"), "dataset": m.get("dataset"), "labels": m["labels"],
            "split_seed": m["split_seed"], "seed": m.get("seed"), "test_accuracy": m["test_accuracy"],
            "val_accuracy": m.get("val_accuracy"), "wall_seconds": wall, "steps": m.get("steps"),
            "steps_per_s": round(m["steps"] / wall, 3) if m.get("steps") else None,
            "final_mask_rate": m.get("final_mask_rate"), "final_pl_acc": m.get("final_pl_acc"),
            "config": {k: cfg.get(k) for k in ("model", "batch_size", "mu", "lr", "threshold", "threshold_mode",
                                               "dist_align", "teacher", "ema", "steps", "epochs", "strong_affine",
                                               "init", "bn_recalibrate", "selection")},
            "test_accuracy_running_bn": m.get("test_running_bn_accuracy"), "ulb_accuracy": m.get("ulb_accuracy"),
            "test_accuracy_before_refine": m.get("test_before_refine_accuracy"), "refine_rounds": m.get("refine_rounds"),
            "ulb_accuracy_before_refine": m.get("refine_pseudo_accuracy"),
            "cpu": env.get("cpu"), "precision": m.get("precision"), "git": run_git(folder)}


def included(path: str) -> list[dict]:
    """The runs of an earlier results file (e.g. one measured on another machine), each marked with its machine and
    file: a sweep can stand beside a headline whose run folders live elsewhere, without rerunning it."""
    data = json.loads(Path(path).read_text())
    cpu = data.get("meta", {}).get("cpu")
    return [{**r, "cpu": r.get("cpu") or cpu, "included_from": Path(path).name} for r in data.get("runs", [])]


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for key in sorted({(r["dataset"], r["method"], r["labels"]) for r in rows}):
        rs = [r for r in rows if (r["dataset"], r["method"], r["labels"]) == key]
        acc, acc_sd = mean_std([r["test_accuracy"] for r in rs])
        wall, wall_sd = mean_std([r["wall_seconds"] for r in rs])
        sps = [r["steps_per_s"] for r in rs if r.get("steps_per_s")]
        out.append({"dataset": key[0], "method": key[1], "labels": key[2], "draws": len(rs),
                    "accuracy_mean": acc, "accuracy_std": acc_sd, "wall_mean": wall, "wall_std": wall_sd,
                    "steps": rs[0].get("steps"), "steps_per_s_mean": statistics.fmean(sps) if sps else None,
                    "machines": sorted({r.get("cpu") or "?" for r in rs}),
                    "load": [min(r.get("load_start", 0) for r in rs), max(r.get("load_end", 0) for r in rs)]})
    return out


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in sorted({(s["dataset"], s["method"]) for s in summary}):
        ss = sorted((s for s in summary if (s["dataset"], s["method"]) == key), key=lambda s: s["labels"])
        ax.errorbar([s["labels"] for s in ss], [100 * s["accuracy_mean"] for s in ss],
                    yerr=[100 * s["accuracy_std"] for s in ss], marker="o", capsize=3, label=f"{key[1]} ({key[0]})")
    ax.axhline(100 - 1.06, color="grey", ls=":", lw=1, label="Ladder, 100 labels (GPU)")
    ax.axhline(99.3, color="red", ls="--", lw=1, label="target 99.3 % @ 100")
    ax.set_xscale("log")
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def write(args, rows: list[dict], started: dict) -> None:
    summary = summarise(rows)
    name = args.name
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_sha": git_sha(),
            "cpu": cpu_name(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(),
            **({} if args.report_only else {"threads": args.threads or "torch default"}),
            "command": "python benchmarks/fewlabel.py " + " ".join(sys.argv[1:]), **started,
            "load_end": [round(v, 2) for v in os.getloadavg()],
            "note": ("Rebuilt from finished run folders (--report-only): how they ran is in each run's command "
                     "and under Notes" if args.report_only else
                     f"{args.jobs} run(s) at a time on the {os.cpu_count()} cores, each with --threads "
                     f"{args.threads or 'default'}") + "; the load averages show anything else that ran. steps/s "
                    "lets an uncontended time be estimated. No selection on the test set: final EMA model per run."}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": rows}, indent=1))
    if summary:
        plot(summary, RESULTS / f"{name}.png")
    lines = [f"# Few-label benchmark ({name})", "",
             f"{meta['date']} · git {meta['git_sha']} (this file; each run's own in the runs table) · {meta['cpu']} "
             f"({meta['cpu_count']} cores{', threads ' + str(meta['threads']) if 'threads' in meta else ''}; "
             f"flags {' '.join(meta.get('cpu_flags') or ['?'])}; device {run_devices(r['run'] for r in rows)}) · "
             f"load avg at start {meta['load_start']}, at end {meta['load_end']}", "",
             f"Command: `{meta['command']}`", "", meta["note"], "",
             "| dataset | method | labels | draws | test accuracy % (mean ± std) | wall s / run (mean ± std) | steps "
             "| steps/s | load (min start – max end) | machine |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        sps = f"{s['steps_per_s_mean']:.2f}" if s["steps_per_s_mean"] else "–"
        lines.append(f"| {s['dataset']} | {s['method']} | {s['labels']} | {s['draws']} | "
                     f"{100 * s['accuracy_mean']:.2f} ± {100 * s['accuracy_std']:.2f} | "
                     f"{s['wall_mean']:.0f} ± {s['wall_std']:.0f} | {s['steps']} | {sps} | "
                     f"{s['load'][0]:.1f} – {s['load'][1]:.1f} | {', '.join(s.get('machines', []))} |")
    lines += ["", "## Literature, MNIST 100 labels (GPU, test error %)", "", "| method | error % |", "|---|---|"]
    lines += [f"| {n} | {e}{f' ± {sd}' if sd else ''} |" for n, e, sd in LITERATURE]
    lines += ["", "## Literature, MNIST with fewer labels or none (GPU, test error %)", "", "| labels | method | error % |",
              "|---|---|---|"]
    lines += [f"| {n or 'none'} | {m} | {e}{f' ± {sd}' if sd else ''} |" for n, m, e, sd in LITERATURE_FEW]
    lines += ["", "## Runs", "", "running BN = the same EMA model with the batch-norm statistics it kept during training, "
              "before they are recomputed on clean unlabelled images (`bn_recalibrate`); shown, never chosen. "
              "pool = accuracy on the run's own unlabelled training images (transductive; the development measure "
              "recipes are compared on, since it never touches the test set). before refine = the SSL model before the "
              "self-training refine rounds (`refine_rounds`), on the test set and on the pool (the pool figure after "
              "refine is flattered: the refine rounds train on the pool's pseudo-labels).", "",
              "| labels | split seed | accuracy % | before refine % | running BN % | pool % | pool before refine % "
              "| wall s | steps/s | load start/end | machine | git | run |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    pct = lambda v: f"{100 * v:.2f}" if v is not None else "–"  # noqa: E731
    lines += [f"| {r['labels']} | {r['split_seed']} | {100 * r['test_accuracy']:.2f} | "
              f"{pct(r.get('test_accuracy_before_refine'))} | {pct(r.get('test_accuracy_running_bn'))} | "
              f"{pct(r.get('ulb_accuracy'))} | {pct(r.get('ulb_accuracy_before_refine'))} | {r['wall_seconds']:.0f} | "
              f"{r.get('steps_per_s') or '–'} | {r.get('load_start', '–')}/{r.get('load_end', '–')} | "
              f"{r.get('cpu') or '?'}{', ' + r['precision'] if r.get('precision') else ''} | {r.get('git') or '?'} | "
              f"{r['run']}"
              f"{' (from ' + r['included_from'] + ')' if r.get('included_from') else ''} |"
              for r in sorted(rows, key=lambda r: (r["labels"], r["split_seed"]))]
    if summary:
        lines += ["", f"![accuracy vs labels]({name}.png)"]
    if args.notes:
        lines += ["", "## Notes", "", Path(args.notes).read_text().strip()]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / name}.md/.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", help="default: what `mnistlab fewlabel` picks")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--labels", type=int, nargs="+", default=list(LABELS))
    p.add_argument("--draws", type=int, default=3, help="label draws (split seeds 0..n-1) per label count")
    p.add_argument("--draws-100", type=int, default=5, help="label draws at 100 labels (the headline)")
    p.add_argument("--split-seeds", type=int, nargs="+",
                   help="exactly these draws at every label count (instead of --draws / --draws-100), e.g. to share "
                        "one sweep between two drivers")
    p.add_argument("--seed", type=int, default=0, help="training seed (fixed)")
    p.add_argument("--budget", default="quick")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--set", action="append", help="config override passed to every run (key=value)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (use with --threads 1 on 2 cores)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "bench-fewlabel"))
    p.add_argument("--name", default="fewlabel", help="results file stem")
    p.add_argument("--notes", help="a Markdown file appended to the results under 'Notes' (what was learnt)")
    p.add_argument("--report-only", action="store_true",
                   help="only collect the finished runs under --runs (uses --runs, --name, --notes, --include)")
    p.add_argument("--rerun-stale", action="store_true",
                   help="a finished run made by other code is moved aside (*.stale-N) and run again (default: stop)")
    p.add_argument("--include", action="append", default=[],
                   help="add the runs of an earlier results .json (marked with its machine and file)")
    args = p.parse_args()
    started = {"load_start": [round(v, 2) for v in os.getloadavg()]}
    if args.report_only:
        unused = [f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                  if k not in REPORT_FLAGS and v != p.get_default(k)]
        if unused:
            p.error(f"--report-only uses only --runs, --name, --notes and --include; these do nothing: "
                    f"{', '.join(unused)}")
        rows = [r for f in sorted(Path(args.runs).glob("*")) if ".stale-" not in f.name and (r := collect_one(f))]
        return write(args, rows + [r for path in args.include for r in included(path)], started)
    from concurrent.futures import ThreadPoolExecutor, as_completed

    args.code = code_version()  # once: every run is checked against, and recorded with, the code of this start

    todo = [(n, d) for n in args.labels
            for d in (args.split_seeds or range(args.draws_100 if n == 100 else args.draws))]
    rows = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # each run is its own process
        futures = {pool.submit(run_one, args, n, d): (n, d) for n, d in todo}
        for fut in as_completed(futures):
            rows.append(r := fut.result())
            print(f"labels {r['labels']} draw {r['split_seed']}: {100 * r['test_accuracy']:.2f} % in "
                  f"{r['wall_seconds']:.0f} s", flush=True)
            write(args, sorted(rows, key=lambda r: (r["labels"], r["split_seed"])), started)


if __name__ == "__main__":
    main()
