"""The seed-report methods: models, rotation pretext labels, transfer, recipes, and every method end to end (smoke)."""
import json

import numpy as np
import pytest
import torch

from mnistlab.models import count_params, create_model


@pytest.fixture
def pretext_home(tmp_path, monkeypatch):
    """A private pretext cache, so the tests never reuse (or leave) a real one."""
    from mnistlab.methods import rotnet

    home = tmp_path / "pretext"
    monkeypatch.setattr(rotnet, "pretext_root", lambda: home)
    return home


@pytest.mark.parametrize("name,in_shape,params", [
    ("seed-mlp", (112,), 112 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10),
    ("seed-cnn", (1, 28, 28), (9 * 32 + 32) + (9 * 32 * 32 + 32) + (6272 * 1024 + 1024) + (1024 * 10 + 10)),
    ("seed-rotnet", (1, 28, 28), (9 * 32 + 32) + 2 * (9 * 32 * 32 + 32) + (9 * 32 * 64 + 64) + 2 * (9 * 64 * 64 + 64)
     + (3136 * 1024 + 1024) + (1024 * 10 + 10)),
    ("rotnet-cnn", (1, 28, 28), None),
])
def test_report_architectures(name, in_shape, params):
    m = create_model(name, in_shape=in_shape, num_classes=10).eval()
    x = torch.rand(3, *in_shape)
    assert m(x).shape == (3, 10) and m.embed(x).shape == (3, m.feature_dim)
    if params is not None:  # exactly the report's layers (3×3 'same' convs, no batch norm)
        assert count_params(m) == params


def test_rotation_pretext_labels():
    from mnistlab.methods.rotnet import rotate4

    x = torch.zeros(2, 1, 28, 28)
    x[0, 0, 0, 27] = 1  # top-right corner
    x[1, 0, 5, 0] = 1
    xs, y = rotate4(x)
    assert xs.shape == (8, 1, 28, 28) and y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for k in range(4):  # row k·B + i is image i turned by k × 90° counter-clockwise
        assert torch.equal(xs[2 * k], torch.rot90(x[0], k, (1, 2)))
    # 90° counter-clockwise moves the top-right corner to the top-left, 180° to the bottom-left
    assert xs[2, 0, 0, 0] == 1 and xs[4, 0, 27, 0] == 1 and xs[6, 0, 27, 27] == 1


def test_transfer_copies_all_but_the_output_layer():
    from mnistlab.methods.rotnet import transfer_weights

    pre = create_model("seed-rotnet", num_classes=4)
    tgt = create_model("seed-rotnet", num_classes=10)
    copied = transfer_weights(pre, tgt)
    assert "features.0.weight" in copied and "head.0.weight" in copied
    assert not any(k.startswith("head.2") for k in copied)
    assert torch.equal(tgt.features[0].weight, pre.features[0].weight)
    assert tgt.head[2].weight.shape == (10, 1024)


def test_report_recipe_and_validation_from_labels():
    from mnistlab.api import resolve_config
    from mnistlab.data import load_dataset
    from mnistlab.data.splits import labelled_split
    from mnistlab.methods._fewlabel import resolve_recipe

    cfg = resolve_recipe(resolve_config("cnn", budget="full", overrides={"model": "seed-cnn"}))
    assert (cfg.recipe, cfg.lr, cfg.epochs, cfg.batch_size, cfg.binarize, cfg.augment_mode) == \
        ("report", 0.01, 20, 0, 34, "offline")  # batch 0 = the whole training set, as the report
    assert resolve_recipe(resolve_config("cnn", budget="full")).recipe == "ours"
    y = load_dataset("mnist").train_y
    sp = labelled_split(y, 100, seed=3, n_val=20)
    assert len(sp["labelled"]) == 80 and len(sp["val"]) == 20 and not set(sp["val"]) & set(sp["labelled"])
    assert np.bincount(y[sp["val"]], minlength=10).tolist() == [2] * 10


COMMON = ("config.json", "metrics.json", "metrics.jsonl", "splits.npz", "model.json", "model.safetensors",
          "learning_curves.png", "confusion.png", "confusion.json", "classification_report.json")


