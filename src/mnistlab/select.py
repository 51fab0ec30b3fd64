"""The run's selective rule (evaluate/selective.py) applied with its model: fit it on the run's validation images,
save it as selector.json, and answer "accept or reject, and why" for user images (`predict`, the web page).

Fitting reads only the images and labels of the run's validation split (splits.npz "val"); a run without one has no
selector and keeps its older rules. The distance term uses the run's rejector (`mnistlab reject`) when there is one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnistlab import fileio, infer
from mnistlab.data.shifts import tta_views
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import selective
from mnistlab.evaluate.rejection import selective_summary
from mnistlab.runs import load_model

FILE = "selector.json"


def _arrays(model: torch.nn.Module, spec: dict, x: np.ndarray, rejector=None) -> dict[str, Any]:
    pre = spec.get("preprocess")
    lg = infer.logits(model, x, spec=pre)
    out: dict[str, Any] = {"logits": lg, "view_logits": None, "distance": None}
    if tuple(spec.get("in_shape", ())) == (1, 28, 28) and not (pre or {}).get("features"):
        out["view_logits"] = infer.view_logits(model, x, views=tta_views, spec=pre)
    if rejector is not None:
        out["distance"] = rejector.scores(lg, infer.embeddings(model, x, spec=pre))["distance"]
    return out


def fit_run_selector(run_dir: str | Path, *, val_x: np.ndarray, val_y: np.ndarray, model=None, spec=None,
                     rejector=None, coverage: float = 0.95) -> selective.Selector:
    """Fit the selector on the run's VALIDATION images (the caller passes them) and save selector.json."""
    if model is None:
        model, spec = load_model(run_dir)
    a = _arrays(model, spec, val_x, rejector)
    sel = selective.fit_selector(a["logits"], np.asarray(val_y), view_logits=a["view_logits"],
                                 distance=a["distance"], coverage=coverage)
    fileio.write_json(Path(run_dir) / FILE, sel.to_json())
    return sel


def load_selector(run_dir: str | Path) -> selective.Selector | None:
    """The run's selector.json, or None when it has none."""
    p = Path(run_dir) / FILE
    return selective.Selector.from_json(fileio.read_json(p)) if p.exists() else None


def decide(sel: selective.Selector, model: torch.nn.Module, spec: dict, x: np.ndarray, *, classes: list[str],
           rejector=None) -> list[dict]:
    """Per image: {"rule", "score", "threshold", "rejected", "reason"} (reason None when accepted)."""
    if sel.rule == "views+dist" and rejector is None:
        raise MnistlabError("this selector needs the run's rejector (distance term): run `mnistlab reject` first")
    a = _arrays(model, spec, x, rejector if sel.rule == "views+dist" else None)
    if sel.rule in ("views", "views+dist") and a["view_logits"] is None:
        raise MnistlabError(f"the selector rule {sel.rule} needs 28×28 image inputs")
    s = sel.score(a["logits"], view_logits=a["view_logits"], distance=a["distance"])
    p = selective.scores(a["logits"], t=sel.t)["msp-t"]
    probs = selective._p(a["logits"], sel.t)
    out = []
    for i in range(len(x)):
        order = np.argsort(-probs[i])
        rej = bool(s[i] < sel.threshold)
        why = selective.reason(rule=sel.rule, score=float(s[i]), threshold=sel.threshold, pred=classes[order[0]],
                               second=classes[order[1]], p2=float(probs[i, order[1]])) if rej else None
        out.append({"rule": sel.rule, "score": float(s[i]), "threshold": sel.threshold, "rejected": rej,
                    "reason": why, "p_calibrated": float(p[i])})
    return out


def fit_and_measure(run_dir: str | Path, *, model, spec: dict, rejector, val_x: np.ndarray, val_y: np.ndarray,
                    test_x: np.ndarray, test_correct: np.ndarray, classes: list[str]) -> dict:
    """Fit on validation, save selector.json, and measure the chosen rule on test (AURC …): for reject.json."""
    sel = fit_run_selector(run_dir, val_x=val_x, val_y=val_y, model=model, spec=spec, rejector=rejector)
    te = decide(sel, model, spec, test_x, classes=classes, rejector=rejector)
    return {**sel.to_json(), "test": selective_summary(np.array([d["score"] for d in te]), test_correct)}
