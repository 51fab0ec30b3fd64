"""Reject option on hand-made logits/features with known answers: sweeps, risk–coverage, AURC, Mahalanobis, Rejector."""
import math

import numpy as np
import pytest

from mnistlab.errors import MnistlabError
from mnistlab.evaluate import rejection as R


def logits_with_top(p1: list[float], k: int = 10) -> np.ndarray:
    """Logits whose softmax has max posterior p1[i] on class 0 and the rest spread evenly."""
    out = np.zeros((len(p1), k))
    for i, p in enumerate(p1):
        out[i, 0] = math.log(p * (k - 1) / (1 - p))
    return out


def test_posterior_scores_known_values():
    lg = logits_with_top([0.5, 0.9, 0.99])
    s = R.posterior_scores(lg)
    np.testing.assert_allclose(s["chow"], [0.5, 0.9, 0.99], atol=1e-12)
    np.testing.assert_allclose(s["margin"], [0.5 - 0.5 / 9, 0.9 - 0.1 / 9, 0.99 - 0.01 / 9], atol=1e-12)


def test_sweep_known_answers():
    conf = np.array([0.2, 0.5, 0.7, 0.9, 0.95, 0.99])
    correct = np.array([False, False, True, True, False, True])
    s = R.sweep(conf, correct, [0.0, 0.6, 0.92, 1.0])
    assert s["rejection_rate"] == pytest.approx([0, 2 / 6, 4 / 6, 1])
    assert s["accuracy_accepted"][:3] == pytest.approx([3 / 6, 3 / 4, 1 / 2])
    assert math.isnan(s["accuracy_accepted"][3])  # nothing accepted
    for i in range(4):  # recognition + error + rejection = 1 over all images
        assert s["recognition_rate"][i] + s["error_rate"][i] + s["rejection_rate"][i] == pytest.approx(1)
    # distance direction: reject above the threshold
    d = R.sweep(np.array([1.0, 2.0, 3.0]), np.array([True, True, False]), [2.5, 1.5], reject_below=False)
    assert d["rejection_rate"] == pytest.approx([1 / 3, 2 / 3]) and d["accuracy_accepted"] == pytest.approx([1, 1])


def test_sweep_all_accepted_at_zero_and_monotone():
    rng = np.random.default_rng(0)
    lg = rng.normal(size=(500, 10)) * 3
    y = rng.integers(0, 10, 500)
    s = R.posterior_scores(lg)
    correct = lg.argmax(1) == y
    for rule in ("chow", "margin"):
        sw = R.sweep(s[rule], correct, R.POSTERIOR_GRID)
        assert len(sw["thresholds"]) >= 12
        assert sw["rejection_rate"][0] == 0 and sw["accuracy_accepted"][0] == pytest.approx(correct.mean())
        assert np.all(np.diff(sw["rejection_rate"]) >= 0)
    d = rng.random(500)
    sw = R.sweep(d, correct, np.quantile(d, R.DISTANCE_QUANTILES), reject_below=False)
    assert np.all(np.diff(sw["rejection_rate"]) <= 0) and sw["rejection_rate"][-1] == 0


def test_aurc_oracle_formula_and_constant_confidence():
    assert R.aurc_optimal(0.0) == 0 and R.aurc_optimal(1.0) == 1
    n, n_err = 20000, 1000
    correct = np.r_[np.ones(n - n_err, bool), np.zeros(n_err, bool)]
    oracle = np.r_[np.ones(n - n_err), np.zeros(n_err)] + np.linspace(0, 0.5, n)  # every error after every success
    r = n_err / n
    assert R.aurc(oracle, correct) == pytest.approx(r + (1 - r) * math.log(1 - r), rel=2e-3)
    # one confidence for all: every coverage has risk r exactly (ties in expectation), so AURC = r
    assert R.aurc(np.ones(n), correct) == pytest.approx(r)
    # the worst ranking (errors first) is far above, and E-AURC ≥ 0 for any ranking
    worst = R.selective_summary(-oracle, correct)
    assert worst["aurc"] > 5 * worst["aurc_optimal"] and worst["e_aurc"] > 0
    rnd = R.selective_summary(np.random.default_rng(1).random(n), correct)
    assert rnd["e_aurc"] > 0 and rnd["aurc"] == pytest.approx(r, rel=0.1)


