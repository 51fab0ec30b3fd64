"""Exponential moving average of a model's weights (Polyak averaging): the model FixMatch evaluates and teaches with."""
from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds `module`, a frozen copy of a model; `update(model, decay)` moves it toward the model's current weights.

    Parameters: ema ← decay · ema + (1 − decay) · model. Buffers (batch-norm running statistics) are copied, so the
    EMA model is always usable in eval mode — unless `copy_buffers=False`, for a teacher that keeps statistics of
    its own (see `teacher_batch_stats`).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # the teacher always runs in eval mode (running BN statistics)
        return super().train(False)

    @torch.no_grad()
    def update(self, model: nn.Module, *, decay: float, copy_buffers: bool = True) -> None:
        ema_p = list(self.module.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1.0 - decay)
        if copy_buffers:
            for b_ema, b in zip(self.module.buffers(), model.buffers()):
                b_ema.copy_(b)


@contextlib.contextmanager
def teacher_batch_stats(module: nn.Module):
    """Run `module`'s batch-norm layers on the statistics of the batch they see (train-mode BN), the rest in eval mode.

    Why: a FixMatch student's running statistics describe the batches it trains on — 7 strong views for every
    labelled image — so an EMA teacher that copies them normalises weak views with strong-view statistics. Inside
    this context the teacher normalises the weak batch by its own mean/variance and its running statistics follow
    the weak views (BN momentum), which is what the EMA model is then evaluated with. Under torchrun each process
    normalises its own share of the weak batch, so the teacher's outputs depend a little on the process count.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = [m.training for m in bns]
    for m in bns:
        m.train(True)
    try:
        yield module
    finally:
        for m, mode in zip(bns, modes):
            m.train(mode)
