"""RotNet (Gidaris et al. 2018) on few labels: pretrain a CNN to predict 0/90/180/270° on all training images, then
transfer to the labelled images — (a) convs frozen + new head (the seed report's protocol) or (b) full fine-tuning.

The pretext model is trained once per config and cached as a normal run folder under
`data_home()/pretext/<hash of its config>` (model.safetensors + model.json + metrics + curves), reused by every label
draw and by other methods through `pretrained_pretext(model_name, budget=, dataset=)`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab import fileio
from mnistlab.data import augment, load_dataset
from mnistlab.data.preprocess import as_tensor, preprocess
from mnistlab.data.sources import data_home
from mnistlab.errors import MnistlabError
from mnistlab.methods import METHODS
from mnistlab.methods._common import cosine_lr
from mnistlab.methods._fewlabel import (FewLabelConfig, build_model, load_split, preprocessing, resolve_recipe,
                                        to_input, train_classifier)
from mnistlab.models import MODELS, create_model, model_spec
from mnistlab.report import plots
from mnistlab.runs import Run, load_model, source_fingerprint
from mnistlab.train import Batcher, fit, step_generator
from mnistlab.precision import (Runtime, autocast, channels_last, module_device, prepare_module, resolve_device,
                                resolve_precision, setup_threads)

# ------------------------------------------------------------------------------------------------ the pretext


@dataclass
class PretextConfig:
    """Everything that changes the pretext model; its hash names the cache folder."""

    version: int = 1  # bump to void cached pretexts whose code did not change (the key holds the code's hash)
    dataset: str = "mnist"
    model: str = "rotnet-cnn"
    seed: int = 0
    steps: int = 2000  # × 64 images = 2.1 epochs of the 60 000, each in four rotations
    batch_size: int = 64  # images per step; each comes in all four rotations, so the batch is 4 × this
    lr: float = 3e-3  # AdamW, cosine-decayed
    weight_decay: float = 5e-4
    shift: int = 2  # random ±pixels shift of the images (before rotating), against memorising positions
    binarize: int = -1  # ≥0: train on ink = pixel ≥ threshold (the seed report binarised everything at 34)
    precision: str = "auto"
    train_subset: int = 0  # >0: first N training images only (smoke)
    test_subset: int = 0  # >0: rotated test accuracy on the first N test images only (smoke)


PRETEXT_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"steps": 12, "batch_size": 16, "train_subset": 1024, "test_subset": 256},
    "quick": {},  # quick and full share one pretext (and so one cache entry)
    "full": {},
}
# the seed report's network is 6× the compute of rotnet-cnn and has no batch norm: fewer, smaller steps, lower lr
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {"report-rotnet": {"steps": 250, "batch_size": 32, "lr": 1e-3}}


def pretext_root() -> Path:
    return data_home() / "pretext"


def pretext_key(cfg: PretextConfig, device: torch.device = torch.device("cpu")) -> str:
    # the code that trains it (this file, the loop, the model's file): an edit there trains a new pretext
    code = source_fingerprint(__name__, "mnistlab.train", MODELS.get(cfg.model).__module__)
    fields = {**asdict(cfg), "precision": resolve_precision(cfg.precision, device), "code": code}
    if device.type != "cpu":  # a GPU draws other numbers: its own cache entry (CPU keys unchanged)
        fields["device"] = device.type
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def rotate4(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) → all four rotations of each image (4B, C, H, W) and labels k = 0..3 (k × 90° counter-clockwise).

    Row k·B + i is image i turned by k × 90°, so the four rotations of an image are always in the same batch."""
    xs = torch.cat([torch.rot90(x, k, (2, 3)) for k in range(4)])
    return xs, torch.arange(4, device=x.device).repeat_interleave(len(x))


@torch.no_grad()
def rotation_accuracy(model: torch.nn.Module, x_uint8: np.ndarray, *, precision: str, pre: dict | None = None,
                      chunk: int = 1000) -> float:
    """Accuracy at telling 0/90/180/270° on all four rotations of every image (preprocessed by `pre`)."""
    model.eval()
    correct = total = 0
    dev = module_device(model)
    for i in range(0, len(x_uint8), chunk):
        x, y = rotate4(preprocess(as_tensor(x_uint8[i: i + chunk]).to(dev), pre))
        x = channels_last(x)
        with autocast(precision, dev):
            correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return correct / max(1, total)


