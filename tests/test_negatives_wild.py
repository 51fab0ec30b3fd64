"""The near-OOD negative families (letters from fonts, pen strokes, digit fragments and pairs): seeded, shaped,
drawing from the right sources only — fonts never render a digit, fragments read only MNIST's training split."""
import numpy as np
import pytest

from mnistlab.data import fonts
from mnistlab.data import negatives as neg
from mnistlab.errors import MnistlabError

NEW = ["letters", "pen-strokes", "digit-fragments", "digit-pairs"]


class _TrainOnly:
    """A dataset whose test split cannot be read: a family that touches it fails the test."""

    def __init__(self, train_x):
        self.train_x = train_x

    @property
    def test_x(self):
        raise AssertionError("a negative family read MNIST test images")

    test_y = test_x


@pytest.fixture
def train_only(monkeypatch):
    from mnistlab import data
    from tests.conftest import digits_like

    ds = _TrainOnly(digits_like(50, seed=2))
    monkeypatch.setattr(data, "load_dataset", lambda name, **kw: ds)
    return ds


@pytest.mark.parametrize("family", NEW)
def test_new_family_seeded_shape_range(family, train_only):
    x = neg.generate(family, 40, seed=5)
    assert x.shape == (40, 1, 28, 28) and x.dtype == np.uint8 and x.max() >= 100
    np.testing.assert_array_equal(neg.generate(family, 40, seed=5), x)
    assert not np.array_equal(neg.generate(family, 40, seed=6), x)


def test_fragments_draw_only_from_the_training_split(train_only):
    for f in ("digit-fragments", "digit-pairs"):
        assert neg.FAMILIES.info(f)["kind"] == "fragment"
        x = neg.generate(f, 20, seed=0)  # default digits: the (patched) dataset's train_x, never test_x
        assert x.max() > 0


def test_font_and_pen_families_never_load_mnist(monkeypatch):
    from mnistlab import data

    def boom(*a, **k):
        raise AssertionError("loaded MNIST")

    monkeypatch.setattr(data, "load_dataset", boom)
    for f in ("letters", "pen-strokes"):
        assert neg.generate(f, 10, seed=0).shape == (10, 1, 28, 28)


def test_font_splits_are_disjoint_by_foundry_and_letters_exclude_digits():
    train, held = fonts.font_files("train"), fonts.font_files("held-out")
    assert train and held and not set(train) & set(held)
    assert not {fonts.foundry(f) for f in train} & {fonts.foundry(f) for f in held}
    assert not set(fonts.NON_DIGITS) & set(fonts.DIGITS + "OoIlZzSsB")
    a = neg.generate("letters", 10, seed=1, fonts="train")
    b = neg.generate("letters", 10, seed=1, fonts="held-out")
    assert not np.array_equal(a, b)


def test_mnist_placement_centres_the_mass_in_a_20px_box():
    glyph = np.zeros((40, 10), np.float32)
    glyph[:, 3:7] = 1.0  # a tall bar
    x = fonts.mnist_place(glyph)
    rows, cols = np.flatnonzero(x.max(1) > 0.05), np.flatnonzero(x.max(0) > 0.05)
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 <= 6
    ys, xs = np.indices(x.shape)
    assert abs((ys * x).sum() / x.sum() - 14) <= 1 and abs((xs * x).sum() / x.sum() - 14) <= 1


def test_no_fonts_gives_one_clear_error(monkeypatch):
    monkeypatch.setattr(fonts, "_all_font_files", lambda: ())
    with pytest.raises(MnistlabError, match="no font files"):
        neg.generate("letters", 3, seed=0)
    assert not neg.available("letters") and neg.available("lines")
