"""Augmentations: shape, dtype and range kept, identity at zero strength, deterministic, and doing what they say."""
import pytest
import torch

from mnistlab.data import augment
from tests.conftest import digits_like

X = torch.from_numpy(digits_like(6)).float() / 255  # (6, 1, 28, 28) in [0, 1]

CASES = [  # (function, zero-strength kwargs, full-strength kwargs)
    (augment.random_affine, dict(degrees=0, translate=0, scale=(1.0, 1.0)), dict(degrees=15, translate=0.1)),
    (augment.random_shift, dict(pixels=0), dict(pixels=2)),
    (augment.elastic, dict(alpha=0), dict(alpha=2.0)),
    (augment.stroke, dict(radius=0), dict(radius=2)),
    (augment.perspective, dict(distortion=0), dict(distortion=0.2)),
    (augment.digit_augment, dict(strength=0), dict(strength=1.0)),
    (augment.extra_stroke, dict(length=(0.0, 0.0)), dict(length=(5.0, 12.0), width=2.0)),
]


@pytest.mark.parametrize("fn,zero,full", CASES, ids=[c[0].__name__ for c in CASES])
def test_shape_dtype_range_identity(fn, zero, full):
    g = torch.Generator().manual_seed(0)
    assert torch.equal(fn(X, g, **zero), X)
    y = fn(X, torch.Generator().manual_seed(1), **full)
    assert y.shape == X.shape and y.dtype == X.dtype
    assert float(y.min()) >= 0 and float(y.max()) <= 1 + 1e-6
    assert not torch.allclose(y, X)  # it does something at full strength
    assert torch.equal(y, fn(X, torch.Generator().manual_seed(1), **full))  # a function of the generator


def test_stroke_dilates_and_erodes():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:16, 10:16] = 1.0  # a 6×6 square
    y = augment.stroke(x, torch.Generator().manual_seed(0), radius=1)
    mass = y.sum((1, 2, 3))
    assert set(mass.tolist()) == {16.0, 36.0, 64.0}  # eroded 4×4, unchanged, dilated 8×8


def test_perspective_small_distortion_keeps_the_digit():
    y = augment.perspective(X, torch.Generator().manual_seed(0), distortion=0.02)
    assert torch.allclose(y.sum((1, 2, 3)), X.sum((1, 2, 3)), rtol=0.15)
    assert (y - X).abs().mean() < 0.05


def test_offline_expansion():
    g = torch.Generator().manual_seed(0)
    y = augment.expand(X, g, copies=3)
    assert y.shape == (24, 1, 28, 28)
    assert torch.equal(y[:6], X)  # the originals first, then `copies` variants of each
    assert not torch.equal(y[6:12], X)


def test_extra_stroke_adds_one_bar_of_the_asked_length():
    x = torch.zeros(256, 1, 28, 28)
    y = augment.extra_stroke(x, torch.Generator().manual_seed(0), length=(10.0, 10.0), width=2.0)
    ink = y.sum((1, 2, 3))  # a 10 × 2 px bar plus round-ish antialiased ends: ≈ 20–26 px of ink
    assert float(ink.min()) > 18 and float(ink.max()) < 28
    assert torch.equal(torch.maximum(X, augment.extra_stroke(X, torch.Generator().manual_seed(0), length=(8.0, 8.0))),
                       augment.extra_stroke(X, torch.Generator().manual_seed(0), length=(8.0, 8.0)))  # only adds ink
