"""Digit detector: OOD metrics on hand-made scores, the smoke run's outputs, `detect predict` on a digit and noise."""
import json

import numpy as np
import pytest

from mnistlab.errors import MnistlabError
from mnistlab.evaluate.ood import auroc, choose_threshold, fpr_at_tpr, ood_report


def test_auroc_and_fpr95_on_known_scores():
    assert auroc([3, 4, 5], [0, 1, 2]) == 1.0 and fpr_at_tpr([3, 4, 5], [0, 1, 2]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    # pairs in > out: 0.9 beats both, 0.8 beats both, 0.7 beats only 0.1 → 5 of 6
    assert auroc([0.9, 0.8, 0.7], [0.75, 0.1]) == pytest.approx(5 / 6)
    # accepting ≥ 95 % of 3 "in" scores means accepting all (t = 0.7): then 0.75 is accepted too → FPR ½
    assert fpr_at_tpr([0.9, 0.8, 0.7], [0.75, 0.1]) == 0.5
    # 20 in-scores 1..20: TPR 95 % → t = 2 accepts 19 of 20; out-scores 1.5 and 0 → only 1.5 is not accepted … 0
    assert fpr_at_tpr(np.arange(1, 21), [1.5, 0.0]) == 0.0
    rep = ood_report([3, 4, 5], [0, 1, 4.5], threshold=3.5)
    assert rep["accepted_in"] == pytest.approx(2 / 3) and rep["accepted_out"] == pytest.approx(1 / 3)
    with pytest.raises(MnistlabError):
        auroc([], [1.0])
    with pytest.raises(MnistlabError):
        auroc([np.nan], [1.0])


def test_threshold_is_chosen_for_accuracy_and_keeps_the_default_when_separable():
    # separable around 0: any t in (-1, 1) is perfect → the default 0 is kept
    assert choose_threshold(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 0, 1, 1])) == 0.0
    # shifted classes: the best threshold lies between 3 and 4
    t = choose_threshold(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0, 0, 0, 1, 1]))
    assert 3 < t < 4
    # one outlier cannot be fixed: best accuracy 4/5, and the threshold still separates the rest
    s, y = np.array([0.0, 1.0, 9.0, 5.0, 6.0]), np.array([0, 0, 0, 1, 1])
    t = choose_threshold(s, y)
    assert ((s >= t) == y.astype(bool)).mean() == 0.8


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from mnistlab.cli import main

    out = tmp_path_factory.mktemp("det") / "run"
    assert main(["detect", "train", "--budget", "smoke", "--out", str(out), "--threads", "1", "--json"]) == 0
    return out


@pytest.mark.slow
def test_detector_smoke_writes_all_outputs(smoke_run):
    out = smoke_run
    for name in ("config.json", "env.json", "metrics.jsonl", "metrics.json", "splits.npz", "model.json",
                 "model.safetensors", "threshold.json", "confusion.json", "confusion.png", "learning_curves.png",
                 "predictions.png", "scores.png", "families.png", "family_accuracy.json", "test_scores.npz",
                 "ood_margins.npy", "lofo.json", "lofo.png"):
        assert (out / name).exists(), name
    assert not (out / "checkpoint.safetensors").exists()
    m = json.loads((out / "metrics.json").read_text())
    fams = ["uniform", "lines", "digit-tiles"]
    assert m["families"] == fams and m["train_images"] == 1024
    for key in ("accuracy", "auroc_fashion", "fpr95_fashion", "lofo_min_accuracy", "digit_recall"):
        assert 0 <= m[key] <= 1, key
    assert set(m["lofo_accuracy"]) == set(fams) and set(m["family_accuracy"]) == set(fams)
    for f in fams:
        r = json.loads((out / "lofo" / f / "result.json").read_text())
        assert r["n"] == 100 and (out / "lofo" / f / "metrics.json").exists()
    cm = np.array(json.loads((out / "confusion.json").read_text())["matrix"])
    assert cm.shape == (2, 2) and cm.sum() == m["test_size"] == 600
    # the saved scores reproduce the reported accuracy at the validation threshold
    thr = json.loads((out / "threshold.json").read_text())
    assert thr["chosen_on"] == "validation"
    z = np.load(out / "test_scores.npz")
    assert ((z["margin"] >= thr["margin"]) == (z["label"] == 1)).mean() == pytest.approx(m["accuracy"])
    # positives, validation digits and test digits never overlap
    sp = np.load(out / "splits.npz")
    assert len(np.intersect1d(sp["positives"], sp["val"])) == 0 and len(sp["positives"]) == 512


