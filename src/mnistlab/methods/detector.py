"""Digit detector (the brief's Part 3): a binary CNN, class 1 = "a digit", trained on MNIST digits against generated
non-digit images (`data/negatives.py`), and judged on images it never saw.

Data (30k + 30k as the brief asks): `positives` MNIST training digits (split seed) against `negatives` images over the
generator families, `near_share` of them from the four that look like writing. Validation: other MNIST training digits + negatives from a validation seed; the
decision threshold on the logit margin is chosen there, never on test. Test: the MNIST test digits + freshly generated
negatives (a third seed; the broken-digit families are built from MNIST *test* digits). Out of distribution:
Fashion-MNIST test images, never seen in training (AUROC, FPR at 95 % TPR). Leave-one-family-out: for each family F a
detector trained without F (the same recipe for `lofo_epochs`) is tested on fresh images of F.

Run folder, besides the usual: threshold.json, test_scores.npz, family_accuracy.json, lofo/<family>/ (one sub-run per
left-out family), learning_curves.png, confusion.png, predictions.png (p(digit) of correct and wrong test images),
scores.png (margin histograms), families.png (a grid of every family).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab import fileio, infer
from mnistlab.config import TrainConfig, to_dict
from mnistlab.data import augment, load_dataset
from mnistlab.data import negatives as neg
from mnistlab.data import shifts
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import confusion, nll
from mnistlab.evaluate.ood import choose_threshold, ood_report
from mnistlab.methods import METHODS
from mnistlab.methods._common import cosine_lr
from mnistlab.models import count_params, create_model, model_spec
from mnistlab.report import detector_plots, plots
from mnistlab.runs import Run
from mnistlab.train import Batcher, fit, step_generator
from mnistlab.precision import Runtime, channels_last, prepare_module, resolve_runtime

CLASSES = ("no digit", "digit")


@dataclass
class DetectorConfig(TrainConfig):
    model: str = "cnn"  # and near_share 0.5: chosen on validation (docs/protocol.md)
    epochs: float = 3.0
    batch_size: int = 128
    lr: float = 3e-3  # AdamW, cosine-decayed
    weight_decay: float = 5e-4
    positives: int = 30000  # MNIST training digits (class 1)
    negatives: int = 30000  # generated non-digits (class 0), spread over `families` (see near_share)
    families: list[str] = field(default_factory=list)  # generator families to train on; empty = all registered
    # share of training and validation negatives from the families that look like writing (negatives.NEAR), split
    # evenly among them; 0 = every family alike. Test negatives stay spread evenly.
    near_share: float = 0.5
    val_size: int = 2000  # per class: held-out training digits + negatives from the validation seed
    test_negatives: int = 10000  # freshly generated for the test set (the brief: 10k MNIST test + 10k generated)
    split_seed: int = 0  # which training digits are positives / validation
    data_seed: int = 1  # training negatives; validation uses data_seed + 1000, test data_seed + 2000
    augment: bool = True  # random affine (±10°, ±10 %, ×0.9–1.1) on half of each batch, both classes alike
    robust: float = 0.0  # fraction of each batch given one user-like change (data.shifts.random_view), both classes
    lofo_families: list[str] = field(default_factory=list)  # families with a leave-one-out detector; empty = all
    lofo: bool = True  # leave-one-family-out detectors
    lofo_epochs: float = 1.0
    ood_dataset: str = "fashion-mnist"  # never used in training; "" = no out-of-distribution test
    ood_fallback: str = "mnist"  # the OOD set when ood_dataset is the training dataset (a clothes detector)
    RANGES = {"near_share": (0.0, 0.95), "robust": (0.0, 1.0)}


BUDGETS = {
    # smoke runs on one thread: on 2 shared cores under load, small convs took 5–7 s per step on two threads and
    # ≈ 0.2 s on one (a 35 s smoke run became 330 s)
    "smoke": {"model": "cnn-small", "positives": 512, "negatives": 512, "val_size": 150, "test_negatives": 300,
              "test_subset": 300, "epochs": 1, "batch_size": 64, "lofo_epochs": 0.5, "families": ["uniform", "lines", "digit-tiles"],
              "threads": 1},
    "quick": {},
    "full": {"epochs": 4, "lofo_epochs": 1.0},
}

VAL_SEED, TEST_SEED = 1000, 2000


def _families(cfg: DetectorConfig) -> list[str]:
    fams = list(cfg.families) or [f for f in neg.family_names() if neg.available(f)]
    missing = [f for f in neg.family_names() if not cfg.families and not neg.available(f)]
    if missing:
        print(f"note: no font files, so the detector trains without {', '.join(missing)} (apt-get install "
              "fonts-dejavu-core)", file=sys.stderr)
    for f in fams:
        neg.FAMILIES.get(f)  # unknown name → one-line error listing the valid ones
    if len(set(fams)) != len(fams):
        raise MnistlabError(f"families listed twice in {fams}")
    return fams


def _split(cfg: DetectorConfig, n_train: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positive, validation, spare) indices into the MNIST training set; spare digits feed the hard negatives."""
    if cfg.positives + cfg.val_size > n_train:
        raise MnistlabError(f"positives + val_size = {cfg.positives + cfg.val_size} > {n_train} training digits")
    perm = np.random.default_rng(cfg.split_seed).permutation(n_train)
    k = cfg.positives + cfg.val_size
    return np.sort(perm[: cfg.positives]), np.sort(perm[cfg.positives: k]), np.sort(perm[k:])


