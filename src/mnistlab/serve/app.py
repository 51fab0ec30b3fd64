"""FastAPI app: the draw-a-digit page and a JSON API over trained runs (classifiers, optional detector and GAN).

Models are loaded once by `create_app` and only read afterwards. Requests are decoded in the server's thread pool and
their images batched by one inference worker (`Engine`): under 8 concurrent clients that is ~2 forward passes instead
of 8 (benchmarks/serve.py measures it against a lock and against no lock). Every bad request gets a 4xx with
`{"detail": "<one line>"}` and leaves the server unchanged.
"""
from __future__ import annotations

import asyncio
import io
import json
import queue
import threading
import time
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab import __version__
from mnistlab.data.images import to_mnist_28  # MNIST's normalisation, shared with `mnistlab predict`
from mnistlab.data.preprocess import preprocess
from mnistlab.errors import MnistlabError
from mnistlab.evaluate.metrics import softmax
from mnistlab.runs import load_model, load_run

STATIC = Path(__file__).parent / "static"
MAX_BYTES = 2 * 1024 * 1024  # request body limit
MAX_PIXELS = 4096 * 4096  # decoded image limit (a small PNG can decode to gigabytes)
MAX_GAN_N = 64
WORK_SIDE = 560  # larger images are reduced to at most this side before the MNIST normalisation
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp")


# ---------------------------------------------------------------------------------------------------- schemas
class PixelsIn(BaseModel):
    """A 28×28 grey image, 0–255, ink bright on dark (like MNIST)."""
    model_config = ConfigDict(extra="forbid")
    pixels: list[list[float]] = Field(min_length=28, max_length=28,
                                      json_schema_extra={"items": {"type": "array", "minItems": 28, "maxItems": 28,
                                                                   "items": {"type": "number", "minimum": 0,
                                                                             "maximum": 255}}})
    preprocess: bool = Field(False, description="also centre/rescale like MNIST (default: the pixels are used as is)")


class RuleDecision(BaseModel):
    """One reject rule: chow = p1 (max probability), margin = p1 − p2 (ambiguity), distance = Mahalanobis distance
    of the features to the nearest class mean. threshold/reject are null when the run has no fitted rejector."""
    score: float
    threshold: Optional[float] = None
    reject_below: Optional[bool] = Field(None, description="true: rejected when score < threshold; false: when >")
    reject: Optional[bool] = None


class ClassifierOut(BaseModel):
    run: str
    pred: int
    label: str
    probs: list[float]
    reject: dict[str, RuleDecision]


class Prediction(ClassifierOut):
    """The first classifier's answer at the top level; every loaded classifier (first included) in `classifiers`."""
    rejected: Optional[bool] = Field(None, description="true if any calibrated rule rejects; null without a rejector")
    p_digit: Optional[float] = Field(None, description="detector's P(digit); null when no detector is loaded")
    input: list[list[int]] = Field(description="the 28×28 uint8 image the networks saw (after preprocessing)")
    classifiers: list[ClassifierOut]


class GanSamples(BaseModel):
    digit: Optional[int] = Field(description="the class asked for (null: unconditional, or all classes in turn)")
    n: int
    seed: int = Field(description="the same seed gives the same images")
    images: list[list[list[int]]] = Field(description="n × 28 × 28 uint8 pixels, white ink on black")


class Error(BaseModel):
    detail: str


def _errors(*codes: int) -> dict:
    return {c: {"model": Error} for c in codes}


# ------------------------------------------------------------------------------------------------------ models
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

    def __call__(self, x: torch.Tensor) -> list[dict]:
        """x: (B, 1, 28, 28) uint8 → this classifier's answer for each image."""
        xb = preprocess(x, self.spec.get("preprocess", {}))  # (B, …) float
        feats = None
        if self.fused and self.rejector is not None:
            feats = self.model.embed(xb)  # (B, D)
            lg = self.model.head(feats)  # (B, K)
        else:
            lg = self.model(xb)
            if self.rejector is not None:
                feats = self.model.embed(xb)
        lg = lg.float().numpy()
        probs = softmax(lg.astype(np.float64))  # (B, K)
        raw = self.rejector.decide(lg, feats.float().numpy()) if self.rejector is not None else None
        out = []
        for i, p in enumerate(probs):
            pred = int(p.argmax())
            # without a rejector: the max-probability score alone
            reject = _decisions(raw, i) if raw is not None else {"chow": {"score": float(p[pred])}}
            out.append({"run": self.name, "pred": pred, "probs": p.tolist(), "reject": reject,
                        "label": self.classes[pred] if pred < len(self.classes) else str(pred)})
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


