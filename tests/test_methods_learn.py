"""Every registered method learns (issue 26, item 2): on a fixed seed its run beats chance by a margin that a broken
method (no update, shuffled targets, a wrong evaluation) would miss.

Classifiers: test accuracy ≥ 0.5 where chance is 0.1. The detector: accuracy ≥ 0.65 where chance is 0.5 (balanced
digit / non-digit test set). GANs have no accuracy: their losses are finite, the discriminator tells real from
generated, and the generator's samples moved from the untrained generator's grey (mean pixel ≈ 0.50) towards
MNIST's dark background (mean 0.13) by at least 0.05 — a generator that never updated stays at 0.50.

The smoke budgets check the plumbing in seconds and do not learn enough (8 to 16 optimiser steps: 0.08–0.39 test
accuracy measured on this machine), so each classifier gets a small dedicated override below (more steps, a subset),
a few seconds of training on an idle 2-core CPU. Measured with these overrides (seed 0, one thread): supervised 0.87,
cnn 0.64, mlp-features 0.72, rotnet 0.76, detector 0.83 (no override), fixmatch 0.89 (80 steps), freematch 0.86
(160 steps; at 80 steps 0.29: its self-adaptive threshold starts at 1/K, so its first pseudo-labels are mostly wrong
and it needs more steps than FixMatch's fixed threshold to recover). GAN (no override): sample mean 0.38 (gan),
0.40 (cgan) from 0.50.
"""
import numpy as np
import pytest
import torch

from mnistlab import api
from mnistlab.methods import METHODS

pytestmark = pytest.mark.slow

CHANCE_MARGIN = 0.5  # classifiers: ≥ 0.5 test accuracy, chance 0.1
DETECTOR_MARGIN = 0.65  # detector: ≥ 0.65 accuracy, chance 0.5
GAN_SHIFT = 0.05  # GAN: sample mean pixel ≤ 0.50 − 0.05 (untrained ≈ 0.50, MNIST 0.13)

LEARN = {  # method → the overrides of its smoke budget that let it learn in seconds (why: see the module docstring)
    "supervised": {"train_subset": 2048, "epochs": 2, "augment": False},
    "cnn": {"steps": 60},
    "mlp-features": {"steps": 60},
    "rotnet": {"steps": 60},
    "fixmatch": {"labels": 200, "steps": 80, "batch_size": 16},
    "freematch": {"labels": 200, "steps": 160, "batch_size": 16},  # at 80 steps: 0.29 (see the docstring)
    "detector": {},
    "gan": {},
    "cgan": {},
}


def test_every_registered_method_is_checked_here():
    assert set(LEARN) == set(METHODS.names()), "a new method needs its beats-chance check in LEARN"


@pytest.mark.parametrize("method", sorted(m for m in LEARN if METHODS.info(m).get("task") not in ("gan", "detector")))
def test_classifier_beats_chance(method, tmp_path):
    _, m = api.train(method, command="test", out=tmp_path / method, budget="smoke",
                     overrides={"seed": 0, "threads": 1, **LEARN[method]})
    assert m["test_accuracy"] >= CHANCE_MARGIN, f"{method}: {m['test_accuracy']:.3f} (chance 0.1)"


def test_detector_beats_chance(tmp_path):
    _, m = api.train("detector", command="detect", out=tmp_path / "d", budget="smoke",
                     overrides={"seed": 0, "threads": 1, "lofo": False, **LEARN["detector"]})
    assert m["accuracy"] >= DETECTOR_MARGIN, f"detector: {m['accuracy']:.3f} (chance 0.5)"


@pytest.mark.parametrize("method", ["gan", "cgan"])
def test_gan_moves_towards_the_data(method, tmp_path):
    from mnistlab.models.gan import build_generator, sample
    from mnistlab.runs import load_generator

    out, m = api.train(method, command="gan", out=tmp_path / method, budget="smoke",
                       overrides={"seed": 0, "threads": 1, **LEARN[method]})
    assert np.isfinite([m["loss_d"], m["loss_g"]]).all()
    assert m["d_real"] > m["d_fake"], m  # the discriminator tells real from generated
    G, spec = load_generator(out)
    torch.manual_seed(0)
    untrained = build_generator(spec).eval()
    mean = float(sample(G, 64, seed=0)[0].float().mean()) / 255
    start = float(sample(untrained, 64, seed=0)[0].float().mean()) / 255
    assert abs(start - 0.5) < 0.05 and mean <= start - GAN_SHIFT, (start, mean)
