"""Python entry points behind the CLI: `train(method, …)` merges the config (`methods.recipes`), runs the method in a
run folder; `posteriors`, `reject`, `gan_samples` analyse a finished run (`analyses`); `evaluate_gan` scores a GAN run
with a classifier it may train first (so it lives here, beside `train`); `dataset_stats`, `example_grid` describe a
dataset."""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio, infer, runs, userrun
from mnistlab.analyses import detect_digits, detect_files, gan_samples, posteriors, reject  # noqa: F401 (the API)
from mnistlab.config import to_dict
from mnistlab.data import DATASETS, check_dataset_name, load_dataset
from mnistlab.data import negatives as neg
from mnistlab.data.sources import data_home
from mnistlab.data.stats import stats as dataset_stats  # noqa: F401 (the API)
from mnistlab.errors import MnistlabError, TrainingDiverged
from mnistlab.evaluate import gan_eval
from mnistlab.evaluate.metrics import softmax
from mnistlab.methods import METHODS
from mnistlab.methods.recipes import config_sources, default_recipe, resolve_config  # noqa: F401 (the API)
from mnistlab.models import MODELS, check_options
from mnistlab.models.gan import sample
from mnistlab.precision import resolve_device, resolve_precision, setup_threads
from mnistlab.report import detector_plots, plots
from mnistlab.report.summaries import finished_line, gan_classifier_note
from mnistlab.runs import LoadedRun, Run, default_out, resolve_out
from mnistlab.train import calibrate


def catalogue() -> dict[str, Any]:
    """What the registries hold: dataset and model names, and each method's task."""
    return {"datasets": DATASETS.names(), "models": MODELS.names(),
            "methods": {n: METHODS.info(n).task for n in METHODS.names()}}


def check_names(cfg, model_options=None) -> None:
    """Unknown dataset / model names, and the model options a method asks for (`model_options(cfg)`, when it says how
    it builds them) that the model does not take, fail before a run folder is made (not after, leaving a half-made one)."""
    if getattr(cfg, "dataset", None):
        check_dataset_name(cfg.dataset)
    default_model = getattr(type(cfg)(), "model", None)
    if isinstance(default_model, str) and default_model in MODELS:  # the method builds its model from MODELS
        MODELS.get(cfg.model)
        if model_options is not None:
            check_options(cfg.model, model_options(cfg))


def check_device(cfg) -> dict[str, str]:
    """{device, precision} as the run will resolve them (mnistlab.precision), or one MnistlabError."""
    device = resolve_device(getattr(cfg, "device", "auto"))
    return {"device": str(device), "precision": resolve_precision(getattr(cfg, "precision", "auto"), device)}


# ------------------------------------------------------------------------------------------------ GAN evaluation

# the evaluation classifier trained when none is given (≈ 99.3 % on MNIST test)
CLASSIFIER_OVERRIDES: dict[str, Any] = {"model": "cnn", "epochs": 3, "seed": 0}
CLASSIFIER_BUDGET = "quick"
# issue 7's targets, printed beside the measured GAN values
GAN_TARGETS = {"mnist_score": 9.5, "class_share": (0.08, 0.12), "agreement": 0.98, "fid_ratio": 3.0}


def classifier_cache_root() -> Path:
    return data_home() / "gan-classifiers"


def cached_classifier(dataset: str, *, overrides: dict | None = None, budget: str | None = None,
                      threads: int = 0, device: str = "auto") -> LoadedRun:
    """A supervised classifier for `dataset`, trained once into the cache (keyed by its resolved config and the code
    that trains it) and reused."""
    over = {**CLASSIFIER_OVERRIDES, **(overrides or {}), "dataset": dataset}
    budget = budget or CLASSIFIER_BUDGET
    cfg = {k: v for k, v in to_dict(resolve_config("supervised", budget=budget, overrides=over)).items()
           if k not in ("threads", "device")}
    code = runs.source_fingerprint("mnistlab.methods.supervised", "mnistlab.train",
                                   MODELS.get(cfg["model"]).__module__)
    key = hashlib.sha256(json.dumps({**cfg, "code": code}, sort_keys=True).encode()).hexdigest()[:12]
    out = classifier_cache_root() / f"supervised-{dataset}-{key}"
    if not (out / "metrics.json").exists():
        train("supervised", command="gan eval (classifier)", out=out, resume=True, budget=budget,
              overrides={**over, "device": device, **({"threads": threads} if threads else {})})
    return runs.load_run(out)


