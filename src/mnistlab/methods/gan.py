"""GANs that draw digits (the brief's Part 4): `gan` (unconditional DCGAN) and `cgan` (class-conditional).

Each step of `train.fit(..., optimize=...)` updates the discriminator D, then the generator G, with two Adam
optimisers (non-saturating GAN loss, Goodfellow et al. 2014; DCGAN recipe, Radford et al. 2016). An exponential moving
average of G's weights is what gets sampled, shown and saved. At the end of every epoch a grid drawn from fixed noise is
saved (grids/epoch_NNN.png; for `cgan` row k is digit k, column j the same noise); at the end, an animated GIF of the
grids, the loss / D-output curves, and the generator (generator.safetensors + generator.json). See docs/gan.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.config import TrainConfig
from mnistlab.data.preprocess import as_tensor
from mnistlab.errors import MnistlabError
from mnistlab.methods import METHODS
from mnistlab.methods._common import setup
from mnistlab.models import count_params
from mnistlab.models.gan import build_gan, from_uint8, gan_spec, recalibrate_bn, sample, to_uint8
from mnistlab.report import gan_images
from mnistlab.train import Batcher, allreduce_grads, fit, step_generator
from mnistlab.precision import channels_last, prepare_module


@dataclass
class GANConfig(TrainConfig):
    model: str = "dcgan"  # the only GAN architecture (models/gan.py)
    conditional: bool = False
    nz: int = 64  # noise dimensions
    g_width: int = 32  # generator channels at 28×28 (×2 at 14×14, ×4 at 7×7)
    d_width: int = 32  # discriminator channels at 14×14 (×2 at 7×7, ×4 after)
    epochs: float = 6.0
    batch_size: int = 64  # real images per step (and as many generated ones)
    lr: float = 2e-4  # Adam, both networks, constant (DCGAN)
    beta1: float = 0.5  # Adam β1 (DCGAN: 0.5 — less momentum keeps the two-player game from oscillating)
    real_label: float = 1.0  # <1: one-sided label smoothing of D's targets for real images
    ema: float = 0.999  # decay of the generator's weight average (0 = sample the raw G)
    grid: int = 10  # the per-epoch grid is grid × grid images
    evals_per_epoch: int = 4  # points per epoch on the loss / D-output curves


@dataclass
class CGANConfig(GANConfig):
    conditional: bool = True


BUDGETS = {
    "smoke": {"epochs": 2, "train_subset": 512, "batch_size": 64, "evals_per_epoch": 2},
    "quick": {},  # 6 epochs: ≈ 5–6 min on 2 idle cores (bf16)
    "full": {"epochs": 20},
}


def ema_decay(cfg: GANConfig, step: int) -> float:
    """The configured decay, warmed up ((1+t)/(10+t)) so that early grids already show the average, not the init."""
    return min(cfg.ema, (1 + step) / (10 + step))


def gan_step(gan, opt_d: torch.optim.Optimizer, opt_g: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor | None,
             z: torch.Tensor, *, real_label: float = 1.0, world: int = 1) -> dict:
    """One D update then one G update on real images x (B, C, 28, 28) in [-1, 1], classes y (cgan) and noise z (B, nz).

    Returns the losses and the mean D outputs (probabilities) on the real and generated images of the D step.
    """
    G, D = gan.G, gan.D
    fake = G(z, y)  # (B, C, 28, 28)
    # --- D step: maximise log D(x) + log(1 − D(G(z)))  ⇔  minimise BCE(D(x), 1) + BCE(D(G(z)), 0).
    #     G(z) is detached: this step moves D only, towards telling real from generated images.
    d_real = D(x, y).float()  # (B,) logits
    d_fake = D(fake.detach(), y).float()
    loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_label))
              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    allreduce_grads(list(D.parameters()), world)
    opt_d.step()
    # --- G step (non-saturating): minimise −log D(G(z)) = BCE(D(G(z)), 1), against the D just updated.
    #     Same fixed point as minimising log(1 − D(G(z))), but strong gradients while D still rejects the fakes.
    D.requires_grad_(False)  # gradients flow through D into G; D's own weights get none here
    try:
        d_gen = D(fake, y).float()
        loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
    finally:
        D.requires_grad_(True)
    allreduce_grads(list(G.parameters()), world)
    opt_g.step()
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(d_real).mean().detach(), "d_fake": torch.sigmoid(d_fake).mean().detach()}


def fixed_noise(cfg: GANConfig, k: int, *, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The per-epoch grids' noise (and classes): unconditional grid² noises; conditional: row = class, column = noise.
    Drawn on the CPU (the same grid on every device), then moved."""
    fixed_gen = torch.Generator().manual_seed(cfg.seed * 7919 + 17)
    if k:
        fixed_z = torch.randn(cfg.grid, cfg.nz, generator=fixed_gen).repeat(k, 1)  # (k·grid, nz)
        fixed_y = torch.arange(k).repeat_interleave(cfg.grid)  # row k: class k
        return fixed_z.to(device), fixed_y.to(device)
    return torch.randn(cfg.grid ** 2, cfg.nz, generator=fixed_gen).to(device), None


