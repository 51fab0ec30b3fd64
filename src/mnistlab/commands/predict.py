"""`mnistlab predict --run DIR --images FILE|FOLDER [--json] [--invert] [--detector DIR]`: classify user images."""
from __future__ import annotations

import json
import sys

from mnistlab.predict import predict, read_inputs
from mnistlab.report.summaries import prediction_line


def _run(args) -> int:
    x, files, skipped = read_inputs(args.run, args.images, invert=args.invert, strict=args.strict)
    for msg in skipped:
        print(f"mnistlab: warning: skipped {msg}", file=sys.stderr)
    records = predict(args.run, x, detector=args.detector, files=files, device=args.device)
    for r in records:
        print(json.dumps(r) if args.json else prediction_line(r))
    return 0


def register(sub) -> None:
    p = sub.add_parser("predict", help="apply a trained classifier run to .npy arrays or PNG/JPEG images")
    p.add_argument("--run", required=True, help="a finished classifier run folder")
    p.add_argument("--images", required=True,
                   help=".npy (uint8 0–255 or float 0–1, N×28×28 or N×1×28×28), a PNG/JPEG file or a folder of them")
    p.add_argument("--invert", action="store_true", help="dark ink on light paper (scans, photos; default: light ink on dark, as MNIST)")
    p.add_argument("--detector", help="a digit / non-digit detector run folder: adds p_digit and is_digit (default: none)")
    p.add_argument("--json", action="store_true", help="one JSON object per image (default: a tab-separated line each)")
    p.add_argument("--device", default="cpu", help="where to run the model: cpu | auto | cuda | cuda:N | mps (default cpu)")
    p.add_argument("--strict", action="store_true",
                   help="a bad image in a folder is an error (default: reported on stderr and skipped)")
    p.set_defaults(func=_run)
