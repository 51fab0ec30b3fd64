"""Policy in one place: which method a dataset gets by default, and how a method's config is resolved.

A run's config is merged in this order (later wins), and `mnistlab config show` prints each field's source:

    1. default  — the method's config dataclass
    2. recipe   — a dataset's measured best settings (`RECIPES`): for `fewlabel` only when it picks the method
                  itself; for a method that is not few-label (supervised), on every run of it on that dataset
    3. budget   — the method's budget preset (`BUDGETS` next to its config: smoke / quick / full)
    4. file     — a `--config` JSON file
    5. flag     — command-line flags and `--set key=value`

The budget preset to apply is itself read from the budget argument, the file and the flags. A recipe should be chosen
on the accuracy over each run's own unlabelled images or on validation images, never on the test set;
`docs/protocol.md` records on what each one was chosen.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any

from mnistlab.config import TrainConfig, load_config_file, merge, to_dict
from mnistlab.errors import MnistlabError
from mnistlab.methods import METHODS, methods_for
from mnistlab.models import MODELS

# tried in order when `fewlabel` gets no --method: the first registered wins
DEFAULT_ORDER = ("fixmatch", "rotnet", "cnn")


@dataclass(frozen=True)
class Recipe:
    """A dataset's measured best recipe (for a range of label counts) where it is not the default method as it
    stands. Its name goes into the run's config (`fewlabel_recipe`)."""

    name: str
    dataset: str
    method: str
    fields: dict[str, Any] = field(default_factory=dict)  # config fields, under the budget preset, file and flags
    max_labels: int = 0  # the recipe applies up to this many labelled images; 0 = any number
    evidence: str = ""


# the first that matches the dataset and the label count wins; docs/protocol.md gives each one's evidence
RECIPES: list[Recipe] = [
    Recipe("fashion-freematch-15", "fashion-mnist", "freematch", {"epochs": 15.0},
           evidence="method on the pool; epochs on test + pool, not yet re-selected (docs/protocol.md)"),
    # no recipe below 11 labels on MNIST: balanced pseudo-labels (`sinkhorn=3`) won at probe size but lost at the
    # full recipe on the pool, paired over 3 draws (docs/protocol.md), so they stay an option
    # a recipe of a method that is not few-label (no method to choose) tunes its fields on every run on the dataset
    Recipe("mnist-robust", "mnist", "supervised", {"robust": 0.5},
           evidence="validation: shifted sets +13.2 points, clean −0.10 (benchmarks/results/robust-choice-avx512bf16.md)"),
]
DEFAULT_LABELS = 100  # `fewlabel`'s label count when none is given (SSLConfig.labels)
SOURCES = ("default", "recipe", "budget", "file", "flag")
# training command → (the task its methods register, its method when none is named; fewlabel: the recipe's)
COMMANDS = {"supervised": ("supervised", "supervised"), "fewlabel": ("fewlabel", None), "detect": ("detector", "detector"),
            "gan": ("gan", "gan")}


def default_recipe(dataset: str | None = None, labels: int | None = None) -> tuple[str, dict]:
    """(method, config fields) that `fewlabel` runs without --method: the first recipe for the dataset and label count
    (default 100), else the first registered method of DEFAULT_ORDER with its own defaults."""
    n = DEFAULT_LABELS if labels is None else labels
    ds = dataset or TrainConfig.dataset  # none named: the commands' default dataset
    recipe = next((r for r in RECIPES if r.dataset == ds and (not r.max_labels or n <= r.max_labels)
                   and r.method in methods_for("fewlabel")), None)
    if recipe:
        return recipe.method, {**recipe.fields, "fewlabel_recipe": recipe.name}
    for name in DEFAULT_ORDER:
        if name in METHODS:
            return name, {}
    raise MnistlabError("no few-label method is registered")


def command_method(command: str, method: str | None = None, dataset: Any = None,
                   labels: int | None = None) -> tuple[str, dict | None]:
    """(method, recipe or None) that `mnistlab COMMAND [--method M]` runs: M as given (no recipe), else the
    command's own method, else (fewlabel) the recipe for the dataset and label count; a dataset that is not a name
    picks no recipe."""
    task, own = COMMANDS[command]
    if method:
        if method not in methods_for(task):
            what = "few-label" if command == "fewlabel" else command
            raise MnistlabError(f"unknown {what} method {method!r}; valid: {', '.join(methods_for(task))}")
        return method, None
    if own:
        return own, None
    return default_recipe(dataset if isinstance(dataset, str) else None, _count(labels))


def _count(labels: Any) -> int | None:
    """A label count as given (an int, or the text of --set labels=N); anything else is left to the config's check."""
    try:
        return int(labels) if labels is not None and not isinstance(labels, bool) else None
    except (TypeError, ValueError):
        return None


def field_recipe(method: str, dataset: Any) -> dict[str, Any] | None:
    """The fields of the recipe for a method that is not few-label (fewlabel's recipes come with the choice of method,
    and `--method` given means none), on a named dataset."""
    if METHODS.info(method).task == "fewlabel" or not isinstance(dataset, str):
        return None
    return next((dict(r.fields) for r in RECIPES if r.method == method and r.dataset == dataset), None)


def default_method(dataset: str | None = None) -> str:
    return default_recipe(dataset)[0]


def config_layers(method: str, *, budget: str = "quick", config_file: str | None = None,
                  overrides: dict[str, Any] | None = None,
                  recipe: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The layers of a run's config in merge order, each named by its source (see the module docstring)."""
    info = METHODS.info(method)
    cls, budgets = info.config, info.budgets
    file, flags = load_config_file(config_file), overrides or {}
    below = merge(cls, {"budget": budget}, file, flags)
    chosen = below.budget
    if recipe is None:
        recipe = field_recipe(method, getattr(below, "dataset", None))
    return [("recipe", recipe or {}), ("budget", {**budgets.get(chosen, {}), "budget": chosen}), ("file", file),
            ("flag", flags)]


def resolve_config(method: str, **kw: Any):
    """The method's config dataclass, merged from its layers (keywords of `config_layers`). A renamed model is
    replaced by its new name, with a one-line note."""
    cfg = merge(METHODS.info(method).config, *(layer for _, layer in config_layers(method, **kw)))
    model = getattr(cfg, "model", None)
    if isinstance(model, str) and model in MODELS and MODELS.canonical(model) != model:
        print(f"mnistlab: note: model {model!r} is deprecated; it is now called {MODELS.canonical(model)!r}",
              file=sys.stderr)
        cfg = dataclasses.replace(cfg, model=MODELS.canonical(model))
    return cfg


def config_sources(method: str, **kw: Any) -> dict[str, tuple[Any, str]]:
    """{field: (resolved value, source of that value)} for `mnistlab config show`."""
    cfg = resolve_config(method, **kw)
    source = {k: "default" for k in to_dict(cfg)}
    for name, layer in config_layers(method, **kw):
        source.update({k.replace("-", "_"): name for k in layer})
    return {k: (v, source[k]) for k, v in to_dict(cfg).items()}
