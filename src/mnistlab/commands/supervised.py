"""`mnistlab supervised`: train a classifier on all labelled training images."""
from __future__ import annotations

from mnistlab.commands._args import SPLITS, add_train_flags, run_training


def register(sub) -> None:
    p = sub.add_parser("supervised", help="train a classifier (MLP/CNN) on the full training set")
    add_train_flags(p)
    p.add_argument("--model", help="model name (`mnistlab list`; default cnn)")
    p.add_argument("--hidden", type=int, help="MLP hidden-layer size (default: the model's layers)")
    p.add_argument("--split", choices=SPLITS,
                   help="official (default: 60k train / 10k test) | 60/40 | 60/20/20 (train / [val /] test parts "
                        "of all 70k images, stratified by --set split_seed=N)")
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                   help="train on the images as they are (default: random affine jitter)")
    p.add_argument("--val-size", type=int, help="training images held out for validation (default 0)")
    p.set_defaults(func=lambda a: run_training(a, "supervised", command="supervised",
                                               keys=("model", "hidden", "split", "augment", "val_size")))
