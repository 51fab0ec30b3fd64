"""The training loop: kill -9 + --resume gives the same numbers, NaN stops cleanly, finished runs, DDP under torchrun."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from mnistlab.errors import MnistlabError, TrainingDiverged
from mnistlab.runs import Run
from mnistlab.train import Batcher, fit
from mnistlab.runs import checkpoint_meta

SMALL = ["--budget", "smoke", "--threads", "1", "--epochs", "3", "--set", "ckpt_every=2", "--set", "test_subset=200"]
TIMING = {"seconds", "wall_seconds"}  # the only fields allowed to differ between two runs of the same config


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """In-process runs with --threads change torch's global thread count: restore it for the tests that follow."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _env():
    return {**os.environ, "MNISTLAB_QUIET": "1", "PYTHONUNBUFFERED": "1"}


def _numbers(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    final = json.loads((run_dir / "metrics.json").read_text())
    strip = lambda d: {k: v for k, v in d.items() if k not in TIMING}  # noqa: E731
    return [strip(r) for r in lines], strip(final)


@pytest.mark.slow
def test_resume_after_kill9_gives_identical_metrics(cli, tmp_path):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab", "supervised", *SMALL, "--out", str(cut)],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        # kill once the first evaluation is logged and a later checkpoint exists: mid-training, with work to lose
        while time.time() < deadline and proc.poll() is None:
            log = cut / "metrics.jsonl"
            if log.exists() and log.read_text().count("\n") >= 1 and (cut / "checkpoint.safetensors").exists():
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (cut / "metrics.json").exists()
    assert 0 < checkpoint_meta(cut / "checkpoint.safetensors")["step"] < 24

    code, _, err = cli("supervised", *SMALL, "--out", cut, "--resume")
    assert code == 0, err
    code, _, err = cli("supervised", *SMALL, "--out", ref)
    assert code == 0, err
    assert _numbers(cut) == _numbers(ref)
    assert len(_numbers(ref)[0]) == 3  # one line per epoch, none duplicated by the replay
    assert not (cut / "checkpoint.safetensors").exists()
    assert json.loads((cut / "env.json").read_text())["resumed"]  # the record says it was continued
    # --resume on a finished run: its metrics, without training again
    stamp = (ref / "model.safetensors").stat().st_mtime_ns
    code, out, _ = cli("supervised", *SMALL, "--out", ref, "--resume", "--json")
    assert code == 0 and {k: v for k, v in json.loads(out).items() if k != "run"} == \
        json.loads((ref / "metrics.json").read_text())
    assert (ref / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_nan_loss_stops_cli_with_clear_error(cli, tmp_path):
    code, _, err = cli("supervised", "--budget", "smoke", "--threads", "1", "--lr", "1e30", "--out", tmp_path / "r")
    assert code != 0
    assert err.startswith("mnistlab: error: loss became nan at step") and len(err.strip().splitlines()) == 1
    assert "last good checkpoint kept in" in err and (tmp_path / "r" / "checkpoint.safetensors").exists()
    assert not (tmp_path / "r" / "metrics.json").exists()


# ------------------------------------------------------------------------------------------------ fit, in-process
class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)

    def forward(self, x):
        return self.bn(self.lin(x))


X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()


def _fit(run, *, resume=False, total=12, fail_at=None, nan_at=None, ckpt_name="checkpoint.safetensors", seed=0):
    torch.manual_seed(seed)
    model = _Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    batcher = Batcher(len(Y), 16, seed=seed)

    def loss_fn(batch, step):
        if step == fail_at:
            raise KeyboardInterrupt
        idx = batch
        loss = torch.nn.functional.cross_entropy(model(X[idx]), Y[idx])
        if step == nan_at:
            loss = loss * float("nan")
        return {"loss": loss}

    hist = fit(model, opt, run=run, total_steps=total, batch_at=batcher, loss_fn=loss_fn, eval_every=4, ckpt_every=2,
               resume=resume, ckpt_name=ckpt_name, evaluate=lambda s: {"w": float(model.lin.weight.sum())},
               lr_at=lambda s: 1 - s / total)
    return hist, model


def _two_stages(run, *, resume=False, fail_at=None):
    h1, _ = _fit(run, resume=resume, ckpt_name="ckpt_a.safetensors", seed=1)
    h2, m = _fit(run, resume=resume, fail_at=fail_at, ckpt_name="ckpt_b.safetensors", seed=2)
    return h1 + h2, m


def test_two_stage_resume_after_interrupt_matches(tmp_path):
    ref = Run(tmp_path / "ref")
    ref.start({"x": 1}, command="test")
    hist_ref, m_ref = _two_stages(ref)
    cut = Run(tmp_path / "cut")
    cut.start({"x": 1}, command="test")
    with pytest.raises(KeyboardInterrupt):
        _two_stages(cut, fail_at=7)  # stage 2 dies after its step-4 evaluation and step-6 checkpoint
    assert len(cut.read_log()) == 3 + 1
    again = Run(tmp_path / "cut", resume=True)
    again.start({"x": 1}, command="test")
    hist, m = _two_stages(again, resume=True)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(hist) == strip(hist_ref) and strip(again.read_log()) == strip(ref.read_log())
    assert len(again.read_log()) == 6
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m_ref.state_dict().values()))
    again.finish({})
    assert not list((tmp_path / "cut").glob("ckpt_*"))  # every stage's checkpoint is dropped when finished


