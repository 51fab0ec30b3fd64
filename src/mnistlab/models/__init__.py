"""Model registry. A model is a plain `nn.Module` taking float images (B, C, H, W) in [0, 1].

Classifiers return logits (B, num_classes) from `forward` and penultimate features (B, D) from `embed` — the space in
which distance rejection, k-NN probes and classifier-FID work.
"""
from __future__ import annotations

from typing import Any

import torch

from mnistlab.registry import Registry

MODELS: Registry = Registry("model", "mnistlab.models")


def create_model(name: str, *, in_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10,
                 **kwargs: Any) -> torch.nn.Module:
    """Build a registered model; `kwargs` are the factory's own options (widths, hidden sizes, dropout…)."""
    return MODELS.get(name)(in_shape=tuple(in_shape), num_classes=num_classes, **kwargs)


def model_spec(name: str, *, in_shape, num_classes: int, preprocess: dict | None = None, **kwargs: Any) -> dict:
    """What `runs.load_model` needs to rebuild the model, saved as model.json."""
    return {"name": name, "in_shape": list(in_shape), "num_classes": num_classes, "kwargs": kwargs,
            "preprocess": preprocess or {}}


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
