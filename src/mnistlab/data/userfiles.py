"""User image files → uint8 arrays (N, C, S, S): header probe, safe decode, the documented input rules.

Input rules (`preprocess=`, recorded in model.json so `predict`, `serve` and exports do the same):
    auto    every image already has one size → kept as it is; mixed sizes → `resize`
    none    kept as it is; every image must have the same size
    resize  scaled to fit a size×size square, aspect kept (anti-aliased), centred on black padding
    centre  MNIST's own normalisation (`images.to_mnist_28`): ink fitted in 20×20, centre of mass at the centre of
            28×28; grey images only, bright ink (add `invert=1` for dark ink on light paper)
Transparent pixels count as black paper (as `images.read_gray` does). Pure functions, no caching here.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnistlab.data.images import to_mnist_28
from mnistlab.errors import MnistlabError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
RULES = ("auto", "none", "resize", "centre")
MAX_PIXELS = 4096 * 4096  # per image; more is refused as a decompression bomb, before its pixels are decoded
MAX_FILE_BYTES = 64 * 2**20  # per image file
MAX_IMAGES = 2_000_000  # per data set: bounds memory (2M × 28×28 = 1.5 GB)
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
SHOW = 10  # offending files named in a message; the rest are counted


def name_some(items: Iterable[object], limit: int = SHOW) -> str:
    """'a, b, c' — at most `limit` names, then '… and N more'."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    return shown + (f" … and {len(items) - limit} more" if len(items) > limit else "")


@dataclass(frozen=True)
class Probe:
    """What a file's header says: size (width, height) and channels (1 grey, 3 colour)."""

    size: tuple[int, int]
    channels: int


class BadImage(Exception):
    """A file that cannot be used: `kind` is "corrupt" or "bomb"."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


def _channels(im: Image.Image) -> int:
    if im.mode in GREY_MODES:
        return 1
    if im.mode == "P":  # a palette of greys is a grey image (some tools save greyscale PNGs this way)
        pal = np.asarray(im.getpalette() or [0, 0, 0], np.uint8).reshape(-1, 3)
        return 1 if (pal == pal[:, :1]).all() else 3
    return 3


def _open(path: str | Path) -> Image.Image:
    """Open (header only) with the bomb and size checks; the caller closes it."""
    try:
        nbytes = os.stat(path).st_size
    except OSError as e:
        raise BadImage("corrupt", e.strerror or str(e)) from None
    if nbytes > MAX_FILE_BYTES:
        raise BadImage("bomb", f"{nbytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below is stricter
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise BadImage("bomb", str(e)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise BadImage("corrupt", str(e) or type(e).__name__) from None
    w, h = im.size
    if w * h > MAX_PIXELS or w <= 0 or h <= 0:
        im.close()
        raise BadImage("bomb", f"{w}×{h} pixels")
    return im


def probe(path: str | Path) -> Probe:
    with _open(path) as im:
        return Probe(im.size, _channels(im))


def decode(path: str | Path, channels: int) -> np.ndarray:
    """A file → uint8 (H, W) grey or (H, W, 3) colour; alpha composited onto black."""
    im = _open(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im.convert("RGBA"))
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float grey: scale to 0–255
            a = np.asarray(im, dtype=np.float64)
            top = 65535.0 if im.mode.startswith("I") and a.max() > 255 else max(255.0, float(a.max()))
            return np.clip(np.rint(a * 255.0 / top), 0, 255).astype(np.uint8)
        return np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or damaged pixel data
        raise BadImage("corrupt", str(e) or type(e).__name__) from None
    finally:
        im.close()


def fit(img: np.ndarray, *, rule: str, size: int, invert: bool = False) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) → uint8 (C, S, S) by `rule` (none/resize/centre; `auto` is resolved before)."""
    if invert:
        img = 255 - img
    if rule == "centre":
        if img.ndim != 2:
            raise MnistlabError("preprocess=centre is MNIST's normalisation of grey digits; colour images need "
                                "preprocess=resize")
        return to_mnist_28(img)[None]
    if rule == "resize":
        h, w = img.shape[:2]
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        small = np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None))
        frame = np.zeros((size, size, *img.shape[2:]), np.uint8)
        top, left = (size - nh) // 2, (size - nw) // 2
        frame[top: top + nh, left: left + nw] = small
        img = frame
    return img[None] if img.ndim == 2 else np.ascontiguousarray(img.transpose(2, 0, 1))  # (C, H, W)


def resolve_rule(rule: str, sizes: set[tuple[int, int]]) -> str:
    """`auto` → none when every image has one size, else resize. `none` with mixed sizes is an error."""
    if rule not in RULES:
        raise MnistlabError(f"unknown preprocess {rule!r}; valid: {', '.join(RULES)}")
    if rule == "auto":
        return "none" if len(sizes) <= 1 else "resize"
    return rule


def list_image_names(folder: str) -> tuple[list[str], int]:
    """Image files under `folder` as paths relative to it (recursively, hidden ones skipped), sorted; and how many
    other files were ignored. Plain strings: pathlib costs 0.1 ms a file, most of a cached 10 000-image load."""
    names, ignored = [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = root[len(folder):].lstrip(os.sep)
        for n in files:
            if n.startswith("."):
                continue
            if n.lower().endswith(IMAGE_SUFFIXES):
                names.append(os.path.join(rel, n) if rel else n)
            else:
                ignored += 1
        if len(names) > MAX_IMAGES:
            raise MnistlabError(f"{folder}: more than {MAX_IMAGES} images; split the data set")
    return sorted(names), ignored


def list_images(folder: Path) -> tuple[list[Path], int]:
    """`list_image_names` as full paths."""
    names, ignored = list_image_names(str(folder))
    return [Path(folder, n) for n in names], ignored
