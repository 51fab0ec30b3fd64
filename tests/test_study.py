"""The classification study: split protocols, every `study` command, posteriors and reject on smoke runs."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.errors import MnistlabError
from mnistlab.methods.supervised import SupervisedConfig, make_splits


def labels(n: int, k: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, k, n)


@pytest.mark.parametrize("split", ["60/40", "60/20/20"])
def test_resplits_are_disjoint_cover_the_base_and_keep_proportions(split):
    tr_y, te_y = labels(6000), labels(1000, seed=1)
    sp = make_splits(SupervisedConfig(split=split, split_seed=3), tr_y, te_y)
    parts = [sp["train"], sp["val"], sp["test"]]
    allidx = np.concatenate(parts)
    assert len(allidx) == len(np.unique(allidx)) == 7000  # disjoint and covering train + test
    fr = [len(p) / 7000 for p in parts]
    want = (0.6, 0.0, 0.4) if split == "60/40" else (0.6, 0.2, 0.2)
    assert fr == pytest.approx(want, abs=0.002)
    y = np.concatenate([tr_y, te_y])
    for p in parts:
        if len(p):  # stratified: class proportions within 1 % of the base's
            assert np.abs(np.bincount(y[p], minlength=10) / len(p) - np.bincount(y, minlength=10) / 7000).max() < 0.01
    again = make_splits(SupervisedConfig(split=split, split_seed=3), tr_y, te_y)
    assert all(np.array_equal(sp[k], again[k]) for k in sp)  # same split seed → same indices


def test_kfold_folds_are_disjoint_cover_development_and_never_touch_test():
    tr_y, te_y = labels(3000), labels(500, seed=1)
    k = 5
    folds = [make_splits(SupervisedConfig(split="60/20/20", folds=k, fold=i), tr_y, te_y) for i in range(k)]
    test = folds[0]["test"]
    dev = np.setdiff1d(np.arange(3500), test)
    vals = np.concatenate([f["val"] for f in folds])
    assert len(vals) == len(np.unique(vals)) and np.array_equal(np.sort(vals), dev)
    for f in folds:
        assert np.array_equal(f["test"], test)
        assert not np.intersect1d(f["train"], f["val"]).size and not np.intersect1d(f["train"], test).size
        assert len(f["train"]) + len(f["val"]) == len(dev)
    with pytest.raises(MnistlabError, match="fold must be"):
        make_splits(SupervisedConfig(folds=3, fold=3), tr_y, te_y)
    with pytest.raises(MnistlabError, match="unknown split"):
        make_splits(SupervisedConfig(split="50/50"), tr_y, te_y)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Run every study on --budget smoke once (one point each for the sweeps, 2 candidates + 2 folds for cv)."""
    root = tmp_path_factory.mktemp("study")
    out = {}
    for name, extra in (("iterations", ["--values", "1"]), ("lr", ["--values", "0.003"]),
                        ("hidden", ["--values", "32"]), ("cv", ["--k", "2"]), ("priors", [])):
        out[name] = root / name
        code = main(["study", name, "--budget", "smoke", "--out", str(out[name]), "--threads", "1", "--json", *extra])
        assert code == 0, name
    return out


@pytest.mark.slow
def test_every_study_writes_table_plot_and_json(studies):
    for name, d in studies.items():
        res = json.loads((d / "study.json").read_text())
        assert res["study"] == name and (d / "study.png").stat().st_size > 0 and (d / "study.md").exists()
    it = json.loads((studies["iterations"] / "study.json").read_text())
    row = it["rows"][0]
    assert row["value"] == 1 and 0 <= row["test_accuracy"] <= 1 and row["train_loss"] > 0
    assert (studies["iterations"] / "study_history.png").exists()
    # the 60/40 protocol: 60 % of the smoke base (512 + 500 images) trains, 40 % tests
    m = json.loads((studies["hidden"] / "points" / "hidden-32" / "metrics.json").read_text())
    assert m["split"] == "60/40" and m["train_images"] + m["test_images"] == 1012
    pri = json.loads((studies["priors"] / "study.json").read_text())
    assert pri["images"] == 70000 and pri["sum"] == pytest.approx(1)


@pytest.mark.slow
def test_cv_selects_on_validation_and_reports_kfold(studies):
    res = json.loads((studies["cv"] / "study.json").read_text())
    cands = res["candidates"]
    assert len(cands) == 2 and all("test_accuracy" not in c for c in cands)  # no test number to choose from
    best = max(cands, key=lambda c: (c["val_accuracy"], -c["val_loss"]))
    assert res["selected"]["name"] == best["name"] and 0 <= res["selected_test_accuracy"] <= 1
    kf = res["kfold"]
    assert kf["k"] == 2 and len(kf["folds"]) == 2 and kf["val_accuracy_std"] >= 0
    assert kf["val_accuracy_mean"] == pytest.approx(np.mean([f["val_accuracy"] for f in kf["folds"]]))


