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


def layer_summary(model: torch.nn.Module, in_shape: tuple[int, ...]) -> list[tuple[str, str, tuple[int, ...], int]]:
    """(name, layer type — with its kernel for convolutions and pools —, output shape without the batch, parameters)
    of every leaf module, in forward order, from one forward pass of a zero batch of 2 images (eval mode, no grad)."""
    rows: list[tuple[str, str, tuple[int, ...], int]] = []
    hooks = []
    for name, m in model.named_modules():
        if name and not list(m.children()):
            def hook(mod, _inp, out, name=name):
                shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()
                k = getattr(mod, "kernel_size", None)
                k = f" {k[0]}×{k[1]}" if isinstance(k, tuple) else f" {k}×{k}" if isinstance(k, int) else ""
                rows.append((name, type(mod).__name__ + k, shape, sum(p.numel() for p in mod.parameters())))
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(2, *in_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows
