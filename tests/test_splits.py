"""Splits: determinism, class balance, disjointness, coverage, stratification and k-fold."""
import numpy as np
import pytest

from mnistlab.data.splits import balanced_subset, holdout, kfold, labelled_split
from mnistlab.errors import MnistlabError


@pytest.fixture(scope="module")
def labels():
    return np.random.default_rng(0).integers(0, 10, 5000)  # unbalanced-ish, like real labels


def test_balanced_subset_is_deterministic_and_balanced(labels):
    a = balanced_subset(labels, 100, seed=3)
    assert np.array_equal(a, balanced_subset(labels, 100, seed=3))
    assert not np.array_equal(a, balanced_subset(labels, 100, seed=4))
    assert len(np.unique(a)) == 100 and np.all(np.diff(a) > 0)
    assert np.bincount(labels[a], minlength=10).tolist() == [10] * 10
    # a remainder goes to the first classes
    assert np.bincount(labels[balanced_subset(labels, 13, seed=0)], minlength=10).tolist() == [2, 2, 2] + [1] * 7


def test_balanced_subset_errors(labels):
    with pytest.raises(MnistlabError, match="at least one label per class"):
        balanced_subset(labels, 5, seed=0)
    with pytest.raises(MnistlabError, match="class 9 has 0 examples"):
        balanced_subset(labels % 9, 20, seed=0, num_classes=10)


def test_labelled_split_parts(labels):
    s = labelled_split(labels, 100, seed=1, n_val=20)
    lab, val, unl = s["labelled"], s["val"], s["unlabelled"]
    assert (len(lab), len(val), len(unl)) == (80, 20, len(labels) - 100)
    assert np.bincount(labels[lab], minlength=10).tolist() == [8] * 10
    assert np.bincount(labels[val], minlength=10).tolist() == [2] * 10
    parts = np.concatenate([lab, val, unl])
    assert len(np.unique(parts)) == len(labels) == len(parts)  # disjoint and covering
    assert all(v.dtype == np.int64 for v in s.values())
    # the labelled+val draw is the same as without validation: the split seed alone decides which images are labelled
    assert np.array_equal(np.sort(np.concatenate([lab, val])), labelled_split(labels, 100, seed=1)["labelled"])
    again = labelled_split(labels, 100, seed=1, n_val=20)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    with pytest.raises(MnistlabError, match="smaller than --labels"):
        labelled_split(labels, 100, seed=1, n_val=100)


@pytest.mark.parametrize("fractions", [(0.6, 0.4), (0.6, 0.2, 0.2)])
@pytest.mark.parametrize("stratified", [False, True])
def test_holdout(labels, fractions, stratified):
    kw = {"labels": labels} if stratified else {}
    parts = holdout(len(labels), fractions, seed=7, **kw)
    assert [len(p) for p in parts] == pytest.approx([f * len(labels) for f in fractions], abs=10)
    allp = np.concatenate(parts)
    assert len(np.unique(allp)) == len(allp) == len(labels)
    assert all(np.array_equal(p, q) for p, q in zip(parts, holdout(len(labels), fractions, seed=7, **kw)))
    assert not np.array_equal(parts[0], holdout(len(labels), fractions, seed=8, **kw)[0])
    if stratified:  # every part keeps the class proportions (to within one image per class)
        whole = np.bincount(labels, minlength=10)
        for p, f in zip(parts, fractions):
            assert np.all(np.abs(np.bincount(labels[p], minlength=10) - f * whole) <= 1)


def test_holdout_rejects_bad_fractions():
    with pytest.raises(MnistlabError, match="sum to 1"):
        holdout(10, (0.6, 0.3), seed=0)
    with pytest.raises(MnistlabError, match="positive"):
        holdout(10, (1.2, -0.2), seed=0)


@pytest.mark.parametrize("k", [2, 5, 7])
def test_kfold(labels, k):
    folds = kfold(len(labels), k, seed=0, labels=labels)
    assert len(folds) == k
    vals = np.concatenate([v for _, v in folds])
    assert len(np.unique(vals)) == len(vals) == len(labels)  # validation parts partition the data
    for tr, va in folds:
        assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(labels)
        assert abs(len(va) - len(labels) / k) <= 10
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, kfold(len(labels), k, seed=0, labels=labels)))
    with pytest.raises(MnistlabError, match="k-fold"):
        kfold(10, 1, seed=0)
