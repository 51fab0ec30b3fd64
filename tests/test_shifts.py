"""Shifted-set builders are pure functions with the intended effect on hand-made images."""
import numpy as np
import pytest
import torch

from mnistlab.data import shifts
from mnistlab.errors import MnistlabError


def _img(points, n=1):
    x = np.zeros((n, 1, 28, 28), np.uint8)
    for r, c in points:
        x[:, 0, r, c] = 255
    return x


def _com(x):
    x = x[0, 0].astype(float)
    ys, xs = np.indices(x.shape)
    return (ys * x).sum() / x.sum(), (xs * x).sum() / x.sum()


def test_every_set_is_pure_and_shaped():
    x = _img([(r, 14) for r in range(6, 22)], n=3)
    before = x.copy()
    for name in shifts.SETS:
        a, b = shifts.shift(name, x), shifts.shift(name, x)
        assert a.shape == x.shape and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(x, before)  # the input is not modified


def test_stroke_width_on_a_dot_and_a_bar():
    dot = _img([(14, 14)])
    assert (shifts.shift("thick", dot) > 0).sum() == 9
    assert shifts.shift("thin", dot).max() == 0
    bar = _img([(r, c) for r in range(8, 20) for c in (13, 14, 15)])
    thin = shifts.shift("thin", bar)
    assert (thin[0, 0, 9:19, 14] == 255).all() and thin[0, 0, 12, 13] == 0


def test_low_resolution_keeps_flat_images_and_blurs_edges():
    flat = np.full((1, 1, 28, 28), 200, np.uint8)
    np.testing.assert_array_equal(shifts.shift("lowres-8", flat), flat)
    dot = _img([(14, 14)])
    lo = shifts.shift("lowres-8", dot)
    assert lo.max() < 100 and (lo > 0).sum() > 4
    assert shifts.shift("blur", dot).max() < 60


def test_geometry_moves_the_mass_as_described():
    bar = _img([(r, 14) for r in range(6, 22)], n=2)
    y0, x0 = _com(bar)
    off = shifts.shift("off-centre", bar)  # image 0: direction 0 → +4 px in x
    y1, x1 = _com(off)
    assert abs(x1 - x0 - 4) < 0.3 and abs(y1 - y0) < 0.3
    slant = shifts.shift("slant", bar)[0:1, 0:1]  # image 0: +0.35 → top leans right
    top, bottom = slant[0, 0, 7].argmax(), slant[0, 0, 20].argmax()
    assert top > bottom
    small = shifts.shift("small", bar)
    assert (small[0, 0].max(1) > 60).sum() < 12


def test_inverted_is_undone_by_invert(tmp_path):
    from mnistlab.data.images import load_npy

    x = _img([(10, 10), (12, 15)])
    inv = shifts.shift("inverted", x)
    assert inv[0, 0, 0, 0] == 255 and inv[0, 0, 10, 10] == 0
    np.save(tmp_path / "inv.npy", inv[:, 0])
    np.testing.assert_array_equal(load_npy(tmp_path / "inv.npy", invert=True), x)


def test_printed_digits_and_errors():
    x, y = shifts.printed(20, seed=0)
    assert x.shape == (20, 1, 28, 28) and x.dtype == np.uint8 and set(y) <= set(range(10))
    np.testing.assert_array_equal(shifts.printed(20, seed=0)[0], x)
    with pytest.raises(MnistlabError, match="unknown shifted set"):
        shifts.shift("sideways", x)
    with pytest.raises(MnistlabError, match="uint8"):
        shifts.shift("thick", x[:, 0])


def test_random_view_changes_only_a_fraction_and_is_seeded():
    x = torch.from_numpy(_img([(r, 14) for r in range(6, 22)], n=200)).float() / 255
    a = shifts.random_view(x, torch.Generator().manual_seed(0), p=0.5)
    b = shifts.random_view(x, torch.Generator().manual_seed(0), p=0.5)
    assert torch.equal(a, b) and a.shape == x.shape and 0 <= float(a.min()) and float(a.max()) <= 1
    changed = (a - x).abs().flatten(1).amax(1) > 1e-6
    assert 0.3 < float(changed.float().mean()) < 0.7
    assert torch.equal(shifts.random_view(x, torch.Generator(), p=0.0), x)


def test_supervised_runs_on_mnist_train_with_the_robust_view_by_recipe():
    """The choice made on validation (benchmarks/robust_choice.py): MNIST's supervised recipe sets robust=0.5; other
    data keep the default, a flag wins, and a few-label method named by --method gets no recipe."""
    from mnistlab.methods.recipes import config_sources, resolve_config

    assert config_sources("supervised")["robust"] == (0.5, "recipe")
    assert resolve_config("supervised", overrides={"dataset": "fashion-mnist"}).robust == 0.0
    assert resolve_config("supervised", overrides={"dataset": "folder:/nowhere"}).robust == 0.0
    assert config_sources("supervised", overrides={"robust": "0"})["robust"] == (0.0, "flag")
    assert resolve_config("fixmatch").sinkhorn == 0


def test_dilate_is_a_3x3_max_pool_on_images():
    import torch.nn.functional as F

    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    x[0] = 0
    x[1, 0, 0, 0] = 1  # a corner pixel: the zero padding must not clip it
    assert torch.equal(shifts.dilate(x), F.max_pool2d(x, 3, stride=1, padding=1))


def test_random_view_reads_nothing_back_from_the_device(monkeypatch):
    """On a GPU a `.item()`, `float(t)` or `nonzero` in the view would stall every step: none may run."""
    x = torch.from_numpy(_img([(r, 14) for r in range(6, 22)], n=64)).float() / 255
    for name in ("item", "__float__", "__int__", "__bool__", "nonzero", "tolist"):
        def refuse(*a, _n=name, **k):
            raise AssertionError(f"random_view called Tensor.{_n}")
        monkeypatch.setattr(torch.Tensor, name, refuse)
    out = shifts.random_view(x, torch.Generator().manual_seed(3), p=0.5)
    monkeypatch.undo()
    assert out.shape == x.shape and not torch.equal(out, x)
