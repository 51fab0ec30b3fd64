"""Rough edges found by hostile input (issue 26, item 4): each gives one line and a non-zero exit, bounded memory,
nothing half-written."""
import io
import json
import os
import pickle
import re
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from mnistlab.api import resolve_config
from mnistlab.data.idx import parse_idx
from mnistlab.data.images import MAX_PIXELS, read_gray
from mnistlab.data.safe_pickle import load_numpy_pickle
from mnistlab.errors import MnistlabError
from mnistlab.fileio import STARTED, remove_stale_temps, write_json
from mnistlab.models import create_model, model_spec
from mnistlab.runs import Run, load_model

SRC = Path(__file__).resolve().parents[1] / "src" / "mnistlab"


def one_line_error(code, err, *needles):
    assert code == 2, err
    assert err.startswith("mnistlab: error: ") and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def hand_made_run(d: Path, *, config: dict | None = None, name="cnn-small", **kwargs) -> Path:
    """An untrained classifier run folder (model + config + metrics), no training."""
    torch.manual_seed(0)
    Run(d).save_model(create_model(name, **kwargs),
                      model_spec(name, in_shape=(1, 28, 28), num_classes=10, **kwargs))
    write_json(d / "config.json", config if config is not None else {"dataset": "mnist", "method": "supervised"})
    write_json(d / "metrics.json", {"test_acc": 0.1})
    return d


def png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims w×h grey pixels, with one tiny IDAT: the shape of a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# ------------------------------------------------------------------------------------------------ training flags
def finished_run(d: Path, **overrides) -> Path:
    cfg = resolve_config("supervised", budget="smoke", overrides=overrides)
    run = Run(d)
    run.start(cfg, command="supervised", method="supervised")
    run.finish({"test_acc": 0.5})
    return d


@pytest.mark.parametrize("flags,field", [(["--seed", "1"], "seed"), (["--budget", "quick"], "budget"),
                                         (["--set", "model=mlp"], "model"), (["--set", "weight_decay=0.1"],
                                                                              "weight_decay")])
def test_resume_of_a_finished_run_with_other_settings_is_refused(cli, tmp_path, flags, field):
    d = finished_run(tmp_path / "r")
    before = (d / "metrics.json").read_text()
    code, out, err = cli("supervised", "--budget", "smoke", "--out", d, "--resume", *flags)
    one_line_error(code, err, "another config", field)
    assert out == "" and (d / "metrics.json").read_text() == before
    code, out, err = cli("supervised", "--budget", "smoke", "--out", d, "--resume", "--json")  # the same: its metrics
    assert code == 0 and json.loads(out)["test_acc"] == 0.5


def test_empty_out_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("supervised", "--budget", "smoke", "--out", "")
    assert code == 2 and "--out" in err and "empty" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    from mnistlab import api

    with pytest.raises(MnistlabError, match="empty path"):
        api.train("supervised", command="supervised", out="", budget="smoke")


def test_config_file_is_size_capped_and_regular(cli, tmp_path):
    t = time.time()
    code, _, err = cli("supervised", "--budget", "smoke", "--config", "/dev/zero", "--out", tmp_path / "a")
    one_line_error(code, err, "not a regular file")
    big = tmp_path / "big.json"
    big.write_text('{"seed": 1, "pad": "' + "x" * (1 << 20) + '"}')
    code, _, err = cli("supervised", "--budget", "smoke", "--config", big, "--out", tmp_path / "b")
    one_line_error(code, err, "over 1048576 bytes")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    code, _, err = cli("supervised", "--budget", "smoke", "--config", deep, "--out", tmp_path / "c")
    one_line_error(code, err, "not valid JSON")
    assert time.time() - t < 5 and not any((tmp_path / n).exists() for n in "abc")


# ----------------------------------------------------------------------------------------------- model folders
def test_model_kwargs_are_bounded_before_allocating(tmp_path):
    d = hand_made_run(tmp_path / "r", name="mlp", hidden=[8])
    spec = json.loads((d / "model.json").read_text())
    for hidden, msg in (([20000, 20000], "describes 416"), ([8] * 100, "kwargs.hidden"), ([10**9], "kwargs.hidden")):
        (d / "model.json").write_text(json.dumps({**spec, "kwargs": {**spec["kwargs"], "hidden": hidden}}))
        t = time.time()
        with pytest.raises(MnistlabError, match=re.escape(msg)):
            load_model(d)
        assert time.time() - t < 2  # counted on the meta device: no 1.6 GB allocated first


