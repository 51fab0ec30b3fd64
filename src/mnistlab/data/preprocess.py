"""uint8 images → model inputs. The spec is saved in model.json, so `predict` and `serve` preprocess exactly as training.

spec keys: `binarize` (int threshold t: ink = pixel ≥ t, the seed report used 34) and `features` (a registered feature
set name, e.g. the report's 112 projections/profiles). Empty spec = pixels / 255.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from mnistlab.data.features import FEATURES


def as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """numpy → torch without a copy. Dataset arrays are read-only; torch only warns about that, and we never write."""
    if isinstance(x, torch.Tensor):
        return x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(x))


def preprocess(x: np.ndarray | torch.Tensor, spec: dict | None = None) -> torch.Tensor:
    """(B, C, H, W) uint8 → float32 model input (images in [0, 1], or (B, D) features)."""
    spec = spec or {}
    x = as_tensor(x)
    if spec.get("binarize") is not None:
        out = (x >= int(spec["binarize"])).float()
    else:
        out = x.float() / 255.0
    if spec.get("features"):
        out = FEATURES.get(spec["features"])(out)
    return out


def input_shape(spec: dict | None, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of one preprocessed example (what the model's `in_shape` must be)."""
    return tuple(preprocess(torch.zeros((1, *image_shape), dtype=torch.uint8), spec).shape[1:])
