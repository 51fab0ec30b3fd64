"""`mnistlab predict` and the image loading behind it: .npy forms, PNG/JPEG files and folders, MNIST normalisation."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mnistlab.data import load_dataset
from mnistlab.data.images import load_images, to_mnist_28
from mnistlab.errors import MnistlabError

pytestmark = pytest.mark.slow  # every test here applies a trained run (the module's `trained` fixture)

N = 40


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """In-process runs with --threads change torch's global thread count: restore it for the tests that follow."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A smoke-budget classifier run, and the MNIST test images it is applied to."""
    from mnistlab import api
    from mnistlab.precision import setup_threads

    threads = torch.get_num_threads()
    setup_threads(1)
    out = tmp_path_factory.mktemp("predict") / "run"
    try:
        api.train("supervised", command="supervised", out=out, budget="smoke",
                  overrides={"train_subset": 2048, "epochs": 2, "test_subset": N, "augment": False})
    finally:
        torch.set_num_threads(threads)
    ds = load_dataset("mnist")
    return out, ds.test_x[:N], ds.test_y[:N]


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """A binary (class 1 = digit) run folder as the detector issue will write it (untrained weights suffice here)."""
    from mnistlab.models import create_model, model_spec
    from mnistlab.runs import Run

    torch.manual_seed(0)
    run = Run(tmp_path_factory.mktemp("det") / "det")
    run.save_model(create_model("cnn-small", num_classes=2), model_spec("cnn-small", in_shape=(1, 28, 28),
                                                                         num_classes=2))
    return run.dir


