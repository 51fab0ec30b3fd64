"""The benchmarks for the day a GPU is at hand → benchmarks/results/gpu-<device>.md/.json.

    python benchmarks/gpu.py                 # all four jobs on cuda:0 (≈ 10 min budget on one data-centre GPU)
    python benchmarks/gpu.py --only fewlabel --draws 2

Jobs, each a `mnistlab` process with `--device cuda:N`: the 100-label few-label headline (5 label draws, the default
recipe), the supervised CNN on 60 000 labels, the conditional GAN and its evaluation, and the quick study. Without a
CUDA device it says so in one line and exits 0. Nothing is chosen on the test set: every run reports its final model.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from _machine import ROOT, cpu_flags, cpu_name, git_sha, run_cli

RESULTS = ROOT / "benchmarks" / "results"
JOBS = ("fewlabel", "supervised", "gan", "study")


def jobs(args, dev: str) -> dict[str, list[list[str]]]:
    """Each job's commands (run in order); every one trains on `dev` and prints its metrics as JSON."""
    out = Path(args.runs)
    common = ["--device", dev, "--json"]
    clf = out / "supervised-cnn"  # gan eval's judge: this run's CNN when it is trained here, else gan eval's own
    judge = ["--classifier", str(clf)] if "supervised" in args.only or (clf / "metrics.json").exists() else []
    return {
        "fewlabel": [["fewlabel", "--labels", "100", "--split-seed", str(d), "--seed", "0",
                      "--out", str(out / f"fewlabel-d{d}"), *common] for d in range(args.draws)],
        "supervised": [["supervised", "--model", "cnn", "--seed", "0", "--out", str(out / "supervised-cnn"), *common]],
        "gan": [["gan", "train", "--conditional", "--seed", "0", "--out", str(out / "cgan"), *common],
                ["gan", "eval", "--run", str(out / "cgan"), *judge, *common]],
        "study": [["run", "--budget", "quick", "--pace", "1", "--out", str(out / "study"), "--device", dev]],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda:0", help="CUDA device (default cuda:0)")
    p.add_argument("--only", nargs="+", choices=JOBS, default=list(JOBS), help="jobs to run (default: all)")
    p.add_argument("--draws", type=int, default=5, help="label draws of the few-label headline (default 5)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "bench-gpu"), help="where the run folders go")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here; nothing to measure")
        return 0
    index = torch.device(args.device).index or 0
    gpu = torch.cuda.get_device_name(index)
    table = jobs(args, args.device)
    rows = []
    for job in args.only:
        for cmd in table[job]:
            metrics, entry = run_cli(cmd)
            rows.append({"job": job, **entry, "metrics": metrics})
    res = {"machine": {"gpu": gpu, "cpu": cpu_name(), "cpu_flags": cpu_flags(), "torch": torch.__version__,
                       "cuda": torch.version.cuda}, "git_sha": git_sha(), "command": " ".join(sys.argv),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": rows}
    tag = "".join(c if c.isalnum() else "-" for c in gpu.lower()).strip("-")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"gpu-{tag}.json").write_text(json.dumps(res, indent=1, default=float))
    (RESULTS / f"gpu-{tag}.md").write_text(markdown(res))
    print(f"wrote {RESULTS / f'gpu-{tag}.md'}")
    return 0 if all(r["metrics"] is not None or r["job"] == "study" for r in rows) else 1


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# mnistlab on a GPU: {m['gpu']}", "",
             f"torch {m['torch']} (CUDA {m['cuda']}); host CPU {m['cpu']} ({' '.join(m['cpu_flags'])}). Source "
             f"{res['git_sha']}, {res['date']}. Command: `{res['command']}`.", "",
             "| job | command | wall s | test accuracy |", "|---|---|---|---|"]
    for r in res["rows"]:
        acc = (r["metrics"] or {}).get("test_accuracy")
        lines.append(f"| {r['job']} | `{r['command']}` | {r['process_seconds']:.0f} | "
                     f"{'–' if acc is None else f'{100 * acc:.2f} %'} |")
    few = [r["metrics"]["test_accuracy"] for r in res["rows"] if r["job"] == "fewlabel" and r["metrics"]]
    secs = [r["process_seconds"] for r in res["rows"] if r["job"] == "fewlabel" and r["metrics"]]
    if len(few) > 1:
        lines += ["", f"Few-label headline, {len(few)} draws: {100 * statistics.mean(few):.2f} ± "
                      f"{100 * statistics.stdev(few):.2f} %, {statistics.mean(secs):.0f} ± {statistics.stdev(secs):.0f} s a draw."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
