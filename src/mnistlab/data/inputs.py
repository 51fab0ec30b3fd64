"""Anything a user calls an image → the uint8 (N, C, H, W) a model takes, by the run's recorded input rule.

Accepted: a numpy array (uint8 0–255 or float 0–1; (N, C, H, W), (N, H, W), (N, H, W, 3) or one (H, W)), a PIL image,
a file path (PNG/JPEG/BMP, or .npy), a folder (its images in name order), or a list of these. Arrays already of the
model's shape are used as they are; anything else goes through the rule: `image_input` of model.json for runs on user
data (data/userfiles.py), else MNIST's own normalisation (`images.to_mnist_28`) as `mnistlab predict` does.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
from PIL import Image

from mnistlab.data.images import load_npy, to_mnist_28
from mnistlab.data.userfiles import IMAGE_SUFFIXES, BadImage, decode, fit, list_images
from mnistlab.errors import MnistlabError

ImageLike = Union[np.ndarray, "Image.Image", str, os.PathLike]
Images = Union[ImageLike, Sequence[ImageLike]]


def _as_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise MnistlabError("float images must be finite and in [0, 1] (use uint8 for 0–255)")
        return np.rint(a * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer) and a.size and (a.min() < 0 or a.max() > 255):
        raise MnistlabError(f"integer images must be in 0–255, got {a.min()}…{a.max()}")
    return a.astype(np.uint8)


def raw_to_input(img: np.ndarray, *, shape: tuple[int, int, int], rule: dict | None) -> np.ndarray:
    """One raw (H, W) or (H, W, 3) uint8 image → (C, H, W) by a run's `image_input` rule (None: MNIST's)."""
    return _one(_as_uint8(np.asarray(img)), tuple(int(s) for s in shape), rule)


def _one(img: np.ndarray, shape: tuple[int, int, int], rule: dict | None) -> np.ndarray:
    """One (H, W) or (H, W, 3) uint8 image → (C, H, W) by the rule."""
    c = shape[0]
    if img.ndim == 3 and c == 1:
        img = np.asarray(Image.fromarray(img).convert("L"))
    elif img.ndim == 2 and c == 3:
        img = np.repeat(img[..., None], 3, axis=2)
    if rule is None:  # the built-in MNIST family: 28×28 as is, anything else centred as MNIST was
        if img.ndim == 2 and img.shape == shape[1:]:
            return img[None]
        return to_mnist_28(img)[None] if img.ndim == 2 else fit(img, rule="resize", size=shape[1])
    name = rule.get("rule", "none")
    if name == "none" and img.shape[:2] == shape[1:]:
        return fit(img, rule="none", size=shape[1], invert=bool(rule.get("invert")))
    out = fit(img, rule="centre" if name == "centre" else "resize", size=shape[1], invert=bool(rule.get("invert")))
    if out.shape != shape:
        raise MnistlabError(f"an image came out {out.shape}, the model takes {shape}")
    return out


def _from_path(p: Path, channels: int) -> list[np.ndarray]:
    if p.is_dir():
        files, _ = list_images(p)
        if not files:
            raise MnistlabError(f"{p}: no {'/'.join(IMAGE_SUFFIXES)} images in this folder")
        return [im for f in files for im in _from_path(f, channels)]
    if not p.is_file():
        raise MnistlabError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".npy":
        return [a[0] for a in load_npy(p)]  # (N, 1, 28, 28) MNIST-format arrays
    try:
        return [decode(p, channels)]
    except BadImage as e:
        raise MnistlabError(f"{p}: not a usable image ({e})") from None


def to_model_images(images: Any, *, shape: tuple[int, ...], rule: dict | None = None) -> np.ndarray:
    """See the module docstring; returns uint8 (N, *shape)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise MnistlabError(f"image models take (C, H, W) inputs; this one takes {shape}")
    if isinstance(images, np.ndarray):
        a = _as_uint8(images)
        if a.ndim == 4 and a.shape[1:] == shape:
            return np.ascontiguousarray(a)
        if a.ndim == 3 and shape[0] == 1 and a.shape[1:] == shape[1:]:
            return np.ascontiguousarray(a[:, None])
        singles = [a] if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3) else list(a)
        return np.stack([_one(s[0] if s.ndim == 3 and s.shape[0] == 1 else s, shape, rule) for s in singles])
    items = images if isinstance(images, (list, tuple)) else [images]
    if not items:
        raise MnistlabError("no images given")
    raw: list[np.ndarray] = []
    for it in items:
        if isinstance(it, Image.Image):
            raw.append(np.asarray(it.convert("L" if shape[0] == 1 else "RGB")))
        elif isinstance(it, (str, os.PathLike)):
            raw += _from_path(Path(it), shape[0])
        elif isinstance(it, np.ndarray):
            raw += list(to_model_images(it, shape=shape, rule=rule))
            continue
        else:
            raise MnistlabError(f"cannot read an image from a {type(it).__name__}")
    return np.stack([r if r.shape == shape else _one(_as_uint8(r), shape, rule) for r in raw])