@torch.no_grad()
def pretext_examples(model: torch.nn.Module, x_uint8: np.ndarray, *, pre: dict | None, precision: str):
    """The pretext task drawn (the report's Fig. 2): each image turned by 0/90/180/270°, with the rotation the
    pretext model predicts and its probability. x_uint8 (N, C, H, W) → a figure of N rows × 4 rotations."""
    model.eval()
    dev = module_device(model)
    x, y = rotate4(preprocess(as_tensor(x_uint8).to(dev), pre))  # (4N, C, H, W): rotation k of image i at row k·N + i
    with autocast(precision, dev):
        probs = model(channels_last(x)).float().softmax(1)
    n = len(x_uint8)
    order = torch.arange(4 * n).view(4, n).T.flatten()  # image-major: i's four rotations side by side
    titles = [f"{90 * int(y[j])}° → {90 * int(probs[j].argmax())}° ({float(probs[j].max()):.2f})" for j in order]
    return plots.image_grid(x[order].float().cpu().numpy(), titles, cols=4, size=1.4)


@torch.no_grad()
def rotation_accuracy_by_class(model: torch.nn.Module, x_uint8: np.ndarray, labels: np.ndarray, *, precision: str,
                               pre: dict | None = None, chunk: int = 1000) -> dict[int, float]:
    """Rotation accuracy per digit class: where the pretext is ambiguous (0, 1, 8 look alike turned by 180°)."""
    model.eval()
    hits = np.zeros(len(x_uint8))
    dev = module_device(model)
    for i in range(0, len(x_uint8), chunk):
        x, y = rotate4(preprocess(as_tensor(x_uint8[i: i + chunk]).to(dev), pre))
        x = channels_last(x)
        with autocast(precision, dev):
            ok = (model(x).argmax(1) == y).float().view(4, -1).mean(0)  # (chunk,) share of the 4 rotations right
        hits[i: i + len(ok)] = ok.cpu().numpy()
    return {int(c): float(hits[labels == c].mean()) for c in np.unique(labels)}


