"""`mnistlab reject --run DIR`: classification with rejection (the brief's Q5), from the run's model — never retrained.

Calibration (the Gaussian class model and every operating threshold) uses the run's validation images when it has
some, otherwise its training images; the test images (and the outlier sets) are only measured. Writes reject.json and
the plots to --out (default: the run folder) and the reusable rejector (rejector.safetensors + rejector.json) to the
run folder.
"""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np

from mnistlab import fileio, infer, select
from mnistlab.commands._args import threads_arg
from mnistlab.commands._artefacts import save_png
from mnistlab.errors import MnistlabError

NOISE_KINDS = ("noise-uniform", "noise-gaussian")


def noise_images(kind: str, n: int, shape: tuple[int, ...], *, seed: int) -> np.ndarray:
    """Non-digit inputs: uniform pixel noise, or smooth Gaussian blobs of ink (a harder, digit-like intensity)."""
    rng = np.random.default_rng([seed, NOISE_KINDS.index(kind)])
    if kind == "noise-uniform":
        return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    import torch
    import torch.nn.functional as F

    z = torch.from_numpy(rng.normal(size=(n, *shape)).astype(np.float32))
    k = torch.exp(-torch.arange(-4, 5, dtype=torch.float32) ** 2 / 4.5)
    k = (k / k.sum()).view(1, 1, 1, -1)
    c = shape[0]
    z = F.conv2d(z, k.expand(c, 1, 1, -1), padding=(0, 4), groups=c)
    z = F.conv2d(z, k.transpose(2, 3).expand(c, 1, -1, 1), padding=(4, 0), groups=c)
    z = (z - z.mean(dim=(1, 2, 3), keepdim=True)) / z.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (255 * (z > 1.0).float()).numpy().astype(np.uint8)  # ~16 % ink in random smooth blobs


def load_splits(run_dir: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(run_dir / "splits.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise MnistlabError(f"{run_dir / 'splits.npz'}: unreadable ({e})") from None


def check_indices(idx: np.ndarray, n: int, where: str) -> np.ndarray:
    """Saved split indices must be integers into the `n` images they index."""
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= n)):
        raise MnistlabError(f"{where}: indices are not integers in 0…{n - 1}")
    return idx


