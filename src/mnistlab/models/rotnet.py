"""Backbones for rotation pretraining (RotNet) that transfer better than the seed report's: batch norm, more width.

`rotnet-cnn`: three VGG blocks with batch norm (widths 32-64-128, ≈ 0.33 M parameters), global average pooling, and an
MLP head. Same `features` / `head` split as the seed models, so RotNet transfer treats them alike.
"""
from __future__ import annotations

import torch
from torch import nn

from mnistlab.models import MODELS
from mnistlab.models.cnn import conv_bn
from mnistlab.models.seed import SeedNet


class RotNetCNN(SeedNet):
    def __init__(self, in_channels: int, num_classes: int, widths=(32, 64, 128), hidden: int = 256,
                 dropout: float = 0.0):
        w0, w1, w2 = widths
        features = nn.Sequential(
            conv_bn(in_channels, w0), conv_bn(w0, w0), nn.MaxPool2d(2),  # 28 → 14
            conv_bn(w0, w1), conv_bn(w1, w1), nn.MaxPool2d(2),  # 14 → 7
            conv_bn(w1, w2), conv_bn(w2, w2),  # 7 × 7
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, w2)
        )
        head = nn.Sequential(nn.Linear(w2, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                             nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        super().__init__(features, head)


@MODELS.register("rotnet-cnn", pretext=True)
def rotnet_cnn(*, in_shape, num_classes, widths=(32, 64, 128), hidden: int = 256, dropout: float = 0.0):
    return RotNetCNN(in_shape[0], num_classes, tuple(widths), hidden, dropout)


@MODELS.register("rotnet-cnn-small", pretext=True)
def rotnet_cnn_small(*, in_shape, num_classes, widths=(16, 32, 64), hidden: int = 128, dropout: float = 0.0):
    """A quarter of the compute of `rotnet-cnn`, for smoke tests."""
    return RotNetCNN(in_shape[0], num_classes, tuple(widths), hidden, dropout)
