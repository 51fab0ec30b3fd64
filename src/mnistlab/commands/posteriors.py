"""`mnistlab posteriors --run DIR`: the network's a-posteriori probabilities for every image of the base (Q3–Q5.1).

Writes posteriors.npy (N, K) float32 — the softmax the network outputs, training images then test images —,
posteriors_labels.npy, posteriors.json and priors.png (`analyses.posteriors`); `--show i,j` adds prediction views.
"""
from __future__ import annotations

import json
from pathlib import Path

from mnistlab import api
from mnistlab.commands._args import add_flags, number_list
from mnistlab.report.summaries import posteriors_lines


def _run(args) -> int:
    res = api.posteriors(args.run, out=args.out, precision=args.precision, show=args.show or [],
                         threads=args.threads or 0)
    if args.json:
        print(json.dumps(res))
        return 0
    print("\n".join(posteriors_lines(res, Path(args.out or args.run) / "posteriors.npy")))
    return 0


def register(sub) -> None:
    p = sub.add_parser("posteriors", help="posterior probabilities of a trained classifier for every image")
    p.add_argument("--run", required=True, help="a finished classifier run folder")
    p.add_argument("--out", help="output folder (default: the run folder)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32",
                   help="inference precision (default %(default)s)")
    p.add_argument("--show", type=number_list(int, minimum=0), help="comma-separated test indices: save image + class-probability views (default: none)")
    add_flags(p, "threads", "json")
    p.set_defaults(func=_run)
