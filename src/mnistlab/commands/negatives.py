"""`mnistlab negatives list|show`: the registered non-digit generator families, and a grid of their images."""
from __future__ import annotations

import json

from mnistlab import api
from mnistlab.data.negatives import FAMILIES, family_names


def _list(args) -> int:
    rows = [{"family": n, "kind": FAMILIES.info(n)["kind"], "about": FAMILIES.info(n)["about"]}
            for n in family_names()]
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        print(f"{r['family']:<16} {r['kind']:<13} {r['about']}")
    return 0


def _show(args) -> int:
    print(api.negatives_grid(args.family, args.out, n=args.n, seed=args.seed, npy=args.npy))
    return 0


def register(sub) -> None:
    p = sub.add_parser("negatives", help="non-digit image generators (for the digit detector)")
    nsub = p.add_subparsers(dest="negatives_command", metavar="{list,show}", required=True)
    ls = nsub.add_parser("list", help="the generator families")
    ls.add_argument("--json", action="store_true", help="print the families as JSON (default: a table)")
    ls.set_defaults(func=_list)
    sh = nsub.add_parser("show", help="a grid of one family's images (or of every family) as PNG")
    sh.add_argument("--family", required=True, help="family name (`mnistlab negatives list`) or `all`")
    sh.add_argument("--n", type=int, default=64,
                    help="images (per family with `all`, at most 16 shown; default %(default)s)")
    sh.add_argument("--seed", type=int, default=0, help="generator seed (default %(default)s)")
    sh.add_argument("--out", required=True, help="PNG file")
    sh.add_argument("--npy", help="also save the images as uint8 (N, 1, 28, 28) .npy (default: no)")
    sh.set_defaults(func=_show)
