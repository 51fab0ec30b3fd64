"""Few-label MLP on the seed report's 112 hand-made features (`data/features.py`), ± augmentation (the images are
augmented, then the features are computed from them). `--model report-mlp` is the report's network with its recipe."""
from __future__ import annotations

from dataclasses import dataclass

from mnistlab.methods import METHODS
from mnistlab.methods._fewlabel import FewLabelConfig, build_model, load_split, preprocessing, resolve_recipe, \
    train_classifier
from mnistlab.runs import Run


@dataclass
class MLPFeaturesConfig(FewLabelConfig):
    model: str = "mlp"
    features: str = "profile112"  # a registered feature set (mnistlab.data.features.FEATURES); the report recipe
    # uses profile112-report (raw values, empty row = 0)
    binarize: int = 34  # the features count ink pixels ≥ 34/255 either way; binarised input is the report's
    hidden: int = 256
    dropout: float = 0.3
    steps: int = 600
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.1


BUDGETS = {
    "smoke": {"steps": 6, "batch_size": 32, "test_subset": 500, "epochs": 1, "eval_points": 2, "expand": 2},
    "quick": {},
    "full": {},
}


@METHODS.register("mlp-features", config=MLPFeaturesConfig, budgets=BUDGETS, task="fewlabel")
def run(cfg: MLPFeaturesConfig, run: Run, *, resume: bool = False) -> dict:
    cfg = resolve_recipe(cfg)
    if cfg.recipe == "report" and cfg.features == "profile112":
        cfg.features = "profile112-report"  # the report's exact features: raw values, empty row = 0
    d = load_split(cfg, run)
    pre = preprocessing(cfg, features=cfg.features)
    kwargs = {"hidden": [cfg.hidden, cfg.hidden // 2], "dropout": cfg.dropout} if cfg.model == "mlp" else {}
    model, spec = build_model(cfg, d, pre, **kwargs)
    return train_classifier(cfg, run, d, model=model, spec=spec, pre=pre, resume=resume,
                            desc=f"fewlabel {cfg.model} on {cfg.features}")