def _records(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def test_npy_forms_agree_and_match_the_run(cli, trained, tmp_path):
    run, x, y = trained
    results = []
    for name, arr in [("u8_4d", x), ("u8_3d", x[:, 0]), ("f_3d", x[:, 0].astype(np.float32) / 255),
                      ("f64_4d", x.astype(np.float64) / 255)]:
        np.save(tmp_path / f"{name}.npy", arr)
        code, out, err = cli("predict", "--run", run, "--images", tmp_path / f"{name}.npy", "--json")
        assert code == 0, err
        recs = _records(out)
        assert [r["index"] for r in recs] == list(range(N)) and "file" not in recs[0]
        for r in recs:
            assert len(r["probs"]) == 10 and abs(sum(r["probs"]) - 1) < 1e-9 and min(r["probs"]) >= 0
            assert r["pred"] == int(np.argmax(r["probs"])) and r["label"] == str(r["pred"])
        results.append([r["pred"] for r in recs])
    assert all(r == results[0] for r in results)
    # the same numbers the run itself computed on these test images (it saved its test logits)
    lg = np.load(run / "test_logits.npy")[:N].astype(np.float64)
    p = np.exp(lg - lg.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    got = np.array([r["probs"] for r in _records(out)])
    assert np.abs(got - p).max() < 0.05 and np.mean(got.argmax(1) == p.argmax(1)) >= 0.95
    assert np.mean(np.array(results[0]) == y) > 0.5  # it learned something: a real model, not a constant


def test_png_folder_and_single_file(cli, trained, tmp_path):
    run, x, _ = trained
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(x[i, 0]).save(folder / f"d{i}.png")
    (folder / "notes.txt").write_text("ignored: not an image")
    np.save(tmp_path / "x.npy", x[:5])
    _, out_npy, _ = cli("predict", "--run", run, "--images", tmp_path / "x.npy", "--json")
    code, out, err = cli("predict", "--run", run, "--images", folder, "--json")
    assert code == 0, err
    recs = _records(out)
    assert [r["file"] for r in recs] == [str(folder / f"d{i}.png") for i in range(5)]
    assert [r["probs"] for r in recs] == [r["probs"] for r in _records(out_npy)]  # 28×28 PNGs are taken as they are
    code, out, _ = cli("predict", "--run", run, "--images", folder / "d3.png")
    assert code == 0 and out.startswith(f"{folder / 'd3.png'}\t{recs[3]['label']}\tp=")


def _scan(digit28, *, size=(190, 260), at=(20, 90), scale=5):
    """A 'photo' of an MNIST digit: upscaled, dark ink on light grey paper, off-centre in a bigger frame."""
    big = np.asarray(Image.fromarray(digit28).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR))
    paper = np.full(size, 230, np.uint8)
    r, c = at
    paper[r: r + big.shape[0], c: c + big.shape[1]] = 230 - (big.astype(np.int32) * 200 // 255)
    return paper


def test_to_mnist_28_normalises_like_mnist(trained):
    _, x, _ = trained
    for i in range(6):
        g = 255 - _scan(x[i, 0])  # bright ink, as to_mnist_28 expects
        out = to_mnist_28(g)
        assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255
        rows, cols = np.nonzero(out >= 64)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in (19, 20, 21)  # the ink fills a 20-px box
        yy, xx = np.mgrid[:28, :28]
        com = ((out * yy).sum() / out.sum(), (out * xx).sum() / out.sum())
        assert abs(com[0] - 14) <= 0.6 and abs(com[1] - 14) <= 0.6  # centred by centre of mass
        assert np.corrcoef(out.ravel().astype(float), x[i, 0].ravel().astype(float))[0, 1] > 0.9
    assert to_mnist_28(np.zeros((50, 40))).max() == 0
    with pytest.raises(MnistlabError, match="2-D"):
        to_mnist_28(np.zeros((2, 3, 4)))


def test_invert_scans_and_transparent_png(cli, trained, tmp_path):
    run, x, _ = trained
    Image.fromarray(_scan(x[0, 0])).convert("RGB").save(tmp_path / "scan.jpg", quality=95)
    got = load_images(tmp_path / "scan.jpg", invert=True)
    assert got.shape == (1, 1, 28, 28) and np.corrcoef(got.ravel().astype(float), x[0].ravel().astype(float))[0, 1] > 0.9
    code, out, _ = cli("predict", "--run", run, "--images", tmp_path / "scan.jpg", "--invert", "--json")
    inv = _records(out)[0]
    _, out_ref, _ = cli("predict", "--run", run, "--images", tmp_path / "scan.jpg", "--json")
    assert code == 0 and inv["probs"] != _records(out_ref)[0]["probs"]
    # a canvas drawing: black ink on a transparent background, read as dark-on-light
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[20:80, 45:55, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "canvas.png")
    one = load_images(tmp_path / "canvas.png", invert=True)[0, 0]
    assert one.max() == 255 and one[0].max() == 0 and one[:, 13:15].sum() > 0  # a centred vertical stroke


def test_detector_hook(cli, trained, detector, tmp_path):
    run, x, _ = trained
    np.save(tmp_path / "x.npy", x[:6])
    code, out, err = cli("predict", "--run", run, "--images", tmp_path / "x.npy", "--detector", detector, "--json")
    assert code == 0, err
    for r in _records(out):
        assert 0 <= r["p_digit"] <= 1 and r["is_digit"] == (r["p_digit"] >= 0.5)
    code, _, err = cli("predict", "--run", run, "--images", tmp_path / "x.npy", "--detector", run)
    assert code == 2 and "expected a binary" in err


def _lying_header(path):
    """A 100-byte .npy whose header claims 10¹⁰ images."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (10 ** 10, 28, 28)})
        f.write(b"\0" * 100)


@pytest.mark.parametrize("make,msg", [
    (lambda d: np.save(d / "a.npy", np.zeros((3, 32, 32), np.uint8)), "expected images of shape N×28×28"),
    (lambda d: np.save(d / "a.npy", np.full((2, 28, 28), np.nan, np.float32)), "NaN"),
    (lambda d: np.save(d / "a.npy", np.full((2, 28, 28), 3.0)), r"float images must be in \[0, 1\]"),
    (lambda d: np.save(d / "a.npy", np.full((2, 28, 28), 300)), "0–255"),
    (lambda d: np.save(d / "a.npy", np.array(["x"] * 4)), "expected images of shape"),
    (lambda d: (d / "a.npy").write_bytes(b"garbage"), "not a readable .npy"),
    (lambda d: _lying_header(d / "a.npy"), "not a readable .npy"),  # not "out of memory"
    (lambda d: (d / "a.png").write_bytes(b"\x89PNG not really"), "a.png: not a readable PNG/JPEG"),
    (lambda d: (d / "a").mkdir(), "no .png/.jpg/.jpeg files"),
    (lambda d: None, "no such file or folder"),
])
def test_bad_images_are_one_line_errors(cli, trained, tmp_path, make, msg):
    import re

    run, _, _ = trained
    make(tmp_path)
    target = next((p for p in tmp_path.iterdir()), tmp_path / "missing.npy")
    code, out, err = cli("predict", "--run", run, "--images", target)
    assert code == 2 and out == "" and re.search(msg, err), err
    assert err.startswith("mnistlab: error: ") and len(err.strip().splitlines()) == 1


def test_bad_run_folder(cli, trained, tmp_path):
    _, x, _ = trained
    np.save(tmp_path / "x.npy", x[:2])
    code, _, err = cli("predict", "--run", tmp_path / "nope", "--images", tmp_path / "x.npy")
    assert code == 2 and "no such run folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli("predict", "--run", tmp_path / "empty", "--images", tmp_path / "x.npy")
    assert code == 2 and "missing file" in err and "model.json" in err
