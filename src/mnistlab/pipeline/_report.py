"""The study's HTML page: its sections, and the opening sentences on how it was made (seeds, pace)."""
from __future__ import annotations

from pathlib import Path

from mnistlab import fileio, pipeline
from mnistlab.errors import MnistlabError
from mnistlab.pipeline import STAGES, collect_sections, ordered_stages
from mnistlab.report.html import Section, render_report
from mnistlab.runs import resolve_out


def pace_note(rec: dict) -> str:
    """The report's sentence on the study's pace (quick budget): what was measured and what it changed."""
    if rec.get("source") not in ("calibrated", "--pace"):
        return ""
    how = (f"a training step of the `cnn` took {rec['step_seconds']:.2f} s here, {rec['speed']:.2f}× the reference "
           f"machine's ({rec['reference']['machine']})" if rec["source"] == "calibrated" else "set by --pace")
    floors = [f"{STAGES.info(n).title.split(':')[0].lower()} at least {STAGES.info(n).min_pace:g}×"
              for n in ordered_stages() if STAGES.info(n).min_pace > rec["pace"]]
    return (f" Pace {rec['pace']:g} ({how}): every training schedule of this quick study (steps, epochs, pretext "
            f"steps, the GAN's training images) is {rec['pace']:g}× the length written in the stages"
            + (f" ({'; '.join(floors)})" if floors else "") +
            f", so that the study fits ≈ {rec['target_seconds'] / 60:.0f} min; the section commands carry the scaled "
            f"settings. `mnistlab run --pace 1` runs the schedules as written.")


def write_report(out: Path, sections: list[tuple[Section, Path]], *, title: str, pace: dict | None = None) -> Path:
    """`out`/report.html from [(section, its folder)]; `pace`: the study's pace.json record (quick budget)."""
    page = render_report(sections, title=title,
                         intro="Every section states the command that reproduces it, its seeds and its time. "
                               "No checkpoint or threshold was chosen on a test set. One recipe choice made before runs "
                               "had a validation measure is not yet re-selected: the 15 epochs of the Fashion-MNIST "
                               "FreeMatch recipe (docs/protocol.md). The three others were re-selected without the "
                               "test set (MNIST on the unlabelled pool, the Fashion-MNIST supervised recipe on "
                               "validation) and kept."
                               + pace_note(pace or {}))
    fileio.write_text(out / "report.html", page)
    return out / "report.html"


def rebuild_report(runs: list[Path], *, out: str | Path | None = None, title: str = "mnistlab report") -> Path:
    """report.html from existing study or run folders, no training; in `out` (default: the first folder)."""
    out = Path(out) if out else runs[0]
    pace = None
    if len(runs) == 1 and (runs[0] / "pace.json").exists():  # one study folder: its pace is part of its story
        try:
            pace = fileio.read_json(runs[0] / "pace.json")
        except MnistlabError:
            pace = None  # unreadable: the report is still worth rebuilding, without that sentence
    return write_report(out if out.is_dir() or not out.suffix else out.parent, collect_sections(runs), title=title,
                        pace=pace)


def default_out(budget: str) -> Path:
    """runs/study for the default quick budget, runs/study-smoke and runs/study-full beside it: one study a folder."""
    return Path("runs/study" if budget == "quick" else f"runs/study-{budget}")


def study_report(out: str | Path | None, *, budget: str, **kw) -> Path:
    """`mnistlab run`: the study's stages (`run_study` keywords), then its report → report.html. Failed stages are
    an error after the report is written (their sections say why)."""
    out = resolve_out(out, default_out(budget))
    secs, pace = pipeline.run_study(out, budget=budget, **kw)
    path = write_report(out, [(s, out / s["id"]) for s in secs], title=f"mnistlab study ({budget} budget)", pace=pace)
    if failed := [s["id"] for s in secs if s["status"] == "failed"]:
        raise MnistlabError(f"stages failed: {', '.join(failed)} (see their sections and error.txt); "
                            f"the report was written to {path}")
    return path
