"""FixMatch (Sohn et al. 2020): a pseudo-label counts where the teacher's confidence passes a fixed threshold.

The family's machinery (views, EMA teacher, distribution alignment, BN recalibration, refine) is methods/_ssl.py;
this file owns the fixed rule and the method's config. The digit-specific choices and their measurements:
benchmarks/notes/recipe-history.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from mnistlab.methods import METHODS
from mnistlab.methods._ssl import (BUDGETS, SSLConfig, SSLState, align, register_rule, run_ssl, ssl_loss,
                                   ssl_member_info)

__all__ = ["BUDGETS", "FixMatchConfig", "FixedThreshold", "SSLState", "align", "ssl_loss"]


@dataclass
class FixMatchConfig(SSLConfig):
    threshold_mode: str = "fixed"  # FixedThreshold below
    threshold: float = 0.95  # confidence a pseudo-label needs


class FixedThreshold:
    """max p ≥ threshold. No running statistics."""

    name = "fixed"

    def buffers(self, num_classes: int) -> dict[str, torch.Tensor]:
        return {}

    def update(self, state: SSLState, probs: torch.Tensor, momentum: float) -> None:
        pass

    def select(self, state: SSLState, probs: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        conf, lab = probs.max(1)  # (N,), (N,)
        return lab, (conf >= torch.full_like(conf, threshold)).float()


register_rule(FixedThreshold())


@METHODS.register("fixmatch", **ssl_member_info(FixMatchConfig))
def run(cfg: FixMatchConfig, run, *, resume: bool = False) -> dict:
    return run_ssl(cfg, run, resume=resume)
