"""Few-label CNN baseline: a CNN trained on the labelled images only (± augmentation). `--model report-cnn` is the seed
report's network with its recipe; the default `cnn` (batch norm) with ours."""
from __future__ import annotations

from dataclasses import dataclass

from mnistlab.methods import METHODS
from mnistlab.methods._fewlabel import FewLabelConfig, build_model, load_split, preprocessing, resolve_recipe, \
    train_classifier
from mnistlab.runs import Run


@dataclass
class CNNConfig(FewLabelConfig):
    model: str = "rotnet-cnn"  # the same network as rotnet's, from scratch; `cnn` (foundation) or report-cnn also work
    steps: int = 300  # AdamW steps of 32 of the 80 labelled images (120 epochs), cosine
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    dropout: float = 0.3  # before the classifier (ours; report-cnn has its own 0.5)


BUDGETS = {
    "smoke": {"model": "rotnet-cnn-small", "steps": 6, "batch_size": 32, "test_subset": 500, "epochs": 1,
              "eval_points": 2, "expand": 2},
    "quick": {},
    "full": {},
}


@METHODS.register("cnn", config=CNNConfig, budgets=BUDGETS, task="fewlabel")
def run(cfg: CNNConfig, run: Run, *, resume: bool = False) -> dict:
    cfg = resolve_recipe(cfg)
    d = load_split(cfg, run)
    pre = preprocessing(cfg)
    kwargs = {"dropout": cfg.dropout} if cfg.model in ("cnn", "cnn-small", "rotnet-cnn", "rotnet-cnn-small") else {}
    model, spec = build_model(cfg, d, pre, **kwargs)
    return train_classifier(cfg, run, d, model=model, spec=spec, pre=pre, resume=resume, desc=f"fewlabel {cfg.model}")