def train_pretext(cfg: PretextConfig, out: Path, *, resume: bool = False,
                  device: torch.device = torch.device("cpu")) -> dict:
    """Train the rotation model into the run folder `out`, on `device`; returns its metrics."""
    if not MODELS.info(cfg.model).get("pretext"):
        valid = [n for n in MODELS.names() if MODELS.info(n).get("pretext")]
        raise MnistlabError(f"model {cfg.model!r} has no features/head split for RotNet; valid: {', '.join(valid)}")
    runtime = Runtime(device, resolve_precision(cfg.precision, device))
    precision = runtime.precision
    ds = load_dataset(cfg.dataset)
    tx, vx, vy = ds.train_x, ds.test_x, ds.test_y
    if cfg.train_subset:
        tx = tx[: cfg.train_subset]
    if cfg.test_subset:
        vx, vy = vx[: cfg.test_subset], vy[: cfg.test_subset]
    run = Run(out, resume=resume)
    cpu0 = time.process_time()
    run.start({**asdict(cfg), "key": pretext_key(cfg, device)}, command="pretext", method="rotnet-pretext")
    torch.manual_seed(cfg.seed)
    model = prepare_module(create_model(cfg.model, in_shape=ds.shape, num_classes=4), runtime)
    pre = {"binarize": cfg.binarize} if cfg.binarize >= 0 else {}
    spec = model_spec(cfg.model, in_shape=ds.shape, num_classes=4, preprocess=pre)
    x_all = as_tensor(tx).to(device)  # (N, C, H, W) uint8, read-only, never written, on the device once
    batcher = Batcher(len(x_all), cfg.batch_size, seed=cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    watch = vx[:1000]  # rotated-test curve: shown, never used to choose anything (the last step is kept)

    def batch_at(step: int):
        x = x_all[batcher(step).to(device)].float() / 255
        x = augment.random_shift(x, step_generator(cfg.seed, step, device=device), pixels=cfg.shift)
        x = to_input(x, pre)
        x, y = rotate4(x)
        x = channels_last(x)
        return x, y

    def loss_fn(batch, step):
        x, y = batch
        logits = model(x)
        return {"loss": F.cross_entropy(logits.float(), y), "acc": (logits.argmax(1) == y).float().mean()}

    history = fit(model, opt, run=run, total_steps=cfg.steps, batch_at=batch_at, loss_fn=loss_fn,
                  evaluate=lambda step: {"test_rot_accuracy": rotation_accuracy(model, watch, precision=precision,
                                                                                 pre=pre)},
                  eval_every=max(1, cfg.steps // 10), steps_per_epoch=batcher.steps_per_epoch,
                  lr_at=cosine_lr(cfg.steps, warmup=min(50, cfg.steps // 10)), precision=precision, seed=cfg.seed,
                  ckpt_every=200, resume=resume, desc=f"rotnet pretext {cfg.model}")
    run.save_model(model, spec)
    run.save_figure("learning_curves.png", plots.learning_curves(history))
    by_digit = rotation_accuracy_by_class(model, vx, vy, precision=precision, pre=pre)
    acc = float(sum(by_digit[c] * np.sum(vy == c) for c in by_digit) / len(vy))  # = over all 4 × len(vx)
    return run.finish({"pretext_test_accuracy": acc, "pretext_test_accuracy_by_digit": by_digit,
                       "pretext_test_images": int(len(vx)) * 4, "pretext_train_images": int(len(tx)),
                       "steps": cfg.steps,
                       "epochs": round(cfg.steps * cfg.batch_size / len(tx), 3), "precision": precision,
                       # CPU time of this process (all threads): what the wall time would be on idle cores, × threads
                       "cpu_seconds": round(time.process_time() - cpu0, 1), "threads": torch.get_num_threads(),
                       "model": cfg.model})


def pretext_config(model_name: str, *, budget: str = "full", dataset: str = "mnist", **overrides: Any) -> PretextConfig:
    if budget not in PRETEXT_BUDGETS:
        raise MnistlabError(f"unknown budget {budget!r}; valid: {', '.join(PRETEXT_BUDGETS)}")
    layers = {"dataset": dataset, "model": model_name, **MODEL_DEFAULTS.get(model_name, {}), **PRETEXT_BUDGETS[budget]}
    return PretextConfig(**{**layers, **overrides})


@contextlib.contextmanager
def _lock(path: Path, poll: float = 5.0):
    """An exclusive lock file holding the owner's pid; a lock whose process is gone is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(path.read_text() or "0")
                if pid <= 0 and time.time() - path.stat().st_mtime > 30:
                    raise ProcessLookupError  # created but never claimed
                if pid > 0:
                    os.kill(pid, 0)  # still running: wait for it
            except (ValueError, ProcessLookupError, FileNotFoundError):
                path.unlink(missing_ok=True)  # stale (its process died)
                continue
            except PermissionError:
                pass
            time.sleep(poll)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        path.unlink(missing_ok=True)


def pretrained_pretext(model_name: str = "rotnet-cnn", *, budget: str = "full", dataset: str = "mnist",
                       threads: int = 0, device: str = "auto", **overrides: Any) -> tuple[torch.nn.Module, dict]:
    """The rotation-pretrained model (4-way head) for `model_name`, trained on first use and cached.

    Returns (model in eval mode, info) with info = {dir, key, cached, pretext_test_accuracy, wall_seconds, config}.
    `model.features` is the transferable conv trunk ((B, C, H, W) → (B, D)); `transfer_weights` copies it (and the
    hidden head layers) into a classifier of the same name. `overrides` are PretextConfig fields (steps, lr, seed…).
    The model is returned on the CPU (`transfer_weights` copies to the target's device).
    """
    setup_threads(threads)
    dev = resolve_device(device)
    cfg = pretext_config(model_name, budget=budget, dataset=dataset, **overrides)
    key = pretext_key(cfg, dev)
    final = pretext_root() / key
    cached = (final / "metrics.json").exists()
    if not cached:
        with _lock(final.with_name(key + ".lock")):  # one trainer per pretext; the others wait, then reuse it
            cached = (final / "metrics.json").exists()
            if not cached:
                partial = final.with_name(key + ".partial")  # a killed pretext resumes from its checkpoint
                train_pretext(cfg, partial, resume=partial.exists(), device=dev)
                os.replace(partial, final)
    model, _ = load_model(final)
    metrics = fileio.read_json(final / "metrics.json")
    return model, {"dir": str(final), "key": key, "cached": cached, "config": asdict(cfg),
                   "pretext_test_accuracy": metrics["pretext_test_accuracy"],
                   "wall_seconds": metrics.get("wall_seconds")}


def transfer_weights(pretext: torch.nn.Module, target: torch.nn.Module) -> list[str]:
    """Copy every pretext weight whose name and shape match into `target` (the convs and the hidden head layers;
    the 4-way output layer never fits a 10-way one). Returns the names copied."""
    src, dst = pretext.state_dict(), target.state_dict()
    last = [k for k in dst if k.startswith("head.")][-1].rsplit(".", 1)[0]  # the output layer: always new
    copied = [k for k, v in src.items() if k in dst and dst[k].shape == v.shape and not k.startswith(last + ".")]
    target.load_state_dict({**dst, **{k: src[k] for k in copied}})
    return copied


# ------------------------------------------------------------------------------------------------ transfer


@dataclass
class RotNetConfig(FewLabelConfig):
    model: str = "rotnet-cnn"  # report-rotnet: the report's network; rotnet-cnn: ours (batch norm)
    transfer: str = "finetune"  # finetune: every weight trains | frozen: convs fixed, head trained (the report's)
    pretext_budget: str = ""  # "" = smoke for a smoke run, else full (quick and full share one cached pretext)
    pretext_steps: int = 0  # >0: pretext steps instead of its budget's (`mnistlab run` shortens it on a slow CPU)
    steps: int = 300  # AdamW steps of 32 of the 80 labelled images (120 epochs), cosine
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1


BUDGETS = {
    "smoke": {"model": "rotnet-cnn-small", "steps": 6, "batch_size": 32, "test_subset": 500, "epochs": 1,
              "eval_points": 2, "expand": 2},
    "quick": {},
    "full": {},
}


@METHODS.register("rotnet", config=RotNetConfig, budgets=BUDGETS, task="fewlabel")
def run(cfg: RotNetConfig, run: Run, *, resume: bool = False) -> dict:
    cfg = resolve_recipe(cfg)
    if cfg.transfer not in ("finetune", "frozen"):
        raise MnistlabError(f"unknown transfer {cfg.transfer!r}; valid: finetune, frozen")
    d = load_split(cfg, run)
    pbudget = cfg.pretext_budget or ("smoke" if cfg.budget == "smoke" else "full")
    # the pretext sees the images as the classifier will (binarised with the report's recipe)
    steps = {"steps": cfg.pretext_steps} if cfg.pretext_steps > 0 else {}
    pretext, info = pretrained_pretext(cfg.model, budget=pbudget, dataset=cfg.dataset, precision=cfg.precision,
                                       device=cfg.device, binarize=cfg.binarize, **steps)
    pre = preprocessing(cfg)
    model, spec = build_model(cfg, d, pre)
    copied = transfer_weights(pretext, model)
    params = list(model.parameters())
    train_mode = None
    if cfg.transfer == "frozen":
        for p in model.features.parameters():
            p.requires_grad_(False)
        params = list(model.head.parameters())

        def train_mode(m):  # frozen convs: their batch-norm statistics stay the pretext's
            m.features.eval()

    # the pretext's record, beside the few-label one
    pdir = Path(info["dir"])
    for name, target in (("learning_curves.png", "pretext_learning_curves.png"),
                         ("metrics.json", "pretext_metrics.json"), ("metrics.jsonl", "pretext_metrics.jsonl")):
        if (pdir / name).exists() and run.writer:
            fileio.write_bytes(run.path(target), (pdir / name).read_bytes())
    run.save_json("pretext.json", {k: v for k, v in info.items()} | {"copied_weights": copied})
    if run.writer and cfg.figures:
        run.save_figure("pretext_examples.png", pretext_examples(pretext, d.x_lab[:4], pre=pre,
                                                                 precision=d.s.precision))
    metrics = train_classifier(cfg, run, d, model=model, spec=spec, pre=pre, resume=resume, params=params,
                               train_mode=train_mode, desc=f"rotnet {cfg.transfer} {cfg.model}")
    return {**metrics, "transfer": cfg.transfer, "pretext_test_accuracy": info["pretext_test_accuracy"],
            "pretext_key": info["key"], "pretext_cached": info["cached"], "pretext_seconds": info["wall_seconds"]}
