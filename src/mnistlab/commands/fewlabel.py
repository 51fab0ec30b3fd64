"""`mnistlab fewlabel`: learn from N labels (+ the unlabelled rest). No --method: the best recipe for the dataset."""
from __future__ import annotations

from mnistlab.commands._args import add_train_flags, overrides, run_training
from mnistlab.config import load_config_file
from mnistlab.methods.recipes import command_method

KEYS = ("labels", "split_seed", "augment", "model")


def method_and_recipe(args) -> tuple[str, dict | None]:
    """--method, else the recipe for the dataset and label count, read from the flags (which win) or a --config
    file."""
    flags, file = overrides(args, KEYS), load_config_file(args.config)
    return command_method("fewlabel", args.method, flags.get("dataset") or file.get("dataset"),
                          flags.get("labels", file.get("labels")))


def _run(args) -> int:
    method, recipe = method_and_recipe(args)
    return run_training(args, method, command="fewlabel", keys=KEYS, recipe=recipe)


def register(sub) -> None:
    p = sub.add_parser("fewlabel", help="learn from a few labels (seed-report methods, semi-supervised methods)")
    add_train_flags(p)
    p.add_argument("--method", help="few-label method (`mnistlab list`; `cnn` trains the CNN named by --model, "
                                    "default rotnet-cnn, from scratch on the labels); default: the best recipe "
                                    "for the dataset and label count (fixmatch; freematch at 15 epochs on "
                                    "fashion-mnist)")
    p.add_argument("--labels", type=int, help="number of labelled images, class-balanced (default 100)")
    p.add_argument("--split-seed", type=int, help="which images are labelled (default 0)")
    p.add_argument("--augment", action="store_true", default=None,
                   help="augment the labelled images (default: the method's setting)")
    p.add_argument("--model", help="backbone model name (`mnistlab list`; default: the method's)")
    p.set_defaults(func=_run)
