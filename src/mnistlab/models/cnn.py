"""A compact VGG-style CNN with batch norm: the default classifier backbone (≈ 0.29 M parameters at widths 32-64-128)."""
from __future__ import annotations

import torch
from torch import nn

from mnistlab.models import MODELS


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class CNN(nn.Module):
    """(B, C, H, W) → 2×conv → pool → 2×conv → pool → 2×conv → global avg pool → (B, w2) → linear → logits."""

    def __init__(self, in_channels: int, num_classes: int, widths=(32, 64, 128), dropout: float = 0.0):
        super().__init__()
        w0, w1, w2 = widths
        self.features = nn.Sequential(
            conv_bn(in_channels, w0), conv_bn(w0, w0), nn.MaxPool2d(2),  # 28 → 14
            conv_bn(w0, w1), conv_bn(w1, w1), nn.MaxPool2d(2),  # 14 → 7
            conv_bn(w1, w2), conv_bn(w2, w2),  # 7 × 7
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, w2)
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(w2, num_classes)
        self.feature_dim = w2

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).float()  # (B, w2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))  # (B, num_classes)


@MODELS.register("cnn")
def cnn(*, in_shape, num_classes, widths=(32, 64, 128), dropout: float = 0.0):
    return CNN(in_shape[0], num_classes, tuple(widths), dropout)


@MODELS.register("cnn-small")
def cnn_small(*, in_shape, num_classes, widths=(16, 32, 64), dropout: float = 0.0):
    """A quarter of the compute of `cnn`, for smoke tests and quick looks."""
    return CNN(in_shape[0], num_classes, tuple(widths), dropout)
