"""`mnistlab data stats|show`: sizes, class counts and priors; a labelled grid of examples."""
from __future__ import annotations

import json

from mnistlab import api
from mnistlab.report.summaries import stats_lines


def _stats(args) -> int:
    s = api.dataset_stats(args.dataset)
    if args.json:
        print(json.dumps(s))
        return 0
    print("\n".join(stats_lines(s)))
    return 0


def _show(args) -> int:
    print(api.example_grid(args.dataset, args.out, n=args.n, split=args.part, seed=args.seed))
    return 0


def register(sub) -> None:
    p = sub.add_parser("data", help="dataset statistics and example grids")
    dsub = p.add_subparsers(dest="data_command", metavar="{stats,show}", required=True)
    s = dsub.add_parser("stats", help="sizes, class counts, priors")
    s.add_argument("--dataset", default="mnist", help="dataset name (`mnistlab list`; default %(default)s)")
    s.add_argument("--json", action="store_true", help="print the statistics as JSON (default: a table)")
    s.set_defaults(func=_stats)
    w = dsub.add_parser("show", help="a labelled grid of examples as PNG")
    w.add_argument("--dataset", default="mnist", help="dataset name (`mnistlab list`; default %(default)s)")
    w.add_argument("--n", type=int, default=64, help="images in the grid, 1–1024 (default %(default)s)")
    w.add_argument("--part", "--split", dest="part", choices=("train", "test"), default="train",
                   help="which part to draw from (default %(default)s; `--split` is its old name — elsewhere "
                        "--split names a split protocol)")
    w.add_argument("--seed", type=int, default=0, help="seed of the random choice of images (default %(default)s)")
    w.add_argument("--out", required=True, help="PNG file")
    w.set_defaults(func=_show)
