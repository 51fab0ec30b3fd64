"""Request bodies → 28×28 uint8 images for `mnistlab serve`: size-limited reading, strict JSON pixels, image files
(PNG/JPEG/BMP/GIF/WEBP, raw or multipart) converted to MNIST polarity. Every problem is an HTTPException 4xx with a
one-line message.
"""
from __future__ import annotations

import io
import json

import numpy as np
from fastapi import HTTPException, Request

from mnistlab.data.images import gray_u8

MAX_BYTES = 2 * 1024 * 1024  # request body limit
MAX_PIXELS = 4096 * 4096  # decoded image limit (a small PNG can decode to gigabytes)
WORK_SIDE = 560  # larger images are reduced to at most this side before the MNIST normalisation
BLANK = 16  # an image whose grey levels span less than this (of 255) holds no ink
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (Content-Length is checked first)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise HTTPException(400, "invalid Content-Length header") from None
        if n > limit:
            raise HTTPException(413, f"body of {n} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number (NaN/Infinity are not allowed)")


def pixels_from_json(body: bytes) -> tuple[np.ndarray, bool]:
    """JSON {"pixels": 28×28 numbers in 0..255, "preprocess": bool} → ((28, 28) uint8, preprocess)."""
    try:
        obj = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise HTTPException(400, f"invalid JSON: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(obj, dict) or "pixels" not in obj:
        raise HTTPException(400, 'expected a JSON object {"pixels": [[...28 numbers...] × 28]}')
    extra = set(obj) - {"pixels", "preprocess"}
    if extra:
        raise HTTPException(400, f"unknown field(s): {', '.join(sorted(map(str, extra)))[:200]}")
    pre = obj.get("preprocess", False)
    if not isinstance(pre, bool):
        raise HTTPException(400, '"preprocess" must be true or false')
    rows = obj["pixels"]
    ok = isinstance(rows, list) and all(isinstance(r, list) for r in rows) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for r in rows for v in r)
    if not ok:
        raise HTTPException(400, '"pixels" must be a list of rows of numbers (28×28, values 0–255)')
    shape = (len(rows), *sorted({len(r) for r in rows}))
    if shape != (28, 28):
        got = f"{len(rows)} rows of lengths {sorted({len(r) for r in rows})[:5]}" if len(shape) != 2 else \
            f"{shape[0]}×{shape[1]}"
        raise HTTPException(400, f'"pixels" must be 28×28; got {got}')
    try:
        a = np.asarray(rows, dtype=np.float64)
    except OverflowError:  # an integer beyond float range (JSON allows 10**400)
        raise HTTPException(400, '"pixels" must be finite numbers') from None
    if not np.isfinite(a).all():  # only reachable through huge numbers like 1e400
        raise HTTPException(400, '"pixels" must be finite numbers')
    if a.min() < 0 or a.max() > 255:
        raise HTTPException(400, f'"pixels" must be in 0..255; got {a.min():g}..{a.max():g}')
    if a.max() - a.min() < BLANK:  # as an uploaded image: nothing to classify
        raise HTTPException(400, "the image is blank (no ink found)")
    return np.rint(a).astype(np.uint8), pre


def image_to_gray(data: bytes) -> np.ndarray:
    """PNG/JPEG/… bytes → (H, W) float32 grey with bright ink on a dark background (transparency = white paper)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise HTTPException(400, "empty image")
    try:
        im = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        raise HTTPException(400, f"not an image this server reads ({', '.join(IMAGE_FORMATS)})") from None
    w, h = im.size
    if w * h > MAX_PIXELS or w == 0 or h == 0:
        raise HTTPException(413, f"image of {w}×{h} pixels is over the {MAX_PIXELS}-pixel limit")
    try:
        if max(w, h) > WORK_SIDE and im.format == "JPEG":
            im.draft("L", (w * WORK_SIDE // max(w, h), h * WORK_SIDE // max(w, h)))  # decode at 1/2…1/8 scale
        im.load()
        factor = -(-max(im.size) // WORK_SIDE)
        if factor > 1 and im.mode in ("P", "1", "I;16", "I;16B", "I;16L"):  # modes `reduce` does not take
            im = im.convert("F" if im.mode.startswith("I;16") else "RGBA" if "transparency" in im.info else "L")
        if factor > 1:  # a photo: box-reduce first (the ink ends up 20 px tall; 12 Mpixel floats would cost ~1 s)
            im = im.reduce(factor)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        g = gray_u8(im).astype(np.float32)  # (H, W); 16-bit images scaled from their range, not clipped
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise HTTPException(400, f"unreadable image ({str(e)[:120]})") from None
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper → MNIST polarity
        g = 255.0 - g
    if g.max() - g.min() < BLANK:
        raise HTTPException(400, "the image is blank (no ink found)")
    return g


async def image_from_multipart(request: Request, body: bytes) -> bytes:
    """The `image` field of a multipart/form-data body already read (and size-checked)."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=2, max_fields=10)
    except Exception as e:  # python-multipart raises several types for malformed bodies
        raise HTTPException(400, f"malformed multipart body ({str(e)[:120]})") from None
    try:
        field_ = form.get("image")
        if field_ is None or isinstance(field_, str):
            raise HTTPException(400, 'multipart body needs a file field named "image"')
        return await field_.read()
    finally:
        await form.close()
