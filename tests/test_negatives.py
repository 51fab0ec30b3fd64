"""Non-digit generators: every registered family has the right shape, dtype, range, seed determinism, and differs
from MNIST's statistics the way it is meant to."""
import numpy as np
import pytest

from mnistlab.data import negatives as neg
from mnistlab.errors import MnistlabError

FAMILIES = neg.family_names()


def _stats(x: np.ndarray) -> dict:
    """Image statistics on uint8 (N, 1, 28, 28): ink in the 3-px frame, ink, mid-grey (neither paper nor ink)."""
    x = x[:, 0].astype(np.float64)
    frame = np.ones((28, 28), bool)
    frame[3:-3, 3:-3] = False
    return {"border": float((x[:, frame] > 128).mean()), "ink": float((x > 128).mean()),
            "mid": float(((x > 40) & (x < 215)).mean())}


# how each family must differ from MNIST digits (MNIST: border ink ≈ 0.003, ink ≈ 0.12, mid-grey ≈ 0.07)
EXPECT = {
    "uniform": ("mid", ">", 5), "gaussian": ("mid", ">", 5), "salt-pepper": ("border", ">", 20),
    "smooth-noise": ("mid", ">", 4), "blobs": ("mid", ">", 3), "lines": ("border", ">", 10),
    "curves": ("border", ">", 10), "shapes": ("border", ">", 10), "natural-patches": ("mid", ">", 5),
    "natural-edges": ("mid", ">", 4), "digit-tiles": ("border", ">", 10), "digit-occluded": ("ink", "<", 0.4),
    "digit-overlay": ("ink", ">", 1.8),
    # near-OOD families look like writing on purpose: their statistics sit close to MNIST's
    "letters": ("mid", ">", 1.5), "pen-strokes": ("mid", ">", 1.2), "digit-fragments": ("ink", "<", 0.7),
    "digit-pairs": ("border", "<", 0.6),
}


@pytest.fixture(scope="module")
def mnist_stats():
    from mnistlab.data import load_dataset

    return _stats(load_dataset("mnist").test_x[:1000])


def test_every_family_has_an_expectation_and_a_kind():
    assert set(FAMILIES) == set(EXPECT), "a new family needs its MNIST-difference expectation here"
    for kind in neg.KINDS:
        assert neg.family_names(kind), f"no family of kind {kind}"


@pytest.mark.parametrize("family", FAMILIES)
def test_family_shape_dtype_range_determinism(family, mnist_stats):
    x = neg.generate(family, 200, seed=3)
    assert x.shape == (200, 1, 28, 28) and x.dtype == np.uint8
    assert x.max() >= 100 and x.std() > 5, "images must have visible, varied content"
    per_image = x.reshape(200, -1)
    assert len(np.unique(per_image, axis=0)) == 200, "no two images alike"
    np.testing.assert_array_equal(neg.generate(family, 200, seed=3), x)
    assert not np.array_equal(neg.generate(family, 200, seed=4), x)
    stat, op, factor = EXPECT[family]
    got, ref = _stats(x)[stat], mnist_stats[stat]
    assert (got > factor * ref) if op == ">" else (got < factor * ref), (family, stat, got, ref)


def test_chunked_generation_and_empty():
    n = neg.CHUNK + 5
    x = neg.generate("lines", n, seed=0)
    assert x.shape == (n, 1, 28, 28)
    assert neg.generate("uniform", 0, seed=0).shape == (0, 1, 28, 28)


def test_hard_families_use_the_given_digits():
    from tests.conftest import digits_like

    bars = digits_like(20, seed=1)  # horizontal bars: their shuffled tiles hold only bar pieces
    x = neg.generate("digit-tiles", 30, seed=0, digits=bars)
    assert x.shape == (30, 1, 28, 28) and set(np.unique(x)) <= {0, 255}
    with pytest.raises(MnistlabError, match="digit-based negatives need"):
        neg.generate("digit-tiles", 5, seed=0, digits=np.zeros((5, 28, 28), np.float32))


def test_mix_is_balanced_deterministic_and_labelled():
    fams = ["uniform", "lines", "blobs"]
    x, fam = neg.generate_mix(31, seed=5, families=fams)
    assert x.shape == (31, 1, 28, 28) and fam.dtype == np.int64
    assert sorted(np.bincount(fam).tolist()) == [10, 10, 11]
    x2, fam2 = neg.generate_mix(31, seed=5, families=fams)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(fam, fam2)
    # the family index is right: uniform-noise images are the ones with mid-grey everywhere
    mid = ((x > 40) & (x < 215)).mean(axis=(1, 2, 3))
    assert mid[fam == 0].min() > mid[fam != 0].max()


def test_weighted_mix_follows_the_weights_and_even_weights_change_nothing():
    fams = ["uniform", "lines", "blobs"]
    assert neg.mix_counts(31, fams) == [11, 10, 10]  # the even split of before: the first families take the rest
    assert neg.mix_counts(40, fams, {"lines": 2.0}) == [10, 20, 10]
    assert neg.mix_counts(7, fams, {"uniform": 0.0, "blobs": 0.5}) == [0, 5, 2]
    assert sum(neg.mix_counts(1001, fams, {"uniform": 0.3, "lines": 0.3, "blobs": 0.4})) == 1001
    x, fam = neg.generate_mix(31, seed=5, families=fams)
    xw, famw = neg.generate_mix(31, seed=5, families=fams, weights={f: 2.0 for f in fams})
    np.testing.assert_array_equal(x, xw)
    np.testing.assert_array_equal(fam, famw)
    _, fam = neg.generate_mix(40, seed=5, families=fams, weights={"lines": 2.0})
    assert np.bincount(fam).tolist() == [10, 20, 10]
    for bad in ({"lines": -1.0}, {f: 0.0 for f in fams}, {"lines": float("nan")}):
        with pytest.raises(MnistlabError, match="family weights"):
            neg.mix_counts(10, fams, bad)


def test_near_share_puts_that_share_on_the_families_that_look_like_writing():
    fams = ["uniform", "lines", "letters", "pen-strokes"]
    assert set(neg.NEAR) <= set(neg.family_names())
    w = neg.near_weights(fams, 0.6)
    assert neg.mix_counts(1000, fams, w) == [200, 200, 300, 300]
    assert neg.near_weights(fams, 0.0) is None and neg.near_weights(["uniform", "lines"], 0.6) is None


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(MnistlabError, match="unknown negative family 'nope'.*uniform"):
        neg.generate("nope", 3, seed=0)


def test_negatives_cli(cli, tmp_path):
    import json

    code, out, _ = cli("negatives", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["family"] for r in rows} == set(FAMILIES)
    png, npy = tmp_path / "g.png", tmp_path / "g.npy"
    code, _, err = cli("negatives", "show", "--family", "shapes", "--n", "8", "--out", png, "--npy", npy)
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_array_equal(np.load(npy), neg.generate("shapes", 8, seed=0))
    code, _, err = cli("negatives", "show", "--family", "all", "--n", "4", "--out", tmp_path / "all.png")
    assert code == 0 and (tmp_path / "all.png").exists(), err
    code, _, err = cli("negatives", "show", "--family", "nope", "--out", png)
    assert code == 2 and "unknown negative family" in err
