"""The few-label default on a folder holding MNIST images gives the built-in set's numbers (issue 29's target).

≈ 2 000 MNIST images (the first 1 700 training and 300 test images) are written as PNGs into folder/train/<digit>/ and
folder/test/<digit>/, numbered in their original order. PNG is lossless and a folder's image order is by file name,
then class (data/userdata.py), so both runs see the same uint8 arrays in the same order, draw the same labels and train
the same way: the metrics must be identical, not just close.
"""
import numpy as np
import pytest

import mnistlab as ml
from mnistlab.data import load_dataset

from test_userdata import write_folder

N_TRAIN, N_TEST = 1700, 300


@pytest.mark.slow
def test_folder_of_mnist_images_gives_the_same_metrics(tmp_path, data_home):
    mnist = load_dataset("mnist")
    root = tmp_path / "mnist-folder"
    write_folder(root / "train", mnist.train_x[:N_TRAIN], mnist.train_y[:N_TRAIN])
    write_folder(root / "test", mnist.test_x[:N_TEST], mnist.test_y[:N_TEST])
    folder = load_dataset(f"folder:{root}")
    assert np.array_equal(folder.train_x, mnist.train_x[:N_TRAIN]) and np.array_equal(folder.test_y, mnist.test_y[:N_TEST])

    # smoke: test_subset 300 on both; the built-in set's first 1 700 training images
    builtin = ml.fewlabel("mnist", budget="smoke", out=tmp_path / "builtin", settings={"train_subset": N_TRAIN})
    user = ml.fewlabel(f"folder:{root}", budget="smoke", out=tmp_path / "folder")
    for key in ("test_accuracy", "test_loss", "val_accuracy", "ulb_accuracy"):
        assert builtin.metrics[key] == user.metrics[key], key
    assert np.array_equal(np.load(builtin.dir / "test_logits.npy"), np.load(user.dir / "test_logits.npy"))
