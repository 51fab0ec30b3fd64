"""Exponential moving average of a model's weights (Polyak averaging): the model FixMatch evaluates and teaches with."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds `module`, a frozen copy of a model; `update(model, decay)` moves it toward the model's current weights.

    Parameters: ema ← decay · ema + (1 − decay) · model. Buffers (batch-norm running statistics) are copied, so the
    EMA model is always usable in eval mode.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # the teacher always runs in eval mode (running BN statistics)
        return super().train(False)

    @torch.no_grad()
    def update(self, model: nn.Module, *, decay: float) -> None:
        ema_p = list(self.module.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1.0 - decay)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)
