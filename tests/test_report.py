"""`mnistlab run` / `mnistlab report`: sections, caching, resume after a kill, and the page in a real browser."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from mnistlab.report.html import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _png(path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.imshow(np.eye(4))
    fig.savefig(path)
    plt.close(fig)


def browser_check(page: Path) -> dict:
    """Open the page in headless Chromium; read back what its load-time check found."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
           f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    body = dom[dom.index("<body"): dom.index(">", dom.index("<body"))]
    attrs = dict(a.split("=", 1) for a in body.split()[1:])
    return {k: int(v.strip('"')) for k, v in attrs.items()}


def test_render_report_embeds_and_escapes(tmp_path):
    _png(tmp_path / "fig.png")
    sec = {"id": "s1", "title": "A <b>title</b>", "status": "ok", "command": "mnistlab x", "seeds": {"seed": 1},
           "seconds": 3.0, "paragraphs": ["p & q"], "figures": [{"path": "fig.png", "caption": "cap"}],
           "tables": [{"title": "t", "columns": ["a", "b"], "rows": [["x", 0.123456], ["y", float("nan")]]}]}
    page = render_report([(sec, tmp_path)], title="T")
    assert "data:image/png;base64," in page and "A &lt;b&gt;title&lt;/b&gt;" in page and "p &amp; q" in page
    assert "0.1235" in page and "<a href='#s1'>" in page and "mnistlab x" in page


def test_report_command_on_a_run_folder(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("supervised", "--budget", "smoke", "--out", run)[0] == 0
    code, out, err = cli("report", run, "--out", tmp_path)
    assert code == 0, err
    page = (tmp_path / "report.html").read_text()
    assert "test_accuracy" in page and page.count("data:image/png") >= 2
    code, _, err = cli("report", tmp_path / "missing")
    assert code == 2 and "not a folder" in err


def test_unknown_stage_is_an_error(cli, tmp_path):
    code, _, err = cli("run", "--budget", "smoke", "--stage", "nope", "--out", tmp_path)
    assert code == 2 and "unknown stage 'nope'" in err


def test_smoke_study_resumes_after_kill_and_renders(tmp_path):
    """Kill `mnistlab run` after its first stage, run it again: the finished stage is reused, the report complete."""
    out = tmp_path / "study"
    env = {**os.environ, "MNISTLAB_QUIET": "1"}
    cmd = [sys.executable, "-m", "mnistlab", "run", "--budget", "smoke", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    first = out / "data" / "section.json"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.exists(), "the first stage did not finish"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stamp = first.stat().st_mtime_ns
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert first.stat().st_mtime_ns == stamp, "the finished stage was recomputed"
    page = out / "report.html"
    html = page.read_text()
    from mnistlab.pipeline import ordered_stages

    for name in ordered_stages():
        sec = json.loads((out / name / "section.json").read_text())
        assert sec["status"] == "ok", (name, sec.get("message"))
        assert f"id='{name}'" in html
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: the in-browser check needs it")
    seen = browser_check(page)
    assert seen["data-sections"] == len(ordered_stages())
    assert seen["data-broken-images"] == 0 and seen["data-empty-sections"] == 0


def test_stage_overrides_are_real_config_fields(tmp_path):
    """`run --budget quick` shortens stages with `--set` flags: each must name a field of the config it reaches."""
    from dataclasses import fields

    from mnistlab.commands.fewlabel import default_method
    from mnistlab.methods import METHODS
    from mnistlab.pipeline import Context, classification, detector, fashion, gan, ssl

    def names(method):
        return {f.name for f in fields(METHODS.info(method)["config"])}

    tables = [(classification.SETS["cnn"], "supervised"), (classification.SETS["mlp"], "supervised"),
              (detector.SETS, "detector"), (fashion.SUP_SETS, "supervised"), (fashion.FEW_SETS, default_method()),
              (gan.SETS, "gan"), (ssl.SETS, default_method())]
    for table, method in tables:
        for budget, sets in table.items():
            assert sets and set(sets) <= names(method), (method, budget, sets)
    ctx = Context(tmp_path, "quick", tmp_path)
    assert ctx.sets({"quick": {"steps": 10, "lr": 0.1}}) == ["--set", "steps=10", "--set", "lr=0.1"]
    assert Context(tmp_path, "full", tmp_path).sets({"quick": {"steps": 10}}) == []