def analyse(run_dir: Path, out: Path, *, ood: list[str], noise: int, calib_max: int, coverage: float, keep: float,
            precision: str, seed: int) -> dict:
    from mnistlab.data import load_dataset
    from mnistlab.evaluate import rejection as R
    from mnistlab.report import rejection_plots as RP
    from mnistlab.runs import load_run
    from mnistlab.precision import resolve_precision

    lr = load_run(run_dir)
    cfg, model, spec = lr.config, lr.model, lr.spec
    pre = spec.get("preprocess", {})
    prec = resolve_precision(precision)
    ds = load_dataset(cfg.get("dataset", "mnist"))
    tx, ty = ds.train_x, ds.train_y
    vx, vy = ds.test_x, ds.test_y
    for k in ("train_subset", "test_subset"):
        if not isinstance(cfg.get(k, 0), int) or cfg.get(k, 0) < 0:
            raise MnistlabError(f"{run_dir / 'config.json'}: {k} must be a whole number ≥ 0")
    if cfg.get("train_subset"):
        tx, ty = tx[: cfg["train_subset"]], ty[: cfg["train_subset"]]
    if cfg.get("test_subset"):
        vx, vy = vx[: cfg["test_subset"]], vy[: cfg["test_subset"]]
    # the run's base and its test part (re-split runs test on a part of all 70k images)
    sp = load_splits(run_dir)
    if cfg.get("split", "official") != "official":
        bx, by = np.concatenate([tx, vx]), np.concatenate([ty, vy])
        if "test" not in sp:
            raise MnistlabError(f"{run_dir}: splits.npz has no test indices (the run's split is {cfg.get('split')})")
        test = check_indices(sp["test"], len(bx), f"{run_dir / 'splits.npz'} test")
        test_x, test_y = bx[test], by[test]
    else:
        bx, by = tx, ty
        test_x, test_y = vx, vy
    # calibration: images whose labels the run was allowed to see (few-label runs: only their labelled ones)
    cal_name = next((k for k in ("val", "train", "labelled") if len(sp.get(k, ()))), None)
    if cal_name is None:
        raise MnistlabError(f"{run_dir}: splits.npz has no val/train/labelled indices to calibrate the rejector on")
    cal_idx = check_indices(sp[cal_name], len(bx), f"{run_dir / 'splits.npz'} {cal_name}")
    if calib_max and len(cal_idx) > calib_max:
        cal_idx = np.sort(np.random.default_rng(seed).choice(cal_idx, size=calib_max, replace=False))

    def forward(x):  # (N, K) logits, (N, D) features
        return (infer.logits(model, x, spec=pre, precision=prec),
                infer.embeddings(model, x, spec=pre, precision=prec))

    print(f"reject: calibrating on {len(cal_idx)} {cal_name} images, testing on {len(test_y)}", file=sys.stderr)
    cal_lg, cal_f = forward(bx[cal_idx])
    rej = R.fit_rejector(cal_lg, cal_f, by[cal_idx], num_classes=ds.num_classes, coverage=coverage, keep=keep,
                         chosen_on=cal_name)
    rej.info.update({"precision": prec, "model": spec.get("name"), "dataset": ds.name})
    te_lg, te_f = forward(test_x)
    correct = te_lg.argmax(1) == test_y
    scores = rej.scores(te_lg, te_f)
    conf = {"chow": scores["chow"], "margin": scores["margin"], "distance": -scores["distance"]}  # higher = surer
    dq = rej.info["calibration_distance_quantiles"]
    grids = {"chow": R.POSTERIOR_GRID, "margin": R.POSTERIOR_GRID,
             "distance": [dq[f"{q:g}"] for q in R.DISTANCE_QUANTILES]}

    rules: dict[str, dict] = {}
    curves = {}
    for rule in R.RULES:
        sw = R.sweep(scores[rule], correct, grids[rule], reject_below=R.REJECT_BELOW[rule])
        summ = R.selective_summary(conf[rule], correct)
        op = R.sweep(scores[rule], correct, [rej.thresholds[rule]], reject_below=R.REJECT_BELOW[rule])
        rules[rule] = {**sw, **summ, "threshold": rej.thresholds[rule], "how": rej.info["how"][rule],
                       "at_threshold": {k: v[0] for k, v in op.items() if k != "thresholds"}}
        if rule == "distance":
            rules[rule]["threshold_quantiles"] = list(R.DISTANCE_QUANTILES)
        curves[rule] = R.risk_coverage(conf[rule], correct)

    # outliers: what each rule rejects at its chosen threshold, and how well each score separates them (AUROC)
    from sklearn.metrics import roc_auc_score

    sources = {f"{ds.name} test": test_x}
    for name in ood:
        other = load_dataset(name)
        if other.shape != ds.shape:
            raise MnistlabError(f"--ood {name}: images {other.shape} do not match {ds.name} {ds.shape}")
        # as many outliers as in-distribution test images (at most): a smoke run's 500 test images get 500
        sources[name] = other.test_x[: len(test_y)]
    if noise:
        for kind in NOISE_KINDS:
            sources[kind] = noise_images(kind, min(noise, len(test_y)), ds.shape, seed=seed)
    fractions, ood_out, dist_scores = {}, {}, {}
    for name, x in sources.items():
        d = rej.decide(*forward(x)) if name != f"{ds.name} test" else rej.decide(te_lg, te_f)
        fractions[name] = {r: float(d[r]["reject"].mean()) for r in R.RULES}
        fractions[name]["any"] = float(d["reject_any"].mean())
        dist_scores[name] = d["distance"]["score"]
        if name != f"{ds.name} test":
            auroc = {}
            for r in R.RULES:
                s_in, s_out = conf[r], (-d[r]["score"] if r == "distance" else d[r]["score"])
                auroc[r] = float(roc_auc_score(np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out]))
            # evaluation metric (TNR at 99 % TPR), not an operating point: the threshold that keeps 99 % of the
            # in-distribution test images is computed on them for this number only and is never used to reject
            tnr = {}
            for r in R.RULES:
                s_in, s_out = conf[r], (-d[r]["score"] if r == "distance" else d[r]["score"])
                tnr[r] = float((s_out < np.quantile(s_in, 0.01)).mean())
            ood_out[name] = {"images": int(len(x)), "rejected": fractions[name], "auroc_in_vs_out": auroc,
                             "rejected_when_99pct_of_test_kept": tnr}

    result = {"run": str(run_dir), "dataset": ds.name, "test_images": int(len(test_y)),
              "test_accuracy": float(correct.mean()), "calibration": {"on": cal_name, "images": int(len(cal_idx))},
              "precision": prec, "rules": rules, "rejected_fraction": fractions, "ood": ood_out}
    result["interpretation"] = R.interpret({r: rules[r] for r in R.RULES}) + _ood_lines(fractions, ds.name)
    if cal_name == "val":  # issue 31's selector: fitted on validation images only, measured on test
        result["selector"] = select.fit_and_measure(run_dir, model=model, spec=spec, rejector=rej, val_x=bx[cal_idx],
                                                    val_y=by[cal_idx], test_x=test_x, test_correct=correct,
                                                    classes=[str(c) for c in ds.classes])
    out.mkdir(parents=True, exist_ok=True)
    save_png(out / "reject_rates.png", RP.rates_vs_threshold(
        {r: rules[r] for r in R.RULES}, ("rejection_rate",), title="rejection rate vs threshold (test)",
        ylabel="%"))
    save_png(out / "reject_recognition.png", RP.rates_vs_threshold(
        {r: rules[r] for r in R.RULES}, ("accuracy_accepted", "recognition_rate"),
        title="recognition rate vs threshold (test): on the accepted, and over all images", ylabel="%"))
    save_png(out / "risk_coverage.png", RP.risk_coverage(curves, rules))
    save_png(out / "reject_ood.png", RP.rejected_fractions(fractions))
    save_png(out / "distance_hist.png", RP.score_histograms(dist_scores, threshold=rej.thresholds["distance"]))
    fileio.write_text(out / "reject.json", R.dumps(result) + "\n")
    rej.save(run_dir)
    return result


