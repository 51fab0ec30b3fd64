"""The seed report's exact architectures (DataSaiyentist/RotNet `model.py`), for like-for-like comparisons.

    report-mlp     112 features → 128 → 64 → dropout 0.2 → 10
    report-cnn     conv32-conv32-pool → fc1024 → dropout 0.5 → fc10              (3×3 convs, 'same' padding, no BN)
    report-rotnet  3×conv32-pool-3×conv64-pool → fc1024 → fc4 (pretext) / fc10   (no BN, no dropout)

Convolutional models split into `features` (convs → flattened (B, D)) and `head` (the fully connected layers), the
split RotNet transfer uses: `features` is copied (frozen or fine-tuned), `head[-1]` is replaced for the new classes.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from mnistlab.models import MODELS


def _convs(c_in: int, widths: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(c_in, w, 3, padding=1), nn.ReLU(inplace=True)]
        c_in = w
    return layers


class SeedNet(nn.Module):
    """features (B, C, H, W) → (B, D); head: fc layers. `embed` = the last hidden fc activations."""

    def __init__(self, features: nn.Sequential, head: nn.Sequential):
        super().__init__()
        self.features, self.head = features, head
        self.feature_dim = head[-1].in_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head[:-1](self.features(x)).float()  # (B, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes)


@MODELS.register("report-mlp", input="features")
def seed_mlp(*, in_shape, num_classes, dropout: float = 0.2):
    """The report's MLPC on the 112 features (in_shape (112,)): dropout sits before the output layer only."""
    d = math.prod(in_shape)
    return SeedNet(nn.Sequential(nn.Flatten()),
                   nn.Sequential(nn.Linear(d, 128), nn.ReLU(inplace=True), nn.Linear(128, 64), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(64, num_classes)))


@MODELS.register("report-cnn")
def seed_cnn(*, in_shape, num_classes, dropout: float = 0.5):
    c, h, w = in_shape
    feats = nn.Sequential(*_convs(c, [32, 32]), nn.MaxPool2d(2), nn.Flatten())  # (B, 32·14·14 = 6272)
    d = 32 * (h // 2) * (w // 2)
    return SeedNet(feats, nn.Sequential(nn.Linear(d, 1024), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                        nn.Linear(1024, num_classes)))


@MODELS.register("report-rotnet", pretext=True)
def seed_rotnet(*, in_shape, num_classes):
    c, h, w = in_shape
    feats = nn.Sequential(*_convs(c, [32, 32, 32]), nn.MaxPool2d(2),  # 28 → 14
                          *_convs(32, [64, 64, 64]), nn.MaxPool2d(2),  # 14 → 7
                          nn.Flatten())  # (B, 64·7·7 = 3136)
    d = 64 * (h // 4) * (w // 4)
    return SeedNet(feats, nn.Sequential(nn.Linear(d, 1024), nn.ReLU(inplace=True), nn.Linear(1024, num_classes)))


for _old in ("mlp", "cnn", "rotnet"):  # the names before 2026-12: "seed" read like a random seed
    MODELS.rename(f"seed-{_old}", f"report-{_old}")
