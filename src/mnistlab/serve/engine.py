"""What `mnistlab serve` runs: the loaded runs (classifiers with their rejectors, detector, GAN generator) and the
inference engine that answers images — batched by one worker thread (default), under a lock, or concurrently.

Models are loaded once and only read afterwards (eval mode, inference_mode).
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi.concurrency import run_in_threadpool

from mnistlab import infer, select
from mnistlab.data import load_dataset
from mnistlab.data.preprocess import preprocess
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import softmax
from mnistlab.evaluate.rejection import load_rejector
from mnistlab.infer import mirror_tta
from mnistlab.models.gan import sample
from mnistlab.precision import module_device
from mnistlab.runs import load_generator, load_model, load_run


@dataclass
class Classifier:
    name: str
    dir: Path
    model: torch.nn.Module
    spec: dict
    classes: tuple[str, ...]
    info: dict
    rejector: Any = None
    fused: bool = False  # forward == head(embed(x)): logits and features from one pass
    selector: Any = None  # the rule chosen on validation (selector.json, mnistlab.select); decides "rejected"

    def __call__(self, x: torch.Tensor) -> list[dict]:
        """x: (B, 1, 28, 28) uint8 → this classifier's answer for each image."""
        pre = self.spec.get("preprocess", {})
        xb = preprocess(x, pre).to(module_device(self.model))  # (B, …) float, on the model's device
        feats = None
        if self.fused and self.rejector is not None:
            feats = mirror_tta(self.model.embed, xb, pre)  # (B, D)
            lg = self.model.head(feats)  # (B, K)
        else:
            lg = mirror_tta(self.model, xb, pre)
            if self.rejector is not None:
                feats = mirror_tta(self.model.embed, xb, pre)
        lg = lg.float().cpu().numpy()
        probs = softmax(lg.astype(np.float64))  # (B, K)
        raw = self.rejector.decide(lg, feats.float().cpu().numpy()) if self.rejector is not None else None
        out = []
        for i, p in enumerate(probs):
            pred = int(p.argmax())
            # without a rejector: the max-probability score alone
            reject = _decisions(raw, i) if raw is not None else {"chow": {"score": float(p[pred])}}
            out.append({"run": self.name, "pred": pred, "probs": p.tolist(), "reject": reject,
                        "label": self.classes[pred] if pred < len(self.classes) else str(pred)})
        return self._select(x, out)

    def _select(self, x: torch.Tensor, out: list[dict]) -> list[dict]:
        """With a selector: its decision and reason per image, shown as one more row of the rules table."""
        if self.selector is None:
            return out
        sel = select.decide(self.selector, self.model, self.spec, x.numpy(), classes=list(self.classes),
                            rejector=self.rejector)
        for o, d in zip(out, sel):
            o["reject"][f"selected ({d['rule']})"] = {"score": d["score"], "threshold": d["threshold"],
                                                      "reject_below": True, "reject": d["rejected"]}
            o["selected"] = d
        return out