@pytest.mark.slow
def test_detector_rebuilds_with_load_model(smoke_run):
    import torch

    from mnistlab.runs import load_model

    model, spec = load_model(smoke_run)
    assert spec["task"] == "detector" and spec["classes"] == ["no digit", "digit"] and 0 < spec["threshold"] < 1
    with torch.no_grad():
        p = torch.softmax(model(torch.rand(3, 1, 28, 28)), 1)
    assert p.shape == (3, 2) and torch.allclose(p.sum(1), torch.ones(3))


@pytest.mark.slow
def test_detect_predict_separates_a_digit_from_noise(cli, tmp_path):
    """A trivially separable fixture (digits vs uniform noise), smoke-sized: predict must put each on its side."""
    from mnistlab.data import load_dataset
    from mnistlab.data.negatives import generate

    out = tmp_path / "fixture"
    code, _, err = cli("detect", "train", "--budget", "smoke", "--out", out, "--threads", "1", "--epochs", "2",
                       "--families", "uniform", "--no-lofo", "--set", "ood_dataset=")
    assert code == 0, err
    digits = load_dataset("mnist").test_x[:3]
    noise = generate("uniform", 3, seed=123)
    npy = tmp_path / "imgs.npy"
    np.save(npy, np.concatenate([digits, noise])[:, 0])  # (6, 28, 28)
    code, stdout, err = cli("detect", "predict", "--run", out, "--images", npy)
    assert code == 0, err
    rows = json.loads(stdout)["predictions"]
    assert [r["is_digit"] for r in rows] == [True] * 3 + [False] * 3
    assert min(r["p_digit"] for r in rows[:3]) > max(r["p_digit"] for r in rows[3:])
    # the same through a PNG file (the predict input rules): a digit
    from PIL import Image

    png = tmp_path / "d.png"
    Image.fromarray(digits[0, 0]).save(png)
    code, stdout, err = cli("detect", "predict", "--run", out, "--images", png)
    assert code == 0 and json.loads(stdout)["predictions"][0]["is_digit"] is True, err


def test_detect_errors_are_one_line(cli, tmp_path):
    code, _, err = cli("detect", "predict", "--run", tmp_path, "--images", tmp_path / "none.npy")
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = cli("detect", "train", "--budget", "smoke", "--families", "uniform,nope", "--out", tmp_path / "r")
    assert code == 2 and "unknown negative family 'nope'" in err


@pytest.mark.slow
def test_a_clothes_detector_is_judged_on_digits_never_on_its_own_data(cli, tmp_path):
    # trained on Fashion-MNIST, the default out-of-distribution set (Fashion-MNIST) would be its own data
    code, out, err = cli("detect", "train", "--dataset", "fashion-mnist", "--budget", "smoke", "--threads", "1",
                         "--set", "lofo=false", "--out", tmp_path / "f", "--json")
    assert code == 0, err
    m = json.loads(out)
    assert m["ood_dataset"] == "mnist" and 0.0 <= m["auroc_mnist"] <= 1.0
    code, _, err = cli("detect", "train", "--dataset", "fashion-mnist", "--budget", "smoke", "--set",
                       "ood_fallback=fashion-mnist", "--out", tmp_path / "g")
    assert code == 2 and "must differ" in err and not (tmp_path / "g" / "metrics.json").exists()
