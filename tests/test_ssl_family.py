"""A new member of the FixMatch family is one small file: a threshold rule (+ its buffers) and a config. Here the
whole file is this test module: a rule that keeps the top half of each batch by confidence, run end to end."""
from dataclasses import dataclass

import torch

from mnistlab.config import merge
from mnistlab.methods import _ssl
from mnistlab.methods._ssl import SSLConfig, SSLState, run_ssl
from mnistlab.runs import Run


@dataclass
class TopHalfConfig(SSLConfig):
    threshold_mode: str = "top-half"


class TopHalf:
    """Keep the more confident half of the batch; a running mean of the kept confidence as its buffer."""

    name = "top-half"

    def buffers(self, num_classes: int) -> dict[str, torch.Tensor]:
        return {"kept_conf": torch.tensor(0.0)}

    def update(self, state: SSLState, probs: torch.Tensor, momentum: float) -> None:
        conf = probs.max(1).values
        state.kept_conf.mul_(momentum).add_(conf[conf >= conf.median()].mean(), alpha=1 - momentum)

    def select(self, state: SSLState, probs: torch.Tensor, threshold: float):
        conf, lab = probs.max(1)
        return lab, (conf >= conf.median()).float()


def test_a_new_member_is_a_rule_and_a_config(tmp_path, monkeypatch):
    monkeypatch.setitem(_ssl.RULES, "top-half", TopHalf())
    cfg = merge(TopHalfConfig, _ssl.BUDGETS["smoke"], {"budget": "smoke", "threads": 1, "steps": 4,
                                                           "refine_rounds": 0, "bn_recalibrate": 64})
    run = Run(tmp_path / "run")
    try:
        run.start(cfg, command="test", method="top-half")
        metrics = run_ssl(cfg, run)
    finally:
        run.close()
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["steps"] == 4
    assert 0 < metrics["final_mask_rate"] <= 1  # the rule decided which pseudo-labels count
    assert (tmp_path / "run" / "model.safetensors").exists()