def _classes(dataset: str | None, k: int) -> tuple[str, ...]:
    try:
        from mnistlab.data import load_dataset

        classes = load_dataset(dataset).classes if dataset else ()
    except MnistlabError:
        classes = ()
    return tuple(classes) if len(classes) == k else tuple(str(i) for i in range(k))


def _load_rejector(run_dir: Path):
    try:
        from mnistlab.evaluate.rejection import load_rejector
    except ImportError:
        return None
    if not any(run_dir.glob("rejector*")):
        return None
    return load_rejector(run_dir)


def _check_28(spec: dict, what: str, d: Path) -> None:
    shape = tuple(spec.get("in_shape", ()))
    if not spec.get("preprocess", {}).get("features") and shape != (1, 28, 28):
        raise MnistlabError(f"{what} {d}: model takes {shape} inputs; the page serves 1×28×28 images")


def load_classifier(d: str | Path, name: str) -> Classifier:
    r = load_run(d)
    _check_28(r.spec, "--run", r.dir)
    info = {"method": r.config.get("method"), "dataset": r.config.get("dataset"), "model": r.spec.get("name"),
            "metrics": {k: v for k, v in r.metrics.items() if isinstance(v, (int, float, str, bool)) or v is None}}
    return Classifier(name, r.dir, r.model, r.spec, _classes(r.config.get("dataset"), r.spec["num_classes"]), info,
                      _load_rejector(r.dir), _is_fused(r.model, tuple(r.spec["in_shape"])))


