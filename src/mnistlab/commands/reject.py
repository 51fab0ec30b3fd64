"""`mnistlab reject --run DIR`: classification with rejection (the brief's Q5), from the run's model — never retrained.

Calibration (the Gaussian class model and every operating threshold) uses the run's validation images when it has
some, otherwise its training images; the test images (and the outlier sets) are only measured (`analyses.reject`).
"""
from __future__ import annotations

import json
from pathlib import Path

from mnistlab import api
from mnistlab.commands._args import add_flags
from mnistlab.report.summaries import reject_json, reject_lines


def _run(args) -> int:
    res = api.reject(args.run, out=args.out, ood=args.ood or [], noise=args.noise, calib_max=args.calib_max,
                     coverage=args.coverage, keep=args.keep, precision=args.precision, seed=args.seed,
                     threads=args.threads or 0)
    if args.json:
        print(json.dumps(reject_json(res)))
        return 0
    print(f"{Path(args.out or args.run) / 'reject.json'}  (rejector saved in {args.run})")
    print("\n".join(reject_lines(res)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("reject", help="classification with rejection (Chow, margin, distance) from a trained run")
    p.add_argument("--run", required=True, help="a finished classifier run folder")
    p.add_argument("--out", help="where reject.json and the plots go (default: the run folder)")
    p.add_argument("--ood", action="append", metavar="DATASET",
                   help="an outlier dataset to feed: its test images, at most as many as the run's test images "
                        "(e.g. fashion-mnist); repeatable (default: none)")
    p.add_argument("--noise", type=int, default=1000,
                   help="noise images of each kind to feed (0 = none; at most the number of test images; "
                        "default %(default)s)")
    p.add_argument("--calib-max", type=int, default=20000,
                   help="at most this many calibration images (random, seeded; 0 = all; default %(default)s)")
    p.add_argument("--coverage", type=float, default=0.95,
                   help="Chow/margin thresholds accept this fraction of the calibration images (default %(default)s)")
    p.add_argument("--keep", type=float, default=0.998,
                   help="distance threshold keeps this fraction of the calibration images (default %(default)s)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32",
                   help="inference precision (default %(default)s: exact posteriors near 1)")
    add_flags(p, "seed", "threads", "json", seed={"default": 0, "help": "seed of the calibration subset and the noise "
                                                                     "images (default %(default)s)"})
    p.set_defaults(func=_run)
