"""User images → MNIST-format uint8 arrays: `.npy` arrays, PNG/JPEG files or folders, and MNIST's own normalisation.

MNIST digits are white ink on black, the ink fitted into a 20×20 box (aspect ratio kept) and placed in a 28×28 frame so
that the centre of mass of the ink is at the centre (LeCun et al.). `to_mnist_28` does the same to any grey image, so a
photo or a canvas drawing reaches a model in the form it was trained on. Pure functions: the CLI, the web page and the
detector share them.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from mnistlab.errors import MnistlabError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BOX = 20  # the ink is scaled to fit a BOX×BOX square …
SIZE = 28  # … inside a SIZE×SIZE frame
INK_LEVEL = 0.25  # pixels at ≥ this fraction of the brightest one count as ink for the bounding box
NOISE_LEVEL = 0.1  # pixels below this fraction of the brightest one are background
MAX_PIXELS = 4096 * 4096  # decoded image limit, as the web server's (a 140 KB PNG can decode to 144 Mpixel)
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # PIL modes of 16/32-bit and float pixels


def to_mnist_28(gray: np.ndarray) -> np.ndarray:
    """A 2-D grey image with bright ink on a dark background → uint8 28×28, normalised as MNIST was.

    Take the median grey as the paper and clear faint noise, crop to the ink's bounding box, scale so the longer side is 20 px (aspect kept, anti-aliased), stretch the
    contrast to 0–255, then translate so that the intensity-weighted centre of mass is at the centre of the 28×28 frame.
    An image with no ink gives an all-black frame.
    """
    from PIL import Image

    g = np.asarray(gray, dtype=np.float64)
    if g.ndim != 2 or min(g.shape) == 0:
        raise MnistlabError(f"to_mnist_28 expects a non-empty 2-D grey image, got shape {g.shape}")
    if not np.isfinite(g).all():
        raise MnistlabError("image has NaN/inf pixels")
    g = np.clip(g - np.median(g), 0, None)  # the paper (most pixels) becomes 0, whatever its grey level
    if g.max() <= 0:
        return np.zeros((SIZE, SIZE), np.uint8)
    g[g < NOISE_LEVEL * g.max()] = 0  # paper texture / JPEG ringing: MNIST's background is exactly 0
    rows, cols = np.nonzero(g >= INK_LEVEL * g.max())
    crop = g[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    crop = crop * (255.0 / crop.max())  # (h, w) in [0, 255]
    h, w = crop.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    img = Image.fromarray(crop.astype(np.float32), mode="F").resize((nw, nh), Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(img, dtype=np.float64), 0, None)  # (nh, nw)
    small *= 255.0 / max(small.max(), 1e-9)  # the strongest ink is 255 again after the averaging of the resize

    frame = np.zeros((SIZE, SIZE))
    top, left = (SIZE - nh) // 2, (SIZE - nw) // 2
    frame[top: top + nh, left: left + nw] = small
    mass = frame.sum()
    if mass > 0:  # shift the centre of mass to the frame's centre (whole pixels, clipped so no ink leaves the frame)
        yy, xx = np.mgrid[:SIZE, :SIZE]
        cy, cx = (frame * yy).sum() / mass, (frame * xx).sum() / mass
        # MNIST's centres of mass sit at (14, 14) in 0-based pixel coordinates (mean over 2000 training images: 14.00, 14.01)
        dy = int(np.clip(round(SIZE / 2 - cy), -top, SIZE - nh - top))
        dx = int(np.clip(round(SIZE / 2 - cx), -left, SIZE - nw - left))
        frame = np.roll(frame, (dy, dx), axis=(0, 1))
    return np.rint(frame).astype(np.uint8)


def image_files(path: str | os.PathLike) -> list[Path]:
    """One image file, or the PNG/JPEG files of a folder in name order."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise MnistlabError(f"{p}: no .png/.jpg/.jpeg files in this folder")
        return files
    if not p.exists():
        raise MnistlabError(f"{p}: no such file or folder")
    return [p]


def gray_u8(im) -> np.ndarray:
    """A PIL image → 2-D uint8 grey. 16/32-bit and float images are scaled from their own range (lowest → 0,
    highest → 255): `convert("L")` clips every value above 255, which turns a 16-bit PNG white."""
    if im.mode in WIDE_MODES:
        a = np.asarray(im.convert("F"), dtype=np.float64)  # (H, W)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return np.rint(a).astype(np.uint8)
    return np.asarray(im.convert("L"), dtype=np.uint8)


