"""FreeMatch (Wang et al. 2023): self-adaptive thresholds on the FixMatch-family machinery of methods/_ssl.py.

The global threshold τ_t is the running mean of the teacher's max confidence (starts at 1/K, so pseudo-labels flow
from the first steps, and rises as the model learns, capped at `threshold`); each class's threshold is τ_t scaled by
that class's running mean probability over its max (MaxNorm), so rarely-predicted classes get a lower bar.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from mnistlab.methods import METHODS
from mnistlab.methods._ssl import SSLConfig, SSLState, register_rule, run_ssl, ssl_member_info


@dataclass
class FreeMatchConfig(SSLConfig):
    threshold_mode: str = "adaptive"  # AdaptiveThreshold below
    threshold: float = 0.95  # cap of the self-adaptive global threshold


class AdaptiveThreshold:
    """max p ≥ τ_t · p̃_t(c) / max_c p̃_t, c = argmax; τ_t capped at `threshold`."""

    name = "adaptive"

    def buffers(self, num_classes: int) -> dict[str, torch.Tensor]:
        k = num_classes
        return {"time_p": torch.tensor(1.0 / k),  # global confidence τ_t
                "p_local": torch.full((k,), 1.0 / k)}  # per-class mean probabilities p̃_t

    def update(self, state: SSLState, probs: torch.Tensor, momentum: float) -> None:
        m = momentum
        state.time_p.mul_(m).add_(probs.max(1).values.mean(), alpha=1 - m)
        state.p_local.mul_(m).add_(probs.mean(0), alpha=1 - m)

    def select(self, state: SSLState, probs: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        return adaptive_mask(probs, time_p=state.time_p.clamp(max=threshold), p_local=state.p_local)


def adaptive_mask(probs: torch.Tensor, *, time_p: torch.Tensor, p_local: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (N,), mask (N,) float) for probabilities (N, K), global threshold τ_t and class means p̃_t (K,)."""
    conf, lab = probs.max(1)
    tau = time_p * (p_local / p_local.max())[lab]
    return lab, (conf >= tau).float()


register_rule(AdaptiveThreshold())


@METHODS.register("freematch", **ssl_member_info(FreeMatchConfig))
def run(cfg: FreeMatchConfig, run, *, resume: bool = False) -> dict:
    return run_ssl(cfg, run, resume=resume)
