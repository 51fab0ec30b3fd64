"""`mnistlab detect train|predict`: the digit / no-digit detector (method `detector`) and its use on image files."""
from __future__ import annotations

import json

from mnistlab import api
from mnistlab.commands._args import add_train_flags, run_training


def _predict(args) -> int:
    rows = api.detect_files(args.run, args.images, invert=args.invert, threshold=args.threshold)
    print(json.dumps({"run": str(args.run), "images": str(args.images), "predictions": rows}))
    return 0


def register(sub) -> None:
    p = sub.add_parser("detect", help="is there a digit? train / apply the digit detector")
    dsub = p.add_subparsers(dest="detect_command", metavar="{train,predict}", required=True)
    t = dsub.add_parser("train", help="train the digit / no-digit detector against generated images")
    add_train_flags(t)
    t.add_argument("--model", help="backbone model name (default cnn-small)")
    t.add_argument("--families", help="comma-separated generator families (default: all; `mnistlab negatives list`)")
    t.add_argument("--no-lofo", dest="lofo", action="store_false", default=None,
                   help="skip the leave-one-family-out detectors (default: train them)")
    t.set_defaults(func=lambda a: run_training(a, "detector", command="detect", keys=("model", "families", "lofo")))
    q = dsub.add_parser("predict", help="p(digit) of each image (JSON)")
    q.add_argument("--run", required=True, help="a detector run folder")
    q.add_argument("--images", required=True, help=".npy of uint8 (N, 28, 28), an image file or a folder of images")
    q.add_argument("--invert", action="store_true", help="dark ink on light paper → MNIST polarity (default: light ink on dark, as MNIST)")
    q.add_argument("--threshold", type=float, help="p(digit) threshold (default: the run's, chosen on validation)")
    q.set_defaults(func=_predict)
