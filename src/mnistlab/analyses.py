"""Analyses of a finished run folder, never retraining it: posteriors (Q3–Q5.1), rejection (Q5), GAN samples,
the digit detector's answers (GAN metrics, which may train a classifier first, are `api.evaluate_gan`).

Layer: api (re-exported by `mnistlab.api`). Each loads the run and its data (`rundata`), calls the pure `evaluate/`
functions, saves `report/` figures and a JSON record, and returns that record.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mnistlab import fileio, infer, select
from mnistlab.data import load_dataset
from mnistlab.data.images import image_files, load_images
from mnistlab.data.noise import NOISE_KINDS, noise_images
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import posteriors as P
from mnistlab.evaluate import rejection as R
from mnistlab.evaluate.reject_analysis import confidences, outlier_lines, outlier_results, rule_results
from mnistlab.models.gan import sample
from mnistlab.precision import resolve_precision, setup_threads
from mnistlab.report import gan_images, plots
from mnistlab.report.files import save_npy, save_png
from mnistlab.report.rejection_plots import rejection_figures
from mnistlab.rundata import RunData, load_run_data, run_test_part
from mnistlab.runs import load_generator, load_model, load_run


def finished_run(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / "model.json").exists():
        raise MnistlabError(f"{run_dir} is not a finished run folder (no model.json)")
    return run_dir


def posteriors(run_dir: str | Path, *, out: str | Path | None = None, precision: str = "fp32",
               show: list[int] = (), threads: int = 0) -> dict:
    """posteriors.npy (N, K) float32 for every image of the run's base (train then test), posteriors_labels.npy,
    posteriors.json, priors.png and a prediction view per `show` test index, in `out` (default: the run folder)."""
    run_dir = finished_run(run_dir)
    setup_threads(threads)
    loaded = load_run(run_dir)
    cfg = loaded.config
    data = load_run_data(run_dir, cfg)
    bad = [i for i in show if not 0 <= i < len(data.test_y)]
    if bad:
        raise MnistlabError(f"--show: test indices must be in 0..{len(data.test_y) - 1}, got {bad}")
    x, y = np.concatenate([data.train_x, data.test_x]), np.concatenate([data.train_y, data.test_y])
    prec = resolve_precision(precision)
    p = P.posteriors(infer.logits(loaded.model, x, spec=loaded.spec.get("preprocess", {}), precision=prec))
    res = {"run": str(run_dir), "dataset": data.ds.name,
           "subset_of_the_base": bool(cfg.get("train_subset") or cfg.get("test_subset")), "precision": prec,
           **P.summary(p, y, n_train=len(data.train_y), classes=data.ds.classes)}
    if data.resplit:
        res["note"] = (f"this run re-split the base ({cfg['split']}): its own test part is inside these "
                       f"{len(y)} images; recognition rates on train/test here follow the official split")
    out = Path(out) if out else run_dir
    out.mkdir(parents=True, exist_ok=True)
    save_npy(out / "posteriors.npy", p)
    save_npy(out / "posteriors_labels.npy", y.astype(np.int64))
    fileio.write_json(out / "posteriors.json", res)
    save_png(out / "priors.png", plots.priors_vs_posteriors(np.array(res["priors"]), p.mean(0), data.ds.classes))
    for i in show:
        save_png(out / f"posterior_test_{i}.png", plots.prediction_view(
            data.test_x[i], p[len(data.train_y) + i], data.ds.classes, true=int(data.test_y[i])))
    return res


def calibration_part(data: RunData, run_dir: Path, *, calib_max: int, seed: int) -> tuple[str, np.ndarray]:
    """The images whose labels the run was allowed to see (few-label runs: only their labelled ones), at most
    `calib_max` of them (a seeded random subset): (part name, indices into the base)."""
    name = next((k for k in ("val", "train", "labelled") if len(data.splits.get(k, ()))), None)
    if name is None:
        raise MnistlabError(f"{run_dir}: splits.npz has no val/train/labelled indices to calibrate the rejector on")
    idx = data.part(name, run_dir)
    if calib_max and len(idx) > calib_max:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=calib_max, replace=False))
    return name, idx


def reject_inputs(data: RunData, test_x: np.ndarray, *, ood: list[str], noise: int, seed: int) -> dict:
    """The inputs the rejector is judged on: the test images, then outlier datasets and noise (each at most as many
    as test images: a smoke run's 500 test images get 500 outliers)."""
    ds = data.ds
    sources = {f"{ds.name} test": test_x}
    for name in ood:
        other = load_dataset(name)
        if other.shape != ds.shape:
            raise MnistlabError(f"--ood {name}: images {other.shape} do not match {ds.name} {ds.shape}")
        sources[name] = other.test_x[: len(test_x)]
    if noise:
        for kind in NOISE_KINDS:
            sources[kind] = noise_images(kind, min(noise, len(test_x)), ds.shape, seed=seed)
    return sources


def reject(run_dir: str | Path, *, out: str | Path | None = None, ood: list[str] = (), noise: int = 1000,
           calib_max: int = 20000, coverage: float = 0.95, keep: float = 0.998, precision: str = "fp32",
           seed: int = 0, threads: int = 0) -> dict:
    """Classification with rejection (Chow, margin, distance) from the run's model: calibrated on the run's
    validation (else training, else labelled) images, measured on its test images, outlier sets and noise.
    Writes reject.json and the plots to `out` (default: the run folder), the rejector to the run folder."""
    run_dir = finished_run(run_dir)
    if not 0 < coverage <= 1 or not 0 < keep <= 1:
        raise MnistlabError("--coverage and --keep must be in (0, 1]")
    if noise < 0 or calib_max < 0:
        raise MnistlabError("--noise and --calib-max must be ≥ 0")
    setup_threads(threads)
    loaded = load_run(run_dir)
    data = load_run_data(run_dir, loaded.config)
    ds, prec = data.ds, resolve_precision(precision)
    test_x, test_y = run_test_part(data, run_dir, loaded.config.get("split"))
    cal_name, cal_idx = calibration_part(data, run_dir, calib_max=calib_max, seed=seed)

    def forward(x):  # (N, K) logits, (N, D) features
        pre = loaded.spec.get("preprocess", {})
        return (infer.logits(loaded.model, x, spec=pre, precision=prec),
                infer.embeddings(loaded.model, x, spec=pre, precision=prec))

    print(f"reject: calibrating on {len(cal_idx)} {cal_name} images, testing on {len(test_y)}", file=sys.stderr)
    rej = R.fit_rejector(*forward(data.base_x[cal_idx]), data.base_y[cal_idx], num_classes=ds.num_classes,
                         coverage=coverage, keep=keep, chosen_on=cal_name)
    rej.info.update({"precision": prec, "model": loaded.spec.get("name"), "dataset": ds.name})
    te_lg, te_f = forward(test_x)
    correct = te_lg.argmax(1) == test_y
    scores = rej.scores(te_lg, te_f)
    rules, curves = rule_results(rej, scores, correct)
    sources = reject_inputs(data, test_x, ood=list(ood), noise=noise, seed=seed)
    in_name = f"{ds.name} test"
    decisions = {name: rej.decide(te_lg, te_f) if name == in_name else rej.decide(*forward(x))
                 for name, x in sources.items()}
    fractions, ood_out, dist_scores = outlier_results(confidences(scores), decisions, in_name=in_name)
    result = {"run": str(run_dir), "dataset": ds.name, "test_images": int(len(test_y)),
              "test_accuracy": float(correct.mean()), "calibration": {"on": cal_name, "images": int(len(cal_idx))},
              "precision": prec, "rules": rules, "rejected_fraction": fractions, "ood": ood_out,
              "interpretation": R.interpret(rules) + outlier_lines(fractions, in_name)}
    if cal_name == "val":  # issue 31's selector: fitted on validation images only, measured on test
        result["selector"] = select.fit_and_measure(
            run_dir, model=loaded.model, spec=loaded.spec, rejector=rej, val_x=data.base_x[cal_idx],
            val_y=data.base_y[cal_idx], test_x=test_x, test_correct=correct, classes=[str(c) for c in ds.classes])
    out = Path(out) if out else run_dir
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in rejection_figures(rules, curves, fractions, dist_scores,
                                       distance_threshold=rej.thresholds["distance"]).items():
        save_png(out / name, fig)
    fileio.write_text(out / "reject.json", R.dumps(result) + "\n")
    rej.save(run_dir)
    return result


def gan_samples(run_dir: str | Path, out: str | Path, *, n: int = 100, digit: int | None = None,
                seed: int = 0) -> np.ndarray:
    """`n` seeded samples of a trained generator → out.npy (uint8 (N, 28, 28) for grey images) or an out.png grid."""
    out = Path(out)
    if out.suffix not in (".npy", ".png"):
        raise MnistlabError(f"--out must end in .npy or .png, got {out.name!r}")
    if n < 1:
        raise MnistlabError("--n must be ≥ 1")
    G, spec = load_generator(run_dir)
    if digit is not None:
        if not spec["num_classes"]:
            raise MnistlabError(f"{run_dir} holds an unconditional generator; --digit needs a `gan train "
                                f"--conditional` run")
        if not 0 <= digit < spec["num_classes"]:
            raise MnistlabError(f"--digit must be in 0..{spec['num_classes'] - 1}")
    arr = sample(G, n, seed=seed, digit=digit)[0].numpy()
    arr = arr[:, 0] if arr.shape[1] == 1 else arr
    if out.suffix == ".npy":
        save_npy(out, arr)
    else:
        gan_images.save_png(out, gan_images.tile(arr, cols=min(n, 10)))
    return arr


def detect_digits(run_dir: str | Path, x: np.ndarray, *, threshold: float | None = None) -> list[dict]:
    """p(digit) per image with a detector run; `is_digit` uses the threshold chosen on validation (or `threshold`)."""
    if threshold is not None and not 0 < threshold < 1:
        raise MnistlabError("--threshold must be a probability in (0, 1)")
    d = Path(run_dir)
    if not (d / "model.json").exists():
        raise MnistlabError(f"{d} is not a finished detector run (no model.json)")
    model, spec = load_model(d)
    if spec.get("task") != "detector" or spec.get("num_classes") != 2:
        raise MnistlabError(f"{d} is not a detector run (model.json task {spec.get('task')!r})")
    thr = float(spec["threshold"]) if threshold is None else threshold
    lg = infer.logits(model, x, spec=spec.get("preprocess"))
    margin = lg[:, 1].astype(np.float64) - lg[:, 0]
    p = 1 / (1 + np.exp(-margin))
    # the margin logit(digit) − logit(no digit) keeps ranking information where p_digit rounds to 0 or 1
    return [{"index": i, "p_digit": round(float(pi), 6), "is_digit": bool(pi >= thr), "margin": round(float(m), 3)}
            for i, (pi, m) in enumerate(zip(p, margin))]


def detect_files(run_dir: str | Path, images: str | Path, *, invert: bool = False,
                 threshold: float | None = None) -> list[dict]:
    """`detect_digits` on a .npy, an image file or a folder (read by `predict`'s rules), each row naming its file."""
    rows = detect_digits(run_dir, load_images(images, invert=invert), threshold=threshold)
    path = Path(images)
    if not (path.suffix.lower() == ".npy" and path.is_file()):
        for r, f in zip(rows, image_files(path)):
            r["file"] = str(f)
    return rows
