"""`mnistlab run`: the whole study in one command → DIR/report.html (stages in `mnistlab.pipeline`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from mnistlab import pipeline
from mnistlab.errors import MnistlabError
from mnistlab.pipeline import STAGES, ordered_stages
from mnistlab.pipeline._report import rebuild_report, write_report
from mnistlab.pipeline._pace import LEVELS, parse_pace


def default_out(budget: str) -> Path:
    """runs/study for the default quick budget, runs/study-smoke and runs/study-full beside it: one study a folder."""
    return Path("runs/study" if budget == "quick" else f"runs/study-{budget}")


def _run(args) -> int:
    out = Path(args.out or default_out(args.budget))
    secs, pace = pipeline.run_study(out, budget=args.budget, force=args.force, only=args.stage,
                                    pace=parse_pace(args.pace), device=args.device)
    path = write_report(out, [(s, out / s["id"]) for s in secs], title=f"mnistlab study ({args.budget} budget)",
                        pace=pace)
    print(path)
    failed = [s["id"] for s in secs if s["status"] == "failed"]
    if failed:
        raise MnistlabError(f"stages failed: {', '.join(failed)} (see their sections and error.txt); "
                            f"the report was written to {path}")
    return 0


def _report(args) -> int:
    print(rebuild_report([Path(r) for r in args.runs], out=args.out, title=args.title))
    return 0


def stage_name(text: str) -> str:
    """`--stage NAME`: a registered stage (argparse's one-line error lists the valid ones)."""
    if text not in STAGES:
        raise argparse.ArgumentTypeError(f"unknown stage {text!r}; valid: {', '.join(ordered_stages())}")
    return text


def register(sub) -> None:
    p = sub.add_parser("run", help="the whole study, one self-contained HTML report (start here)")
    p.add_argument("--budget", choices=("smoke", "quick", "full"), default="quick",
                   help="smoke ≤ 3 min (tests), quick ≤ 30 min, full = benchmark budgets (default %(default)s)")
    p.add_argument("--out", help="study folder (default runs/study; runs/study-smoke, runs/study-full for the others)")
    p.add_argument("--pace", help="quick only: auto (default: time a few steps, shorten the training schedules to "
                                  f"fit ≈ 30 min on this machine) or one of {', '.join(f'{v:g}' for v in LEVELS)} "
                                  "(1 = as written)")
    p.add_argument("--force", action="store_true",
                   help="recompute finished stages and re-measure the pace (default: reuse them)")
    p.add_argument("--stage", action="append", type=stage_name, metavar="STAGE",
                   help=f"run only this stage (repeatable; default: all): {', '.join(ordered_stages())}")
    p.add_argument("--device", default="auto", help="where every training runs: auto (cuda, else mps, else cpu) | "
                                                    "cpu | cuda | cuda:N | mps (default %(default)s)")
    p.set_defaults(func=_run)
    r = sub.add_parser("report", help="rebuild the HTML report from existing study or run folders, no training")
    r.add_argument("runs", nargs="+", help="study folders or run folders")
    r.add_argument("--out", help="folder for report.html (default: the first folder given)")
    r.add_argument("--title", default="mnistlab report", help="the page's title (default %(default)s)")
    r.set_defaults(func=_report)
