"""`mnistlab study iterations|lr|hidden|cv|priors`: the brief's parameter studies (Part 2, Q1.6–7, Q2, Q3).

Each point is a `supervised` run folder under OUT/points/ (a study resumes); the sweeps live in `pipeline._study`.
"""
from __future__ import annotations

import json
from dataclasses import fields

from mnistlab.commands._args import SPLITS, add_flags, number_list
from mnistlab.config import parse_sets
from mnistlab.pipeline._study import GRIDS, KINDS, StudyConfig, run_study_kind
from mnistlab.runs import default_out, resolve_out


def _run(args) -> int:
    given = {k: v for k, v in vars(args).items() if k in {f.name for f in fields(StudyConfig)} - {"threads", "sets"}}
    cfg = StudyConfig(**given, threads=args.threads or 0, sets=parse_sets(args.set))
    out = resolve_out(args.out, default_out("study", args.study))
    res = run_study_kind(cfg, out)
    if args.json:
        print(json.dumps({"out": str(out), **res}, default=float))
    else:
        print((out / "study.md").read_text())
        print(f"study folder: {out}")
    return 0


def register(sub) -> None:
    q = GRIDS["quick"]
    p = sub.add_parser("study", help="parameter studies: iterations, learning rate, hidden size, CV, priors")
    p.add_argument("study", choices=KINDS, help="which study: %(choices)s")
    add_flags(p, "out", "budget", out={"help": "study folder (default runs/study-<name>-<time>); finished points are "
                                               "reused"},
              budget={"help": "training budget of each point and default grid (default %(default)s)"})
    p.add_argument("--dataset", help="dataset (default mnist)")
    p.add_argument("--model", default="mlp", help="model of every point (default %(default)s)")
    p.add_argument("--split", default="60/40", choices=SPLITS,
                   help=f"{', '.join(SPLITS)}: the split protocol of iterations / lr / hidden (as `supervised "
                        "--split`; default %(default)s of all 70k images; cv always uses 60/20/20)")
    p.add_argument("--values", type=number_list(), help=f"comma-separated values of the studied parameter (default: the budget's "
                                    f"grid, e.g. quick lr {','.join(map(str, q['lr']))})")
    p.add_argument("--epochs", type=float, help=f"epochs of each point, lr / hidden studies (default: the budget's, "
                                                f"quick {q['epochs']})")
    p.add_argument("--lr", type=float, help="learning rate of each point, iterations / hidden studies "
                                            "(default: supervised's)")
    p.add_argument("--hidden", type=int, help="MLP hidden-layer size of each point (as `supervised --hidden`; "
                                              "default: the model's; cv: the only candidate size)")
    p.add_argument("--hiddens", type=number_list(int), help="cv: comma-separated hidden sizes to select from (default: the budget's, "
                                     f"quick {','.join(map(str, q['cv_hidden']))})")
    p.add_argument("--lrs", type=number_list(), help="cv: comma-separated learning rates to select from (default: the budget's, "
                                 f"quick {','.join(map(str, q['cv_lr']))})")
    p.add_argument("--epochs-list", type=number_list(), help="cv: comma-separated epoch counts to select from (default: the budget's, "
                                         f"quick {','.join(map(str, q['cv_epochs']))})")
    p.add_argument("--k", type=int, help=f"cv: folds of the k-fold cross-validation (0 = none; default: the "
                                         f"budget's, quick {q['k']})")
    p.add_argument("--split-seed", type=int, help="seed of the 60/40 and 60/20/20 splits (default 0)")
    add_flags(p, "seed", "precision", "device", "threads", "set", "json",
              set={"help": "any supervised config field (`mnistlab config show supervised`; default: none)"},
              json={"help": "print the study record as JSON (default: its table)"})
    p.set_defaults(func=_run)
