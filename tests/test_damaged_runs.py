"""Run folders damaged or foreign in the ways an audit found: every command that reads one ends in one line and a
non-zero exit (never a traceback, never a NaN answer), and nothing of the user's is overwritten or deleted."""
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mnistlab import fileio
from mnistlab.errors import MnistlabError

SMOKE = ["--budget", "smoke", "--threads", "1"]


def _one_line(code, out, err, *needles, exit_code=2):
    assert code == exit_code, (code, err)
    assert err.startswith("mnistlab: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


@pytest.fixture
def damaged(tmp_path, serve_classifier):
    """A fresh copy of the session's finished smoke classifier, and an image file to predict on."""
    run = tmp_path / "run"
    shutil.copytree(serve_classifier, run)
    imgs = tmp_path / "x.npy"
    np.save(imgs, np.zeros((2, 28, 28), np.uint8))
    return run, imgs


def test_resume_never_takes_over_a_folder_that_is_not_a_run(cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    files = {"checkpoint-best.safetensors": b"precious", "metrics.jsonl": b"my log", "model.safetensors": b"mine"}
    for name, data in files.items():
        (mine / name).write_bytes(data)
    _one_line(*cli("supervised", *SMOKE, "--out", mine, "--resume"), "is not a run folder", "checkpoint-best")
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == files  # nothing deleted, nothing overwritten


@pytest.mark.slow
@pytest.mark.parametrize("sets,needle", [
    (["--set", "split=bogus"], "unknown split 'bogus'"),  # found by the method, after the folder was made
    (["--set", "folds=1"], "k-fold needs 2 ≤ k"),
    (["--set", "seed=-1"], "seed must be ≥ 0"),
    (["--set", "epochs=inf"], "bad value 'inf' for epochs"),
    (["--set", "dropout=5"], "dropout must be in -1…0.95"),
    (["--set", "label_smoothing=2"], "label_smoothing must be in"),
    (["--set", "width=100000"], "width must be in 0…512"),
])
def test_a_bad_setting_leaves_no_folder_behind(cli, tmp_path, sets, needle):
    out = tmp_path / "run"
    _one_line(*cli("supervised", *SMOKE, *sets, "--out", out), needle)
    assert not out.exists()  # so the same --out works once the setting is fixed
    assert cli("supervised", *SMOKE, "--set", "train_subset=128", "--set", "test_subset=64", "--out", out)[0] == 0


@pytest.mark.slow
def test_a_diverged_run_keeps_its_folder(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("supervised", *SMOKE, "--lr", "1e30", "--out", out)
    assert code == 2 and "loss became nan" in err and (out / "config.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("edit,needle", [
    (lambda s: s.pop("name"), "name must be a model name"),
    (lambda s: s.update(in_shape=28), "in_shape must be"),
    (lambda s: s.update(num_classes=10 ** 12), "num_classes must be an integer in 1…10000"),
    (lambda s: s.update(num_classes="ten"), "num_classes"),
    (lambda s: s.update(kwargs={"bogus": 1}), "bad model spec (model 'cnn-small' has no option bogus"),
    (lambda s: s.update(kwargs=[1]), "kwargs must be an object"),
    (lambda s: s.update(preprocess=[1]), "preprocess must be an object"),
    (lambda s: s.update(preprocess={"binarize": "x"}), "preprocess.binarize"),
    (lambda s: s.update(classes=5), "classes must be a list"),
])
def test_a_bad_model_spec_is_one_line(cli, damaged, edit, needle):
    run, imgs = damaged
    spec = json.loads((run / "model.json").read_text())
    edit(spec)
    (run / "model.json").write_text(json.dumps(spec))
    _one_line(*cli("predict", "--run", run, "--images", imgs), needle)


@pytest.mark.slow
@pytest.mark.parametrize("name,content", [("model.json", "[1, 2]"), ("config.json", "[1]"), ("config.json", "null")])
def test_json_that_is_not_an_object_is_one_line(cli, damaged, name, content):
    run, imgs = damaged
    (run / name).write_text(content)
    _one_line(*cli("predict", "--run", run, "--images", imgs), "expected a JSON object")
    if name == "config.json":  # the report of a run folder reads its config, not its model
        _one_line(*cli("report", run, "--out", run.parent / "r.html"), "expected a JSON object")


@pytest.mark.slow
def test_nan_weights_are_refused_not_answered(cli, damaged):
    run, imgs = damaged
    state = load_file(run / "model.safetensors")
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first][...] = float("nan")
    save_file(state, run / "model.safetensors")
    _one_line(*cli("predict", "--run", run, "--images", imgs, "--json"), f"weight {first} holds NaN")


@pytest.mark.slow
def test_a_mismatched_rejector_is_refused_when_the_server_starts(damaged):
    pytest.importorskip("fastapi")
    from mnistlab.serve.app import create_app

    run, _ = damaged
    fileio.write_json(run / "rejector.json", {"thresholds": {"chow": 0.5, "margin": 0.1, "distance": 9.0}})
    save_file({"means": torch.zeros(10, 3), "precision": torch.eye(3)}, run / "rejector.safetensors")
    with pytest.raises(MnistlabError, match=r"rejector's class means are \(10, 3\)"):
        create_app(run)
    fileio.write_json(run / "rejector.json", {"thresholds": {"chow": "x", "margin": 0.1, "distance": 9.0}})
    with pytest.raises(MnistlabError, match="thresholds must be finite numbers"):
        create_app(run)


@pytest.mark.slow
def test_damaged_splits_and_thread_counts_are_one_line(cli, damaged):
    run, _ = damaged
    (run / "splits.npz").write_bytes((run / "splits.npz").read_bytes()[:100])
    _one_line(*cli("reject", "--run", run, "--threads", 1), "splits.npz: unreadable")
    np.savez(run / "splits.npz", train=np.array([10 ** 9]))
    _one_line(*cli("reject", "--run", run, "--threads", 1), "indices are not integers in 0…")
    for cmd in ("reject", "posteriors"):
        code, _, err = cli(cmd, "--run", run, "--threads", -1)
        assert code == 2 and "--threads must be ≥ 0 (0 = one per core), got -1" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("meta,needle", [
    (None, "unreadable checkpoint"),
    ({"step": "3", "history": [], "sums": {}, "count": 0, "train_seconds": 0.0}, "step is str"),
    ({"step": 3, "history": {}, "sums": {}, "count": 0, "train_seconds": 0.0}, "history is dict"),
    ({"step": 3, "history": [], "sums": [], "count": 0, "train_seconds": 0.0}, "sums is list"),
])
def test_a_checkpoint_with_bad_bookkeeping_is_one_line(cli, tmp_path, meta, needle):
    out = tmp_path / "run"
    code, _, err = cli("supervised", *SMOKE, "--lr", "1e30", "--out", out)  # diverges: leaves its checkpoint
    assert code == 2 and (out / "checkpoint.safetensors").exists()
    from safetensors import safe_open

    with safe_open(str(out / "checkpoint.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        real = json.loads(f.metadata()["meta"])
    if meta is not None:
        meta = {**meta, "optimizers": real["optimizers"]}
    save_file(tensors, out / "checkpoint.safetensors", metadata=None if meta is None else {"meta": json.dumps(meta)})
    _one_line(*cli("supervised", *SMOKE, "--lr", "1e30", "--out", out, "--resume"), needle,
              "delete it to start over")


def test_a_full_disk_under_safetensors_is_one_line_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"the old one")
    full = 'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
    with pytest.raises(MnistlabError, match=f"cannot write {path}: No space left on device$"):
        with fileio.atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise SafetensorError(full)
    assert path.read_bytes() == b"the old one" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    with pytest.raises(MnistlabError, match="cannot write"):  # a file where the folder should be
        with fileio.atomic_path(path / "sub" / "x.npy"):
            pass


def test_a_bad_generator_spec_is_one_line(tmp_path):
    from mnistlab.models.gan import check_gan_spec, gan_spec

    check_gan_spec(gan_spec(), "g.json")  # what the trainer writes passes
    for bad, needle in (({"nz": "x"}, "nz must be"), ({"image_size": 32}, "image_size must be an integer in 28…28"),
                        ({"nz": None}, "nz must be")):
        with pytest.raises(MnistlabError, match=needle):
            check_gan_spec({**gan_spec(), **bad}, "g.json")


def test_a_torn_report_section_is_one_line(cli, tmp_path):
    stage = tmp_path / "study" / "gan"
    stage.mkdir(parents=True)
    for content, needle in (("{}", "not a report section"), ("[1]", "expected a JSON object")):
        (stage / "section.json").write_text(content)
        _one_line(*cli("report", tmp_path / "study", "--out", tmp_path / "r.html"), needle)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_a_run_folder_being_written_is_refused_until_its_writer_ends(cli, tmp_path):
    """Two processes on one --out (two benchmark drivers, a second terminal) would interleave checkpoints and logs:
    the second is refused in one line, its files untouched; the lock dies with its holder, kill -9 included."""
    import subprocess
    import sys

    d = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from mnistlab.runs import Run; r = Run(sys.argv[1]); "
        "open(r.path('config.json'), 'w').write('{}'); print('held', flush=True); time.sleep(60)"), str(d)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        _one_line(*cli("supervised", *SMOKE, "--out", d, "--resume"), "is being written by another mnistlab process")
        assert sorted(p.name for p in d.iterdir()) == [".run.lock", "config.json"]  # nothing written or deleted
    finally:
        holder.kill()
        holder.wait()
    code, _, err = cli("supervised", *SMOKE, "--out", tmp_path / "next")
    assert code == 0, err
    from mnistlab.runs import Run

    Run(tmp_path / "next", resume=True).close()  # a finished run's lock was released: it can be opened again
    r = Run(d, resume=True)  # the killed holder's lock is gone
    r.close()
