"""`mnistlab run`: the whole study in one command → DIR/report.html (stages in `mnistlab.pipeline`)."""
from __future__ import annotations

from pathlib import Path

from mnistlab import fileio
from mnistlab.errors import MnistlabError


def pace_note(rec: dict) -> str:
    """The report's sentence on the study's pace (quick budget): what was measured and what it changed."""
    if rec.get("source") not in ("calibrated", "--pace"):
        return ""
    how = (f"a training step of the `cnn` took {rec['step_seconds']:.2f} s here, {rec['speed']:.2f}× the reference "
           f"machine's ({rec['reference']['machine']})" if rec["source"] == "calibrated" else "set by --pace")
    from mnistlab.pipeline import STAGES, ordered_stages

    floors = [f"{STAGES.info(n)['title'].split(':')[0].lower()} at least {STAGES.info(n)['min_pace']:g}×"
              for n in ordered_stages() if STAGES.info(n).get("min_pace", 0) > rec["pace"]]
    return (f" Pace {rec['pace']:g} ({how}): every training schedule of this quick study (steps, epochs, pretext "
            f"steps, the GAN's training images) is {rec['pace']:g}× the length written in the stages"
            + (f" ({'; '.join(floors)})" if floors else "") +
            f", so that the study fits ≈ {rec['target_seconds'] / 60:.0f} min; the section commands carry the scaled "
            f"settings. `mnistlab run --pace 1` runs the schedules as written.")


def write_report(out: Path, sections, *, title: str, pace: dict | None = None) -> Path:
    from mnistlab.report.html import render_report

    page = render_report(sections, title=title,
                         intro="Every section states the command that reproduces it, its seeds and its time. "
                               "No checkpoint, threshold or hyper-parameter was chosen on a test set."
                               + pace_note(pace or {}))
    fileio.write_text(out / "report.html", page)
    return out / "report.html"


def default_out(budget: str) -> Path:
    """runs/study for the default quick budget, runs/study-smoke and runs/study-full beside it: one study a folder."""
    return Path("runs/study" if budget == "quick" else f"runs/study-{budget}")


def _run(args) -> int:
    from mnistlab.pipeline import run_study
    from mnistlab.pipeline._pace import parse_pace

    out = Path(args.out or default_out(args.budget))
    if args.tensorboard:
        _check_tensorboard()
    secs, pace = run_study(out, budget=args.budget, force=args.force, only=args.stage, pace=parse_pace(args.pace))
    path = write_report(out, [(s, out / s["id"]) for s in secs], title=f"mnistlab study ({args.budget} budget)",
                        pace=pace)
    if args.tensorboard:
        _export_tensorboard(out)
    print(path)
    failed = [s["id"] for s in secs if s["status"] == "failed"]
    if failed:
        raise MnistlabError(f"stages failed: {', '.join(failed)} (see their sections and error.txt); "
                            f"the report was written to {path}")
    return 0


def _report(args) -> int:
    from mnistlab.pipeline import collect_sections

    out = Path(args.out) if args.out else Path(args.runs[0])
    runs = [Path(r) for r in args.runs]
    pace = None
    if len(runs) == 1 and (runs[0] / "pace.json").exists():  # one study folder: its pace is part of its story
        try:
            pace = fileio.read_json(runs[0] / "pace.json")
        except MnistlabError:
            pace = None  # unreadable: the report is still worth rebuilding, without that sentence
    path = write_report(out if out.is_dir() or not out.suffix else out.parent, collect_sections(runs),
                        title=args.title, pace=pace)
    print(path)
    return 0


def _check_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise MnistlabError("--tensorboard needs the tensorboard package (pip install tensorboard)") from None


def _export_tensorboard(out: Path) -> None:
    """Every run's metrics.jsonl → TensorBoard scalars under DIR/tensorboard/<run path>."""
    import json

    from torch.utils.tensorboard import SummaryWriter

    for log in out.rglob("metrics.jsonl"):
        run = log.parent
        w = SummaryWriter(str(out / "tensorboard" / run.relative_to(out)))
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            for k, v in rec.items():
                if k != "step" and isinstance(v, (int, float)):
                    w.add_scalar(k, v, rec.get("step", 0))
        w.close()


def register(sub) -> None:
    p = sub.add_parser("run", help="the whole study, one self-contained HTML report")
    p.add_argument("--budget", choices=("smoke", "quick", "full"), default="quick",
                   help="smoke ≤ 3 min (tests), quick ≤ 30 min (default), full = benchmark budgets")
    p.add_argument("--out", help="study folder (default runs/study; runs/study-smoke, runs/study-full for the others)")
    p.add_argument("--pace", help="quick only: auto (default: time a few steps, shorten the training schedules to "
                                  "fit ≈ 30 min on this machine) or a level from 1 (as written) down to 0.15")
    p.add_argument("--force", action="store_true", help="recompute finished stages (and re-measure the pace)")
    p.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    p.add_argument("--tensorboard", action="store_true", help="also export every run's metrics to TensorBoard")
    p.set_defaults(func=_run)
    r = sub.add_parser("report", help="rebuild the HTML report from existing study or run folders, no training")
    r.add_argument("runs", nargs="+", help="study folders or run folders")
    r.add_argument("--out", help="folder for report.html (default: the first folder given)")
    r.add_argument("--title", default="mnistlab report")
    r.set_defaults(func=_report)