def read_gray(path: str | os.PathLike, *, invert: bool = False) -> np.ndarray:
    """An image file of at most MAX_PIXELS → 2-D uint8 grey with bright ink (transparent pixels count as paper)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning (> 89 Mpixel) is past our limit: one error
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:  # checked on the header, before decoding
                    raise MnistlabError(f"{path}: image of {im.width}×{im.height} pixels is over the "
                                        f"{MAX_PIXELS}-pixel limit (4096×4096)")
                im.load()
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    im = im.convert("RGBA")
                    paper = Image.new("RGBA", im.size, (255, 255, 255, 255) if invert else (0, 0, 0, 255))
                    im = Image.alpha_composite(paper, im)
                g = gray_u8(im)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise MnistlabError(f"{path}: image is over the {MAX_PIXELS}-pixel limit (4096×4096)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise MnistlabError(f"{path}: not a readable PNG/JPEG image ({str(e).splitlines()[0][:120]})") from None
    return 255 - g if invert else g


def load_npy(path: str | os.PathLike, *, invert: bool = False) -> np.ndarray:
    """A `.npy` array of MNIST-format images: uint8 0–255 or float 0–1, N×28×28 or N×1×28×28 (or one 28×28)."""
    try:  # mapped, not read: a header that claims 10¹⁰ images in a 100-byte file fails here, not as out of memory
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise MnistlabError(f"{path}: not a readable .npy array ({e})") from None
    shape0 = a.shape
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1:] != (1, SIZE, SIZE) or len(a) == 0:
        raise MnistlabError(f"{path}: expected images of shape N×28×28 or N×1×28×28, got {shape0}")
    a = np.array(a)  # (N, 1, 28, 28), now read into memory
    if a.dtype == np.uint8:
        x = a
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise MnistlabError(f"{path}: array has NaN/inf values")
        if a.min() < 0 or a.max() > 1:
            raise MnistlabError(f"{path}: float images must be in [0, 1] (got {a.min():.4g}…{a.max():.4g}); "
                                "use uint8 for 0–255")
        x = np.rint(a.astype(np.float64) * 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer) and not np.issubdtype(a.dtype, np.timedelta64):
        if a.min() < 0 or a.max() > 255:
            raise MnistlabError(f"{path}: integer images must be in 0–255 (got {a.min()}…{a.max()})")
        x = a.astype(np.uint8)
    else:
        raise MnistlabError(f"{path}: unsupported dtype {a.dtype} (uint8 0–255 or float 0–1)")
    return 255 - x if invert else np.ascontiguousarray(x)


def load_images(path: str | os.PathLike, invert: bool = False) -> np.ndarray:
    """A `.npy` file, an image file or a folder of images → uint8 (N, 1, 28, 28), MNIST polarity.

    Image files of another size than 28×28 go through `to_mnist_28`; 28×28 files are taken as already in MNIST form.
    `invert=True` is for dark ink on light paper (scans, photos).
    """
    p = Path(path)
    if p.suffix.lower() == ".npy" and p.is_file():
        return load_npy(p, invert=invert)
    return read_images(p, invert=invert, strict=True)[0]


def read_images(path: str | os.PathLike, *, invert: bool = False,
                strict: bool = False) -> tuple[np.ndarray, list[Path], list[str]]:
    """An image file or a folder of them → (uint8 (N, 1, 28, 28), the N files read, one message per file skipped).

    In a folder, an unreadable or oversized image is skipped with a message unless `strict`; a single file, or a
    folder where nothing could be read, is one error."""
    p = Path(path)
    if not p.exists():
        raise MnistlabError(f"{p}: no such file or folder")
    out, read, skipped = [], [], []
    for f in image_files(p):
        try:
            g = read_gray(f, invert=invert)
            out.append(g if g.shape == (SIZE, SIZE) else to_mnist_28(g))
            read.append(f)
        except MnistlabError as e:
            if strict or not p.is_dir():
                raise
            skipped.append(str(e))
    if not out:
        raise MnistlabError(f"{p}: no readable image ({skipped[0]})")
    return np.stack(out)[:, None], read, skipped