@pytest.mark.slow
@pytest.mark.parametrize("method,extra,files", [
    ("mlp-features", ["--augment"], ("binarization.png", "augmentation_examples.png")),
    ("cnn", ["--model", "seed-cnn", "--augment"], ("binarization.png", "augmentation_examples.png")),
    ("rotnet", ["--augment"], ("augmentation_examples.png", "pretext_learning_curves.png", "pretext_metrics.json")),
    ("rotnet", ["--model", "seed-rotnet", "--set", "transfer=frozen"], ("pretext_learning_curves.png",)),
])
def test_fewlabel_smoke_end_to_end(cli, tmp_path, pretext_home, method, extra, files):
    out = tmp_path / "run"
    code, stdout, err = cli("fewlabel", "--dataset", "mnist", "--method", method, "--labels", 100, "--split-seed", 1,
                            "--seed", 2, "--budget", "smoke", "--threads", 1, "--out", out, "--json", *extra)
    assert code == 0, err
    m = json.loads(stdout)
    for key in ("test_accuracy", "val_accuracy", "labels", "split_seed", "seed", "wall_seconds"):
        assert m[key] is not None, key
    assert (m["labels"], m["split_seed"], m["seed"]) == (100, 1, 2) and 0 <= m["test_accuracy"] <= 1
    for name in COMMON + files:
        assert (out / name).exists(), name
    report = json.loads((out / "classification_report.json").read_text())
    assert {"precision", "recall", "f1-score", "support"} <= set(report["0"])
    hist = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("train_loss" in h and "val_accuracy" in h and "val_loss" in h for h in hist)
    splits = np.load(out / "splits.npz")
    assert len(splits["labelled"]) == 80 and len(splits["val"]) == 20
    if method == "rotnet":
        assert 0 <= m["pretext_test_accuracy"] <= 1 and len(list(pretext_home.iterdir())) == 1


@pytest.mark.slow
def test_pretext_is_cached_and_frozen_transfer_keeps_convs(cli, tmp_path, pretext_home):
    from mnistlab.methods.rotnet import pretrained_pretext
    from mnistlab.runs import load_model

    model, info = pretrained_pretext("rotnet-cnn-small", budget="smoke", threads=1)
    assert not info["cached"] and (pretext_home / info["key"] / "model.safetensors").exists()
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 4)
    again, info2 = pretrained_pretext("rotnet-cnn-small", budget="smoke", threads=1)
    assert info2["cached"] and info2["key"] == info["key"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    out = tmp_path / "frozen"
    code, stdout, err = cli("fewlabel", "--method", "rotnet", "--budget", "smoke", "--set", "transfer=frozen",
                            "--threads", 1, "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["pretext_cached"] is True
    tuned, _ = load_model(out)
    for k, v in tuned.features.state_dict().items():  # convs and their batch-norm statistics untouched
        assert torch.equal(v, model.features.state_dict()[k]), k


def test_cache_keys_follow_the_code_that_trains(tmp_path, monkeypatch):
    """An edit of the pretext's training code (or its model's file) names a new cache entry; nothing else does."""
    import sys

    from mnistlab.methods import rotnet
    from mnistlab.runs import source_fingerprint

    mod = tmp_path / "fp_probe.py"
    mod.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = source_fingerprint("fp_probe", "mnistlab.train")
    assert source_fingerprint("mnistlab.train", "fp_probe") == first  # order-free
    mod.write_text("X = 2\n")
    assert source_fingerprint("fp_probe", "mnistlab.train") != first
    sys.modules.pop("fp_probe", None)
    with pytest.raises(rotnet.MnistlabError, match="no source for module 'no_such_module'"):
        source_fingerprint("no_such_module")
    cfg = rotnet.pretext_config("rotnet-cnn-small", budget="smoke")
    key = rotnet.pretext_key(cfg)
    assert rotnet.pretext_key(cfg) == key
    seen = []
    monkeypatch.setattr(rotnet, "source_fingerprint", lambda *m: seen.extend(m) or "edited")
    assert rotnet.pretext_key(cfg) != key and set(seen) == {
        "mnistlab.methods.rotnet", "mnistlab.train", "mnistlab.models.rotnet"}


def test_bad_settings_are_one_line_errors(cli, tmp_path, pretext_home):
    code, _, err = cli("fewlabel", "--method", "rotnet", "--budget", "smoke", "--set", "transfer=sideways",
                       "--out", tmp_path / "a")
    assert code == 2 and "unknown transfer 'sideways'" in err
    code, _, err = cli("fewlabel", "--method", "rotnet", "--budget", "smoke", "--model", "cnn", "--out", tmp_path / "b")
    assert code == 2 and "no features/head split" in err


def test_pretext_lock_waits_and_takes_over_stale_locks(tmp_path):
    import os
    import threading
    import time

    from mnistlab.methods.rotnet import _lock

    path = tmp_path / "k.lock"
    path.write_text("999999999")  # a pid that does not exist: stale, taken over
    with _lock(path, poll=0.05):
        assert path.read_text() == str(os.getpid())
    assert not path.exists()
    order = []

    def second():
        with _lock(path, poll=0.05):
            order.append("second")

    with _lock(path, poll=0.05):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        order.append("first")  # the other holder waits while this one holds the lock
    t.join(5)
    assert order == ["first", "second"]