def test_fresh_start_in_unfinished_folder_drops_stale_log(tmp_path):
    run = Run(tmp_path / "r")
    run.start({"x": 1}, command="test")
    with pytest.raises(KeyboardInterrupt):
        _fit(run, fail_at=9)
    assert len(run.read_log()) == 2
    run = Run(tmp_path / "r")  # no --resume: start over
    run.start({"x": 1}, command="test")
    _fit(run)
    assert [r["step"] for r in run.read_log()] == [4, 8, 12]


def test_nan_keeps_last_good_checkpoint(tmp_path):
    run = Run(tmp_path / "r")
    run.start({"nan_at": 5}, command="test")  # a run folder (config.json): one a resume may continue
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 5; last good checkpoint kept in .*checkp"):
        _fit(run, nan_at=5)
    assert checkpoint_meta(run.path("checkpoint.safetensors"))["step"] == 4
    # resuming from it replays the same steps (and diverges at the same place: it is deterministic)
    with pytest.raises(TrainingDiverged, match="at step 5"):
        _fit(Run(tmp_path / "r", resume=True), nan_at=5, resume=True)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    run = Run(tmp_path / "r")
    run.path("checkpoint.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(MnistlabError, match="unreadable checkpoint.*delete it to start over"):
        _fit(run, resume=True)
    # a checkpoint of another model
    other = Run(tmp_path / "o")
    torch.manual_seed(0)
    from mnistlab.runs import save_checkpoint

    save_checkpoint(other.path("checkpoint.safetensors"), torch.nn.Linear(2, 2), {},
                    {"step": 1, "history": [], "sums": {}, "count": 0, "train_seconds": 0.0})
    with pytest.raises(MnistlabError, match="does not fit this run"):
        _fit(other, resume=True)


def test_batcher_is_deterministic_and_splits_the_global_batch():
    b = Batcher(10, 4, seed=3)
    assert torch.equal(b(7), Batcher(10, 4, seed=3)(7))  # a function of (seed, step) only
    first = torch.cat([b(s) for s in range(5)])  # 20 = two epochs: each a permutation of 0..9
    assert sorted(first[:10].tolist()) == list(range(10)) and sorted(first[10:].tolist()) == list(range(10))
    shares = [Batcher(10, 4, seed=3, rank=r, world=2)(7) for r in range(2)]
    assert sorted(torch.cat(shares).tolist()) == sorted(b(7).tolist()) and len(shares[0]) == 2


# ------------------------------------------------------------------------------------------------ distributed
DDP = ["--budget", "smoke", "--threads", "1", "--set", "train_subset=2048", "--set", "test_subset=1000",
       "--epochs", "2", "--batch-size", "64", "--seed", "1", "--json"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(
    sys.executable), "torchrun")), reason="torchrun not installed")
def test_torchrun_two_processes_match_one(cli, tmp_path):
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "mnistlab", "supervised",
                           *DDP, "--out", str(tmp_path / "ddp")], env={**_env(), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 1  # rank 0 speaks, rank 1 does not
    two = json.loads(lines[0])
    code, out, err = cli("supervised", *DDP, "--out", tmp_path / "one")
    assert code == 0, err
    one = json.loads(out)
    assert two["steps"] == one["steps"] == 64 and two["train_images"] == 2048
    # same global batch, same number of steps, gradients averaged: the same accuracy within noise (~1.5 % at n=1000)
    assert one["test_accuracy"] > 0.5 and abs(two["test_accuracy"] - one["test_accuracy"]) < 0.06, (one, two)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def test_resume_accepts_a_setting_added_since_at_its_default(tmp_path):
    """A run interrupted before a new config field existed resumes when the field holds its default; a real change
    of setting is still refused."""
    import dataclasses

    from mnistlab.errors import MnistlabError
    from mnistlab.runs import Run

    @dataclasses.dataclass
    class Old:
        lr: float = 0.1

    @dataclasses.dataclass
    class New(Old):
        teacher_bn: str = "running"

    Run(tmp_path / "r").start(Old(), command="fewlabel")
    Run(tmp_path / "r", resume=True).start(New(), command="fewlabel")  # added field, at its default: fine
    with pytest.raises(MnistlabError, match="differs in teacher_bn"):
        Run(tmp_path / "r", resume=True).start(New(teacher_bn="batch"), command="fewlabel")


def test_resume_holds_an_old_run_to_what_it_did_when_the_new_default_differs(tmp_path):
    """FixMatch's `weak` / `tta` default to "auto", which on clothes is not what runs from before they existed did
    (warp, no mirror): such a run must not resume as a hybrid of two recipes, unless told the old settings."""
    import dataclasses

    from mnistlab.config import merge
    from mnistlab.errors import MnistlabError
    from mnistlab.methods.fixmatch import FixMatchConfig
    from mnistlab.runs import Run

    old = {k: v for k, v in dataclasses.asdict(FixMatchConfig()).items() if k not in ("weak", "tta")}
    Run(tmp_path / "r").start(old, command="fewlabel")  # config.json as written before the two settings
    with pytest.raises(MnistlabError, match="differs in tta, weak"):
        Run(tmp_path / "r", resume=True).start(FixMatchConfig(), command="fewlabel")
    Run(tmp_path / "r", resume=True).start(merge(FixMatchConfig, {"weak": "warp", "tta": "none"}), command="fewlabel")
