"""Every user error of the CLI contract: one line on stderr, `mnistlab: error: …`, a non-zero exit, no traceback."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

SMOKE = ["--budget", "smoke", "--threads", "1"]


def _one_line(code, out, err, *needles):
    assert code == 2, (code, err)
    assert err.startswith("mnistlab: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and out == ""
    for n in needles:
        assert n in err, (n, err)


@pytest.mark.parametrize("argv,needles", [
    (["supervised", "--dataset", "nope", *SMOKE], ["unknown dataset 'nope'", "valid: ", "fashion-mnist"]),
    (["data", "show", "--dataset", "nope", "--out", "x.png"], ["unknown dataset 'nope'"]),
    (["supervised", "--model", "resnet9000", *SMOKE], ["unknown model 'resnet9000'", "cnn-small"]),
    (["fewlabel", "--method", "nope", *SMOKE], ["unknown few-label method 'nope'", "valid: "]),
    (["nope"], ["invalid choice: 'nope'"]),
    (["supervised", "--budget", "huge"], ["argument --budget: invalid choice: 'huge'"]),
    (["supervised", "--epochs", "abc"], ["argument --epochs: invalid float value: 'abc'"]),
    (["supervised", "--precision", "fp8"], ["argument --precision: invalid choice"]),
    (["supervised", *SMOKE, "--set", "epochs=abc"], ["bad value 'abc' for epochs (expected float)"]),
    (["supervised", *SMOKE, "--set", "nokey=1"], ["unknown setting 'nokey'", "valid: "]),
    (["supervised", *SMOKE, "--set", "lonely"], ["--set expects key=value, got 'lonely'"]),
    (["supervised", *SMOKE, "--lr", "nan"], ["bad value nan for lr"]),
    (["supervised", *SMOKE, "--epochs", "-1"], ["epochs must be > 0, got -1.0"]),
    (["supervised", *SMOKE, "--batch-size", "0"], ["batch_size must be > 0"]),
    (["supervised", *SMOKE, "--set", "train_subset=-5"], ["train_subset must be ≥ 0"]),
    (["supervised", *SMOKE, "--resume"], ["--resume needs --out DIR"]),
    (["supervised", "--model", "mlp", *SMOKE, "--set", "width=48"],
     ["model 'mlp' has no option widths", "its options: hidden"]),
    (["supervised", *SMOKE, "--config", "/nonexistent/cfg.json"], ["config file /nonexistent/cfg.json not found"]),
    (["data", "show", "--n", "0", "--out", "x.png"], ["--n must be between 1 and 1024"]),
    (["data", "show", "--out", "x.jpg"], ["--out must be a .png file"]),
    (["predict", "--images", "x.npy"], ["the following arguments are required: --run"]),
])
def test_user_errors(cli, argv, needles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default run folders go under ./runs: keep them out of the checkout
    _one_line(*cli(*argv), *needles)
    assert not (tmp_path / "runs").exists()  # a bad name or value fails before any run folder is made


def test_bad_config_files(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    _one_line(*cli("supervised", *SMOKE, "--config", bad), f"config file {bad}: not valid JSON")
    bad.write_text("[1, 2]")
    _one_line(*cli("supervised", *SMOKE, "--config", bad), "expected a JSON object")
    bad.write_text(json.dumps({"budget": "huge"}))
    _one_line(*cli("supervised", *SMOKE, "--config", bad), "unknown budget 'huge'; valid: smoke, quick, full")
    bad.write_text(json.dumps({"precision": "fp8"}))
    _one_line(*cli("supervised", *SMOKE, "--config", bad), "unknown precision 'fp8'")


def test_out_pointing_at_a_file_or_a_foreign_folder(cli, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("not a folder")
    _one_line(*cli("supervised", *SMOKE, "--out", f), f"--out {f} is a file, not a folder")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    _one_line(*cli("supervised", *SMOKE, "--out", foreign), "non-empty folder that is not a run folder")
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]  # nothing written into it


@pytest.mark.slow
def test_corrupt_checkpoint_on_resume(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("supervised", *SMOKE, "--lr", "1e30", "--out", out)  # diverges: leaves a checkpoint behind
    assert code == 2 and "loss became nan" in err and (out / "checkpoint.safetensors").exists()
    (out / "checkpoint.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    _one_line(*cli("supervised", *SMOKE, "--lr", "1e30", "--out", out, "--resume"),
              f"{out / 'checkpoint.safetensors'}: unreadable checkpoint", "delete it to start over")
    # another config in the same folder is refused rather than mixed
    _one_line(*cli("supervised", *SMOKE, "--lr", "0.01", "--out", out, "--resume"),
              "was started with another config (differs in lr)")


@pytest.mark.slow
def test_ctrl_c_message(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab", "supervised", *SMOKE, "--epochs", "20", "--out",
                             str(out)], env={**os.environ, "MNISTLAB_QUIET": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # a shell's background jobs ignore SIGINT, and children inherit that: restore the default
                            # so that Python installs its KeyboardInterrupt handler, as in a terminal
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / "metrics.jsonl").exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip() == "mnistlab: interrupted; finished artefacts are kept, `--resume` continues a training run"
    assert (out / "checkpoint.safetensors").exists() and not (out / "metrics.json").exists()
    assert not list(out.glob(".*.tmp"))  # no half-written file


def test_a_temp_file_orphaned_by_an_interrupt_is_removed_at_exit(tmp_path):
    """A Ctrl-C between the temp file's creation and the `with` body escapes every `except`: the exit sweep removes
    what is left, so no half-written file survives the process."""
    from mnistlab import fileio

    cm = fileio.atomic_path(tmp_path / "x.json")
    tmp = cm.__enter__()  # the interrupt lands here: the body never runs, __exit__ is never called
    assert tmp.exists() and tmp in fileio._PENDING
    fileio._remove_pending()  # what atexit runs
    assert not tmp.exists() and not (tmp_path / "x.json").exists()
    fileio.write_json(tmp_path / "y.json", {"a": 1})  # a finished write leaves nothing pending
    assert tmp_path.joinpath("y.json").exists() and not any(p.parent == tmp_path and p != tmp
                                                           for p in fileio._PENDING)