def test_bad_study_values_are_one_line_errors(cli, tmp_path):
    code, _, err = cli("study", "lr", "--budget", "smoke", "--values", "0.1,abc", "--out", tmp_path / "x")
    assert code == 2 and "--values" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("study", "hidden", "--budget", "smoke", "--model", "cnn-small", "--out", tmp_path / "y")
    assert code == 2 and "needs --model mlp" in err


@pytest.mark.slow
def test_posteriors_sum_to_one(studies, tmp_path, cli):
    run = studies["hidden"] / "points" / "hidden-32"
    code, out, err = cli("posteriors", "--run", run, "--out", tmp_path, "--show", "0,5", "--json")
    assert code == 0, err
    res = json.loads(out)
    p = np.load(tmp_path / "posteriors.npy")
    assert p.shape == (1012, 10) and p.dtype == np.float32 and res["images"] == 1012
    assert res["max_abs_sum_error"] == pytest.approx(np.abs(p.astype(np.float64).sum(1) - 1).max())
    assert res["max_abs_sum_error"] < 1e-5 and res["all_rows_sum_to_one"]
    assert (tmp_path / "posterior_test_5.png").exists() and (tmp_path / "priors.png").exists()
    assert sum(res["priors"]) == pytest.approx(1) and 0 <= res["recognition_rate"]["all"] <= 1


@pytest.mark.slow
def test_reject_writes_curves_and_a_reusable_rejector(studies, tmp_path, cli):
    from mnistlab import infer
    from mnistlab.data import load_dataset
    from mnistlab.evaluate.rejection import RULES, load_rejector
    from mnistlab.runs import load_run

    run = studies["cv"] / "points" / "fold0-of2-h32-lr0.003-ep1"  # has a validation part: calibrates on it
    code, out, err = cli("reject", "--run", run, "--out", tmp_path, "--ood", "fashion-mnist", "--noise", "50",
                         "--json")
    assert code == 0, err
    res = json.loads((tmp_path / "reject.json").read_text())
    assert res["calibration"]["on"] == "val"
    for rule in RULES:
        r = res["rules"][rule]
        assert len(r["thresholds"]) >= 12 and len(r["rejection_rate"]) == len(r["thresholds"])
        assert set(r["selective_accuracy"]) == {"0.99", "0.95", "0.9"}
        assert r["e_aurc"] == pytest.approx(r["aurc"] - r["aurc_optimal"]) and r["e_aurc"] >= -1e-12
    assert set(res["rejected_fraction"]) >= {"mnist test", "fashion-mnist", "noise-uniform", "noise-gaussian"}
    assert res["interpretation"] and all(isinstance(s, str) for s in res["interpretation"])
    for png in ("reject_rates.png", "reject_recognition.png", "risk_coverage.png", "reject_ood.png"):
        assert (tmp_path / png).stat().st_size > 0, png
    # the web page's contract: the rejector lives in the run folder and applies to logits + features
    rej = load_rejector(run)
    lr = load_run(run)
    x = load_dataset("mnist").test_x[:20]
    d = rej.decide(infer.logits(lr.model, x), infer.embeddings(lr.model, x))
    assert d["pred"].shape == (20,) and d["distance"]["reject"].dtype == bool
    assert set(d) >= set(RULES) | {"pred", "probs", "reject_any"}
    code, _, err = cli("reject", "--run", tmp_path / "missing")
    assert code == 2 and "not a finished run folder" in err


def test_the_quick_study_answers_part_2_on_real_data(tmp_path):
    """`mnistlab run`'s quick Part 2: ≥ 5 values per study, the real 60/40 split (no subset), k ≥ 3."""
    from mnistlab.methods.recipes import resolve_config
    from mnistlab.pipeline import Context
    from mnistlab.pipeline.classification import study_config

    ctx = Context(tmp_path, "quick", tmp_path)
    for name in ("iterations", "lr", "hidden"):
        cfg = study_config(ctx, name)
        assert len(cfg.values) >= 5 and cfg.split == "60/40" and cfg.budget == "quick", name
        point = resolve_config("supervised", budget=cfg.budget, overrides={**cfg.sets, "split": cfg.split})
        assert point.train_subset == 0 and point.test_subset == 0  # every image of the split
    cv = study_config(ctx, "cv")
    assert cv.k >= 3 and len(cv.hiddens) * len(cv.lrs) * len(cv.epochs_list) >= 4
