"""Apply a trained classifier run (and optionally a digit/non-digit detector run) to user images.

`predict(run_dir, x)` takes uint8 (N, 1, 28, 28) images — from `data.images.load_images` — preprocesses them exactly as
the run's `model.json` says, and returns one record per image: `pred`, `label`, `probs` (sums to 1), with a selector
(selector.json) `rejected` / `reason` / `rule`, and with a detector `p_digit` / `is_digit` (a non-digit is rejected). Used by `mnistlab predict`; the web page can call it too.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio, infer, select
from mnistlab.data import load_dataset
from mnistlab.data.images import image_files, load_npy, read_images
from mnistlab.data.inputs import to_model_images
from mnistlab.evaluate.rejection import load_rejector
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import softmax
from mnistlab.precision import resolve_device
from mnistlab.runs import load_model


def read_inputs(run_dir: str | os.PathLike, images: str | os.PathLike, *, invert: bool = False,
                strict: bool = False) -> tuple[np.ndarray, list[str] | None, list[str]]:
    """(uint8 images (N, C, H, W), their file names or None for a .npy, what was skipped and why) as the run reads them:
    a run on user data by its recorded input rule (model.json `image_input`), else MNIST's rule (28×28, light ink on
    dark; `invert` for scans). In a folder a bad image is skipped unless `strict`."""
    spec_path, path = Path(run_dir) / "model.json", Path(images)
    spec = fileio.read_json(spec_path) if spec_path.is_file() else {}
    rule, is_npy = spec.get("image_input"), path.suffix.lower() == ".npy" and path.is_file()
    if rule:
        hw = tuple(int(v) for v in (spec.get("image_shape") or spec["in_shape"])[-2:])
        x = to_model_images(images, shape=(rule["channels"], *hw), rule=rule)
        return x, None if is_npy else [str(f) for f in image_files(path)], []
    if is_npy:
        return load_npy(path, invert=invert), None, []
    x, read, skipped = read_images(path, invert=invert, strict=strict)
    return x, [str(f) for f in read], skipped


def expected_image_shape(spec: dict) -> tuple[int, ...]:
    """The uint8 image shape a model's preprocessing takes: its `in_shape`, unless it computes features."""
    if spec.get("preprocess", {}).get("features"):
        return tuple(spec.get("image_shape", (1, 28, 28)))
    return tuple(spec["in_shape"])


def class_names(run_dir: Path, spec: dict) -> list[str]:
    """From model.json (`classes`) or the run's dataset; plain indices if neither is at hand."""
    k = int(spec["num_classes"])
    if spec.get("classes") and len(spec["classes"]) == k:
        return [str(c) for c in spec["classes"]]
    cfg = run_dir / "config.json"
    if cfg.exists():
        name = fileio.read_json(cfg).get("dataset")
        if name is not None and not isinstance(name, str):  # a damaged or hand-made config.json
            raise MnistlabError(f"{cfg}: dataset must be a dataset name, got {name!r:.60}")
        try:
            classes = list(load_dataset(name).classes) if name else []
            if len(classes) == k:
                return classes
        except MnistlabError:
            pass
    return [str(i) for i in range(k)]


def _classifier_probs(model, spec: dict, x: np.ndarray, *, what: str, run_dir: Path) -> np.ndarray:
    want = expected_image_shape(spec)
    if tuple(x.shape[1:]) != want:
        raise MnistlabError(f"{run_dir}: this {what} takes images of shape {want}, got {tuple(x.shape[1:])}")
    lg = infer.logits(model, x, spec=spec.get("preprocess"), precision="fp32")
    return softmax(lg.astype(np.float64))  # (N, K), rows sum to 1 in float64


def predict(run_dir: str | os.PathLike, x: np.ndarray, *, detector: str | os.PathLike | None = None,
            files: list[str] | None = None, device: str = "cpu") -> list[dict[str, Any]]:
    """One dict per image of `x` (uint8 (N, C, H, W)): index, [file], pred, label, probs, [p_digit, is_digit]."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MnistlabError(f"--run {run_dir}: no such run folder")
    if x.dtype != np.uint8 or x.ndim != 4:
        raise MnistlabError(f"expected uint8 images (N, C, H, W), got {x.dtype} {x.shape}")
    model, spec = load_model(run_dir, device=resolve_device(device))  # any device's run, on this one
    probs = _classifier_probs(model, spec, x, what="model", run_dir=run_dir)
    names = class_names(run_dir, spec)
    p_digit, threshold = None, 0.5
    if detector is not None:
        det_dir = Path(detector)
        if not det_dir.is_dir():
            raise MnistlabError(f"--detector {det_dir}: no such run folder")
        det, det_spec = load_model(det_dir, device=resolve_device(device))
        if int(det_spec["num_classes"]) != 2:
            raise MnistlabError(f"--detector {det_dir}: expected a binary (non-digit / digit) model, "
                                f"got {det_spec['num_classes']} classes")
        threshold = float(det_spec.get("threshold", 0.5))  # a detector run may store its tuned threshold
        p_digit = _classifier_probs(det, det_spec, x, what="detector", run_dir=det_dir)[:, 1]
    sel = _selected(run_dir, model, spec, x, names)
    out = []
    for i, p in enumerate(probs):
        rec: dict[str, Any] = {"index": i}
        if files is not None:
            rec["file"] = files[i]
        k = int(p.argmax())
        rec.update(pred=k, label=names[k], probs=[float(v) for v in p])
        if sel is not None:
            rec.update(rejected=sel[i]["rejected"], reason=sel[i]["reason"], rule=sel[i]["rule"])
        if p_digit is not None:
            rec.update(p_digit=float(p_digit[i]), is_digit=bool(p_digit[i] >= threshold))
            if not rec["is_digit"]:
                rec.update(rejected=True, reason=f"not a digit: the detector gives p(digit) {p_digit[i]:.3f} below "
                                                 f"{threshold:.3f}")
        out.append(rec)
    return out


def _selected(run_dir: Path, model, spec: dict, x: np.ndarray, names: list[str]) -> list[dict] | None:
    """The run's selector (fitted on validation by `mnistlab reject`): accept / reject and why, per image."""
    sel = select.load_selector(run_dir)
    if sel is None:
        return None
    rej = load_rejector(run_dir) if sel.rule == "views+dist" else None
    return select.decide(sel, model, spec, x, classes=names, rejector=rej)
