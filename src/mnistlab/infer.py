"""Batched inference on uint8 images: logits, probabilities and penultimate features, in eval mode, no grad."""
from __future__ import annotations

import numpy as np
import torch

from mnistlab.data.preprocess import as_tensor, preprocess
from mnistlab.errors import MnistlabError
from mnistlab.precision import autocast, channels_last, module_device


def mirror_tta(fn, xb: torch.Tensor, spec: dict | None) -> torch.Tensor:
    """fn(xb), or its mean over the image and its left-right mirror when the preprocess spec says `tta: hflip`.

    Set only for datasets whose classes survive a flip (clothes, not digits). For a linear head, the mean of the
    logits equals the head of the mean embedding, so logits and features stay consistent.
    """
    out = fn(xb)
    if spec and spec.get("tta") == "hflip":
        out = (out + fn(xb.flip(-1))) / 2
    return out


def tta_rule(setting: bool | str, ds) -> str:
    """A method's `tta` setting → the prediction rule saved with its model: "hflip" (mean logits of the image and
    its mirror) or "none". true | hflip, false | none, auto = hflip where the dataset's classes survive a mirror."""
    rule = {True: "hflip", "true": "hflip", "hflip": "hflip", False: "none", "false": "none", "none": "none",
            "auto": "hflip" if ds.hflip_safe else "none"}.get(setting)
    if rule is None:
        raise MnistlabError(f"unknown tta {setting!r}; valid: auto, hflip (true), none (false)")
    if rule == "hflip" and not ds.hflip_safe:
        raise MnistlabError(f"tta mirrors the test images, and a mirrored {ds.name} image may change class; "
                            "use it on datasets whose classes survive flips (fashion-mnist, cifar10)")
    return rule


@torch.no_grad()
def batched(fn, x: np.ndarray | torch.Tensor, *, spec: dict | None = None, precision: str = "fp32",
            batch_size: int = 128, device: torch.device | str = "cpu") -> np.ndarray:
    """Apply `fn` (float batch → tensor) to uint8 images (N, C, H, W) in chunks, on `device`; float32 numpy.

    Chunks of 128: the `cnn`'s activations then stay in cache (benchmarks/notes/recipe-history.md)."""
    x = as_tensor(x)
    outs = []
    for i in range(0, len(x), batch_size):
        xb = channels_last(preprocess(x[i: i + batch_size].to(device), spec))
        with autocast(precision, device):
            outs.append(mirror_tta(fn, xb, spec).float())
    return torch.cat(outs).cpu().numpy() if outs else np.zeros((0,), np.float32)


def logits(model: torch.nn.Module, x, **kw) -> np.ndarray:
    """(N, K) logits."""
    was = model.training
    model.eval()
    try:
        return batched(model, x, device=module_device(model), **kw)
    finally:
        model.train(was)


def embeddings(model: torch.nn.Module, x, **kw) -> np.ndarray:
    """(N, D) penultimate features (`model.embed`)."""
    was = model.training
    model.eval()
    try:
        return batched(model.embed, x, device=module_device(model), **kw)
    finally:
        model.train(was)


def view_logits(model: torch.nn.Module, x, *, views, **kw) -> np.ndarray:
    """(V, N, K) logits of V views of each image; `views` maps a float batch (B, C, H, W) to a list of V batches
    (e.g. data.shifts.tta_views) — a test-time agreement score, never training."""
    was = model.training
    model.eval()
    try:
        out = batched(lambda xb: torch.stack([model(v) for v in views(xb)], 1), x, **kw)  # (N, V, K)
        return np.ascontiguousarray(out.transpose(1, 0, 2))
    finally:
        model.train(was)