def _is_fused(model: torch.nn.Module, in_shape: tuple[int, ...]) -> bool:
    """Does forward(x) equal head(embed(x)) for this model? Checked on random inputs, not assumed."""
    if not (isinstance(getattr(model, "head", None), torch.nn.Module) and hasattr(model, "embed")):
        return False
    x = torch.rand((3, *in_shape), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        try:
            return torch.allclose(model(x), model.head(model.embed(x)), atol=1e-6, rtol=1e-5)
        except RuntimeError:
            return False


def _decisions(raw: dict, i: int) -> dict:
    """The rejector's per-rule output, image i → {rule: {score, threshold, reject_below, reject}} of plain values."""
    out = {}
    for rule, d in raw.items():
        if not isinstance(d, dict) or "score" not in d:
            continue

        def item(v):
            a = np.asarray(v)
            return (a.reshape(-1)[i] if a.ndim else a).item()

        out[rule] = {"score": float(item(d["score"])),
                     "threshold": None if d.get("threshold") is None else float(item(d["threshold"])),
                     "reject_below": d.get("reject_below"),
                     "reject": None if d.get("reject") is None else bool(item(d["reject"]))}
    return out


def _classes(dataset: str | None, k: int, spec: dict | None = None) -> tuple[str, ...]:
    if dataset is not None and not isinstance(dataset, str):  # a damaged or hand-made config.json
        raise MnistlabError(f"config.json: dataset must be a dataset name, got {dataset!r:.60}")
    if spec and isinstance(spec.get("classes"), list) and len(spec["classes"]) == k:  # runs on user data record them
        return tuple(str(c) for c in spec["classes"])
    try:
        classes = load_dataset(dataset).classes if dataset else ()
    except MnistlabError:
        classes = ()
    return tuple(classes) if len(classes) == k else tuple(str(i) for i in range(k))


def _load_rejector(run_dir: Path):
    """The run's rejector (`mnistlab reject --run DIR` saves one), or None."""
    return load_rejector(run_dir) if (run_dir / "rejector.json").exists() else None


def check_rejector(rej, model: torch.nn.Module, spec: dict, d: Path) -> None:
    """A rejector fitted on another model would fail every request (as the client's fault): refuse it at start."""
    if rej is None:
        return
    # the page's images are 1×28×28 (check_28), preprocessed into features where the spec says so
    dim = infer.embeddings(model, np.zeros((1, 1, 28, 28), np.uint8), spec=spec.get("preprocess")).shape[1]
    if rej.means.shape != (spec["num_classes"], dim):
        raise MnistlabError(f"{d}: the rejector's class means are {tuple(rej.means.shape)}, the model gives "
                            f"{spec['num_classes']} classes × {dim} features; fit it again with `mnistlab reject --run {d}`")


def check_28(spec: dict, what: str, d: Path) -> None:
    """The page and the API make 1×28×28 images: refuse a model made for anything else."""
    shape = tuple(spec.get("in_shape", ()))
    if not spec.get("preprocess", {}).get("features") and shape != (1, 28, 28):
        raise MnistlabError(f"{what} {d}: model takes {shape} inputs; the page serves 1×28×28 images")


def load_classifier(d: str | Path, name: str) -> Classifier:
    """A finished classifier run folder → Classifier (model, class names, metrics, rejector if fitted)."""
    r = load_run(d)
    check_28(r.spec, "--run", r.dir)
    info = {"method": r.config.get("method"), "dataset": r.config.get("dataset"), "model": r.spec.get("name"),
            "metrics": {k: v for k, v in r.metrics.items() if isinstance(v, (int, float, str, bool)) or v is None}}
    rej = _load_rejector(r.dir)
    check_rejector(rej, r.model, r.spec, r.dir)
    sel = select.load_selector(r.dir)
    if sel is not None and sel.rule == "views+dist" and rej is None:
        raise MnistlabError(f"{r.dir}: selector.json uses the distance term but the run has no rejector.json")
    classes = _classes(r.config.get("dataset"), r.spec["num_classes"], r.spec)
    return Classifier(name, r.dir, r.model, r.spec, classes, info, rej, _is_fused(r.model, tuple(r.spec["in_shape"])),
                      sel)


def load_detector(d: str | Path) -> tuple[torch.nn.Module, dict, Path]:
    """A digit / non-digit detector run folder → (model, spec, folder); its model must be a 2-class 1×28×28 one."""
    model, spec = load_model(d)
    if spec.get("num_classes") != 2:
        raise MnistlabError(f"--detector {d}: expected a 2-class model (1 = digit), "
                            f"got {spec.get('num_classes')} classes")
    check_28(spec, "--detector", Path(d))
    return model, spec, Path(d)


@dataclass
class GanSampler:
    """A GAN run's (EMA) generator, rebuilt by `runs.load_generator`; sampling is a function of the seed."""
    G: torch.nn.Module
    spec: dict
    dir: Path

    @classmethod
    def load(cls, d: str | Path) -> "GanSampler":
        G, spec = load_generator(d)
        if spec.get("channels", 1) != 1 or spec.get("image_size", 28) != 28:
            raise MnistlabError(f"--gan {d}: the page shows 1×28×28 images, this generator makes "
                                f"{spec.get('channels')}×{spec.get('image_size')}")
        return cls(G, spec, Path(d))

    @property
    def conditional(self) -> bool:
        return bool(self.spec.get("num_classes"))

    def sample(self, *, n: int, digit: int | None, seed: int) -> np.ndarray:
        """(n, 28, 28) uint8; a conditional GAN without `digit` cycles through the classes 0, 1, …"""
        imgs, _ = sample(self.G, n, seed=seed, digit=digit)  # (n, 1, 28, 28) uint8
        return imgs[:, 0].numpy()

    def describe(self) -> dict:
        return {"dir": str(self.dir), "conditional": self.conditional, "num_classes": self.spec.get("num_classes", 0),
                "nz": self.spec.get("nz")}


INFERENCE = ("batched", "locked", "concurrent")


@dataclass
class Engine:
    """Everything loaded once and only read afterwards; `predict` / `apredict` run the models.

    inference = "batched" (default): one worker thread runs the models on every image waiting at that moment as one
    batch (dynamic batching, no added wait), so 8 concurrent clients cost ~2 forward passes, not 8; answers agree
    with single-image inference to ~1e-7 (float summation order). "locked": one image at a time under a lock,
    bitwise equal to `infer.logits`. "concurrent": no lock (eval mode + inference_mode: models are only read).
    """
    classifiers: list[Classifier]
    detector: tuple[torch.nn.Module, dict, Path] | None = None
    gan: GanSampler | None = None
    inference: str = "batched"
    max_batch: int = 64
    lock: threading.Lock = field(default_factory=threading.Lock)  # "locked" inference, and GAN sampling
    started: float = field(default_factory=time.time)
    batches: int = 0  # model passes run, and images answered (batch sizes = images / batches)
    images: int = 0
    _queue: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    _worker: threading.Thread | None = None

    def to(self, device: torch.device) -> "Engine":
        """Every model to `device` (read onto the CPU and checked there first); each model's inputs follow it."""
        for c in self.classifiers:
            c.model.to(device)
        if self.detector is not None:
            self.detector[0].to(device)
        if self.gan is not None:
            self.gan.G.to(device)
        return self

    @torch.inference_mode()
    def run_batch(self, x28: np.ndarray) -> list[dict]:
        """(B, 28, 28) uint8 → B answers (what /api/predict returns, per image)."""
        x = torch.from_numpy(np.ascontiguousarray(x28, np.uint8)).reshape(-1, 1, 28, 28)
        self.batches += 1  # under the GIL; only statistics
        self.images += len(x)
        per_clf = [c(x) for c in self.classifiers]  # [classifier][image]
        p_digit = [None] * len(x)
        if self.detector is not None:
            model, spec, _ = self.detector
            lg = model(preprocess(x, spec.get("preprocess", {})).to(module_device(model))).float().cpu().numpy()
            p_digit = softmax(lg.astype(np.float64))[:, 1].tolist()
        out = []
        for i in range(len(x)):
            outs = [answers[i] for answers in per_clf]
            first = outs[0]
            calibrated = [d["reject"] for d in first["reject"].values() if d.get("reject") is not None]
            rejected = first["selected"]["rejected"] if "selected" in first else (any(calibrated) if calibrated
                                                                                else None)
            reason = first["selected"]["reason"] if "selected" in first else None
            if p_digit[i] is not None and p_digit[i] < self.detector[1].get("threshold", 0.5):
                rejected, reason = True, (f"not a digit: the detector gives p(digit) {p_digit[i]:.3f} below "
                                          f"{self.detector[1].get('threshold', 0.5):.3f}")
            out.append({**first, "rejected": rejected, "reason": reason, "p_digit": p_digit[i],
                        "input": x28[i].astype(int).tolist(), "classifiers": outs})
        return out

    def predict(self, x28: np.ndarray) -> dict:
        """One (28, 28) uint8 image → its answer; blocking, callable from any thread."""
        if self.inference == "batched":
            return self._submit(x28).result()
        if self.inference == "locked":
            with self.lock:
                return self.run_batch(x28[None])[0]
        return self.run_batch(x28[None])[0]

    async def apredict(self, x28: np.ndarray) -> dict:
        if self.inference == "batched":
            return await asyncio.wrap_future(self._submit(x28))
        return await run_in_threadpool(self.predict, x28)

    def _submit(self, x28: np.ndarray) -> Future:
        fut: Future = Future()
        self._queue.put((np.asarray(x28, np.uint8).reshape(28, 28), fut))
        if self._worker is None or not self._worker.is_alive():
            with self.lock:
                if self._worker is None or not self._worker.is_alive():
                    self._worker = threading.Thread(target=self._serve, name="mnistlab-infer", daemon=True)
                    self._worker.start()
        return fut

    def _serve(self) -> None:
        """The batching worker: take what is waiting (up to max_batch), run it, answer each caller; None stops."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            try:
                answers = self.run_batch(np.stack([x for x, _ in batch]))
            except BaseException as e:  # pass the failure to every waiting request, keep serving
                for _, fut in batch:
                    fut.set_exception(e)
                continue
            for (_, fut), a in zip(batch, answers):
                fut.set_result(a)

    def close(self) -> None:
        """Stop the batching worker (it finishes the batch in hand first)."""
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout=10)
