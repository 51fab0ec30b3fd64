"""`mnistlab gan train | sample | eval`: train a (conditional) DCGAN, draw seeded samples, measure them."""
from __future__ import annotations

import json
import sys

from mnistlab import api
from mnistlab.commands._args import add_flags, add_train_flags, run_training
from mnistlab.report.summaries import gan_eval_lines


def _sample(args) -> int:
    arr = api.gan_samples(args.run, args.out, n=args.n, digit=args.digit, seed=args.seed)
    print(f"{args.out}: {arr.shape[0]} images {'×'.join(map(str, arr.shape[1:]))} uint8 (seed {args.seed})")
    return 0


def _eval(args) -> int:
    if not args.classifier and (note := api.gan_classifier_notice(args.run)):
        print(note, file=sys.stderr, flush=True)  # before the training it announces
    res = api.evaluate_gan(args.run, classifier=args.classifier, n=args.n, seed=args.seed, threads=args.threads or 0,
                           device=args.device)
    if res["checkpoint_step"] is not None:
        print(f"mnistlab: note: {args.run} is unfinished; evaluated the EMA generator of its checkpoint at step "
              f"{res['checkpoint_step']}", file=sys.stderr)
    if args.json:
        print(json.dumps(res))
        return 0
    print("\n".join(gan_eval_lines(res)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("gan", help="generate digits: train a GAN, sample it, measure it")
    gsub = p.add_subparsers(dest="gan_command", metavar="{train,sample,eval}")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    t = gsub.add_parser("train", help="train a DCGAN (per-epoch grids, GIF, curves, checkpoints, --resume)")
    add_train_flags(t)
    t.add_argument("--conditional", action="store_true", help="class-conditional GAN (method cgan; default: gan)")
    t.add_argument("--nz", type=int, help="noise dimensions (default 64)")
    t.add_argument("--ema", type=float, help="generator weight-average decay (default 0.999; 0 = off)")
    t.set_defaults(func=lambda a: run_training(a, "cgan" if a.conditional else "gan", command="gan train",
                                               keys=("nz", "ema")))

    s = gsub.add_parser("sample", help="seeded samples of a trained generator → .npy (uint8 N×28×28) or .png grid")
    s.add_argument("--run", required=True, help="a finished `gan train` run folder")
    s.add_argument("--n", type=int, default=100, help="number of images (default %(default)s)")
    s.add_argument("--digit", type=int, help="the class to draw (conditional generators; default: every class)")
    s.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same images (default %(default)s)")
    s.add_argument("--out", required=True, help="FILE.npy or FILE.png")
    s.set_defaults(func=_sample)

    e = gsub.add_parser("eval", help="MNIST score, classifier-FID (+ floor), class histogram, agreement, copying")
    e.add_argument("--run", required=True, help="a `gan train` run folder (unfinished: its last checkpoint)")
    e.add_argument("--classifier", help="a finished `supervised` run (default: a cached cnn classifier, trained "
                                        "once for 3 epochs — it says so and how long before it starts)")
    e.add_argument("--n", type=int, default=10000, help="generated images (default %(default)s)")
    e.add_argument("--seed", type=int, default=0, help="noise seed of the generated images (default %(default)s)")
    add_flags(e, "threads", "device", "json", device={"default": "auto", "help": "where the classifier trains and runs: "
                                                      "auto | cpu | cuda | cuda:N | mps (default %(default)s)"})
    e.set_defaults(func=_eval)