def evaluate_generator(run_dir: str | Path, classifier: LoadedRun, *, n: int = 10000, seed: int = 0,
                       nn_samples: int = 1000, precision: str = "auto", device: str = "cpu") -> dict[str, Any]:
    """All GAN metrics (evaluate/gan_eval.py) for the generator of `run_dir`, with `classifier` (a loaded run).

    Sampling is fp32 on the CPU (seeded: the same images on any machine); the classifier runs on `device` in
    `precision` (auto: bf16 where the device has it).
    """
    where = resolve_device(device)
    precision = resolve_precision(precision, where)
    classifier.model.to(where)  # read onto the CPU by runs.load_run; infer follows the model's device
    G, spec = runs.load_generator(run_dir)
    config = fileio.read_json(Path(run_dir) / "config.json")
    ds = load_dataset(config.get("dataset", "mnist"))
    model, pre = classifier.model, classifier.spec.get("preprocess", {})
    if classifier.spec.get("num_classes") != ds.num_classes or not hasattr(model, "embed"):
        raise MnistlabError(f"classifier {classifier.dir} does not fit dataset {ds.name} (classes / embed)")
    if n < 10:
        raise MnistlabError("--n must be at least 10")
    images, requested = sample(G, n, seed=seed)  # (n, C, 28, 28) uint8
    x = images.numpy()
    m = min(n, len(ds.test_y))
    test_x, test_y = ds.test_x[:m], ds.test_y[:m]
    train_sub = np.sort(np.random.default_rng(seed).choice(len(ds.train_y), m, replace=False))
    kw = {"spec": pre, "precision": precision}
    out = gan_eval.generator_metrics(
        probs=softmax(infer.logits(model, x, **kw)), test_probs=softmax(infer.logits(model, test_x, **kw)),
        test_y=test_y, f_gen=infer.embeddings(model, x, **kw), f_test=infer.embeddings(model, test_x, **kw),
        f_train=infer.embeddings(model, ds.train_x[train_sub], **kw), x=x, test_x=test_x, train_x=ds.train_x,
        requested=None if requested is None else requested.numpy(), num_classes=ds.num_classes,
        nn_samples=nn_samples)
    return {"run": str(run_dir), "classifier": str(classifier.dir), "dataset": ds.name,
            "conditional": bool(requested is not None), "n": n, "seed": seed, "precision": precision,
            "device": str(where),
            "checkpoint_step": spec.get("checkpoint_step"),  # None: the final generator, else an unfinished run
            **out}


def gan_classifier_plan(run_dir: str | Path) -> dict | None:
    """What `evaluate_gan` without a classifier trains before it starts: {dataset, model, epochs, batch_size, steps,
    cache}; None when a cached classifier of the run's dataset is there to reuse (or `run_dir` is no run folder)."""
    if not (Path(run_dir) / "config.json").exists():
        return None  # `evaluate_gan` says what is wrong
    dataset = fileio.read_json(Path(run_dir) / "config.json").get("dataset", "mnist")
    cache = classifier_cache_root()
    # (approximate: the cache key also covers the trainer's code, so an edited trainer retrains unannounced)
    if any((d / "metrics.json").exists() for d in cache.glob(f"supervised-{dataset}-*")):
        return None
    cfg = resolve_config("supervised", budget=CLASSIFIER_BUDGET, overrides={**CLASSIFIER_OVERRIDES,
                                                                            "dataset": dataset})
    images = len(load_dataset(dataset).train_y)
    return {"dataset": dataset, "model": cfg.model, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
            "images": images, "steps": math.ceil(cfg.epochs * images / cfg.batch_size), "cache": str(cache)}


def gan_classifier_notice(run_dir: str | Path) -> str | None:
    """What `evaluate_gan` without a classifier will train and how long it should take here (≈ 5 s to time a few
    steps); None when a cached classifier will be reused."""
    if plan := gan_classifier_plan(run_dir):
        return gan_classifier_note(plan, calibrate(batch=plan["batch_size"]))
    return None


def evaluate_gan(run_dir: str | Path, *, classifier: str | Path | LoadedRun | None = None, n: int = 10000,
                 seed: int = 0, threads: int = 0, device: str = "auto") -> dict:
    """GAN metrics of a `gan train` run (unfinished: its last checkpoint), scored by `classifier` (a finished
    supervised run; default: a cached one, trained once, on `device`) that runs on `device`. Writes gan_eval.json
    into the run folder."""
    setup_threads(threads)
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise MnistlabError(f"{run_dir} is not a run folder (no config.json)")
    if classifier is None:
        dataset = fileio.read_json(run_dir / "config.json").get("dataset", "mnist")
        clf = cached_classifier(dataset, threads=threads, device=device)
    else:
        clf = classifier if isinstance(classifier, LoadedRun) else runs.load_run(classifier)
    res = evaluate_generator(run_dir, clf, n=n, seed=seed, device=device)
    res["targets"] = gan_targets_met(res)
    fileio.write_json(run_dir / "gan_eval.json", res)
    return res