def gan_outputs(run, gan, *, spec: dict, cfg: GANConfig, k: int, history: list[dict]) -> None:
    """The saved generator (EMA, batch norm recalibrated) and discriminator, the training GIF, curves and samples."""
    G_out = gan.G_ema.float().to(memory_format=torch.contiguous_format)
    recalibrate_bn(G_out, seed=cfg.seed)
    run.save_model(G_out, spec, name="generator")
    run.save_model(gan.D.float().to(memory_format=torch.contiguous_format), spec, name="discriminator")
    if run.writer:
        frames = sorted(run.path("grids").glob("epoch_*.png"))
        gan_images.save_gif(run.path("training.gif"), frames)
        run.save_figure("gan_curves.png", gan_images.gan_curves(history))
        imgs, _ = sample(G_out, k * cfg.grid if k else cfg.grid ** 2, seed=cfg.seed)
        if k:  # sample() cycles classes 0..k-1; regroup so that row k holds class k
            imgs = imgs.view(cfg.grid, k, *imgs.shape[1:]).transpose(0, 1).reshape(-1, *imgs.shape[1:])
        gan_images.save_png(run.path("samples.png"), gan_images.tile(imgs.cpu().numpy(), cols=cfg.grid))


def train_gan(cfg: GANConfig, run, *, resume: bool = False) -> dict:
    if cfg.model != "dcgan":
        raise MnistlabError(f"unknown GAN model {cfg.model!r}; valid: dcgan")
    s = setup(cfg)
    c, h, w = s.ds.shape
    if (h, w) != (28, 28):
        raise MnistlabError(f"the GAN draws 28×28 images; dataset {cfg.dataset} has {h}×{w}")
    k = s.ds.num_classes if cfg.conditional else 0
    spec = gan_spec(nz=cfg.nz, g_width=cfg.g_width, d_width=cfg.d_width, channels=c, num_classes=k)
    gan = prepare_module(build_gan(spec), s.runtime)
    G, D = gan.G, gan.D
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))

    x_tr = as_tensor(s.train_x).to(s.device)  # (N, C, 28, 28) uint8, read-only, never written, on the device once
    y_tr = torch.from_numpy(s.train_y).to(s.device)
    run.save_splits(train=np.arange(len(y_tr)))
    batcher = Batcher(len(y_tr), cfg.batch_size, seed=cfg.seed, rank=s.rank, world=s.world)
    spe = batcher.steps_per_epoch
    total = max(1, round(cfg.epochs * spe))

    def batch_at(step: int):
        idx = batcher(step).to(s.device)
        x = channels_last(from_uint8(x_tr[idx]))  # (B, C, 28, 28) in [-1, 1]
        gen = step_generator(cfg.seed, step, 1 + s.rank, device=s.device)
        z = torch.randn(len(idx), cfg.nz, generator=gen, device=s.device)  # (B, nz)
        return x, (y_tr[idx] if k else None), z  # fakes are asked for the batch's classes (cgan)

    def optimize(batch, step: int) -> dict:
        x, y, z = batch
        return gan_step(gan, opt_d, opt_g, x, y, z, real_label=cfg.real_label, world=s.world)


    fixed_z, fixed_y = fixed_noise(cfg, k, device=s.device)
    cols, grid_dir = cfg.grid, run.path("grids")

    @torch.no_grad()
    def draw_grid(epoch: int) -> None:
        recalibrate_bn(gan.G_ema, seed=cfg.seed)
        gan.G_ema.eval()
        imgs = to_uint8(gan.G_ema(fixed_z, fixed_y)).cpu().numpy()  # (n, C, 28, 28)
        mosaic = gan_images.tile(imgs, cols=cols)
        if run.writer:
            gan_images.save_png(grid_dir / f"epoch_{epoch:03d}.png",
                                gan_images.captioned(mosaic, f"{'cgan' if k else 'gan'} epoch {epoch}"))

    def after_step(step: int) -> None:
        gan.update_ema(ema_decay(cfg, step) if cfg.ema > 0 else 0.0)
        done = step + 1
        if run.writer and (done % spe == 0 or done == total):  # here, not in `evaluate`: epochs need not be a multiple of eval_every
            draw_grid(math.ceil(done / spe))

    if not (resume and run.path("checkpoint.safetensors").exists()) and run.writer:
        draw_grid(0)  # the untrained generator: the first frame of the animation
    history = fit(gan, {"d": opt_d, "g": opt_g}, run=run, total_steps=total, batch_at=batch_at, optimize=optimize,
                  eval_every=max(1, spe // max(1, cfg.evals_per_epoch)), steps_per_epoch=spe,
                  after_step=after_step, precision=s.precision, seed=cfg.seed, ckpt_every=cfg.ckpt_every,
                  resume=resume, world=s.world, desc=f"{'cgan' if k else 'gan'} dcgan")

    gan_outputs(run, gan, spec=spec, cfg=cfg, k=k, history=history)
    last = history[-1] if history else {}
    return {"conditional": bool(k), "loss_d": last.get("train_loss_d"), "loss_g": last.get("train_loss_g"),
            "d_real": last.get("train_d_real"), "d_fake": last.get("train_d_fake"), "steps": total,
            "epochs": cfg.epochs, "train_images": int(len(y_tr)), "g_params": count_params(gan.G),
            "d_params": count_params(gan.D), "precision": s.precision, "device": str(s.device)}


@METHODS.register("gan", config=GANConfig, budgets=BUDGETS, task="gan")
def run_gan(cfg: GANConfig, run, *, resume: bool = False) -> dict:
    """Unconditional DCGAN (noise → digit)."""
    return train_gan(cfg, run, resume=resume)


@METHODS.register("cgan", config=CGANConfig, budgets=BUDGETS, task="gan")
def run_cgan(cfg: CGANConfig, run, *, resume: bool = False) -> dict:
    """Class-conditional DCGAN (noise + digit → that digit; projection discriminator)."""
    return train_gan(cfg, run, resume=resume)
