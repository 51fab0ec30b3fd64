"""Characters rendered from the system's font files at MNIST placement (letters for the detector, printed digits for
the shifted test sets).

MNIST placement (LeCun et al.): the glyph's bounding box is scaled to fit a 20×20 box (aspect kept, anti-aliased), then
placed in the 28×28 frame so that its centre of mass sits at the centre. Font files are found in the usual folders
(no fontconfig call) and split by foundry — the word before Sans/Serif/Mono (DejaVu, Free, Liberation) — so that
"held-out" fonts share no design with the training ones. Setup installs fonts-dejavu-core, fonts-liberation and
fonts-freefont-ttf; with no font at all every renderer raises one clear error.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from mnistlab.data import augment
from mnistlab.errors import MnistlabError

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts",
             "/System/Library/Fonts", "/Library/Fonts", "C:/Windows/Fonts")
SPLITS = ("train", "held-out", "all")
DIGITS = "0123456789"
# Letters and symbols that are not digits in anyone's handwriting: O o D Q (0), I l i j | ! / \ ( ) [ ] (1),
# Z z (2), S s $ (5), G b (6), T (7), B & (8), g q a (9), y (4/9) and small marks (. , ' - _) are left out.
NON_DIGITS = "ACEFHKMNPRUVWXYcdefhkmnprtuvwx#%*+<=>?@{}~"
_RENDER_PX = 64  # glyphs are drawn at this size, then area-downsampled into the 20×20 box
_HINT = "install fonts-dejavu-core (Debian: apt-get install fonts-dejavu-core fonts-liberation fonts-freefont-ttf)"


@functools.lru_cache(maxsize=1)
def _all_font_files() -> tuple[str, ...]:
    files: set[str] = set()
    extra = os.environ.get("MNISTLAB_FONT_DIR")
    for d in ((extra,) if extra else ()) + FONT_DIRS:
        p = Path(d).expanduser()
        if p.is_dir():
            files.update(str(f) for f in p.rglob("*") if f.suffix.lower() in (".ttf", ".otf") and f.is_file())
    return tuple(sorted(files, key=lambda f: Path(f).name))


def foundry(path: str) -> str:
    """The font's design family: DejaVuSans-Bold.ttf → DejaVu, LiberationSerif-Italic.ttf → Liberation."""
    stem = Path(path).stem.split("-")[0]
    m = re.match(r"(.+?)(Sans|Serif|Mono|Math|Narrow|Condensed)", stem)
    return m.group(1) if m else stem


def font_files(split: str = "all") -> list[str]:
    """Font files of one split: foundries sorted by name, every third from the second held out (one of three)."""
    if split not in SPLITS:
        raise MnistlabError(f"unknown font split {split!r}; valid: {', '.join(SPLITS)}")
    files = list(_all_font_files())
    if not files:
        raise MnistlabError(f"no font files found in {', '.join(FONT_DIRS)}; {_HINT}")
    if split == "all":
        return files
    groups = sorted({foundry(f) for f in files})
    if len(groups) >= 2:
        held = set(groups[1::3])
        out = [f for f in files if (foundry(f) in held) == (split == "held-out")]
    else:  # one foundry: hold out every third file
        out = [f for i, f in enumerate(files) if (i % 3 == 1) == (split == "held-out")]
    if not out:
        raise MnistlabError(f"no {split} font files among {len(files)}; {_HINT}")
    return out


@functools.lru_cache(maxsize=64)
def _font(path: str) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, _RENDER_PX)
    except OSError as e:
        raise MnistlabError(f"{path}: unreadable font ({e})") from None


def _glyph(ch: str, path: str, *, stroke: int, slant: float) -> np.ndarray | None:
    """One glyph as float (H, W) in [0, 1], ink bright, cropped to its ink; None when the font has no such glyph."""
    img = Image.new("L", (3 * _RENDER_PX, 2 * _RENDER_PX), 0)
    ImageDraw.Draw(img).text((_RENDER_PX // 2, _RENDER_PX // 4), ch, fill=255, font=_font(path), stroke_width=stroke,
                             stroke_fill=255)
    if slant:  # x' = x + slant·(y − centre): positive slant leans the top to the right, like italics
        w, h = img.size
        img = img.transform(img.size, Image.AFFINE, (1, slant, -slant * h / 2, 0, 1, 0), resample=Image.BILINEAR)
    box = img.getbbox()
    if box is None or box[2] - box[0] < 2 and box[3] - box[1] < 2:
        return None
    return np.asarray(img.crop(box), np.float32) / 255


def mnist_place(glyph: np.ndarray) -> np.ndarray:
    """float (H, W) ink → float (28, 28): longer side scaled to 20 px, centre of mass at the frame's centre."""
    h, w = glyph.shape
    s = 20 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = np.asarray(Image.fromarray((glyph * 255).astype(np.uint8)).resize((nw, nh), Image.BOX), np.float32) / 255
    canvas = np.zeros((56, 56), np.float32)  # room to shift the 20×20 box by its centre of mass
    y0, x0 = 28 - nh // 2, 28 - nw // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = small
    mass = canvas.sum()
    ys, xs = np.indices(canvas.shape)
    cy, cx = (ys * canvas).sum() / mass, (xs * canvas).sum() / mass
    ty, tx = int(round(cy)) - 14, int(round(cx)) - 14
    return canvas[ty:ty + 28, tx:tx + 28]


def render(n: int, rng: np.random.Generator, *, chars: str, fonts: list[str], stroke: tuple[int, int] = (0, 4),
           slant: float = 0.3, elastic: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """`n` glyphs drawn from `chars` × `fonts` → (float (n, 28, 28) in [0, 1], index into `chars` (n,)).

    Per image: a stroke widening of `stroke` px at 64 px (≈ 0–1.3 px at 28), a slant in ±`slant`, MNIST placement,
    then an elastic jitter of up to `elastic` px and an ink level in [0.75, 1]."""
    if not fonts:
        raise MnistlabError(f"no font files to render from; {_HINT}")
    out = np.zeros((n, 28, 28), np.float32)
    which = np.zeros(n, np.int64)
    for i in range(n):
        for _ in range(20):  # a font without the glyph → draw again
            c, f = int(rng.integers(len(chars))), fonts[int(rng.integers(len(fonts)))]
            g = _glyph(chars[c], f, stroke=int(rng.integers(stroke[0], stroke[1] + 1)),
                       slant=float(rng.uniform(-slant, slant)))
            if g is not None:
                out[i], which[i] = mnist_place(g), c
                break
        else:
            raise MnistlabError(f"the fonts {fonts[:3]}… have none of the glyphs {chars!r}")
    if elastic > 0 and n:
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        alpha = float(rng.uniform(0, elastic))
        out = augment.elastic(torch.from_numpy(out)[:, None], gen, alpha=alpha, sigma=4.0)[:, 0].clamp(0, 1).numpy()
    return out * rng.uniform(0.75, 1.0, (n, 1, 1)).astype(np.float32), which