def gan_targets_met(res: dict) -> dict:
    lo, hi = GAN_TARGETS["class_share"]
    hist = res["class_histogram"]
    out = {"mnist_score>=9.5": res["mnist_score"] >= GAN_TARGETS["mnist_score"],
           "class_share_8-12%": lo <= hist["min_fraction"] and hist["max_fraction"] <= hi,
           "fid<=3x_floor": res["fid_ratio_to_floor"] <= GAN_TARGETS["fid_ratio"]}
    if res.get("conditional"):
        out["agreement>=98%"] = res["conditional_agreement"] >= GAN_TARGETS["agreement"]
    return out


def train(method: str, *, command: str | None = None, out: str | os.PathLike | None = None, resume: bool = False,
          budget: str = "quick", config_file: str | None = None, overrides: dict[str, Any] | None = None,
          recipe: dict[str, Any] | None = None, data_options: dict[str, Any] | None = None) -> tuple[Path, dict]:
    """Run `method` into a run folder; returns (folder, final metrics). A finished folder + resume → its metrics.

    `command` names the run in config.json and the default folder (default: the method's task, e.g. "fewlabel").
    `data_options` (preprocess, unlabelled, labels_from, skip_bad…) go into a user data set's name: data/userdata.py.
    """
    entry = METHODS.get(method)
    command = command or METHODS.info(method).task or method
    cfg = resolve_config(method, budget=budget, config_file=config_file, overrides=overrides, recipe=recipe)
    user_ds = userrun.prepare(cfg, method=method, options=data_options)  # user data: checked before any folder
    check_names(cfg, METHODS.info(method).model_options)
    where = check_device(cfg)  # an unknown or absent device: one line, before any folder is made
    out = resolve_out(out, default_out(command, method))
    rank = int(os.environ.get("RANK", "0"))
    run = Run(out, resume=resume, writer=rank == 0)
    try:
        if resume and run.finished:  # its metrics, if it is the run asked for (other settings: one error)
            run.check_config(cfg, command=command, method=method)
            return run.dir, fileio.read_json(run.path("metrics.json"))
        try:
            run.start(cfg, command=command, method=method, resolved=where)
            metrics = entry(cfg, run, resume=resume)
            if user_ds is not None:
                userrun.record(run, user_ds)
        except TrainingDiverged:
            raise  # its folder keeps the last good checkpoint and the log: what the user needs to see why
        except MnistlabError:  # a bad setting the method found (a split, a label count…): no half-made folder left
            run.discard_if_unstarted()
            raise
        metrics = run.finish({"method": method, "dataset": getattr(cfg, "dataset", None), "seed": cfg.seed,
                              "budget": cfg.budget, **metrics})
        userrun.write_card(run.dir)
        if rank == 0 and os.environ.get("MNISTLAB_QUIET") != "1":
            print(finished_line(f"{command} {method}", run.dir, metrics), file=sys.stderr, flush=True)
        return run.dir, metrics
    finally:
        run.close()


def example_grid(dataset: str, out: str | os.PathLike, *, n: int = 64, split: str = "train", seed: int = 0) -> Path:
    """A PNG grid of `n` random (seeded) labelled images of a dataset's train or test part."""
    if n <= 0 or n > 1024:
        raise MnistlabError("--n must be between 1 and 1024")
    if not str(out).lower().endswith(".png"):
        raise MnistlabError("--out must be a .png file")
    ds = load_dataset(dataset)
    x, y = (ds.train_x, ds.train_y) if split == "train" else (ds.test_x, ds.test_y)
    idx = np.random.default_rng(seed).choice(len(y), size=min(n, len(y)), replace=False)
    fig = plots.image_grid(x[idx], [ds.classes[int(c)] for c in y[idx]], cols=min(n, 16))
    with fileio.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return Path(out)


def negatives_grid(family: str, out: str | os.PathLike, *, n: int = 64, seed: int = 0,
                   npy: str | os.PathLike | None = None) -> Path:
    """A PNG grid of a non-digit generator family's images (`all`: a row per family), and optionally the images as
    uint8 (N, 1, 28, 28) .npy."""
    if not 1 <= n <= 1024:
        raise MnistlabError("--n must be between 1 and 1024")
    if not str(out).lower().endswith(".png"):
        raise MnistlabError("--out must be a .png file")
    families = neg.family_names() if family == "all" else [family]
    if family == "all":  # one row per family
        fig = detector_plots.families_grid({f: neg.generate(f, min(n, 16), seed=seed) for f in families})
    else:
        fig = plots.image_grid(neg.generate(family, n, seed=seed), cols=min(n, 16), size=0.9)
        fig.suptitle(f"{family} (seed {seed})", fontsize=9)
    with fileio.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    if npy:
        x = np.concatenate([neg.generate(f, n, seed=seed) for f in families])
        with fileio.atomic_path(npy) as tmp, open(tmp, "wb") as fh:
            np.save(fh, x, allow_pickle=False)
    return Path(out)