def _negative_sets(cfg: DetectorConfig, fams: list[str], *, spare: np.ndarray, val_digits: np.ndarray,
                   test_digits: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Training / validation / test negatives (images, family index) from three seeds. Broken digits: spare training
    digits / validation digits / MNIST test digits. Fragments and pairs read training digits only: one half of the
    spare digits for training, the other for test. Test letters come from held-out font files (leave-fonts-out)."""
    half = (spare[0::2], spare[1::2]) if len(spare) >= 6 else (spare, spare)
    w = neg.near_weights(fams, cfg.near_share)
    return [neg.generate_mix(cfg.negatives, seed=cfg.data_seed, families=fams, digits=spare, train_digits=half[0],
                             weights=w),
            neg.generate_mix(cfg.val_size, seed=cfg.data_seed + VAL_SEED, families=fams, digits=val_digits,
                             train_digits=val_digits, weights=w),
            neg.generate_mix(cfg.test_negatives, seed=cfg.data_seed + TEST_SEED, families=fams, digits=test_digits,
                             train_digits=half[1], fonts="held-out")]


def _labelled(pos: np.ndarray, negs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([pos, negs]), np.r_[np.ones(len(pos)), np.zeros(len(negs))].astype(np.int64)


def _margin(logits: np.ndarray) -> np.ndarray:
    """logit(digit) − logit(no digit): p(digit) = sigmoid(margin), kept unsaturated for ROC and thresholds."""
    return (logits[:, 1] - logits[:, 0]).astype(np.float64)


def _p(margin: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(margin, np.float64)))


def train_detector(cfg: DetectorConfig, run: Run, *, x: np.ndarray, y: np.ndarray, val_x: np.ndarray,
                   val_y: np.ndarray, epochs: float, rt: Runtime, resume: bool,
                   desc: str) -> tuple[torch.nn.Module, dict, list[dict]]:
    """Train one binary detector on uint8 images x (N, 1, 28, 28), labels y; returns (model, spec, history)."""
    in_shape = tuple(x.shape[1:])
    torch.manual_seed(cfg.seed)  # the initial weights are a function of the seed (same seed → same numbers)
    model = prepare_module(create_model(cfg.model, in_shape=in_shape, num_classes=2), rt)
    spec = model_spec(cfg.model, in_shape=in_shape, num_classes=2)
    x_t = torch.from_numpy(np.ascontiguousarray(x)).to(rt.device)  # kept whole, uint8, on the device once
    y_t = torch.from_numpy(y).to(rt.device)
    batcher = Batcher(len(y), cfg.batch_size, seed=cfg.seed, rank=rt.rank, world=rt.world)
    total = max(1, round(epochs * batcher.steps_per_epoch))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def batch_at(step: int):
        idx = batcher(step).to(rt.device)
        xb = x_t[idx].float() / 255  # (B, 1, 28, 28)
        if cfg.augment:
            gen = step_generator(cfg.seed, step, device=rt.device)
            warped = augment.random_affine(xb, gen, degrees=10, translate=0.1, scale=(0.9, 1.1))
            coin = torch.rand(len(xb), generator=gen, device=rt.device) < 0.5
            xb = torch.where(coin.view(-1, 1, 1, 1), warped, xb)
        if cfg.robust > 0:
            xb = shifts.random_view(xb, step_generator(cfg.seed + 1, step, device=rt.device), p=cfg.robust)
        return channels_last(xb), y_t[idx]

    def loss_fn(batch, step):
        xb, yb = batch
        logits = model(xb).float()
        return {"loss": F.cross_entropy(logits, yb), "acc": (logits.argmax(1) == yb).float().mean()}

    def evaluate(step):
        lg = infer.logits(model, val_x, precision=rt.precision)
        return {"val_accuracy": float((lg.argmax(1) == val_y).mean()), "val_loss": nll(lg, val_y)}

    history = fit(model, opt, run=run, total_steps=total, batch_at=batch_at, loss_fn=loss_fn, evaluate=evaluate,
                  eval_every=max(1, total // 8), steps_per_epoch=batcher.steps_per_epoch,
                  lr_at=cosine_lr(total, warmup=min(100, total // 10)), precision=rt.precision, seed=cfg.seed,
                  ckpt_every=cfg.ckpt_every, resume=resume, world=rt.world, desc=desc)
    return model, spec, history


@dataclass
class DetectorData:
    """Positives (digits) and generated negatives, labelled 1 / 0, for training, validation and test."""

    ds: Any
    fams: list[str]
    x: np.ndarray  # (N, 1, 28, 28) uint8 training images, positives first
    y: np.ndarray
    tr_fam: np.ndarray  # family index of each training negative
    val_x: np.ndarray
    val_y: np.ndarray
    va_fam: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    te_neg: np.ndarray
    te_fam: np.ndarray
    n_test_pos: int


def detector_data(cfg: DetectorConfig, run: Run) -> DetectorData:
    """The splits (saved), and negatives drawn with training / validation / test seeds; broken digits come from
    digits that are not positives (training), the validation digits, and the test digits."""
    fams = _families(cfg)
    ds = load_dataset(cfg.dataset)
    if ds.shape != (1, 28, 28):
        raise MnistlabError(f"the detector needs 28×28 grey digits; {cfg.dataset} has images {ds.shape}")
    pos_idx, val_idx, spare_idx = _split(cfg, len(ds.train_y))
    run.save_splits(positives=pos_idx, val=val_idx)
    spare = ds.train_x[spare_idx] if len(spare_idx) >= 3 else ds.train_x[pos_idx]
    # negatives: training / validation / test seeds; broken digits from digits that are not positives / from test
    (tr_neg, tr_fam), (va_neg, va_fam), (te_neg, te_fam) = _negative_sets(cfg, fams, spare=spare,
                                                                           val_digits=ds.train_x[val_idx],
                                                                           test_digits=ds.test_x)
    test_pos = ds.test_x[: cfg.test_subset] if cfg.test_subset else ds.test_x
    x, y = _labelled(ds.train_x[pos_idx], tr_neg)
    val_x, val_y = _labelled(ds.train_x[val_idx], va_neg)
    test_x, test_y = _labelled(test_pos, te_neg)
    return DetectorData(ds, fams, x, y, tr_fam, val_x, val_y, va_fam, test_x, test_y, te_neg, te_fam, len(test_pos))


def test_outputs(cfg: DetectorConfig, run: Run, d: DetectorData, *, test_m: np.ndarray, thr: float,
                 history: list[dict]) -> dict:
    """Test metrics at the validation threshold, and the confusion, curves and prediction figures."""
    pred = (test_m >= thr).astype(np.int64)
    cm = confusion(d.test_y, pred, 2)
    fam_acc = {f: float((pred[d.n_test_pos:][d.te_fam == i] == 0).mean()) for i, f in enumerate(d.fams)
               if (d.te_fam == i).any()}
    metrics = {"accuracy": float((pred == d.test_y).mean()),
               "accuracy_at_p50": float(((test_m >= 0) == d.test_y.astype(bool)).mean()),
               "digit_recall": float(pred[d.test_y == 1].mean()),
               "nondigit_recall": float(1 - pred[d.test_y == 0].mean()),
               "test_size": int(len(d.test_y)), "threshold_p_digit": float(_p(thr)), "family_accuracy": fam_acc}
    run.save_json("family_accuracy.json", fam_acc)
    run.save_json("confusion.json", {"classes": list(CLASSES), "matrix": cm.tolist()})
    run.save_figure("confusion.png", plots.confusion_heatmap(cm, CLASSES, title="detector, test (counts)"))
    if history:
        run.save_figure("learning_curves.png", plots.learning_curves(history))
    run.save_figure("predictions.png", detector_plots.prediction_grid(d.test_x, d.test_y, test_m, thr, d.fams,
                                                                      d.te_fam, d.n_test_pos))
    return metrics


def ood_outputs(cfg: DetectorConfig, run: Run, d: DetectorData, model, *, test_m: np.ndarray, thr: float,
                precision: str) -> dict:
    """Margins on a data set never seen in training (AUROC, FPR at 95 % digit recall), score histograms, and the
    test scores saved for later analyses."""
    ood_name = cfg.ood_dataset if cfg.ood_dataset != cfg.dataset else cfg.ood_fallback
    metrics = {}
    groups = {"MNIST test (digits)": test_m[d.test_y == 1], "generated (test seed)": test_m[d.test_y == 0]}
    if ood_name:
        ood = load_dataset(ood_name)
        ood_x = ood.test_x[: cfg.test_subset] if cfg.test_subset else ood.test_x
        ood_m = _margin(infer.logits(model, ood_x, precision=precision))
        rep = ood_report(test_m[d.test_y == 1], ood_m, threshold=thr)
        key = ood_name.replace("-mnist", "").replace("-", "_")
        metrics.update({f"auroc_{key}": rep["auroc"], f"fpr95_{key}": rep["fpr95"],
                        f"accepted_{key}": rep["accepted_out"], "ood_dataset": ood_name})
        groups[f"{ood_name} test (never seen)"] = ood_m
        run.save_array("ood_margins.npy", ood_m.astype(np.float32))
    run.save_figure("scores.png", plots.score_histograms(groups, threshold=thr, xlabel="margin = logit(digit) − "
                                                                                      "logit(no digit)"))
    with_scores = {"margin": test_m.astype(np.float32), "label": d.test_y, "family": np.r_[
        np.full(d.n_test_pos, -1), d.te_fam].astype(np.int64)}
    if run.writer:
        with fileio.atomic_path(run.path("test_scores.npz")) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **with_scores, families=np.array(d.fams))
    samples = {f: neg.generate(f, 10, seed=cfg.data_seed + TEST_SEED, digits=d.ds.test_x) for f in d.fams}
    run.save_figure("families.png", detector_plots.families_grid(samples))
    return metrics


def validation_threshold(run: Run, d: DetectorData, model, rt: Runtime) -> tuple[float, dict]:
    """The decision threshold on the margin, chosen on validation only (threshold.json), and the validation figures
    a detector recipe is chosen on: digits accepted, each family rejected, and `val_hard`, the mean of the digit
    recall and the near families' (negatives.NEAR) mean rejection."""
    val_m = _margin(infer.logits(model, d.val_x, precision=rt.precision))
    thr = choose_threshold(val_m, d.val_y)
    n_pos = int(d.val_y.sum())  # positives come first
    fam = {f: float((val_m[n_pos:][d.va_fam == i] < thr).mean()) for i, f in enumerate(d.fams) if (d.va_fam == i).any()}
    near = [v for f, v in fam.items() if f in neg.NEAR]
    out = {"val_accuracy": float(((val_m >= thr) == d.val_y.astype(bool)).mean()),
           "val_digit_recall": float((val_m[:n_pos] >= thr).mean())}
    if near:
        out["val_near_rejected"] = float(np.mean(near))
        out["val_hard"] = (out["val_digit_recall"] + out["val_near_rejected"]) / 2
    run.save_json("threshold.json", {"margin": thr, "p_digit": float(_p(thr)), "chosen_on": "validation",
                                     "val_size": int(len(d.val_y)), **out, "val_family_rejected": fam})
    return thr, out


@METHODS.register("detector", config=DetectorConfig, budgets=BUDGETS, task="detector")
def run(cfg: DetectorConfig, run: Run, *, resume: bool = False) -> dict:
    rt = resolve_runtime(cfg)
    ood_name = cfg.ood_dataset if cfg.ood_dataset != cfg.dataset else cfg.ood_fallback
    if ood_name == cfg.dataset:
        raise MnistlabError(f"the out-of-distribution set must differ from the training set ({cfg.dataset})")
    d = detector_data(cfg, run)
    model, spec, history = train_detector(cfg, run, x=d.x, y=d.y, val_x=d.val_x, val_y=d.val_y, epochs=cfg.epochs,
                                          rt=rt, resume=resume, desc=f"detector {cfg.model}")
    train_seconds = history[-1]["seconds"] if history else 0.0
    thr, val_metrics = validation_threshold(run, d, model, rt)
    run.save_model(model, {**spec, "task": "detector", "classes": list(CLASSES), "threshold": float(_p(thr))})
    test_m = _margin(infer.logits(model, d.test_x, precision=rt.precision))  # MNIST test + fresh negatives
    metrics = {**test_outputs(cfg, run, d, test_m=test_m, thr=thr, history=history), **val_metrics}
    metrics.update(ood_outputs(cfg, run, d, model, test_m=test_m, thr=thr, precision=rt.precision))
    if cfg.lofo and len(d.fams) > 1:  # leave-one-family-out: train without F, test on fresh images of F
        lofo = {f: _lofo_fold(cfg, run, f, d=d, fam_index=i, rt=rt, resume=resume) for i, f in enumerate(d.fams)
                if not cfg.lofo_families or f in cfg.lofo_families}
        metrics["lofo_accuracy"] = {f: r["accuracy"] for f, r in lofo.items()}
        metrics["lofo_min_accuracy"] = min(metrics["lofo_accuracy"].values())
        metrics["lofo_digit_recall_min"] = min(r["digit_recall"] for r in lofo.values())
        run.save_json("lofo.json", lofo)
        run.save_figure("lofo.png", plots.bar_chart([r["accuracy"] for r in lofo.values()], list(lofo),
                                                    title="left-out family: accuracy (no digit)",
                                                    ylabel="accuracy"))
    return {**metrics, "train_seconds": train_seconds, "params": count_params(model), "precision": rt.precision,
            "device": str(rt.device), "families": d.fams, "train_images": int(len(d.y))}


def _lofo_fold(cfg: DetectorConfig, run: Run, family: str, *, d: DetectorData, fam_index: int, rt: Runtime,
               resume: bool) -> dict:
    """One detector trained without `family` (its negatives dropped from train and validation), tested on fresh
    images of `family` and on the MNIST test digits (so that rejecting everything cannot look good)."""
    sub_dir = run.dir / "lofo" / family
    if (sub_dir / "result.json").exists() and (sub_dir / "metrics.json").exists():  # finished before an interruption
        return fileio.read_json(sub_dir / "result.json")
    sub = Run(sub_dir, resume=resume, writer=run.writer)
    sub.start({**to_dict(cfg), "left_out": family}, command="detect", method="detector-lofo")
    n_pos = int(d.y.sum())  # positives come first in x
    keep = np.r_[np.ones(n_pos, bool), d.tr_fam != fam_index]
    vkeep = np.r_[np.ones(int(d.val_y.sum()), bool), d.va_fam != fam_index]
    model, _, history = train_detector(cfg, sub, x=d.x[keep], y=d.y[keep], val_x=d.val_x[vkeep],
                                       val_y=d.val_y[vkeep], epochs=cfg.lofo_epochs, rt=rt, resume=resume,
                                       desc=f"lofo −{family}")
    thr = choose_threshold(_margin(infer.logits(model, d.val_x[vkeep], precision=rt.precision)), d.val_y[vkeep])
    m_neg = _margin(infer.logits(model, d.te_neg[d.te_fam == fam_index], precision=rt.precision))
    m_pos = _margin(infer.logits(model, d.test_x[:d.n_test_pos], precision=rt.precision))
    result = {"accuracy": float((m_neg < thr).mean()), "n": int(len(m_neg)),
              "digit_recall": float((m_pos >= thr).mean()), "threshold_p_digit": float(_p(thr)),
              "train_seconds": history[-1]["seconds"] if history else 0.0}
    sub.save_json("result.json", result)
    sub.finish(result)
    return result
