"""Flags shared by every training command, and the glue from parsed flags to `api.train`."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from mnistlab import api
from mnistlab.config import BUDGETS, PRECISIONS, parse_sets
from mnistlab.errors import MnistlabError
from mnistlab.report.summaries import metrics_lines

# supervised's split protocols: 60k/10k as published, or all 70k images re-split (stratified by the split seed)
SPLITS = ("official", "60/40", "60/20/20")


def number_list(kind: type = float, minimum: float | None = None):
    """An argparse type for `a,b,c`: finite numbers above 0 (or ≥ `minimum`); `int`: whole numbers."""
    def parse(text: str) -> list:
        try:
            vals = [float(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
        if not vals or any(not math.isfinite(v) or (v < minimum if minimum is not None else v <= 0) for v in vals):
            what = f"≥ {minimum:g}" if minimum is not None else "positive"
            raise argparse.ArgumentTypeError(f"values must be {what} numbers, got {text!r}")
        if kind is int and any(v != int(v) for v in vals):
            raise argparse.ArgumentTypeError(f"expected whole numbers, got {text!r}")
        return [kind(v) for v in vals]

    return parse


# the flags several commands share, one definition each: `add_flags(p, "seed", "json", json={"help": …})`
COMMON = {
    "budget": dict(choices=BUDGETS, default="quick", help="smoke (seconds, tests) | quick | full (benchmarks); "
                                                          "default %(default)s"),
    "seed": dict(type=int, help="training seed: init, batch order, augmentation (default 0)"),
    "out": dict(help="run folder (default: runs/<command>-<method>-<time>)"),
    "precision": dict(choices=PRECISIONS, help="auto: bf16 where the CPU/GPU has it (fp16 + GradScaler on older "
                                               "GPUs), else fp32 (default auto)"),
    "device": dict(help="auto: cuda, else mps, else cpu | cpu | cuda | cuda:N | mps (default auto)"),
    "threads": dict(type=int, help="torch threads (default: one per core)"),
    "config": dict(help="JSON file of settings (command-line flags win over it; default: none)"),
    "set": dict(action="append", metavar="KEY=VALUE", help="any config field, e.g. --set weight_decay=0 "
                                                           "(repeatable; `mnistlab config show` lists them)"),
    "json": dict(action="store_true", help="print the result as JSON (default: a readable summary)"),
}


def add_flags(p: argparse.ArgumentParser, *names: str, **changes: dict) -> None:
    """Add the COMMON flags `names` to `p`; `changes[name]` replaces some of a flag's keywords (its help, default…)."""
    for name in names:
        p.add_argument(f"--{name}", **{**COMMON[name], **changes.get(name, {})})


def add_train_flags(p: argparse.ArgumentParser, *, dataset: bool = True) -> None:
    """The flags of every training command. A flag left out keeps the value of the lower layers (method default <
    recipe < budget < --config file); `mnistlab config show COMMAND` prints the result and where each value comes from."""
    if dataset:
        p.add_argument("--dataset", help="dataset name (`mnistlab list`), or your own images: folder:PATH (one "
                                         "sub-folder per class) or npz:PATH (arrays x, y); default mnist")
    add_flags(p, "budget", "seed", "out")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (finished: its metrics; none yet: start it)")
    add_flags(p, "precision", "device")
    p.add_argument("--epochs", type=float, help="passes over the training images (default: the method's and "
                                                "budget's; `mnistlab config show`)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the method's; `mnistlab config show`)")
    p.add_argument("--batch-size", type=int, help="images per step (default: the method's; `mnistlab config show`)")
    add_flags(p, "threads", "config", "set", "json",
              json={"help": "print the final metrics as JSON (default: key: value lines)"})
    if dataset:
        add_data_flags(p)


def add_data_flags(p: argparse.ArgumentParser) -> None:
    """Options of user data (--dataset folder:PATH | npz:PATH); they become part of the data set's name."""
    g = p.add_argument_group("your own data (--dataset folder:PATH or npz:PATH)")
    g.add_argument("--preprocess", choices=("auto", "none", "resize", "centre"),
                   help="how images become model inputs (default auto: kept when all share one size, else resize to "
                        "28×28 keeping the aspect); centre = MNIST's centring of grey digits; recorded in model.json")
    g.add_argument("--unlabelled", metavar="PATH",
                   help="a folder or .npz (key x) of images without labels, added to the unlabelled pool (default none)")
    g.add_argument("--labels-from", metavar="FILE",
                   help="text file of image indices or file names, one a line: the only labels training may use "
                        "(default: labels drawn by --labels and --split-seed)")
    g.add_argument("--skip-bad", action="store_true", default=None,
                   help="skip corrupt or oversized image files, counted in data.json (default: refuse the data set)")


DATA_KEYS = ("preprocess", "unlabelled", "labels_from", "skip_bad")


def data_options(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in DATA_KEYS if getattr(args, k, None) is not None}


TRAIN_KEYS = ("dataset", "seed", "precision", "device", "epochs", "lr", "batch_size", "threads")


def overrides(args: argparse.Namespace, keys: tuple[str, ...] = ()) -> dict:
    """Flags given on the command line (None = not given) + --set pairs."""
    out = {k: getattr(args, k) for k in TRAIN_KEYS + keys if getattr(args, k, None) is not None}
    out.update(parse_sets(getattr(args, "set", None)))
    return out


def run_training(args: argparse.Namespace, method: str, *, command: str, keys: tuple[str, ...] = (),
                 recipe: dict | None = None) -> int:
    if args.resume and not args.out:
        raise MnistlabError("--resume needs --out DIR (the run folder to continue)")
    out, metrics = api.train(method, command=command, out=args.out, resume=args.resume, budget=args.budget,
                             config_file=args.config, overrides=overrides(args, keys), recipe=recipe,
                             data_options=data_options(args))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one process speaks
        print_metrics(out, metrics, as_json=args.json)
    return 0


def print_metrics(out, metrics: dict, *, as_json: bool) -> None:
    print(json.dumps({"run": str(out), **metrics}, default=float) if as_json else "\n".join(metrics_lines(out, metrics)))
    sys.stdout.flush()
