"""DCGAN-style generator and discriminator for 28×28 images, unconditional or conditioned on a class.

Convention: the generator outputs images in [-1, 1] (tanh) and the discriminator takes images in [-1, 1];
`to_uint8` / `from_uint8` convert to and from the dataset's uint8 pixels. The discriminator returns one logit per
image (real vs generated, before the sigmoid).

These are not in the `MODELS` registry (which holds classifiers: images in [0, 1] → logits); `build_gan(spec)` is the
factory, and the spec is saved beside the weights so `load_generator` can rebuild a trained generator.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mnistlab.errors import MnistlabError


def init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al.): conv/linear weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)


class Generator(nn.Module):
    """z (B, nz) [+ class (B,)] → image (B, C, 28, 28) in [-1, 1].

    Linear to a 7×7 map, then two stride-2 transposed convolutions (7 → 14 → 28) with batch norm and ReLU, and a
    3×3 convolution to the image channels with tanh. The conditional version concatenates a learned class embedding
    to z, so the class steers the whole network from the first layer.
    """

    def __init__(self, *, nz: int = 64, width: int = 32, channels: int = 1, num_classes: int = 0,
                 embed_dim: int = 16):
        super().__init__()
        self.nz, self.channels, self.num_classes = nz, channels, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        w4, w2 = 4 * width, 2 * width
        d_in = nz + (embed_dim if num_classes else 0)
        self.project = nn.Sequential(nn.Linear(d_in, w4 * 7 * 7, bias=False), nn.BatchNorm1d(w4 * 7 * 7),
                                     nn.ReLU(inplace=True))
        self.body = nn.Sequential(
            nn.ConvTranspose2d(w4, w2, 4, 2, 1, bias=False), nn.BatchNorm2d(w2), nn.ReLU(inplace=True),  # 7 → 14
            nn.ConvTranspose2d(w2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),  # → 28
            nn.Conv2d(width, channels, 3, padding=1), nn.Tanh(),  # (B, C, 28, 28) in [-1, 1]
        )
        self.w4 = w4
        init_dcgan(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional generator needs class labels")
            z = torch.cat([z, self.embed(y)], dim=1)  # (B, nz + embed_dim)
        h = self.project(z).view(len(z), self.w4, 7, 7)  # (B, 4w, 7, 7)
        return self.body(h)


class Discriminator(nn.Module):
    """image (B, C, 28, 28) in [-1, 1] [+ class (B,)] → real/fake logit (B,).

    Two stride-2 convolutions (28 → 14 → 7) with leaky ReLU (batch norm on the second, not on the input layer, as in
    DCGAN), a 3×3 convolution, and a linear layer from the flattened (4w, 7, 7) map to (B, 4w) features.
    The conditional version is a projection discriminator (Miyato & Koyama 2018): logit = ψ(h) + ⟨embed(y), h⟩, so
    the discriminator judges "is this a real image *of class y*".
    """

    def __init__(self, *, width: int = 32, channels: int = 1, num_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        w2, w4 = 2 * width, 4 * width
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),  # (B, w, 14, 14)
            nn.Conv2d(width, w2, 4, 2, 1, bias=False), nn.BatchNorm2d(w2), nn.LeakyReLU(0.2, inplace=True),  # 7×7
            nn.Conv2d(w2, w4, 3, 1, 1, bias=False), nn.BatchNorm2d(w4),
            nn.LeakyReLU(0.2, inplace=True),  # (B, 4w, 7, 7)
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(w4 * 7 * 7, w4), nn.LeakyReLU(0.2, inplace=True),  # (B, 4w)
        )
        self.head = nn.Linear(w4, 1)
        self.embed = nn.Embedding(num_classes, w4) if num_classes else None
        init_dcgan(self)
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)  # (B, 4w)
        out = self.head(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional discriminator needs class labels")
            out = out + (self.embed(y) * h).sum(1)  # projection term
        return out


class GAN(nn.Module):
    """The pair, plus an exponential moving average of the generator (what is sampled and shown).

    One module so that the training loop checkpoints G, D and the EMA copy together.
    """

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = dict(spec)
        self.G = build_generator(spec)
        self.D = Discriminator(width=spec["d_width"], channels=spec["channels"], num_classes=spec["num_classes"],
                               dropout=spec.get("d_dropout", 0.0))
        self.G_ema = build_generator(spec)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.G_ema.requires_grad_(False)

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """G_ema ← decay · G_ema + (1 − decay) · G (weights only: `recalibrate_bn` sets its batch-norm statistics)."""
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
            pe.lerp_(p, 1.0 - decay)


def gan_spec(*, nz: int = 64, g_width: int = 32, d_width: int = 32, channels: int = 1, num_classes: int = 0,
             embed_dim: int = 16, d_dropout: float = 0.0) -> dict[str, Any]:
    """Everything needed to rebuild the networks (saved as generator.json)."""
    return {"kind": "dcgan", "nz": nz, "g_width": g_width, "d_width": d_width, "channels": channels,
            "num_classes": num_classes, "embed_dim": embed_dim, "d_dropout": d_dropout, "image_size": 28}


# generator.json fields → admissible range (what `gan_spec` can write); the networks draw 28×28 images only
SPEC_RANGES = {"nz": (1, 4096), "g_width": (1, 1024), "channels": (1, 4), "num_classes": (0, 1000),
               "embed_dim": (0, 4096), "image_size": (28, 28)}


def check_gan_spec(spec: dict[str, Any], where: str) -> None:
    """One MnistlabError naming the field when a generator spec read from disk is not one `gan_spec` writes."""
    for k, (lo, hi) in SPEC_RANGES.items():
        v = spec.get(k, 28 if k == "image_size" else None)
        if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
            raise MnistlabError(f"{where}: bad generator spec: {k} must be an integer in {lo}…{hi}, got {v!r:.40}")


def build_generator(spec: dict[str, Any]) -> Generator:
    return Generator(nz=spec["nz"], width=spec["g_width"], channels=spec["channels"],
                     num_classes=spec["num_classes"], embed_dim=spec["embed_dim"])


def build_gan(spec: dict[str, Any]) -> GAN:
    return GAN(spec)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → [-1, 1] float (what D sees for real images)."""
    return x.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float → uint8 pixels (rounded, clamped)."""
    return ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def recalibrate_bn(G: Generator, *, batches: int = 8, batch_size: int = 256, seed: int = 0) -> None:
    """Set G's batch-norm running statistics to their average over `batches` batches of fresh noise (fixed seed).

    The EMA generator's weights are an average, so the statistics G collected in training do not fit them; this makes
    eval-mode sampling match the averaged weights, and depends on the weights only (deterministic, resumable).
    """
    was = G.training
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    gen = torch.Generator().manual_seed(seed)  # on the CPU: the same noise on every device
    dev = next(G.parameters()).device
    G.train()
    for _ in range(batches):
        z = torch.randn(batch_size, G.nz, generator=gen).to(dev)
        y = torch.randint(0, G.num_classes, (batch_size,), generator=gen).to(dev) if G.num_classes else None
        G(z, y)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    G.train(was)


@torch.no_grad()
def sample(G: Generator, n: int, *, seed: int, digit: int | None = None,
           batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n images (n, C, 28, 28) uint8 and their requested classes (None if unconditional), a function of `seed` only.

    All noise is drawn first from one seeded generator, so the result does not depend on `batch_size`; classes are
    `digit` for every image, or 0, 1, …, K−1, 0, 1, … (balanced) when no digit is asked.
    """
    if n < 0:
        raise ValueError("n must be ≥ 0")
    gen = torch.Generator().manual_seed(seed)  # on the CPU: the same images on every device
    dev = next(G.parameters()).device
    z = torch.randn(n, G.nz, generator=gen).to(dev)  # (n, nz)
    y = None
    if G.num_classes:
        y = torch.full((n,), digit, dtype=torch.long, device=dev) if digit is not None \
            else torch.arange(n, device=dev) % G.num_classes
    was = G.training
    G.eval()
    out = [to_uint8(G(z[i: i + batch_size], None if y is None else y[i: i + batch_size]))
           for i in range(0, n, batch_size)]
    G.train(was)
    images = torch.cat(out) if out else torch.zeros((0, G.channels, 28, 28), dtype=torch.uint8, device=dev)
    return images.cpu(), (None if y is None else y.cpu())
