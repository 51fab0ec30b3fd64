"""Multi-layer perceptrons: on raw pixels (the brief's classifier) or on feature vectors (the seed report's 112)."""
from __future__ import annotations

import math

import torch
from torch import nn

from mnistlab.models import MODELS


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: tuple[int, ...], num_classes: int, dropout: float = 0.0,
                 batchnorm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h)] + ([nn.BatchNorm1d(h)] if batchnorm else []) + [nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            d = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, num_classes)
        self.feature_dim = d

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))  # (B, in_dim) → (B, hidden[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))  # (B, num_classes)


@MODELS.register("mlp")
def mlp(*, in_shape, num_classes, hidden=(512, 256), dropout: float = 0.2, batchnorm: bool = True):
    """Pixels → hidden layers → classes. `hidden` may be an int (one layer) or a list."""
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    return MLP(math.prod(in_shape), hidden, num_classes, dropout, batchnorm)