@dataclass
class GanSampler:
    """A GAN run's (EMA) generator, rebuilt by `models.gan.load_generator`; sampling is a function of the seed."""
    G: torch.nn.Module
    spec: dict
    dir: Path

    @classmethod
    def load(cls, d: str | Path) -> "GanSampler":
        from mnistlab.models.gan import load_generator

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
        from mnistlab.models.gan import sample

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
            lg = model(preprocess(x, spec.get("preprocess", {}))).float().numpy()
            p_digit = softmax(lg.astype(np.float64))[:, 1].tolist()
        out = []
        for i in range(len(x)):
            outs = [answers[i] for answers in per_clf]
            first = outs[0]
            calibrated = [d["reject"] for d in first["reject"].values() if d.get("reject") is not None]
            out.append({**first, "rejected": any(calibrated) if calibrated else None, "p_digit": p_digit[i],
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


# ------------------------------------------------------------------------------------------------- input parsing
async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (Content-Length is checked first)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise HTTPException(400, "invalid Content-Length header") from None
        if n > limit:
            raise HTTPException(413, f"body of {n} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number (NaN/Infinity are not allowed)")


def pixels_from_json(body: bytes) -> tuple[np.ndarray, bool]:
    """JSON {"pixels": 28×28 numbers in 0..255, "preprocess": bool} → ((28, 28) uint8, preprocess)."""
    try:
        obj = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise HTTPException(400, f"invalid JSON: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(obj, dict) or "pixels" not in obj:
        raise HTTPException(400, 'expected a JSON object {"pixels": [[...28 numbers...] × 28]}')
    extra = set(obj) - {"pixels", "preprocess"}
    if extra:
        raise HTTPException(400, f"unknown field(s): {', '.join(sorted(map(str, extra)))[:200]}")
    pre = obj.get("preprocess", False)
    if not isinstance(pre, bool):
        raise HTTPException(400, '"preprocess" must be true or false')
    rows = obj["pixels"]
    ok = isinstance(rows, list) and all(isinstance(r, list) for r in rows) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for r in rows for v in r)
    if not ok:
        raise HTTPException(400, '"pixels" must be a list of rows of numbers (28×28, values 0–255)')
    shape = (len(rows), *sorted({len(r) for r in rows}))
    if shape != (28, 28):
        got = f"{len(rows)} rows of lengths {sorted({len(r) for r in rows})[:5]}" if len(shape) != 2 else \
            f"{shape[0]}×{shape[1]}"
        raise HTTPException(400, f'"pixels" must be 28×28; got {got}')
    a = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(a).all():  # only reachable through huge numbers like 1e400
        raise HTTPException(400, '"pixels" must be finite numbers')
    if a.min() < 0 or a.max() > 255:
        raise HTTPException(400, f'"pixels" must be in 0..255; got {a.min():g}..{a.max():g}')
    return np.rint(a).astype(np.uint8), pre


def image_to_gray(data: bytes) -> np.ndarray:
    """PNG/JPEG/… bytes → (H, W) float32 grey with bright ink on a dark background (transparency = white paper)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise HTTPException(400, "empty image")
    try:
        im = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        raise HTTPException(400, f"not an image this server reads ({', '.join(IMAGE_FORMATS)})") from None
    w, h = im.size
    if w * h > MAX_PIXELS or w == 0 or h == 0:
        raise HTTPException(413, f"image of {w}×{h} pixels is over the {MAX_PIXELS}-pixel limit")
    try:
        if max(w, h) > WORK_SIDE and im.format == "JPEG":
            im.draft("L", (w * WORK_SIDE // max(w, h), h * WORK_SIDE // max(w, h)))  # decode at 1/2…1/8 scale
        im.load()
        factor = -(-max(im.size) // WORK_SIDE)
        if factor > 1:  # a photo: box-reduce first (the ink ends up 20 px tall; 12 Mpixel floats would cost ~1 s)
            im = im.reduce(factor)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        g = np.asarray(im.convert("L"), dtype=np.float32)  # (H, W)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise HTTPException(400, f"unreadable image ({str(e)[:120]})") from None
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper → MNIST polarity
        g = 255.0 - g
    if g.max() - g.min() < 16:
        raise HTTPException(400, "the image is blank (no ink found)")
    return g


async def image_from_multipart(request: Request, body: bytes) -> bytes:
    """The `image` field of a multipart/form-data body already read (and size-checked)."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=2, max_fields=10)
    except Exception as e:  # python-multipart raises several types for malformed bodies
        raise HTTPException(400, f"malformed multipart body ({str(e)[:120]})") from None
    try:
        field_ = form.get("image")
        if field_ is None or isinstance(field_, str):
            raise HTTPException(400, 'multipart body needs a file field named "image"')
        return await field_.read()
    finally:
        await form.close()


# ----------------------------------------------------------------------------------------------------- the app
PREDICT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": PixelsIn.model_json_schema()},
        **{t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES},
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                           "properties": {"image": {"type": "string", "format": "binary"}}}},
    },
    "description": "JSON 28×28 pixels (used as is unless preprocess=true), or an image file (raw body or multipart "
                   "field `image`, ≤ 2 MiB) that is converted to grey, inverted if its border is light, and "
                   "centred/rescaled like MNIST (ink in 20×20, centre of mass at the centre of 28×28).",
}


