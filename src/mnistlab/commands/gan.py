"""`mnistlab gan train | sample | eval`: train a (conditional) DCGAN, draw seeded samples, measure them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from mnistlab.commands._args import add_train_flags, print_metrics, run_training, threads_arg
from mnistlab.errors import MnistlabError

# issue 7's targets, printed beside the measured values
TARGETS = {"mnist_score": 9.5, "class_share": (0.08, 0.12), "agreement": 0.98, "fid_ratio": 3.0}


def _train(args) -> int:
    return run_training(args, "cgan" if args.conditional else "gan", command="gan train",
                        keys=("nz", "ema"))


def _sample(args) -> int:
    import numpy as np

    from mnistlab import fileio
    from mnistlab.models.gan import sample
    from mnistlab.runs import load_generator
    from mnistlab.report import gan_images

    out = Path(args.out)
    if out.suffix not in (".npy", ".png"):
        raise MnistlabError(f"--out must end in .npy or .png, got {out.name!r}")
    if args.n < 1:
        raise MnistlabError("--n must be ≥ 1")
    G, spec = load_generator(args.run)
    if args.digit is not None:
        if not spec["num_classes"]:
            raise MnistlabError(f"{args.run} holds an unconditional generator; --digit needs a `gan train "
                                f"--conditional` run")
        if not 0 <= args.digit < spec["num_classes"]:
            raise MnistlabError(f"--digit must be in 0..{spec['num_classes'] - 1}")
    images, _ = sample(G, args.n, seed=args.seed, digit=args.digit)
    arr = images.numpy()
    arr = arr[:, 0] if arr.shape[1] == 1 else arr  # (N, 28, 28) uint8 for grey images
    if out.suffix == ".npy":
        with fileio.atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
    else:
        gan_images.save_png(out, gan_images.tile(arr, cols=min(args.n, 10)))
    print(f"{out}: {arr.shape[0]} images {'×'.join(map(str, arr.shape[1:]))} uint8 (seed {args.seed})")
    return 0


def _eval(args) -> int:
    from mnistlab import fileio
    from mnistlab.api import cached_classifier, evaluate_generator
    from mnistlab.runs import load_run
    from mnistlab.precision import setup_threads

    setup_threads(args.threads or 0)
    run_dir = Path(args.run)
    if not (run_dir / "config.json").exists():
        raise MnistlabError(f"{run_dir} is not a run folder (no config.json)")
    if args.classifier:
        clf = load_run(args.classifier)
    else:
        dataset = fileio.read_json(run_dir / "config.json").get("dataset", "mnist")
        clf = cached_classifier(dataset, threads=args.threads or 0)
    res = evaluate_generator(run_dir, clf, n=args.n, seed=args.seed)
    res["targets"] = targets_met(res)
    if res["checkpoint_step"] is not None:
        print(f"mnistlab: note: {run_dir} is unfinished; evaluated the EMA generator of its checkpoint at step "
              f"{res['checkpoint_step']}", file=sys.stderr)
    fileio.write_json(run_dir / "gan_eval.json", res)
    if args.json:
        print(json.dumps(res))
        return 0
    print_metrics(run_dir, {k: v for k, v in res.items() if not isinstance(v, (dict, list))}, as_json=False)
    h = res["class_histogram"]
    print("  class shares: " + " ".join(f"{f:.3f}" for f in h["fractions"]))
    print(f"  classifier-FID {res['fid']:.3f} vs real train-vs-test floor {res['fid_floor_train_vs_test']:.3f} "
          f"(×{res['fid_ratio_to_floor']:.2f})")
    print("  targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in res["targets"].items()))
    return 0


def targets_met(res: dict) -> dict:
    lo, hi = TARGETS["class_share"]
    out = {"mnist_score>=9.5": res["mnist_score"] >= TARGETS["mnist_score"],
           "class_share_8-12%": lo <= res["class_histogram"]["min_fraction"] and res["class_histogram"][
               "max_fraction"] <= hi,
           "fid<=3x_floor": res["fid_ratio_to_floor"] <= TARGETS["fid_ratio"]}
    if res.get("conditional"):
        out["agreement>=98%"] = res["conditional_agreement"] >= TARGETS["agreement"]
    return out


def register(sub) -> None:
    p = sub.add_parser("gan", help="generate digits: train a GAN, sample it, measure it")
    gsub = p.add_subparsers(dest="gan_command", metavar="{train,sample,eval}")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    t = gsub.add_parser("train", help="train a DCGAN (per-epoch grids, GIF, curves, checkpoints, --resume)")
    add_train_flags(t)
    t.add_argument("--conditional", action="store_true", help="class-conditional GAN (method cgan)")
    t.add_argument("--nz", type=int, help="noise dimensions (default 64)")
    t.add_argument("--ema", type=float, help="generator weight-average decay (default 0.999; 0 = off)")
    t.set_defaults(func=_train)

    s = gsub.add_parser("sample", help="seeded samples of a trained generator → .npy (uint8 N×28×28) or .png grid")
    s.add_argument("--run", required=True, help="a finished `gan train` run folder")
    s.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    s.add_argument("--digit", type=int, help="the class to draw (conditional generators)")
    s.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same images")
    s.add_argument("--out", required=True, help="FILE.npy or FILE.png")
    s.set_defaults(func=_sample)

    e = gsub.add_parser("eval", help="MNIST score, classifier-FID (+ floor), class histogram, agreement, copying")
    e.add_argument("--run", required=True, help="a `gan train` run folder (unfinished: its last checkpoint)")
    e.add_argument("--classifier", help="a finished `supervised` run (default: train/reuse a cached one)")
    e.add_argument("--n", type=int, default=10000, help="generated images (default 10000)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--threads", type=threads_arg)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_eval)
