"""Pictures of a GAN's training: image grids (arrays → arrays), PNG/GIF writers, and loss / D-output curves."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from mnistlab import fileio
from mnistlab.report.plots import plt


def tile(images: np.ndarray, *, cols: int, pad: int = 2, scale: int = 2) -> np.ndarray:
    """uint8 images (N, H, W) or (N, 1, H, W) → one uint8 (rows·(H+pad)+pad, …) mosaic, row-major, upscaled ×scale."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0]
    n, h, w = images.shape
    rows = max(1, -(-n // cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 64, np.uint8)  # dark grey separators
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = images[i]
    return np.kron(out, np.ones((scale, scale), np.uint8)) if scale > 1 else out


def captioned(mosaic: np.ndarray, caption: str):
    """A PIL image: the mosaic with a one-line caption strip above it."""
    from PIL import Image, ImageDraw

    strip = 14
    img = Image.new("L", (mosaic.shape[1], mosaic.shape[0] + strip), 0)
    img.paste(Image.fromarray(mosaic), (0, strip))
    ImageDraw.Draw(img).text((3, 1), caption, fill=255)
    return img


def save_png(path: str | os.PathLike, image) -> None:
    """A PIL image (or uint8 array) → PNG, written atomically."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    fileio.write_bytes(path, buf.getvalue())


def save_gif(path: str | os.PathLike, frames: list[Path], *, ms: int = 500) -> None:
    """PNG files → an animated GIF (looping; the last frame is held three times as long)."""
    from PIL import Image

    if not frames:
        return
    imgs = [Image.open(f).convert("L") for f in frames]
    durations = [ms] * (len(imgs) - 1) + [3 * ms]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=durations, loop=0)
    fileio.write_bytes(path, buf.getvalue())


def gan_curves(history: list[dict]):
    """D and G losses (left) and the mean of D(x), D(G(z)) (right) against epochs: a matplotlib figure."""
    fig, (ax_l, ax_d) = plt.subplots(1, 2, figsize=(10, 3.6))
    xs = [h.get("epoch", h.get("step")) for h in history]
    for key, label, ax in (("train_loss_d", "D loss", ax_l), ("train_loss_g", "G loss", ax_l),
                           ("train_d_real", "D(x), real", ax_d), ("train_d_fake", "D(G(z)), before D step", ax_d)):
        ys = [h.get(key) for h in history]
        if any(v is not None for v in ys):
            ax.plot(xs, ys, marker=".", label=label)
    ax_d.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax_d.set_ylim(0, 1)
    for ax, t in ((ax_l, "losses (BCE, nats)"), (ax_d, "mean discriminator output")):
        ax.set_xlabel("epoch")
        ax.set_title(t)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
