"""`mnistlab fewlabel`: learn from N labels (+ the unlabelled rest). No --method: the best recipe for the dataset."""
from __future__ import annotations

from mnistlab.commands._args import add_train_flags, run_training
from mnistlab.errors import MnistlabError
from mnistlab.methods import METHODS, methods_for

# tried in order when no --method is given: the first registered wins (the SSL preset, once it exists)
DEFAULT_ORDER = ("fixmatch", "rotnet", "cnn")


def default_method() -> str:
    for name in DEFAULT_ORDER:
        if name in METHODS:
            return name
    raise MnistlabError("no few-label method is registered")


def _run(args) -> int:
    method = args.method or default_method()
    if method not in methods_for("fewlabel"):
        raise MnistlabError(f"unknown few-label method {method!r}; valid: {', '.join(methods_for('fewlabel'))}")
    return run_training(args, method, command="fewlabel", keys=("labels", "split_seed", "augment", "model"))


def register(sub) -> None:
    p = sub.add_parser("fewlabel", help="learn from a few labels (seed-report methods, semi-supervised methods)")
    add_train_flags(p)
    p.add_argument("--method", help="few-label method (`mnistlab list`); default: the best recipe")
    p.add_argument("--labels", type=int, help="number of labelled images, class-balanced (default 100)")
    p.add_argument("--split-seed", type=int, help="which images are labelled")
    p.add_argument("--augment", action="store_true", default=None, help="augment the labelled images")
    p.add_argument("--model", help="backbone model name")
    p.set_defaults(func=_run)