def test_risk_coverage_ignores_order_within_ties():
    conf = np.array([1, 1, 1, 1, 0.5, 0.5])
    a = R.aurc(conf, np.array([True, True, False, True, False, True]))
    b = R.aurc(conf, np.array([False, True, True, True, True, False]))
    assert a == pytest.approx(b)
    cov, risk = R.risk_coverage(conf, np.array([True, True, False, True, False, True]))
    assert cov[-1] == 1 and risk[-1] == pytest.approx(2 / 6) and risk[3] == pytest.approx(1 / 4)


def test_selective_accuracy_perfect_ranking():
    correct = np.r_[np.ones(90, bool), np.zeros(10, bool)]
    conf = np.r_[np.full(90, 0.9), np.full(10, 0.1)]
    sa = R.selective_accuracy(conf, correct)
    assert sa["0.9"] == 1.0 and sa["0.95"] == pytest.approx(90 / 95) and sa["0.99"] == pytest.approx(90 / 99)


def test_mahalanobis_matches_euclidean_with_identity_and_finds_far_points():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [3.0, 4.0]])
    d = R.mahalanobis(np.array([[3.0, 4.0], [0.0, 0.0]]), means, np.eye(2))
    np.testing.assert_allclose(d, [[5, 0], [0, 5]], atol=1e-9)
    # two elongated classes sharing a covariance: a point along the long axis is near, across it is far
    cov = np.array([[4.0, 0.0], [0.0, 0.25]])
    f = np.r_[rng.multivariate_normal([0, 0], cov, 4000), rng.multivariate_normal([10, 0], cov, 4000)]
    y = np.r_[np.zeros(4000, int), np.ones(4000, int)]
    mu, prec = R.fit_gaussians(f, y, 2)
    np.testing.assert_allclose(mu, [[0, 0], [10, 0]], atol=0.1)
    along, across = R.mahalanobis(np.array([[4.0, 0.0], [0.0, 4.0]]), mu, prec).min(1)
    assert along == pytest.approx(2, rel=0.05) and across == pytest.approx(8, rel=0.05)
    with pytest.raises(MnistlabError, match="no calibration image"):
        R.fit_gaussians(f, y, 3)


def test_rejector_roundtrip_and_decide(tmp_path):
    rng = np.random.default_rng(0)
    k, dim, n = 3, 5, 600
    centres = rng.normal(size=(k, dim)) * 6
    y = rng.integers(0, k, n)
    feats = centres[y] + rng.normal(size=(n, dim))
    lg = np.eye(k)[y] * 6 + rng.normal(size=(n, k))
    rej = R.fit_rejector(lg, feats, y, num_classes=k, coverage=0.9, keep=0.99)
    rej.save(tmp_path)
    loaded = R.load_rejector(tmp_path)
    assert loaded.thresholds == pytest.approx(rej.thresholds) and loaded.info["chosen_on"] == "train"
    out = loaded.decide(lg, feats)
    assert out["pred"].shape == (n,) and out["probs"].shape == (n, k)
    assert out["chow"]["reject"].mean() == pytest.approx(0.1, abs=0.01)  # the 90 % coverage target
    assert out["distance"]["reject"].mean() <= 0.011 and not out["distance"]["reject_below"]
    far = loaded.decide(lg[:10], feats[:10] + 100)  # far from every class: all rejected by distance
    assert far["distance"]["reject"].all() and far["reject_any"].all()
    with pytest.raises(MnistlabError, match="features must be"):
        loaded.decide(lg, feats[:, :2])
    with pytest.raises(MnistlabError, match="rejector"):
        R.load_rejector(tmp_path / "nowhere")


def test_json_has_no_nan():
    text = R.dumps({"a": [1.0, float("nan")], "b": np.float32(2), "c": float("inf")})
    assert "NaN" not in text and "Infinity" not in text and '"b": 2.0' in text
