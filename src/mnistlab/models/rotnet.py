"""A light CNN backbone for RotNet (and the few-label CNN baseline): batch norm, early stride, ≈ 5.5 M MACs per image.

`rotnet-cnn` (widths 16-32-64): conv 28² → stride-2 conv → conv 14² → pool → 2 × conv 7² → global average pool →
MLP head. Six times cheaper than the seed report's `report-rotnet` (≈ 36 M MACs), which matters on 2 shared CPU cores:
the rotation pretext sees all 60 000 training images in all four rotations. Same `features` / `head` split as the
seed models, so RotNet transfer treats them alike.
"""
from __future__ import annotations

from torch import nn

from mnistlab.models import MODELS
from mnistlab.models.cnn import conv_bn
from mnistlab.models.seed import SeedNet


class RotNetCNN(SeedNet):
    def __init__(self, in_channels: int, num_classes: int, widths=(16, 32, 64), hidden: int = 256,
                 dropout: float = 0.0):
        w0, w1, w2 = widths
        features = nn.Sequential(
            conv_bn(in_channels, w0),  # (B, w0, 28, 28)
            nn.Conv2d(w0, w1, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(inplace=True),  # 14²
            conv_bn(w1, w1), nn.MaxPool2d(2),  # (B, w1, 7, 7)
            conv_bn(w1, w2), conv_bn(w2, w2),  # (B, w2, 7, 7)
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, w2)
        )
        head = nn.Sequential(nn.Linear(w2, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                             nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        super().__init__(features, head)


@MODELS.register("rotnet-cnn", pretext=True)
def rotnet_cnn(*, in_shape, num_classes, widths=(16, 32, 64), hidden: int = 256, dropout: float = 0.0):
    return RotNetCNN(in_shape[0], num_classes, tuple(widths), hidden, dropout)


@MODELS.register("rotnet-cnn-small", pretext=True)
def rotnet_cnn_small(*, in_shape, num_classes, widths=(8, 16, 32), hidden: int = 64, dropout: float = 0.0):
    """A quarter of the compute of `rotnet-cnn`, for smoke tests."""
    return RotNetCNN(in_shape[0], num_classes, tuple(widths), hidden, dropout)
