"""FreeMatch-style self-adaptive thresholds (Wang et al. 2023) on the FixMatch machinery of methods/fixmatch.py.

The global threshold τ_t is the running mean of the teacher's max confidence (starts at 1/K, so pseudo-labels flow
from the first steps, and rises as the model learns, capped at `threshold`); each class's threshold is τ_t scaled by
that class's running mean probability over its max (MaxNorm), so rarely-predicted classes get a lower bar.
"""
from __future__ import annotations

from dataclasses import dataclass

from mnistlab.methods import METHODS
from mnistlab.methods.fixmatch import BUDGETS, FixMatchConfig, run_ssl
from mnistlab.models import config_options


@dataclass
class FreeMatchConfig(FixMatchConfig):
    threshold_mode: str = "adaptive"
    threshold: float = 0.95  # cap of the self-adaptive global threshold


@METHODS.register("freematch", config=FreeMatchConfig, budgets=BUDGETS, task="fewlabel",
                  model_options=config_options)
def run(cfg: FreeMatchConfig, run, *, resume: bool = False) -> dict:
    return run_ssl(cfg, run, resume=resume)
