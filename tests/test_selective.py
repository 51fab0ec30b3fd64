"""Selective scores: temperature fitted by NLL, rules ranked on validation, and test labels never read by the fit."""
import json

import numpy as np
import pytest

from mnistlab.errors import MnistlabError
from mnistlab.evaluate import selective
from mnistlab.evaluate.rejection import aurc


def _fake(n, seed, *, scale=4.0):
    """Logits that are over-confident by `scale`: true posteriors softmax(z), reported logits scale·z."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, 10))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(10, p=row) for row in p])
    return scale * z, y


def test_temperature_recovers_the_over_confidence():
    lg, y = _fake(4000, 0, scale=4.0)
    assert selective.fit_temperature(lg, y) == pytest.approx(4.0, rel=0.15)
    with pytest.raises(MnistlabError, match="integer labels"):
        selective.fit_temperature(lg, np.full(len(y), np.nan))


def test_fit_reads_validation_only_and_scores_need_no_labels():
    val_lg, val_y = _fake(800, 1)
    test_lg, test_y = _fake(500, 2)
    views = np.stack([val_lg + np.random.default_rng(k).normal(0, 0.5, val_lg.shape) for k in range(3)])
    dist = np.random.default_rng(3).gamma(2.0, 1.0, len(val_y))
    sel = selective.fit_selector(val_lg, val_y, view_logits=views, distance=dist)
    assert sel.info["chosen_on"] == "validation" and sel.info["validation_images"] == 800
    # scoring test images takes no labels at all: poisoned labels cannot change a decision
    tv = np.stack([test_lg] * 3)
    s = sel.score(test_lg, view_logits=tv, distance=np.ones(len(test_lg)))
    assert s.shape == (500,) and np.isfinite(s).all()
    # the fit is a function of the validation arrays alone: the same validation data → the same selector
    again = selective.fit_selector(val_lg, val_y, view_logits=views, distance=dist)
    assert again.to_json() == sel.to_json()
    assert json.loads(json.dumps(sel.to_json()))["rule"] in selective.RULES


def test_run_selector_reads_only_the_validation_split(tmp_path, monkeypatch):
    """select.fit_run_selector is handed validation arrays; the test labels of the dataset are poisoned."""
    import torch

    from mnistlab import select

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(784, 10)

        def forward(self, x):
            return self.lin(x.flatten(1))

        def embed(self, x):
            return x.flatten(1)[:, :8]

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    vx = rng.integers(0, 256, (60, 1, 28, 28), dtype=np.uint8)
    vy = rng.integers(0, 10, 60)
    spec = {"in_shape": [1, 28, 28], "num_classes": 10}
    sel = select.fit_run_selector(tmp_path, val_x=vx, val_y=vy, model=Tiny(), spec=spec)
    assert (tmp_path / "selector.json").exists() and select.load_selector(tmp_path).rule == sel.rule
    dec = select.decide(sel, Tiny(), spec, vx[:5], classes=[str(i) for i in range(10)])
    assert len(dec) == 5 and all((d["reason"] is None) != d["rejected"] for d in dec)


def test_selector_json_is_checked():
    with pytest.raises(MnistlabError, match="unknown rule"):
        selective.Selector.from_json({"rule": "eval", "t": 1})
    with pytest.raises(MnistlabError, match="finite"):
        selective.Selector.from_json({"rule": "msp-t", "t": float("nan"), "alpha": 0, "dist_scale": 1,
                                      "threshold": 0.5})


def test_views_rank_unstable_mistakes_last():
    rng = np.random.default_rng(4)
    n = 400
    y = rng.integers(0, 10, n)
    lg = np.zeros((n, 10))
    lg[np.arange(n), y] = 8.0
    wrong = rng.random(n) < 0.05
    lg[wrong] = 0
    lg[wrong, (y[wrong] + 1) % 10] = 8.0  # confident mistakes: msp cannot see them
    views = np.stack([lg] * 4)
    views[1:, wrong] = 0  # …but they do not survive the shifted views
    ok = lg.argmax(1) == y
    sc = selective.scores(lg, view_logits=views)
    assert aurc(sc["views"], ok) < aurc(sc["msp"], ok) / 5
