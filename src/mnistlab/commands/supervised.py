"""`mnistlab supervised`: train a classifier on all labelled training images."""
from __future__ import annotations

from mnistlab.commands._args import add_train_flags, run_training


def register(sub) -> None:
    p = sub.add_parser("supervised", help="train a classifier (MLP/CNN) on the full training set")
    add_train_flags(p)
    p.add_argument("--model", help="model name (`mnistlab list`)")
    p.add_argument("--hidden", type=int, help="MLP hidden-layer size")
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p.add_argument("--val-size", type=int, help="training images held out for validation")
    p.set_defaults(func=lambda a: run_training(a, "supervised", command="supervised",
                                               keys=("model", "hidden", "augment", "val_size")))