def create_app(classifier_dir: str | Path | list, detector_dir: str | Path | None = None,
               gan_dir: str | Path | None = None, *, max_bytes: int = MAX_BYTES, inference: str = "batched") -> FastAPI:
    """Load the runs once and build the app. `classifier_dir`: one run folder or a list (the first one answers at
    the top level of /api/predict). `inference`: batched | locked | concurrent (see `Engine`; benchmarks/serve.py
    measures them). Raises MnistlabError for a folder that is not a suitable run."""
    if inference not in INFERENCE:
        raise MnistlabError(f"unknown inference mode {inference!r}; valid: {', '.join(INFERENCE)}")
    dirs = [classifier_dir] if isinstance(classifier_dir, (str, Path)) else list(classifier_dir)
    if not dirs:
        raise MnistlabError("serve needs at least one classifier run (--run DIR)")
    names = [Path(d).name for d in dirs]
    names = names if len(set(names)) == len(names) else [str(d) for d in dirs]
    classifiers = [load_classifier(d, n) for d, n in zip(dirs, names)]
    detector = None
    if detector_dir is not None:
        model, spec = load_model(detector_dir)
        if spec.get("num_classes") != 2:
            raise MnistlabError(f"--detector {detector_dir}: expected a 2-class model (1 = digit), "
                                f"got {spec.get('num_classes')} classes")
        _check_28(spec, "--detector", Path(detector_dir))
        detector = (model, spec, Path(detector_dir))
    gan = GanSampler.load(gan_dir) if gan_dir is not None else None
    engine = Engine(classifiers, detector, gan, inference=inference)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.close()

    app = FastAPI(title="mnistlab", version=__version__, lifespan=lifespan,
                  description="Draw a digit, see what the networks think. Every error is `{\"detail\": message}`.")
    app.state.engine = engine

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts)[:300]}, status_code=422)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health", summary="liveness")
    def health() -> dict:
        return {"status": "ok", "classifiers": len(engine.classifiers), "detector": engine.detector is not None,
                "gan": engine.gan is not None, "uptime_seconds": round(time.time() - engine.started, 1),
                "inference": engine.inference, "batches": engine.batches, "images": engine.images}

    @app.get("/api/models", summary="the loaded runs, their metrics, classes and the request limits")
    def models() -> dict:
        return {
            "classifiers": [{"name": c.name, "dir": str(c.dir), "classes": list(c.classes),
                             "rejector": c.rejector is not None, **c.info} for c in engine.classifiers],
            "detector": None if engine.detector is None else
            {"dir": str(engine.detector[2]), "model": engine.detector[1].get("name")},
            "gan": None if engine.gan is None else engine.gan.describe(),
            "limits": {"max_bytes": max_bytes, "max_pixels": MAX_PIXELS, "max_gan_n": MAX_GAN_N},
        }

    @app.post("/api/predict", response_model=Prediction, summary="classify one image",
              responses=_errors(400, 413, 415), openapi_extra={"requestBody": PREDICT_BODY})
    async def predict(request: Request):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and ctype not in IMAGE_TYPES and ctype != "multipart/form-data":
            raise HTTPException(415, f"unsupported content type {ctype or '(none)'!r}; send application/json, "
                                     f"{', '.join(IMAGE_TYPES)} or multipart/form-data")
        body = await read_body(request, max_bytes)
        if ctype == "multipart/form-data":
            body = await image_from_multipart(request, body)

        def decode() -> np.ndarray:  # (28, 28) uint8
            if ctype == "application/json":
                x28, pre = pixels_from_json(body)
                return to_mnist_28(x28.astype(np.float32)) if pre else x28
            return to_mnist_28(image_to_gray(body))

        x28 = await run_in_threadpool(decode)
        return await engine.apredict(np.asarray(x28, np.uint8))

    @app.get("/api/gan/sample", summary="new GAN samples (JSON of uint8 pixels, or a PNG grid)",
             response_model=GanSamples,
             responses={**_errors(400, 404, 422),
                        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                              "description": "format=json: GanSamples; format=png: one grid image, up to 8 per row "
                                             "(the seed is in the X-Seed header)"}})
    async def gan_sample(digit: Optional[int] = Query(None, ge=0, le=9, description="class (conditional GAN only)"),
                         n: int = Query(8, ge=1, le=MAX_GAN_N), seed: Optional[int] = Query(None, ge=0, le=2**31 - 1),
                         format: str = Query("json", pattern="^(json|png)$")):
        if engine.gan is None:
            raise HTTPException(404, "no GAN run loaded (start the server with --gan DIR)")
        if digit is not None and not engine.gan.conditional:
            raise HTTPException(400, "this GAN is unconditional; leave out `digit`")
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))

        def work() -> np.ndarray:
            with engine.lock, torch.inference_mode():  # the generator's own lock (not the classifiers')
                return engine.gan.sample(n=n, digit=digit, seed=seed)  # (n, 28, 28) uint8

        imgs = await run_in_threadpool(work)
        if format == "png":
            return Response(_grid_png(imgs), media_type="image/png", headers={"X-Seed": str(seed)})
        return {"digit": digit, "n": n, "seed": seed, "images": imgs.astype(int).tolist()}

    return app


def _grid_png(imgs: np.ndarray) -> bytes:
    """(n, 28, 28) uint8 → one PNG row-major grid, up to 8 per row, 2-pixel gaps."""
    from PIL import Image

    n = len(imgs)
    cols = min(8, n)
    rows = -(-n // cols)
    grid = np.zeros((rows * 30 + 2, cols * 30 + 2), np.uint8)
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        grid[2 + r * 30: 2 + r * 30 + 28, 2 + c * 30: 2 + c * 30 + 28] = im
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    return buf.getvalue()
