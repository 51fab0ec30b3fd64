"""The seed report's 112 features on hand-made images with known projections and profiles."""
import numpy as np
import torch

from mnistlab.data.features import profile_features
from mnistlab.data.preprocess import input_shape, preprocess


def _image(pixels, value=255):
    x = np.zeros((1, 1, 28, 28), np.uint8)
    for r, c in pixels:
        x[0, 0, r, c] = value
    return x


def _parts(f):
    f = f[0].numpy() * 28  # back to counts / pixel positions
    return f[:28], f[28:56], f[56:84], f[84:112]


def test_known_projections_and_profiles():
    # row 3: ink in columns 5..9; row 10: ink at 0 (touches the left border) and 27 (right border); rest empty
    x = _image([(3, c) for c in range(5, 10)] + [(10, 0), (10, 27)])
    cols, rows, left, right = _parts(preprocess(x, {"features": "profile112"}))
    exp_cols = np.zeros(28)
    exp_cols[5:10] = 1
    exp_cols[[0, 27]] = 1
    np.testing.assert_allclose(cols, exp_cols, atol=1e-6)
    exp_rows = np.zeros(28)
    exp_rows[3], exp_rows[10] = 5, 2
    np.testing.assert_allclose(rows, exp_rows, atol=1e-6)
    assert left[3] == 5 and right[3] == 27 - 9  # first ink column; distance of the last from the right edge
    assert left[10] == 0 and right[10] == 0  # ink touching the borders
    empty = [r for r in range(28) if r not in (3, 10)]
    assert np.all(left[empty] == 28) and np.all(right[empty] == 28)  # empty row: 28, not 0 like border ink
    # the report's convention: raw values, empty rows give 0
    _, _, left_r, right_r = _parts(preprocess(x, {"features": "profile112-report"}) / 28)
    assert np.all(left_r[empty] == 0) and left_r[3] == 5 and right_r[3] == 18


def test_empty_image_and_threshold():
    f = preprocess(np.zeros((2, 1, 28, 28), np.uint8), {"features": "profile112"})
    assert f.shape == (2, 112) and f.dtype == torch.float32
    assert torch.all(f[:, :56] == 0) and torch.all(f[:, 56:] == 1)  # no ink: counts 0, profiles 28/28
    # ink = pixel ≥ 34 (the report's threshold), whether binarised first or not
    faint, ink = _image([(5, 5)], 33), _image([(5, 5)], 34)
    assert preprocess(faint, {"features": "profile112"})[0, :28].sum() == 0
    assert preprocess(ink, {"features": "profile112"})[0, 5] * 28 == 1
    assert torch.equal(preprocess(ink, {"binarize": 34, "features": "profile112"}),
                       preprocess(ink, {"features": "profile112"}))
    assert input_shape({"features": "profile112"}, (1, 28, 28)) == (112,)


def test_matches_a_per_image_loop_on_real_digits():
    from mnistlab.data import load_dataset

    x = np.array(load_dataset("mnist").test_x[:200])
    fast = profile_features(torch.from_numpy(np.ascontiguousarray(x)).float() / 255).numpy() * 28
    for i in range(0, 200, 7):
        ink = x[i, 0] >= 34
        left = [np.flatnonzero(r)[0] if r.any() else 28 for r in ink]
        right = [27 - np.flatnonzero(r)[-1] if r.any() else 28 for r in ink]
        ref = np.concatenate([ink.sum(0), ink.sum(1), left, right])
        np.testing.assert_allclose(fast[i], ref, atol=1e-4)


def test_binarize_preprocessing():
    x = np.array([[[[0, 33, 34, 255]]]], np.uint8)
    assert preprocess(x, {"binarize": 34}).flatten().tolist() == [0, 0, 1, 1]
