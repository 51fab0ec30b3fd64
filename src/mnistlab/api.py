"""Python entry points behind the CLI: `train(method, …)` merges the config, runs the method in a run folder."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio, infer, runs, userrun
from mnistlab.config import load_config_file, merge, to_dict
from mnistlab.data import check_dataset_name, load_dataset
from mnistlab.data.sources import data_home
from mnistlab.errors import MnistlabError, TrainingDiverged
from mnistlab.evaluate import gan_eval
from mnistlab.evaluate.metrics import softmax
from mnistlab.methods import METHODS
from mnistlab.models import MODELS, check_options
from mnistlab.models.gan import sample
from mnistlab.precision import resolve_device, resolve_precision
from mnistlab.runs import LoadedRun, Run, default_out


def resolve_config(method: str, *, budget: str = "quick", config_file: str | None = None,
                   overrides: dict[str, Any] | None = None, recipe: dict[str, Any] | None = None):
    """defaults < recipe (a dataset's best settings, `mnistlab fewlabel` without --method) < budget preset < config
    file < command line."""
    cls = METHODS.info(method)["config"]
    budgets = METHODS.info(method).get("budgets", {})
    layers_first = merge(cls, {"budget": budget}, load_config_file(config_file), overrides or {})
    return merge(cls, recipe or {}, budgets.get(layers_first.budget, {}), {"budget": layers_first.budget},
                 load_config_file(config_file), overrides or {})


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


def classifier_cache_root() -> Path:
    return data_home() / "gan-classifiers"


def cached_classifier(dataset: str, *, overrides: dict | None = None, budget: str | None = None,
                      threads: int = 0) -> LoadedRun:
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
              overrides={**over, **({"threads": threads} if threads else {})})
    return runs.load_run(out)


def evaluate_generator(run_dir: str | Path, classifier: LoadedRun, *, n: int = 10000, seed: int = 0,
                       nn_samples: int = 1000, precision: str = "auto") -> dict[str, Any]:
    """All GAN metrics (evaluate/gan_eval.py) for the generator of `run_dir`, with `classifier` (a loaded run).

    Sampling is fp32 (seeded, deterministic); the classifier runs in `precision` (auto: bf16 where the CPU has it).
    """
    precision = resolve_precision(precision)
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
            "checkpoint_step": spec.get("checkpoint_step"),  # None: the final generator, else an unfinished run
            **out}


def train(method: str, *, command: str | None = None, out: str | os.PathLike | None = None, resume: bool = False,
          budget: str = "quick", config_file: str | None = None, overrides: dict[str, Any] | None = None,
          recipe: dict[str, Any] | None = None, data_options: dict[str, Any] | None = None) -> tuple[Path, dict]:
    """Run `method` into a run folder; returns (folder, final metrics). A finished folder + resume → its metrics.

    `command` names the run in config.json and the default folder (default: the method's task, e.g. "fewlabel").
    `data_options` (preprocess, unlabelled, labels_from, skip_bad…) go into a user data set's name: data/userdata.py.
    """
    entry = METHODS.get(method)
    command = command or METHODS.info(method).get("task") or method
    cfg = resolve_config(method, budget=budget, config_file=config_file, overrides=overrides, recipe=recipe)
    user_ds = userrun.prepare(cfg, method=method, options=data_options)  # user data: checked before any folder
    check_names(cfg, METHODS.info(method).get("model_options"))
    where = check_device(cfg)  # an unknown or absent device: one line, before any folder is made
    if out is not None and not str(out).strip():
        raise MnistlabError("--out is an empty path; give a folder (or leave --out out for an auto-named one)")
    out = Path(out) if out is not None else default_out(command, method)
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
        return run.dir, metrics
    finally:
        run.close()
