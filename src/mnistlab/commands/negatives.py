"""`mnistlab negatives list|show`: the registered non-digit generator families, and a grid of their images."""
from __future__ import annotations

import json

import numpy as np

from mnistlab.errors import MnistlabError


def _list(args) -> int:
    from mnistlab.data.negatives import FAMILIES, family_names

    rows = [{"family": n, "kind": FAMILIES.info(n)["kind"], "about": FAMILIES.info(n)["about"]}
            for n in family_names()]
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        print(f"{r['family']:<16} {r['kind']:<13} {r['about']}")
    return 0


def _show(args) -> int:
    from mnistlab import fileio
    from mnistlab.data import negatives as neg
    from mnistlab.report import plots

    if not 1 <= args.n <= 1024:
        raise MnistlabError("--n must be between 1 and 1024")
    if not str(args.out).lower().endswith(".png"):
        raise MnistlabError("--out must be a .png file")
    if args.family == "all":  # one row per family
        from mnistlab.methods.detector import families_figure

        fig = families_figure(neg.family_names(), per_family=min(args.n, 16), seed=args.seed)
    else:
        x = neg.generate(args.family, args.n, seed=args.seed)
        fig = plots.image_grid(x, cols=min(args.n, 16), size=0.9)
        fig.suptitle(f"{args.family} (seed {args.seed})", fontsize=9)
    with fileio.atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    if args.npy:
        x = np.concatenate([neg.generate(f, args.n, seed=args.seed) for f in
                            (neg.family_names() if args.family == "all" else [args.family])])
        with fileio.atomic_path(args.npy) as tmp, open(tmp, "wb") as f:
            np.save(f, x, allow_pickle=False)
    print(args.out)
    return 0


def register(sub) -> None:
    p = sub.add_parser("negatives", help="non-digit image generators (for the digit detector)")
    nsub = p.add_subparsers(dest="negatives_command", metavar="{list,show}", required=True)
    ls = nsub.add_parser("list", help="the generator families")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    sh = nsub.add_parser("show", help="a grid of one family's images (or of every family) as PNG")
    sh.add_argument("--family", required=True, help="family name (`mnistlab negatives list`) or `all`")
    sh.add_argument("--n", type=int, default=64, help="images (per family with `all`, at most 16 shown)")
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--out", required=True, help="PNG file")
    sh.add_argument("--npy", help="also save the images as uint8 (N, 1, 28, 28) .npy")
    sh.set_defaults(func=_show)
