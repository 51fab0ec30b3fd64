"""`mnistlab run`: the study as ordered stages, each writing a section of the HTML report into its own folder.

A stage is a function `stage(ctx) -> Section` (see `report.html`), one file each, registered with a `StageInfo`: its
title, a time estimate per budget (seconds on the reference machine of `_pace.py`), the share of its quick time a
pace does not shorten (`fixed`) and optionally the lowest pace it accepts (`min_pace`). `ORDER` lists the stages in
report order. Stages call `api` functions with typed settings, with `resume=True`, so a stage killed half-way
continues its finished runs. A finished stage is reused while its key (stage, budget, pace, code
version) is unchanged and the stages it uses are as they were then (a GAN section scored while the classification
stage had failed is scored again once it succeeds); `--force` recomputes. The `quick` budget is sized to the machine by a pace (`_pace.py`).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistlab import fileio
from mnistlab.errors import MnistlabError
from mnistlab.pipeline import _pace
from mnistlab.pipeline._sections import run_folder_section
from mnistlab.precision import resolve_device
from mnistlab.registry import Info, Registry
from mnistlab.runs import cpu_name


@dataclass(frozen=True)
class StageInfo(Info):
    """What a stage registers beside its function."""

    title: str
    estimate: dict[str, float] = field(default_factory=dict)  # budget → seconds on `_pace.REFERENCE`'s machine
    fixed: float = 0.2  # share of its quick time that a pace does not shorten (data loading, evaluation…)
    min_pace: float = 0.0  # the lowest pace it accepts (the headline keeps a schedule worth showing)
    uses: tuple[str, ...] = ()  # stages whose folders it reads (a change of theirs recomputes it)


STAGES: Registry = Registry("stage", "mnistlab.pipeline", info=StageInfo)
# the report's order; a registered stage missing here runs after these, by name
ORDER = ["data", "seed-report", "ssl", "classification", "detector", "gan", "fashion"]


def code_version() -> str:
    """Hash of the package's source: a change of code invalidates cached stages."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class Context:
    """What a stage gets: its folder, the budget, the pace, the device its trainings run on, and the stage folders
    it may read."""

    dir: Path
    budget: str
    study_dir: Path
    pace: float = 1.0  # quick only: the share of the written training schedules this machine runs (see _pace.py)
    uses: tuple[str, ...] = ()  # the stages this one may read (its registered `uses`)
    device: str = "auto"  # `mnistlab run --device`: every training of the stage runs there

    def settings(self, table: dict[str, dict[str, Any]], paced: tuple[str, ...] = _pace.PACED) -> dict[str, Any]:
        """This budget's config fields from a stage's {budget: {field: value}} table, at the study's pace.

        `mnistlab run --budget quick` must show every section in ≤ 30 min, so its stages train shorter than the
        commands' own `quick` budgets, and at the study's pace (the `PACED` fields scaled). A device other than auto
        is one more field, so the section's command line (`sets`) names it too.
        """
        out = {k: _pace.scale(k, v, self.pace, paced) for k, v in table.get(self.budget, {}).items()}
        return {**out, "device": self.device} if self.device != "auto" else out

    def sets(self, table: dict[str, dict[str, Any]], paced: tuple[str, ...] = _pace.PACED) -> list[str]:
        """The same settings as `--set key=value` flags: the section's command line, which reproduces it."""
        return [a for k, v in self.settings(table, paced).items() for a in ("--set", f"{k}={v}")]

    def rel(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.dir.resolve()))

    def stage_dir(self, name: str) -> Path:
        """Another stage's folder (for reuse of its runs, e.g. the classifier for the GAN's metrics). Only a stage
        declared in `uses`: the cache must know what a section was built on."""
        if name not in self.uses:
            raise RuntimeError(f"stage {self.dir.name!r} reads stage {name!r} without declaring it in `uses`")
        return self.study_dir / name


def stage_key(name: str, budget: str, pace: float = 1.0, device: str = "auto") -> str:
    """A stage's cache key; a device given by name (not auto) is part of it: its numbers are that device's."""
    parts = [name, budget, pace, code_version()] + ([device] if device != "auto" else [])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def finished_key(study_dir: Path, name: str) -> str | None:
    """The key of stage `name` if it finished ok in this study, else None: what a stage using it was built on."""
    d = study_dir / name
    try:
        sec = fileio.read_json(d / "section.json")
        return (d / "stage.key").read_text() if isinstance(sec, dict) and sec.get("status") == "ok" else None
    except (MnistlabError, OSError):
        return None


