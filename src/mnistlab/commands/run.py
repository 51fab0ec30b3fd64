"""`mnistlab run`: the whole study in one command → DIR/report.html (stages in `mnistlab.pipeline`)."""
from __future__ import annotations

from pathlib import Path

from mnistlab.pipeline import ordered_stages
from mnistlab.pipeline._report import rebuild_report, study_report
from mnistlab.pipeline._pace import LEVELS, parse_pace


def _run(args) -> int:
    print(study_report(args.out, budget=args.budget, force=args.force, only=args.stage, pace=parse_pace(args.pace),
                       device=args.device))
    return 0


def _report(args) -> int:
    print(rebuild_report([Path(r) for r in args.runs], out=args.out, title=args.title))
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="the whole study, one self-contained HTML report (start here)")
    p.add_argument("--budget", choices=("smoke", "quick", "full"), default="quick",
                   help="smoke ≈ 4 min (tests), quick ≈ 30 min, full = benchmark budgets (default %(default)s)")
    p.add_argument("--out", help="study folder (default runs/study; runs/study-smoke, runs/study-full for the others)")
    p.add_argument("--pace", help="quick only: auto (default: time a few steps, shorten the training schedules to "
                                  f"fit ≈ 30 min on this machine) or one of {', '.join(f'{v:g}' for v in LEVELS)} "
                                  "(1 = as written)")
    p.add_argument("--force", action="store_true",
                   help="recompute finished stages and re-measure the pace (default: reuse them)")
    p.add_argument("--stage", action="append", metavar="STAGE",  # an unknown name: one line from run_study
                   help=f"run only this stage (repeatable; default: all): {', '.join(ordered_stages())}")
    p.add_argument("--device", default="auto", help="where every training runs: auto (cuda, else mps, else cpu) | "
                                                    "cpu | cuda | cuda:N | mps (default %(default)s)")
    p.set_defaults(func=_run)
    r = sub.add_parser("report", help="rebuild the HTML report from existing study or run folders, no training")
    r.add_argument("runs", nargs="+", help="study folders or run folders")
    r.add_argument("--out", help="folder for report.html (default: the first folder given)")
    r.add_argument("--title", default="mnistlab report", help="the page's title (default %(default)s)")
    r.set_defaults(func=_report)
