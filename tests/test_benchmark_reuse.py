"""Benchmark drivers reuse a finished run folder only when the code that made it is this code (issue 26, item 3)."""
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import _machine  # noqa: E402

NOW = {"git_sha": "a" * 40, "git_dirty": False, "source": "0123456789abcdef"}


def finished(d: Path, *, env: dict, code: dict | None = None) -> Path:
    d.mkdir(parents=True)
    (d / "metrics.json").write_text('{"test_accuracy": 0.99}')
    (d / "env.json").write_text(json.dumps(env))
    if code is not None:
        (d / _machine.CODE_FILE).write_text(json.dumps(code))
    return d


def test_a_finished_run_of_this_code_is_reused(tmp_path):
    a = finished(tmp_path / "a", env={"git_sha": "b" * 40, "git_dirty": True}, code=NOW)  # the record wins
    b = finished(tmp_path / "b", env={"git_sha": "a" * 40, "git_dirty": False})  # no record: clean, same sha
    for d in (a, b, tmp_path / "not-started"):
        _machine.check_reuse(d, rerun=False, now=NOW)
    assert a.exists() and b.exists()


@pytest.mark.parametrize("env,code,words", [
    ({"git_sha": "a" * 40}, {**NOW, "source": "ffffffffffffffff"}, "ran with source ffffffffffffffff"),
    ({"git_sha": "c" * 40, "git_dirty": False}, None, "ran at git ccccccc"),
    ({"git_sha": "a" * 40, "git_dirty": True}, None, "uncommitted changes"),
    ({"git_sha": "a" * 40, "resumed": [{"git_sha": "d" * 40}]}, None, "aaaaaaa→ddddddd"),
])
def test_a_finished_run_of_other_code_is_refused_or_rerun(tmp_path, env, code, words):
    d = finished(tmp_path / "r", env=env, code=code)
    with pytest.raises(SystemExit, match=words):
        _machine.check_reuse(d, rerun=False, now=NOW)
    assert (d / "metrics.json").exists()
    _machine.check_reuse(d, rerun=True, now=NOW)  # moved aside, kept: the run starts again in an empty place
    assert not d.exists() and (tmp_path / "r.stale-1" / "metrics.json").exists()


def test_fewlabel_report_only_refuses_flags_it_does_not_use_and_shows_each_runs_sha(tmp_path, monkeypatch, capsys):
    import fewlabel

    monkeypatch.setattr(sys, "argv", ["fewlabel.py", "--report-only", "--threads", "2", "--set", "steps=4",
                                      "--runs", str(tmp_path)])
    with pytest.raises(SystemExit) as e:
        fewlabel.main()
    assert e.value.code == 2 and "do nothing: --threads, --set" in capsys.readouterr().err

    d = finished(tmp_path / "r", env={"git_sha": "e" * 40, "git_dirty": False, "cpu": "x",
                                      "resumed": [{"git_sha": "f" * 40, "git_dirty": True}]})
    (d / "metrics.json").write_text(json.dumps({"labels": 100, "split_seed": 0, "test_accuracy": 0.99,
                                                "wall_seconds": 10.0, "method": "fixmatch", "dataset": "mnist"}))
    (d / "config.json").write_text("{}")
    assert fewlabel.collect_one(d)["git"] == "eeeeeee→fffffff-dirty"