def ordered_stages() -> list[str]:
    names = STAGES.names()
    return [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]


def run_stage(name: str, *, study_dir: Path, budget: str, force: bool, pace: float = 1.0,
              device: str = "auto") -> dict:
    """Run (or reuse) one stage; never raises for the stage's own failure — it becomes a 'failed' section."""
    d = study_dir / name
    key = stage_key(name, budget, _pace.stage_pace(STAGES.info(name), pace), device)
    key_file, sec_file = d / "stage.key", d / "section.json"
    info = STAGES.info(name)
    uses = {u: finished_key(study_dir, u) for u in info.uses}
    if not force and sec_file.exists() and key_file.exists() and key_file.read_text() == key:
        try:
            sec = fileio.read_json(sec_file)
        except MnistlabError:
            sec = None  # unreadable: the stage counts as not finished and runs again
        if isinstance(sec, dict) and sec.get("status") == "ok" and sec.get("uses", {}) == uses:
            return sec
    if d.exists() and (force or not key_file.exists() or key_file.read_text() != key):
        shutil.rmtree(d)  # other code or budget: its half-done runs are not ours to resume
    # (the same key with other `uses`: the runs are ours, and `--resume` reuses the finished ones)
    d.mkdir(parents=True, exist_ok=True)
    fileio.write_text(key_file, key)
    t0 = time.time()
    try:
        sec = STAGES.get(name)(Context(d, budget, study_dir, _pace.stage_pace(info, pace), tuple(uses), device))
        sec.setdefault("status", "ok")
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a stage's failure is reported in its section; the study goes on
        msg = str(e) if isinstance(e, MnistlabError) else f"{type(e).__name__}: {e}"
        try:  # the traceback is a courtesy: when the disk is full, the section below still says what failed
            fileio.write_text(d / "error.txt", traceback.format_exc())
        except MnistlabError:
            pass
        sec = {"status": "failed", "message": msg.splitlines()[0] if msg else type(e).__name__}
    sec = {"id": name, "title": info.title, "seconds": round(time.time() - t0, 1), **sec}
    if uses:
        sec["uses"] = uses
    fileio.write_json(sec_file, sec)
    return sec


def claim_study(out: Path, *, budget: str, force: bool) -> None:
    """A study folder holds one budget (`study.json`): another budget would void, and so delete, its stages."""
    path = out / "study.json"
    try:
        held = fileio.read_json(path).get("budget") if path.exists() else None
    except (MnistlabError, AttributeError):
        held = None  # unreadable: nothing to protect that the stage keys would not already refuse
    if held not in (None, budget) and not force:
        raise MnistlabError(f"{out} holds a {held}-budget study, which a {budget} study would replace; use another "
                            f"--out (the default is per budget), or --force to replace it")
    if held != budget:
        fileio.write_json(path, {"budget": budget})


