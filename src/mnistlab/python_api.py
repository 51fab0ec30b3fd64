"""The Python API a notebook user writes (re-exported by `import mnistlab as ml`); the CLI is a layer over the same
calls (`api.train`). Examples that the tests run: docs/api.md.

    run = ml.fewlabel(dataset="folder:scans/", labels=100, out="runs/scans")   # the CLI's defaults
    model = ml.load("runs/scans")
    probs = model.predict_proba(images)    # (N, K) numpy; images: numpy uint8/float, PIL, paths, folders
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import api, infer
from mnistlab.methods.recipes import default_recipe
from mnistlab.data.inputs import Images, to_model_images
from mnistlab.errors import MnistlabError
from mnistlab.pipeline import run_study
from mnistlab.evaluate.metrics import softmax
from mnistlab.predict import class_names
from mnistlab.runs import load_run

PathLike = str | os.PathLike


@dataclass(frozen=True)
class RunResult:
    """A finished run: its folder and final metrics (metrics.json)."""

    dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)

    def load(self) -> "Model":
        return load(self.dir)


def _train(method: str, *, dataset: str | None, out: PathLike | None, budget: str, resume: bool,
           settings: dict[str, Any] | None, data: dict[str, Any] | None = None,
           recipe: dict[str, Any] | None = None, **fields: Any) -> RunResult:
    over = {k: v for k, v in {"dataset": dataset, **fields}.items() if v is not None}
    over.update(settings or {})
    d, m = api.train(method, out=out, resume=resume, budget=budget, overrides=over, recipe=recipe, data_options=data)
    return RunResult(Path(d), m)


def fewlabel(dataset: str = "mnist", *, labels: int | None = None, method: str | None = None,
             out: PathLike | None = None, budget: str = "quick", seed: int | None = None,
             split_seed: int | None = None, preprocess: str | None = None, unlabelled: PathLike | None = None,
             labels_from: PathLike | None = None, skip_bad: bool = False, resume: bool = False,
             settings: dict[str, Any] | None = None) -> RunResult:
    """Learn from `labels` labelled images (class-balanced draw of `split_seed`) and the unlabelled rest, as
    `mnistlab fewlabel`: no `method` → the best recipe for the data set and label count (fixmatch by default). `dataset` is a registered
    name or folder:PATH / npz:PATH; `settings` = any config field (the CLI's --set)."""
    recipe = None
    if method is None:
        method, recipe = default_recipe(dataset, labels)
    data = {"preprocess": preprocess, "unlabelled": unlabelled, "labels_from": labels_from, "skip_bad": skip_bad}
    return _train(method, dataset=dataset, out=out, budget=budget, resume=resume, settings=settings, data=data,
                  recipe=recipe, labels=labels, seed=seed, split_seed=split_seed)


def supervised(dataset: str = "mnist", *, model: str | None = None, out: PathLike | None = None,
               budget: str = "quick", seed: int | None = None, preprocess: str | None = None,
               skip_bad: bool = False, resume: bool = False, settings: dict[str, Any] | None = None) -> RunResult:
    """Train a classifier on every training label, as `mnistlab supervised`."""
    data = {"preprocess": preprocess, "skip_bad": skip_bad}
    return _train("supervised", dataset=dataset, out=out, budget=budget, resume=resume, settings=settings,
                  data=data, model=model, seed=seed)


def detect(dataset: str = "mnist", *, out: PathLike | None = None, budget: str = "quick", seed: int | None = None,
           resume: bool = False, settings: dict[str, Any] | None = None) -> RunResult:
    """Train a digit / non-digit detector (as `mnistlab detect`); `ml.load(dir).predict_proba(x)[:, 1]` = p(digit)."""
    return _train("detector", dataset=dataset, out=out, budget=budget, resume=resume, settings=settings, seed=seed)


def gan(dataset: str = "mnist", *, conditional: bool = False, out: PathLike | None = None, budget: str = "quick",
        seed: int | None = None, resume: bool = False, settings: dict[str, Any] | None = None) -> RunResult:
    """Train a DCGAN (or, `conditional=True`, a class-conditional one), as `mnistlab gan train`."""
    return _train("cgan" if conditional else "gan", dataset=dataset, out=out, budget=budget, resume=resume,
                  settings=settings, seed=seed)


def study(out: PathLike, *, budget: str = "quick", only: list[str] | None = None, force: bool = False) -> list[dict]:
    """Run the study's stages (as `mnistlab run`) into `out`; finished stages are reused. → the stages' sections."""
    sections, _pace = run_study(Path(out), budget=budget, force=force, only=only)
    return sections


class Model:
    """A trained classifier (or detector) run, ready to predict on raw images with the run's own input rule."""

    def __init__(self, run_dir: PathLike):
        loaded = load_run(run_dir)
        self.dir: Path = loaded.dir
        self.spec: dict[str, Any] = loaded.spec
        self.metrics: dict[str, Any] = loaded.metrics
        self.module = loaded.model  # torch.nn.Module, eval mode
        self.classes: list[str] = class_names(self.dir, self.spec)
        pre = self.spec.get("preprocess", {})
        self.image_shape = tuple(self.spec.get("image_shape", (1, 28, 28)) if pre.get("features")
                                 else self.spec["in_shape"])

    def images(self, images: Images) -> np.ndarray:
        """The uint8 (N, C, H, W) the model sees for `images` (after the run's input rule)."""
        return to_model_images(images, shape=self.image_shape, rule=self.spec.get("image_input"))

    def predict_proba(self, images: Images) -> np.ndarray:
        """(N, K) float64 class probabilities, rows summing to 1 (fp32 forward pass)."""
        x = self.images(images)
        lg = infer.logits(self.module, x, spec=self.spec.get("preprocess"), precision="fp32")
        return softmax(lg.astype(np.float64))

    def predict(self, images: Images) -> np.ndarray:
        """(N,) int64 class indices (names: `self.classes`)."""
        return self.predict_proba(images).argmax(1)

    def __repr__(self) -> str:
        return f"Model({str(self.dir)!r}, {self.spec['name']}, {len(self.classes)} classes)"


def load(run_dir: PathLike) -> Model:
    """A finished classifier run folder → `Model` (predict_proba / predict)."""
    if not Path(run_dir).is_dir():
        raise MnistlabError(f"{run_dir}: no such run folder")
    return Model(run_dir)
