"""kill -9 + `--resume` gives the numbers of an uninterrupted run for every kind of training loop, and every loop
that optimises on its own stops cleanly on a NaN loss (issue 26, item 2). The supervised case is in
test_train_loop.py; here: FixMatch (killed in the SSL stage and in the refine stage, with its EMA teacher and
distribution-alignment buffers in the checkpoint), RotNet (pretext + transfer), the detector and the GAN."""
import json
import os
import signal
import subprocess
import sys
import time
import types

import pytest
import torch

from mnistlab.errors import TrainingDiverged
from mnistlab.runs import checkpoint_meta

pytestmark = pytest.mark.slow

SSL = ["fewlabel", "--method", "fixmatch", "--budget", "smoke", "--threads", "1", "--set", "train_subset=1200",
       "--set", "test_subset=100", "--set", "ckpt_every=2", "--set", "eval_points=2", "--set", "curve_test_size=100",
       "--set", "bn_recalibrate=256", "--set", "refine_batch=32", "--set", "refine_epochs=0.4"]
CASES = {
    # (command, checkpoint file to watch): killed once it holds a step > 0 — mid-stage, with work to lose
    "fixmatch-ssl": (SSL, "checkpoint.safetensors"),
    "fixmatch-refine": (SSL, "refine1.safetensors"),
    "rotnet": (["fewlabel", "--method", "rotnet", "--budget", "smoke", "--threads", "1", "--set", "steps=12",
                "--set", "ckpt_every=2"], "checkpoint.safetensors"),
    "detector": (["detect", "train", "--budget", "smoke", "--threads", "1", "--no-lofo", "--set", "ckpt_every=2"],
                 "checkpoint.safetensors"),
    "gan": (["gan", "train", "--budget", "smoke", "--threads", "1", "--set", "ckpt_every=2"],
            "checkpoint.safetensors"),
}


def _env():
    return {**os.environ, "MNISTLAB_QUIET": "1", "PYTHONUNBUFFERED": "1"}


def numbers(run_dir):
    """metrics.jsonl + metrics.json without their timings (the only fields two runs of one config may differ in)."""
    def strip(d):
        return {k: v for k, v in d.items() if "seconds" not in k}
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [strip(r) for r in lines], strip(json.loads((run_dir / "metrics.json").read_text()))


def kill_mid_stage(args, cut, watch):
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab", *args, "--out", str(cut)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            try:
                if (cut / watch).exists() and checkpoint_meta(cut / watch)["step"] > 0:
                    break
            except Exception:  # noqa: BLE001  # read while being replaced: look again
                pass
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        err = proc.stderr.read().decode()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {err[-500:]}"
    assert not (cut / "metrics.json").exists()


@pytest.mark.parametrize("case", list(CASES))
def test_resume_after_kill9_gives_identical_metrics(case, cli, tmp_path):
    """rotnet uses the shared cached smoke pretext (made by the first run that needs it, killed or not: the watched
    checkpoint is the transfer stage's, so the kill lands after the pretext)."""
    args, watch = CASES[case]
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    kill_mid_stage(args, cut, watch)
    code, _, err = cli(*args, "--out", cut, "--resume")
    assert code == 0, err
    code, _, err = cli(*args, "--out", ref)
    assert code == 0, err
    assert numbers(cut) == numbers(ref)
    assert not list(cut.glob("*checkpoint*.safetensors")) and not list(cut.glob("refine*.safetensors"))
    assert json.loads((cut / "env.json").read_text())["resumed"]


# --------------------------------------------------------------------------------------- NaN, loop by loop
def test_nan_in_the_ssl_loss_stops_with_one_line(cli, tmp_path):
    code, _, err = cli(*SSL, "--lr", "1e30", "--out", tmp_path / "r")
    assert code == 2 and err.startswith("mnistlab: error: ") and "became nan" in err, err
    assert len(err.strip().splitlines()) == 1 and "last good checkpoint kept in" in err
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_nan_in_the_refine_loop_keeps_the_ssl_result(tmp_path, monkeypatch):
    from mnistlab import api
    from mnistlab.methods import _refine

    def nan_ce(*a, **k):
        return torch.nn.functional.cross_entropy(*a, **k) * float("nan")

    monkeypatch.setattr(_refine, "F", types.SimpleNamespace(cross_entropy=nan_ce))
    sets = dict(s.split("=") for s in SSL[SSL.index("--set") + 1::2])
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 0; last good checkpoint kept in .*refine1"):
        api.train("fixmatch", command="fewlabel", out=tmp_path / "r", budget="smoke", overrides=sets)
    assert checkpoint_meta(tmp_path / "r" / "checkpoint.safetensors")["step"] > 0  # the SSL stage's, kept
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_nan_in_the_gan_step_stops_with_the_last_checkpoint(cli, tmp_path, monkeypatch):
    from mnistlab.methods import gan

    real = gan.gan_step
    calls = []

    def step(*a, **k):
        out = real(*a, **k)
        calls.append(1)
        return {**out, "loss_d": out["loss_d"] * float("nan")} if len(calls) > 5 else out

    monkeypatch.setattr(gan, "gan_step", step)
    code, _, err = cli("gan", "train", "--budget", "smoke", "--threads", "1", "--set", "ckpt_every=2",
                       "--out", tmp_path / "g")
    assert code == 2 and err.startswith("mnistlab: error: loss_d became nan at step 5;"), err
    assert len(err.strip().splitlines()) == 1 and "last good checkpoint kept in" in err
    assert checkpoint_meta(tmp_path / "g" / "checkpoint.safetensors")["step"] == 4