def study_pace(out: Path, *, budget: str, pace: float | None = None, force: bool = False) -> dict:
    """The study's pace record: reused from `out/pace.json` (a re-run keeps its cached stages), else calibrated on
    this machine (quick, `pace` None), else as given. smoke and full run their schedules as written: pace 1."""
    if budget != "quick":
        if pace not in (None, 1.0):
            raise MnistlabError(f"--pace applies to the quick budget, not {budget!r}")
        return {"pace": 1.0, "speed": 1.0, "source": f"{budget} budget: schedules as written"}
    path = out / "pace.json"
    if pace is None and not force and path.exists():
        try:
            rec = fileio.read_json(path)
            if rec.get("pace") in _pace.LEVELS and rec.get("speed", 0) > 0:
                return rec
        except MnistlabError:
            pass  # unreadable: measure again
    step = _pace.calibrate()
    speed = step / _pace.REFERENCE["step_seconds"]
    infos = [STAGES.info(n) for n in ordered_stages()]  # the whole study's, whichever stages this call runs
    chosen = pace if pace is not None else _pace.choose_pace(infos, speed=speed)
    rec = {"pace": chosen, "source": "--pace" if pace is not None else "calibrated", "speed": round(speed, 3),
           "step_seconds": round(step, 4), "reference": _pace.REFERENCE, "target_seconds": _pace.TARGET_SECONDS,
           "predicted_seconds": round(sum(_pace.predicted_seconds(infos, budget=budget, pace=chosen, speed=speed))),
           "machine": cpu_name(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    fileio.write_json(path, rec)
    return rec


def run_study(out: Path, *, budget: str, force: bool = False, only: list[str] | None = None,
              pace: float | None = None, device: str = "auto") -> tuple[list[dict], dict]:
    """Run the stages in order, every training on `device` → (their sections, the pace record)."""
    resolve_device(device)  # an unknown or absent device: one line before any stage starts, not a failed section each
    names = [n for n in ordered_stages() if not only or n in only]
    if only and (unknown := set(only) - set(names)):
        raise MnistlabError(f"unknown stage {sorted(unknown)[0]!r}; valid: {', '.join(ordered_stages())}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistlabError(f"cannot create {out}: {e.strerror}") from None
    claim_study(out, budget=budget, force=force)
    # a run of some stages keeps the study's pace (re-measured, it could differ and void every other stage's cache)
    rec = study_pace(out, budget=budget, pace=pace, force=force and not only)
    infos = [STAGES.info(n) for n in names]
    if budget == "quick":
        full = sum(_pace.predicted_seconds(infos, budget=budget, pace=1.0, speed=rec["speed"]))
        say(_pace.pace_sentence(rec, full))
    predicted = dict(zip(names, _pace.predicted_seconds(infos, budget=budget, pace=rec["pace"], speed=rec["speed"])))
    sections, measured, expected, ratio = [], 0.0, 0.0, 1.0  # ratio: measured / predicted seconds so far
    remaining, t_start = sum(predicted.values()), time.time()
    for i, name in enumerate(names):
        say(f"[{i + 1}/{len(names)}] {infos[i].title} — about {_mins(remaining)} left "
            f"(elapsed {_mins(time.time() - t_start)})")
        t0 = time.time()
        sec = run_stage(name, study_dir=out, budget=budget, force=force, pace=rec["pace"], device=device)
        # this stage's share of the estimate shown, and the rest re-estimated from every stage computed so far
        took, planned = time.time() - t0, remaining * predicted[name] / (sum(predicted[n] for n in names[i:]) or 1)
        if took > 1.0:  # computed, not reused from the cache: it corrects the speed of the stages to come
            measured, expected = measured + took, expected + predicted[name]
            ratio = measured / expected
        remaining = _pace.next_remaining(remaining, planned, took, ratio * sum(predicted[n] for n in names[i + 1:]))
        say(f"    {sec['status']} in {_mins(took)}" + (f": {sec.get('message', '')}" if sec["status"] != "ok" else ""))
        sections.append(sec)
    return sections, rec


def say(line: str) -> None:
    """A progress line on stderr (stdout carries the report's path)."""
    print(line, file=sys.stderr, flush=True)


def _mins(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def read_section(path: Path) -> dict:
    """A stage's section.json, which the report renders: an object with at least its id and title."""
    sec = fileio.read_json(path)
    if not (isinstance(sec.get("id"), str) and isinstance(sec.get("title"), str)):
        raise MnistlabError(f"{path}: not a report section (no id / title); rerun its stage")
    return sec


def collect_sections(paths: list[Path]) -> list[tuple[dict, Path]]:
    """Sections from study folders (their stage folders' section.json) or single run folders (a generic section)."""
    out: list[tuple[dict, Path]] = []
    for p in paths:
        p = Path(p)
        if not p.is_dir():
            raise MnistlabError(f"{p} is not a folder")
        if (p / "section.json").exists():
            out.append((read_section(p / "section.json"), p))
        elif (p / "metrics.json").exists() or (p / "config.json").exists():
            out.append((run_folder_section(p), p))
        else:
            subs = [s for s in sorted(p.iterdir()) if (s / "section.json").exists()]
            if not subs:
                raise MnistlabError(f"{p} holds neither a study nor a run folder")
            order = ordered_stages()
            subs.sort(key=lambda s: order.index(s.name) if s.name in order else len(order))
            out += [(read_section(s / "section.json"), s) for s in subs]
    return out
