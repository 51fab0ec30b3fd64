"""`mnistlab list`: what the registries hold."""
from __future__ import annotations

import json


def _list(args) -> int:
    from mnistlab.data import DATASETS
    from mnistlab.methods import METHODS
    from mnistlab.models import MODELS

    out = {"datasets": DATASETS.names(), "models": MODELS.names(),
           "methods": {n: METHODS.info(n).get("task") for n in METHODS.names()}}
    if args.json:
        print(json.dumps(out))
        return 0
    print("datasets: " + ", ".join(out["datasets"]))
    print("models:   " + ", ".join(out["models"]))
    print("methods:  " + ", ".join(f"{n} ({t})" for n, t in out["methods"].items()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("list", help="datasets, models and methods")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)
