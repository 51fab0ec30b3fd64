"""The quick study's pace: calibration, the level chosen, what it scales, and that a study folder keeps its pace."""
import json

import pytest

from mnistlab.errors import MnistlabError
from mnistlab.pipeline import Context, _pace, stage_key, study_pace


def test_scale_touches_only_paced_settings(tmp_path):
    ctx = Context(tmp_path, "quick", tmp_path, pace=0.4)
    table = {"quick": {"steps": 1000, "epochs": 1.5, "lr": 0.1, "augment": True, "pretext_steps": 2, "lofo_epochs": 3}}
    assert ctx.sets(table) == ["--set", "steps=400", "--set", "epochs=0.6", "--set", "lr=0.1",
                               "--set", "augment=True", "--set", "pretext_steps=1",  # counts stay ≥ 1
                               "--set", "lofo_epochs=1.2"]  # epochs written as an int are still fractional
    gan = {"quick": {"epochs": 2, "train_subset": 60000}}
    assert ctx.sets(gan, ("train_subset",)) == ["--set", "epochs=2", "--set", "train_subset=24000"]
    assert Context(tmp_path, "quick", tmp_path).sets(table)[:2] == ["--set", "steps=1000"]  # pace 1: as written


def test_choose_pace_fits_the_target():
    infos = [{"estimate": {"quick": 900}, "fixed": 0.0}, {"estimate": {"quick": 100}, "fixed": 1.0}]
    assert _pace.choose_pace(infos, speed=1.0, target=1000) == 1.0
    # at 3× slower: 2700 p + 300 ≤ 1620 → p ≤ 0.49 → 0.4 (the largest level that fits)
    assert _pace.choose_pace(infos, speed=3.0, target=1620) == 0.4
    assert _pace.choose_pace(infos, speed=100.0, target=1620) == _pace.LEVELS[-1]  # nothing fits: the floor
    sec = _pace.predicted_seconds(infos, budget="quick", pace=0.5, speed=2.0)
    assert sec == [900.0, 200.0]
    assert _pace.predicted_seconds(infos, budget="smoke", pace=0.5, speed=2.0) == [120, 120]  # default 60 s each


def test_calibrate_times_real_steps():
    t = _pace.calibrate(steps=1, warmup=1, batch=8)
    assert 0 < t < 30


def test_study_pace_is_measured_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(_pace, "calibrate", lambda: _pace.REFERENCE["step_seconds"])  # the reference machine
    rec = study_pace(tmp_path, budget="quick")
    assert rec["source"] == "calibrated" and rec["speed"] == 1.0 and rec["pace"] in _pace.LEVELS
    assert rec["pace"] < 1 and rec["predicted_seconds"] <= _pace.TARGET_SECONDS
    assert json.loads((tmp_path / "pace.json").read_text())["pace"] == rec["pace"]

    def fail():
        raise AssertionError("a study folder with a pace must not re-measure")

    monkeypatch.setattr(_pace, "calibrate", fail)
    assert study_pace(tmp_path, budget="quick")["pace"] == rec["pace"]  # resume: same pace, same stage keys
    monkeypatch.setattr(_pace, "calibrate", lambda: 0.25 * _pace.REFERENCE["step_seconds"])
    assert study_pace(tmp_path, budget="quick", pace=0.5)["pace"] == 0.5  # pinned
    assert study_pace(tmp_path, budget="quick", force=True)["pace"] == 1.0  # re-measured: a fast machine
    (tmp_path / "pace.json").write_text("{not json")
    assert study_pace(tmp_path, budget="quick")["source"] == "calibrated"  # unreadable: measured again
    assert study_pace(tmp_path, budget="smoke") == {"pace": 1.0, "speed": 1.0,
                                                    "source": "smoke budget: schedules as written"}
    with pytest.raises(MnistlabError, match="quick budget"):
        study_pace(tmp_path, budget="full", pace=0.5)


def test_stage_key_depends_on_pace():
    assert stage_key("ssl", "quick", 1.0) != stage_key("ssl", "quick", 0.5)


@pytest.mark.parametrize("text", ["0.37", "fast", "0", "nan"])
def test_bad_pace_is_a_one_line_error(cli, tmp_path, text):
    code, _, err = cli("run", "--budget", "quick", "--pace", text, "--out", tmp_path)
    assert code == 2 and "bad --pace" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pace.json").exists()


def test_pace_with_another_budget_is_refused(cli, tmp_path):
    code, _, err = cli("run", "--budget", "smoke", "--pace", "0.5", "--out", tmp_path)
    assert code == 2 and "--pace applies to the quick budget" in err


def test_remaining_time_corrects_itself_without_jumps():
    # 5 stages predicted 100 s each, on a machine where every stage really takes 200 s
    predicted, actual = [100.0] * 5, [200.0] * 5
    remaining, ratio, measured, expected, shown = sum(predicted), 1.0, 0.0, 0.0, [sum(predicted)]
    for i, (p, t) in enumerate(zip(predicted, actual)):
        planned = remaining * p / sum(predicted[i:])  # the stage's share of the estimate shown (as run_study does)
        measured, expected = measured + t, expected + p
        ratio = measured / expected
        new = _pace.next_remaining(remaining, planned, t, ratio * sum(predicted[i + 1:]))
        # the estimate never moves further from "old estimate − this stage's share" than this stage's error
        assert abs(new - (remaining - planned)) <= abs(t - planned) + 1e-9
        remaining = new
        shown.append(remaining)
    assert shown[-1] == 0.0
    truth = [sum(actual[i:]) for i in range(len(actual))] + [0.0]
    assert shown == [500.0, 500.0, 450.0, 350.0, 200.0, 0.0]  # truth: 1000, 800, 600, 400, 200, 0
    assert [abs(s - t) for s, t in zip(shown, truth)] == [500.0, 300.0, 150.0, 50.0, 0.0, 0.0]  # converging
    assert _pace.next_remaining(300.0, 100.0, 0.2, 200.0) == 200.0  # a cached stage: its share drops, nothing else


def test_pace_sentence_says_what_the_pace_means():
    rec = {"pace": 0.4, "speed": 1.5, "step_seconds": 0.83}
    line = _pace.pace_sentence(rec, full_seconds=66 * 60)
    assert line.startswith("this CPU: 0.83 s a step; the full schedules would take ≈ 66 min; running them at 0.4×")
    assert "--pace 1" in line
    assert "as written" in _pace.pace_sentence({"pace": 1.0, "speed": 0.5, "step_seconds": 0.3}, 600)


def test_a_finished_run_is_one_line():
    from mnistlab.report.summaries import finished_line

    line = finished_line("fewlabel fixmatch", "runs/x", {"test_accuracy": 0.98123, "wall_seconds": 138.0, "loss": 1})
    assert line == "done  fewlabel fixmatch: test_accuracy 98.12 % in 2.3 min  (runs/x)"
    assert finished_line("gan gan", "g", {"mnist_score": 9.61, "wall_seconds": 5}) == "done  gan gan: mnist_score 9.610 in 5 s  (g)"