def _ood_lines(fractions: dict[str, dict], in_name: str) -> list[str]:
    lines = []
    for name, f in fractions.items():
        if name == f"{in_name} test":
            lines.append(f"On {in_name} test the chosen thresholds reject {100 * f['chow']:.2f} % (Chow), "
                         f"{100 * f['margin']:.2f} % (margin) and {100 * f['distance']:.2f} % (distance).")
        else:
            lines.append(f"{name}: Chow rejects {100 * f['chow']:.1f} %, distance rejects {100 * f['distance']:.1f} %"
                         + (" — distance rejection catches what ambiguity rejection misses." if
                            f["distance"] > f["chow"] + 0.1 else "."))
    return lines


def _run(args) -> int:
    run_dir = Path(args.run)
    if not (run_dir / "model.json").exists():
        raise MnistlabError(f"{run_dir} is not a finished run folder (no model.json)")
    if not 0 < args.coverage <= 1 or not 0 < args.keep <= 1:
        raise MnistlabError("--coverage and --keep must be in (0, 1]")
    if args.noise < 0 or args.calib_max < 0:
        raise MnistlabError("--noise and --calib-max must be ≥ 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else run_dir
    res = analyse(run_dir, out, ood=args.ood or [], noise=args.noise, calib_max=args.calib_max,
                  coverage=args.coverage, keep=args.keep, precision=args.precision, seed=args.seed)
    if args.json:
        from mnistlab.evaluate.rejection import to_json
        import json

        print(json.dumps(to_json({k: v for k, v in res.items() if k != "rules"} | {"rules": {
            r: {k: v for k, v in d.items() if not isinstance(v, list)} for r, d in res["rules"].items()}})))
        return 0
    print(f"{out / 'reject.json'}  (rejector saved in {run_dir})")
    print(f"test accuracy without rejection: {100 * res['test_accuracy']:.2f} %")
    print(f"{'rule':>9} {'threshold':>10} {'rejected':>9} {'acc.acc':>8} {'AURC‰':>7} {'AURC*‰':>7} "
          f"{'acc@95%':>8}")
    for r, d in res["rules"].items():
        a = d["at_threshold"]
        print(f"{r:>9} {d['threshold']:>10.4g} {100 * a['rejection_rate']:>8.2f}% "
              f"{100 * (a['accuracy_accepted'] or 0):>7.3f}% {1000 * d['aurc']:>7.3f} {1000 * d['aurc_optimal']:>7.3f} "
              f"{100 * d['selective_accuracy']['0.95']:>7.3f}%")
    for line in res["interpretation"]:
        print("  " + line)
    return 0


def register(sub) -> None:
    p = sub.add_parser("reject", help="classification with rejection (Chow, margin, distance) from a trained run")
    p.add_argument("--run", required=True, help="a finished classifier run folder")
    p.add_argument("--out", help="where reject.json and the plots go (default: the run folder)")
    p.add_argument("--ood", action="append", metavar="DATASET",
                   help="an outlier dataset to feed: its test images, at most as many as the run's test images "
                        "(e.g. fashion-mnist); repeatable")
    p.add_argument("--noise", type=int, default=1000, help="noise images of each kind to feed (0 = none; at most the number of test images)")
    p.add_argument("--calib-max", type=int, default=20000,
                   help="at most this many calibration images (random, seeded; 0 = all)")
    p.add_argument("--coverage", type=float, default=0.95,
                   help="Chow/margin thresholds accept this fraction of the calibration images")
    p.add_argument("--keep", type=float, default=0.998,
                   help="distance threshold keeps this fraction of the calibration images")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32",
                   help="inference precision (fp32 default: exact posteriors near 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration subset and the noise images")
    p.add_argument("--threads", type=threads_arg, help="torch threads")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run)