def test_integer_weights_are_refused_but_integer_buffers_load(tmp_path):
    d = hand_made_run(tmp_path / "r")
    model, _ = load_model(d)  # BatchNorm's num_batches_tracked is int64: accepted
    assert any(not v.is_floating_point() for v in model.state_dict().values())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k, v in state.items() if v.is_floating_point() and k.endswith("weight"))
    state[key] = state[key].round().to(torch.int64)
    save_file({k: v.contiguous() for k, v in state.items()}, str(d / "model.safetensors"))
    with pytest.raises(MnistlabError, match=f"{re.escape(key)} is torch.int64, expected floating point"):
        load_model(d)


def test_non_string_dataset_in_config_is_one_line(cli, tmp_path):
    d = hand_made_run(tmp_path / "r", config={"dataset": ["mnist"], "method": "supervised"})
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), np.uint8))
    code, _, err = cli("predict", "--run", d, "--images", tmp_path / "x.npy")
    one_line_error(code, err, "dataset must be a dataset name")
    pytest.importorskip("fastapi")
    from mnistlab.serve.app import create_app

    with pytest.raises(MnistlabError, match="dataset must be a dataset name"):
        create_app(d)
    from mnistlab.data import load_dataset

    with pytest.raises(MnistlabError, match="must be a string"):
        load_dataset(["mnist"])


# ------------------------------------------------------------------------------------------------------ images
def test_predict_refuses_a_decompression_bomb_in_one_line(cli, tmp_path):
    for w, h in ((12000, 12000), (5000, 4000)):  # past Pillow's own warning limit (89 Mpx), and past ours only
        f = tmp_path / f"bomb{w}.png"
        f.write_bytes(png_header(w, h))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a raw DecompressionBombWarning would fail here
            code, out, err = cli("predict", "--run", tmp_path / "no-run-needed", "--images", f)
        one_line_error(code, err, "over the", str(MAX_PIXELS))
        assert out == ""


def test_predict_folder_skips_a_bad_image_unless_strict(cli, tmp_path):
    d = hand_made_run(tmp_path / "r")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    x = np.zeros((28, 28), np.uint8)
    x[5:23, 12:16] = 255
    for name in ("a.png", "c.png"):
        Image.fromarray(x).save(imgs / name)
    (imgs / "b.png").write_bytes(png_header(12000, 12000))
    (imgs / "d.png").write_bytes(b"not a png")
    code, out, err = cli("predict", "--run", d, "--images", imgs, "--json")
    assert code == 0, err
    assert [json.loads(line)["file"] for line in out.splitlines()] == [str(imgs / "a.png"), str(imgs / "c.png")]
    warns = err.strip().splitlines()
    assert len(warns) == 2 and all(w.startswith("mnistlab: warning: skipped ") for w in warns)
    assert "b.png" in warns[0] and "pixel limit" in warns[0] and "d.png" in warns[1]
    code, out, err = cli("predict", "--run", d, "--images", imgs, "--strict")
    one_line_error(code, err, "b.png")
    assert out == ""


def test_16_bit_png_is_scaled_by_its_range_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 28 * 28).reshape(28, 28).astype(np.uint16)  # 16-bit grey ramp
    f = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(f)
    assert Image.open(f).mode.startswith("I")
    g = read_gray(f)
    # convert("L") clipped everything above 255 to white: 783 of 784 pixels; scaled, it is the 8-bit ramp
    np.testing.assert_allclose(g.astype(float), ramp / 257.0, atol=1.0)
    pytest.importorskip("fastapi")
    from mnistlab.serve.inputs import image_to_gray

    big = np.zeros((700, 700), np.uint16)  # a 16-bit photo-sized image: dark ink (40000) on brighter paper
    big[:] = 60000
    big[200:500, 330:370] = 20000
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    seen = image_to_gray(buf.getvalue())
    assert seen.max() == 255 and seen.min() == 0 and (seen > 128).mean() < 0.2  # ink bright, paper dark: not blank


# ----------------------------------------------------------------------------------------------- data readers
def test_idx_dimensions_cannot_overflow():
    data = bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 2 + (4).to_bytes(4, "big")  # 2³¹×2³¹×4 in 16 bytes
    with pytest.raises(MnistlabError, match="truncated: dimensions"):
        parse_idx(data, source="bomb-idx3-ubyte")


