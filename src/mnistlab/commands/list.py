"""`mnistlab list`: what the registries hold."""
from __future__ import annotations

import json

from mnistlab import api


def _list(args) -> int:
    out = api.catalogue()
    if args.json:
        print(json.dumps(out))
        return 0
    print("datasets: " + ", ".join(out["datasets"]))
    print("models:   " + ", ".join(out["models"]))
    print("methods:  " + ", ".join(f"{n} ({t})" for n, t in out["methods"].items()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("list", help="datasets, models and methods")
    p.add_argument("--json", action="store_true", help="print them as JSON (default: three lines)")
    p.set_defaults(func=_list)
