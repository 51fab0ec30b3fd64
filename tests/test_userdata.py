"""User data (`folder:` / `npz:`): every bad-data case is one line, exit 2, no folder; round trips; the cache."""
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mnistlab.data import load_dataset


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def write_folder(root, x, y, *, start=0):
    """uint8 (N, 1, H, W) images → root/<class>/<index>.png, numbered in their order."""
    for i, (img, c) in enumerate(zip(x, y)):
        (root / str(int(c))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0]).save(root / str(int(c)) / f"{start + i:05d}.png")
    return root


def bomb_png(path, w=100_000, h=100_000):
    """A PNG whose header claims w×h pixels (no pixel data): must be refused before any decoding."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.fixture
def small(tmp_path, mnist, data_home):
    return write_folder(tmp_path / "digits", mnist.train_x[:120], mnist.train_y[:120])


def assert_refused(cli, tmp_path, args, *needles):
    out = tmp_path / "run"
    code, _, err = cli(*args, "--out", out)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("mnistlab: error: "), err
    for n in needles:
        assert n in err, err
    assert not out.exists()


TRAIN = ("fewlabel", "--method", "cnn", "--budget", "smoke", "--labels", "30")


def test_empty_class(cli, tmp_path, small):
    (small / "empty").mkdir()
    assert_refused(cli, tmp_path, (*TRAIN, "--dataset", f"folder:{small}"), "empty class", "empty")


def test_class_with_too_few_images(cli, tmp_path, small):
    for f in sorted((small / "7").iterdir())[2:]:
        f.unlink()
    assert_refused(cli, tmp_path, (*TRAIN, "--labels", "40", "--dataset", f"folder:{small}"), "7 (2 of 4)")


def test_mixed_channels(cli, tmp_path, small):
    Image.new("RGB", (28, 28), (200, 10, 10)).save(small / "3" / "colour.png")
    assert_refused(cli, tmp_path, (*TRAIN, "--dataset", f"folder:{small}"), "mixed channel counts", "3/colour.png")


def test_corrupt_files_listed_ten_then_counted(cli, tmp_path, small):
    for i in range(12):
        (small / "1" / f"bad{i:02d}.png").write_bytes(b"not a png")
    assert_refused(cli, tmp_path, (*TRAIN, "--dataset", f"folder:{small}"), "12 unreadable or corrupt",
                   "1/bad00.png", "… and 2 more", "--skip-bad")


def test_decompression_bomb(cli, tmp_path, small):
    bomb_png(small / "2" / "bomb.png")
    assert_refused(cli, tmp_path, (*TRAIN, "--dataset", f"folder:{small}"), "decompression bomb", "2/bomb.png")


def test_npz_labels_out_of_range_and_length_mismatch(cli, tmp_path, mnist):
    y = mnist.train_y[:100].copy()
    y[[3, 5]] = [12, -1]
    np.savez(tmp_path / "a.npz", x=mnist.train_x[:100, 0], y=y, classes=np.array([str(i) for i in range(10)]))
    assert_refused(cli, tmp_path, (*TRAIN, "--dataset", f"npz:{tmp_path / 'a.npz'}"), "out of range",
                   "y[3]=12", "y[5]=-1")
    np.savez(tmp_path / "b.npz", x=mnist.train_x[:100, 0], y=mnist.train_y[:99])
    assert_refused(cli, tmp_path, (*TRAIN, "--dataset", f"npz:{tmp_path / 'b.npz'}"), "x/y length mismatch")


def test_data_flags_need_user_data(cli, tmp_path):
    assert_refused(cli, tmp_path, (*TRAIN, "--dataset", "mnist", "--skip-bad"), "--skip-bad is for user data")


def test_cache_is_keyed_by_sizes_and_mtimes(small):
    name = f"folder:{small}"
    assert load_dataset(name).extra["record"]["cache"] == "miss"
    assert load_dataset(name).extra["record"]["cache"] == "hit"
    f = sorted((small / "4").iterdir())[0]
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(f)  # new content, new mtime
    ds = load_dataset(name)
    assert ds.extra["record"]["cache"] == "miss"


def test_preprocess_rules(tmp_path, data_home):
    root = tmp_path / "big"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            img = np.zeros((60, 40), np.uint8)
            img[10 + i: 40, 15:25] = 255 if c == "a" else 120
            Image.fromarray(img).save(root / c / f"{i}.png")
    auto = load_dataset(f"folder:{root}")
    assert auto.shape == (1, 60, 40) and auto.extra["input"]["rule"] == "none"  # one size: kept
    centred = load_dataset(f"folder:{root}?preprocess=centre")
    assert centred.shape == (1, 28, 28) and centred.extra["input"]["rule"] == "centre"
    resized = load_dataset(f"folder:{root}?preprocess=resize&size=32")
    assert resized.shape == (1, 32, 32)


def test_folder_round_trip_skip_bad_unlabelled_predict_export_card(cli, tmp_path, small, mnist):
    (small / "5" / "broken.png").write_bytes(b"\x89PNG broken")
    pool = write_folder(tmp_path / "pool", mnist.train_x[200:260], np.zeros(60, int))
    out = tmp_path / "run"
    code, stdout, err = cli(*TRAIN, "--dataset", f"folder:{small}", "--skip-bad", "--unlabelled", pool,
                            "--out", out, "--json")
    assert code == 0, err
    metrics = json.loads(stdout.strip().splitlines()[-1])
    data = json.loads((out / "data.json").read_text())
    assert data["skipped_count"] == 1 and data["skipped"]["corrupt"] == ["5/broken.png"]
    assert data["unlabelled_images"] == 60 and data["test_images"] == 24  # 20 % stratified hold-out of 120
    with np.load(out / "splits.npz") as z:
        assert len(z["data_test"]) == 24 and len(z["labelled"]) + len(z["val"]) == 30
        assert len(z["unlabelled"]) == 96 - 30 + 60
    spec = json.loads((out / "model.json").read_text())
    assert spec["image_input"]["rule"] == "none" and spec["classes"] == [str(i) for i in range(10)]
    card = (out / "MODEL_CARD.md").read_text()
    assert f"{metrics['test_accuracy']:.4f}" in card and "skipped files (--skip-bad): 1" in card

    import mnistlab as ml

    model = ml.load(out)
    ds = load_dataset(json.loads((out / "config.json").read_text())["dataset"])
    probs = model.predict_proba(ds.test_x)
    logits = np.load(out / "test_logits.npy").astype(np.float64)
    ref = np.exp(logits - logits.max(1, keepdims=True))
    assert np.abs(probs - ref / ref.sum(1, keepdims=True)).max() < 1e-4
    assert model.predict(small / "3").shape == (len(list((small / "3").iterdir())),)
    code, stdout, err = cli("predict", "--run", out, "--images", small / "3")
    assert code == 0, err


def test_npz_round_trip_with_test_arrays_and_labels_from(cli, tmp_path, mnist, data_home):
    path = tmp_path / "d.npz"
    np.savez(path, x=mnist.train_x[:150, 0], y=mnist.train_y[:150], x_test=mnist.test_x[:40, 0],
             y_test=mnist.test_y[:40])
    chosen = [int(np.flatnonzero(mnist.train_y[:150] == c)[k]) for c in range(10) for k in range(3)]
    (tmp_path / "labels.txt").write_text("# the 30 images we labelled\n" + "\n".join(map(str, chosen)) + "\n")
    out = tmp_path / "run"
    code, _, err = cli("fewlabel", "--method", "cnn", "--budget", "smoke", "--dataset", f"npz:{path}",
                       "--labels-from", tmp_path / "labels.txt", "--set", "val_labels=10", "--out", out)
    assert code == 0, err
    with np.load(out / "splits.npz") as z:
        assert sorted(np.concatenate([z["labelled"], z["val"]])) == sorted(chosen)
        assert len(z["data_test"]) == 0  # the npz's own test arrays
    data = json.loads((out / "data.json").read_text())
    assert data["labels_from"]["images"] == 30 and data["test_images"] == 40 and data["unlabelled_images"] == 120
