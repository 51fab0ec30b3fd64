"""`mnistlab fewlabel`: learn from N labels (+ the unlabelled rest). No --method: the best recipe for the dataset."""
from __future__ import annotations

from mnistlab.commands._args import add_train_flags, overrides, run_training
from mnistlab.config import load_config_file
from mnistlab.errors import MnistlabError
from mnistlab.methods import METHODS, methods_for

KEYS = ("labels", "split_seed", "augment", "model")
# tried in order when no --method is given: the first registered wins (the SSL preset, once it exists)
DEFAULT_ORDER = ("fixmatch", "rotnet", "cnn")
# A dataset's best measured recipe where it is not the default method as it stands: (method, config fields). The fields
# sit under the budget preset, a --config file and --set, so `--budget full` or `--set epochs=20` still win.
# Chosen on the accuracy over each run's own unlabelled images, never on the test set.
RECIPES = {
    # 1000 labels, 3 draws (benchmarks/results/fashion-ssl-epyc.md): unlabelled-pool 88.67 % against FixMatch's
    # 88.49 % at 15 epochs (87.70 % test at the default 13); test 88.11 ± 0.22 %.
    "fashion-mnist": ("freematch", {"epochs": 15.0}),
}


def default_recipe(dataset: str | None = None) -> tuple[str, dict]:
    """(method, config fields) that `fewlabel` runs without --method: the dataset's recipe, else the first
    registered method of DEFAULT_ORDER with its own defaults."""
    method, fields = RECIPES.get(dataset, (None, {}))
    if method in METHODS:
        return method, dict(fields)
    for name in DEFAULT_ORDER:
        if name in METHODS:
            return name, {}
    raise MnistlabError("no few-label method is registered")


def default_method(dataset: str | None = None) -> str:
    return default_recipe(dataset)[0]


def _run(args) -> int:
    if args.method:
        method, recipe = args.method, None
        if method not in methods_for("fewlabel"):
            raise MnistlabError(f"unknown few-label method {method!r}; valid: {', '.join(methods_for('fewlabel'))}")
    else:  # the dataset may come from --dataset / --set (which win) or a --config file
        dataset = overrides(args, KEYS).get("dataset") or load_config_file(args.config).get("dataset")
        # a dataset that is not a name (a list in a config file…) picks no recipe; the config check then refuses it
        method, recipe = default_recipe(dataset if isinstance(dataset, str) else None)
    return run_training(args, method, command="fewlabel", keys=KEYS, recipe=recipe)


def register(sub) -> None:
    p = sub.add_parser("fewlabel", help="learn from a few labels (seed-report methods, semi-supervised methods)")
    add_train_flags(p)
    p.add_argument("--method", help="few-label method (`mnistlab list`); default: the best recipe for the dataset "
                                    "(fixmatch; freematch at 15 epochs on fashion-mnist)")
    p.add_argument("--labels", type=int, help="number of labelled images, class-balanced (default 100)")
    p.add_argument("--split-seed", type=int, help="which images are labelled")
    p.add_argument("--augment", action="store_true", default=None, help="augment the labelled images")
    p.add_argument("--model", help="backbone model name")
    p.set_defaults(func=_run)
