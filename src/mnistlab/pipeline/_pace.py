"""The `quick` study sized to the machine: time a few training steps, shorten the training schedules to fit.

The stages' `quick` schedules were written for a CPU with bf16 hardware, where the whole study takes ≈ 18 min; an
AVX2-only CPU of the same core count needs ≈ 66 min for the same work. So before a `quick` study, `calibrate()` times
a few training steps of the `cnn` model (≈ 6 s) and compares them with the same measurement on the reference machine,
where every stage's `estimate` (seconds at pace 1) was measured. The pace is the largest of `LEVELS` whose predicted
study time fits `TARGET_SECONDS`; every `PACED` field of a stage's `quick` settings (steps, epochs, pretext steps,
GAN training subset) is multiplied by it. The pace is a property of the study, not of one stage: it is written to
`pace.json`, in the section commands' `--set` flags and in the stage keys, and a re-run of the same folder reuses it,
so a resumed study keeps its cached stages. `--pace 1` restores the schedules as written, `--pace X` pins any level:
then the same seeds give the same numbers on any machine of the same kind.
"""
from __future__ import annotations

from typing import Any

from mnistlab.errors import MnistlabError
from mnistlab.train import calibrate  # noqa: F401 (the study's clock; patched by tests here)

LEVELS = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15)  # the paces a study may get: few, so that similar machines agree
# the study issue's 30 min, less 1.5 min for set-up and the report; the AVX2 reference sits at the lowest level
# and at this edge (docs/performance.md)
TARGET_SECONDS = 28.5 * 60
# `calibrate()` at the start of the study whose stage times are the stages' quick estimates (with the pace-1 times of
# the same machine for the share a pace does not shorten): AMD EPYC (AVX2 + FMA, no bf16), 2 idle threads, fp32
# (benchmarks/results/run-quick-epyc-paced.md). Other calibrations of that machine gave 0.55–0.65 s
REFERENCE = {"step_seconds": 0.554, "machine": "AMD EPYC (AVX2, no bf16), 2 threads, fp32"}
# settings a pace scales by default; everything else (model, batch, labels, evaluation) is unchanged. The GAN stage
# scales its training subset instead of its epochs, to keep a grid per epoch
PACED = ("steps", "epochs", "lofo_epochs", "pretext_steps")
FRACTIONAL = ("epochs", "lofo_epochs")  # float fields: 3 epochs at pace 0.25 are 0.75, not a rounded 1


def stage_pace(info: dict, pace: float) -> float:
    """A stage's own pace: the study's, but never below the stage's `min_pace` (the headline keeps a real schedule)."""
    return max(pace, info.get("min_pace", 0.0))


def predicted_seconds(infos: list[dict], *, budget: str, pace: float, speed: float) -> list[float]:
    """Each stage's predicted seconds: its reference estimate × `speed` (this machine's step time over the
    reference's), the part of it that `fixed` does not name scaled by the stage's pace (quick only)."""
    out = []
    for info in infos:
        est = info["estimate"].get(budget, 60)
        if budget == "quick":
            f = info.get("fixed", 0.2)
            est *= f + (1 - f) * stage_pace(info, pace)
        out.append(est * speed)
    return out


def choose_pace(infos: list[dict], *, speed: float, target: float = TARGET_SECONDS) -> float:
    """The largest level whose predicted `quick` study fits `target` seconds (the smallest level if none does)."""
    for level in LEVELS:
        if sum(predicted_seconds(infos, budget="quick", pace=level, speed=speed)) <= target:
            return level
    return LEVELS[-1]


def scale(key: str, value: Any, pace: float, paced: tuple[str, ...] = PACED) -> Any:
    """One setting at this pace: counts stay ints (≥ 1), `FRACTIONAL` fields keep 3 decimals; other keys and pace 1
    unchanged."""
    if pace == 1 or key not in paced or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if key in FRACTIONAL or isinstance(value, float):
        return round(value * pace, 3)
    return max(1, round(value * pace))


def pace_sentence(rec: dict, full_seconds: float) -> str:
    """What the pace means for this study: the step time here, the full schedules' predicted time and the pace that fits
    the target (`rec`: the pace record; `full_seconds`: the study predicted at pace 1 on this machine)."""
    step = f"{rec['step_seconds']:.2f} s a step" if rec.get("step_seconds") else f"{rec['speed']:.2f}× the reference step"
    if rec["pace"] == 1:
        return f"this CPU: {step}; the full schedules should take ≈ {full_seconds / 60:.0f} min: running them as written"
    return (f"this CPU: {step}; the full schedules would take ≈ {full_seconds / 60:.0f} min; running them at "
            f"{rec['pace']:g}× to fit ≈ {TARGET_SECONDS / 60:.1f} min (`--pace 1` for the full ones; pace.json)")


def next_remaining(remaining: float, planned: float, actual: float, corrected: float) -> float:
    """The remaining-time estimate after a stage, in seconds: `corrected` (the rest re-estimated from every stage so
    far), but moved at most the last stage's error |actual − planned| away from `remaining − planned` (what the old
    estimate expected to remain), so that it converges without jumps."""
    base, err = remaining - planned, abs(actual - planned)
    return max(0.0, min(max(corrected, base - err), base + err))


def parse_pace(text: str | None) -> float | None:
    """`--pace auto|X` → None (calibrate) or one of `LEVELS`."""
    if text is None or text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value not in LEVELS:
        raise MnistlabError(f"bad --pace {text!r}; valid: auto, {', '.join(f'{v:g}' for v in LEVELS)}")
    return value
