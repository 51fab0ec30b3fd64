"""Python entry points behind the CLI: `train(method, …)` merges the config, runs the method in a run folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mnistlab.config import load_config_file, merge
from mnistlab.errors import MnistlabError, TrainingDiverged
from mnistlab.methods import METHODS
from mnistlab.precision import resolve_device, resolve_precision
from mnistlab.runs import Run, default_out


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
    from mnistlab.data import DATASETS
    from mnistlab.models import MODELS, check_options

    if getattr(cfg, "dataset", None):
        DATASETS.get(cfg.dataset)
    default_model = getattr(type(cfg)(), "model", None)
    if isinstance(default_model, str) and default_model in MODELS:  # the method builds its model from MODELS
        MODELS.get(cfg.model)
        if model_options is not None:
            check_options(cfg.model, model_options(cfg))


def check_device(cfg) -> dict[str, str]:
    """{device, precision} as the run will resolve them (mnistlab.precision), or one MnistlabError."""
    device = resolve_device(getattr(cfg, "device", "auto"))
    return {"device": str(device), "precision": resolve_precision(getattr(cfg, "precision", "auto"), device)}


def train(method: str, *, command: str, out: str | os.PathLike | None = None, resume: bool = False,
          budget: str = "quick", config_file: str | None = None,
          overrides: dict[str, Any] | None = None, recipe: dict[str, Any] | None = None) -> tuple[Path, dict]:
    """Run `method` into a run folder; returns (folder, final metrics). A finished folder + resume → its metrics."""
    entry = METHODS.get(method)
    cfg = resolve_config(method, budget=budget, config_file=config_file, overrides=overrides, recipe=recipe)
    check_names(cfg, METHODS.info(method).get("model_options"))
    where = check_device(cfg)  # an unknown or absent device: one line, before any folder is made
    out = Path(out) if out else default_out(command, method)
    rank = int(os.environ.get("RANK", "0"))
    run = Run(out, resume=resume, writer=rank == 0)
    try:
        if resume and run.finished:
            from mnistlab.fileio import read_json

            return run.dir, read_json(run.path("metrics.json"))
        try:
            run.start(cfg, command=command, method=method, resolved=where)
            metrics = entry(cfg, run, resume=resume)
        except TrainingDiverged:
            raise  # its folder keeps the last good checkpoint and the log: what the user needs to see why
        except MnistlabError:  # a bad setting the method found (a split, a label count…): no half-made folder left
            run.discard_if_unstarted()
            raise
        metrics = run.finish({"method": method, "dataset": getattr(cfg, "dataset", None), "seed": cfg.seed,
                              "budget": cfg.budget, **metrics})
        return run.dir, metrics
    finally:
        run.close()
