"""A classifier run → a file that runs without mnistlab: ONNX (onnxruntime) or TorchScript, checked on export.

The exported graph takes uint8 images (N, C, H, W) — after the run's input rule — and returns class probabilities
(N, K) float32: it contains the scaling to [0, 1], the binarisation / feature step, the mirror averaging (`tta`) and
the softmax of model.json's `preprocess`. The input rule for raw files (`image_input`: resize / MNIST centring, its
size, inversion) cannot live in a graph; it is written beside the file in FILE.json (and, for ONNX, in the model's
metadata `mnistlab`), with the class names and the check below.

Check: on a fixed batch (seeded noise, blank and full images), the exported file's probabilities must match
mnistlab's own (fp32) within 1e-4 max abs, else nothing is written. ONNX uses torch's TorchScript-based exporter
(`dynamo=False`): the dynamo exporter, default in torch 2.13, needs `onnxscript`, which the `export` extra does not
carry (offline machines have onnx + onnxruntime only).
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnistlab import fileio, infer
from mnistlab.data.preprocess import preprocess
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import softmax
from mnistlab.predict import class_names
from mnistlab.runs import load_model

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 1e-4  # max abs difference of probabilities, fp32, on the check batch
OPSET = 17


class Exported(torch.nn.Module):
    """uint8 (N, C, H, W) → probabilities (N, K), with model.json's preprocessing and prediction rule inside."""

    def __init__(self, model: torch.nn.Module, pre: dict):
        super().__init__()
        self.model, self.pre = model, dict(pre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = preprocess(x, self.pre)  # float in [0, 1] (or (N, D) features)
        logits = infer.mirror_tta(self.model, z, self.pre)
        return torch.softmax(logits.float(), dim=1)


def check_batch(shape: tuple[int, ...], n: int = 16) -> np.ndarray:
    """The fixed uint8 batch every export is checked on: seeded noise, then a blank and a full image."""
    x = np.random.default_rng(0).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x[-2], x[-1] = 0, 255
    return x


def _image_shape(spec: dict) -> tuple[int, ...]:
    if spec.get("preprocess", {}).get("features"):
        return tuple(spec.get("image_shape", (1, 28, 28)))
    return tuple(spec["in_shape"])


def _onnx_bytes(wrapper: Exported, x: torch.Tensor, meta: dict) -> bytes:
    import onnx  # the `export` extra: only here

    buf = io.BytesIO()
    torch.onnx.export(wrapper, (x,), buf, dynamo=False, opset_version=OPSET, input_names=["images"],
                      output_names=["probs"], dynamic_axes={"images": {0: "n"}, "probs": {0: "n"}})
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = "mnistlab", json.dumps(meta)
    return proto.SerializeToString()


def _onnx_probs(blob: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort  # the `export` extra: only here

    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return sess.run(["probs"], {"images": x})[0]


def _torchscript_bytes(wrapper: Exported, x: torch.Tensor, meta: dict) -> bytes:
    with warnings.catch_warnings():  # torch 2.13 marks torch.jit deprecated; it still loads in C++ and Python
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(wrapper, (x,), check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={"mnistlab.json": json.dumps(meta)})
    return buf.getvalue()


def _torchscript_probs(blob: bytes, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(io.BytesIO(blob))
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _need_extra(fmt: str) -> None:
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401  (presence check)
            import onnxruntime  # noqa: F401
        except ImportError:
            raise MnistlabError("ONNX export needs the export extra: pip install 'mnistlab[export]' "
                                "(onnx, onnxruntime)") from None


def export_run(run_dir: str | os.PathLike, *, format: str = "onnx", out: str | os.PathLike | None = None
               ) -> dict[str, Any]:
    """Export a classifier run folder; returns the sidecar record (file, check, input rule, classes)."""
    if format not in FORMATS:
        raise MnistlabError(f"unknown export format {format!r}; valid: {', '.join(FORMATS)}")
    _need_extra(format)
    run_dir = Path(run_dir)
    if not (run_dir / "model.json").exists():
        raise MnistlabError(f"{run_dir}: no model.json; export takes a finished classifier run folder")
    model, spec = load_model(run_dir)
    model = model.float().to(memory_format=torch.contiguous_format).eval()
    pre = spec.get("preprocess", {})
    shape = _image_shape(spec)
    x = check_batch(shape)
    ours = softmax(infer.logits(model, x, spec=pre, precision="fp32"))
    meta = {"format": format, "input": {"name": "images", "dtype": "uint8", "shape": ["N", *shape]},
            "output": {"name": "probs", "dtype": "float32", "shape": ["N", int(spec["num_classes"])]},
            "classes": class_names(run_dir, spec), "preprocess_inside": pre,
            "image_input": spec.get("image_input") or {"rule": "mnist", "note": "28×28 images as they are; others "
                                                        "centred as MNIST was (mnistlab.data.images.to_mnist_28)"},
            "model": spec["name"], "run": str(run_dir)}
    wrapper = Exported(model, pre).eval()
    with torch.no_grad():
        blob = (_onnx_bytes if format == "onnx" else _torchscript_bytes)(wrapper, torch.from_numpy(x), meta)
    theirs = (_onnx_probs if format == "onnx" else _torchscript_probs)(blob, x)
    diff = float(np.abs(theirs.astype(np.float64) - ours).max())
    if not diff <= TOLERANCE:
        raise MnistlabError(f"export check failed: {format} probabilities differ from mnistlab's by {diff:.3g} "
                            f"(> {TOLERANCE:g}) on the fixed batch; nothing written")
    dest = Path(out) if out else run_dir / f"model{FORMATS[format]}"
    record = {**meta, "file": str(dest), "check": {"batch": f"{len(x)} fixed uint8 images (seeded noise, blank, "
                                                   "full)", "max_abs_diff": diff, "tolerance": TOLERANCE,
                                                   "precision": "fp32"}}
    fileio.write_bytes(dest, blob)
    fileio.write_json(dest.with_name(dest.name + ".json"), record)
    return record