def test_safe_pickle_walks_shared_references_once():
    a = [np.arange(10, dtype=np.uint8)]
    for _ in range(19):  # 2¹⁹ paths to the leaf, 20 distinct lists, a few hundred bytes pickled
        a = [a, a]
    payload = pickle.dumps(a, protocol=2)
    assert len(payload) < 2000
    t = time.time()
    back = load_numpy_pickle(payload, source="shared.pkl")
    assert time.time() - t < 0.5  # linear: the old walk visited every path (~10⁶ visits, seconds)
    leaf = back
    for _ in range(19):
        leaf = leaf[0]
    assert np.array_equal(leaf[0], np.arange(10))


def test_safe_pickle_refuses_build_on_an_allowed_function():
    from mnistlab.data.safe_pickle import _latin1_encode

    # GLOBAL f, {'evil': 'yes'}, BUILD: would set f.evil (a Python function has a __dict__) before any later check
    for glob in ("_codecs\nencode", "numpy._core.multiarray\n_reconstruct", "numpy\nndarray"):
        payload = f"c{glob}\n(dS'evil'\nS'yes'\nsb.".encode()
        with pytest.raises(MnistlabError, match="refused BUILD on (function|builtin|type)"):
            load_numpy_pickle(payload, source="build.pkl")
    assert not hasattr(_latin1_encode, "evil") and not hasattr(np.ndarray, "evil")
    # arrays (BUILD on an ndarray and its dtype) still load, all protocols
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for proto in range(0, 6):
        assert np.array_equal(load_numpy_pickle(pickle.dumps((x, x[0]), protocol=proto), source="ok.pkl")[0], x)


# ----------------------------------------------------------------------------------------------- temp files
def test_stale_temporaries_are_removed_on_start(tmp_path, monkeypatch):
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text("{}")
    old, new = d / ".model.safetensors.abc123.tmp", d / ".metrics.json.def456.tmp"
    old.write_bytes(b"half")
    new.write_bytes(b"half")
    os.utime(old, (STARTED - 5, STARTED - 5))  # from a process killed before this one started
    os.utime(new, (STARTED + 1, STARTED + 1))  # being written now (by this process)
    run = Run(d, resume=True)
    run.close()
    assert not old.exists() and new.exists()
    # the shared data cache: only temporaries older than any write could take
    home = tmp_path / "data"
    home.mkdir()
    monkeypatch.setenv("MNISTLAB_DATA", str(home))
    from mnistlab.data.sources import STALE_AGE, SourceUnavailable, read_cache

    stale, recent = home / ".mnist.npz.a.tmp", home / ".mnist.npz.b.tmp"
    for p, age in ((stale, STALE_AGE + 60), (recent, 60)):
        p.write_bytes(b"x")
        os.utime(p, (STARTED - age, STARTED - age))
    with pytest.raises(SourceUnavailable):
        read_cache("mnist")
    assert not stale.exists() and recent.exists()
    assert remove_stale_temps(home / "missing") == []


def test_figures_are_written_atomically():
    """Every matplotlib `savefig` in the package writes a temporary from fileio.atomic_path (or a buffer)."""
    bad = []
    for f in SRC.rglob("*.py"):
        for m in re.finditer(r"\.savefig\(\s*([^,)]+)", f.read_text()):
            if m.group(1).strip() not in ("tmp", "buf"):
                bad.append(f"{f.relative_to(SRC)}: savefig({m.group(1)})")
    assert not bad, bad


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_leaves_no_temporaries(cli, tmp_path):
    """`kill`/`timeout` send SIGTERM: one line, exit 143, no .tmp file, and the run resumes to the end."""
    import signal
    import subprocess
    import sys

    d = tmp_path / "r"
    args = ["supervised", "--budget", "smoke", "--threads", "1", "--epochs", "3", "--set", "ckpt_every=2",
            "--set", "test_subset=200", "--out", str(d)]
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "MNISTLAB_QUIET": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (d / "checkpoint.safetensors").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 143, err
    assert err.startswith("mnistlab: terminated;") and len(err.strip().splitlines()) == 1, err
    assert not list(d.glob(".*.tmp")) and (d / "checkpoint.safetensors").exists()
    code, _, err = cli(*args, "--resume")
    assert code == 0, err
    assert (d / "metrics.json").exists() and not list(d.glob(".*.tmp"))
