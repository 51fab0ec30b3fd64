"""GAN benchmark (issue 7): `mnistlab gan train` (gan and cgan) then `mnistlab gan eval`, per seed.

Runs go to --runs (finished ones are reused with --resume, a killed benchmark continues where it stopped). The
evaluation classifier is --classifier (a finished supervised run) or the cached CNN of `gan eval` (trained once).
Results go to benchmarks/results/gan.md and gan.json: machine, threads, load averages at start and end (the 2 cores
are shared with other jobs: wall times are measured under load), git sha, date, every command, and mean ± std over seeds. Nothing is
chosen on the test set: the final EMA generator of each run is evaluated.

    python benchmarks/gan.py                          # quick budget, seed 0, gan + cgan
    python benchmarks/gan.py --budget full --seeds 0 1
    python benchmarks/gan.py --eval-only              # evaluate the runs as they are (unfinished: last checkpoint)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mnistlab import fileio  # noqa: E402
from mnistlab.runs import cpu_name, git_info  # noqa: E402
from _machine import check_reuse, record_code  # noqa: E402
from _machine import run_cli as cli  # noqa: E402

TARGETS = "MNIST score ≥ 9.5; every class 8–12 % of 10k samples; cgan agreement ≥ 98 %; classifier-FID ≤ 3× floor; " \
          "quick budget ≤ 10 min wall on 2 idle cores"
ROW = ("mnist_score", "min_share", "max_share", "conditional_agreement", "fid", "fid_floor_train_vs_test",
       "fid_ratio_to_floor", "nn_distance_generated_median", "nn_distance_test_median")


def progress(run_dir: Path, step: int | None = None) -> dict:
    """Steps done and training seconds of a run, finished or not (metrics.json / metrics.jsonl; at `step` if given)."""
    out: dict = {"finished": (run_dir / "metrics.json").exists()}
    if out["finished"]:
        m = fileio.read_json(run_dir / "metrics.json")
        out.update(steps=m.get("steps"), epochs_done=m.get("epochs"), train_wall_seconds=m.get("wall_seconds"))
    elif (run_dir / "metrics.jsonl").exists():
        lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
        lines = [x for x in lines if step is None or x.get("step") == step] or lines
        if lines:
            out.update(steps=lines[-1].get("step"), epochs_done=lines[-1].get("epoch"),
                       train_wall_seconds=lines[-1].get("seconds"))
    return out


def mean_std(xs: list[float]) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.4g}"
    return f"{statistics.mean(xs):.4g} ± {statistics.stdev(xs):.2g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=("smoke", "quick", "full"), default="quick")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", choices=("gan", "cgan"), default=["gan", "cgan"])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "bench-gan"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads per run (0 = one per core)")
    ap.add_argument("--n", type=int, default=10000, help="generated images per evaluation")
    ap.add_argument("--classifier", help="a finished `mnistlab supervised` run (default: gan eval's cached CNN)")
    ap.add_argument("--eval-only", action="store_true", help="do not train: evaluate the runs as they are")
    ap.add_argument("--rerun-stale", action="store_true",
                    help="a finished run made by other code is moved aside (*.stale-N) and run again (default: stop)")
    args = ap.parse_args()

    load_start, started = os.getloadavg(), dt.datetime.now(dt.timezone.utc)
    threads = ["--threads", str(args.threads)] if args.threads else []
    log, rows = [], []
    for method in args.methods:
        for seed in args.seeds:
            run_dir = Path(args.runs) / f"{method}-{args.budget}-s{seed}"
            if not args.eval_only:
                check_reuse(run_dir, rerun=args.rerun_stale)  # a finished run of other code is not reused
                _, entry = cli(["gan", "train", *(["--conditional"] if method == "cgan" else []), "--dataset", "mnist",
                                "--budget", args.budget, "--seed", str(seed), *threads, "--out", str(run_dir),
                                "--resume", "--json"])
                log.append(entry)
                record_code(run_dir)
            if not (run_dir / "config.json").exists():
                continue
            clf = ["--classifier", args.classifier] if args.classifier else []
            res, entry = cli(["gan", "eval", "--run", str(run_dir), *clf, "--n", str(args.n), *threads, "--json"])
            log.append(entry)
            if res is None:
                continue
            h = res["class_histogram"]
            row = {"method": method, "seed": seed, "run": str(run_dir),
                   **progress(run_dir, res.get("checkpoint_step")),
                   "checkpoint_step": res.get("checkpoint_step"), "mnist_score": res["mnist_score"],
                   "min_share": h["min_fraction"], "max_share": h["max_fraction"], "class_shares": h["fractions"],
                   "conditional_agreement": res.get("conditional_agreement"), "fid": res["fid"],
                   "fid_floor_train_vs_test": res["fid_floor_train_vs_test"],
                   "fid_ratio_to_floor": res["fid_ratio_to_floor"],
                   "nn_distance_generated_median": res["nn_distance_generated_median"],
                   "nn_distance_test_median": res["nn_distance_test_median"],
                   "classifier": res["classifier"], "classifier_test_accuracy": res["classifier_test_accuracy"],
                   "mnist_score_real_test": res["mnist_score_real_test"], "targets": res["targets"]}
            rows.append(row)
            print(f"  {method} s{seed}: score {row['mnist_score']:.3f}  shares {row['min_share']:.3f}–"
                  f"{row['max_share']:.3f}  FID {row['fid']:.3f} (floor {row['fid_floor_train_vs_test']:.3f})"
                  + (f"  agreement {row['conditional_agreement']:.4f}" if method == "cgan" else ""), flush=True)

    load_end = os.getloadavg()
    summary = {m: {k: mean_std([r[k] for r in rows if r["method"] == m]) for k in ROW + ("train_wall_seconds",)}
               for m in args.methods}
    result = {"benchmark": "gan", "budget": args.budget, "seeds": args.seeds, "date": started.isoformat(
        timespec="seconds"), **git_info(), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
              "threads": args.threads or "torch default", "load_avg_start": [round(x, 2) for x in load_start],
              "load_avg_end": [round(x, 2) for x in load_end], "command": " ".join(["python", *sys.argv]),
              "targets": TARGETS, "summary": summary, "runs": rows, "log": log,
              "note": "wall times measured on 2 cores shared with other jobs (see load averages)"}
    name = "gan" if args.budget != "smoke" else "gan-smoke"
    out_dir = ROOT / "benchmarks" / "results"
    fileio.write_json(out_dir / f"{name}.json", result)
    fileio.write_text(out_dir / f"{name}.md", markdown(result))
    print(f"wrote {out_dir / name}.md/.json")
    return 0


def markdown(r: dict) -> str:
    lines = [f"# GAN benchmark ({r['budget']} budget)", "",
             f"`{r['command']}` — {r['date']}, git {str(r['git_sha'])[:10]}{' (dirty)' if r['git_dirty'] else ''}; "
             f"{r['cpu']}, {r['cpu_count']} cores, threads {r['threads']}.",
             f"Load average (1/5/15 min) at start {r['load_avg_start']}, at end {r['load_avg_end']}: the cores are "
             "shared, wall times are measured under that load.", "", f"Targets: {r['targets']}.", "",
             "| method | seed | trained steps | done | train wall s | MNIST score | class share min–max | agreement | "
             "cFID | floor (train vs test) | ×floor | NN dist gen / test |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["runs"]:
        agr = f"{x['conditional_agreement']:.4f}" if x["conditional_agreement"] is not None else "–"
        steps = x["checkpoint_step"] if x["checkpoint_step"] is not None else x.get("steps")
        lines.append(f"| {x['method']} | {x['seed']} | {steps} | {'yes' if x['finished'] else 'NO (checkpoint)'} | "
                     f"{x.get('train_wall_seconds')} | {x['mnist_score']:.3f} | {x['min_share']:.3f}–"
                     f"{x['max_share']:.3f} | {agr} | {x['fid']:.3f} | {x['fid_floor_train_vs_test']:.3f} | "
                     f"{x['fid_ratio_to_floor']:.1f} | {x['nn_distance_generated_median']:.2f} / "
                     f"{x['nn_distance_test_median']:.2f} |")
    if r["runs"]:
        x = r["runs"][0]
        lines += ["", f"Classifier {x['classifier']}: test accuracy {x['classifier_test_accuracy']:.4f}; its MNIST "
                      f"score on real test images {x['mnist_score_real_test']:.3f} (the ceiling in practice)."]
    lines += ["", "Mean ± std over seeds:", "", "| method | " + " | ".join(ROW) + " | train wall s |",
              "|---|" + "---|" * (len(ROW) + 1)]
    for m, s in r["summary"].items():
        lines.append(f"| {m} | " + " | ".join(s[k] for k in ROW) + f" | {s['train_wall_seconds']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
