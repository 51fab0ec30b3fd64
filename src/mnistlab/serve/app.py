"""FastAPI app of `mnistlab serve`: the draw-a-digit page and a JSON API (documented by its OpenAPI schema).

`create_app` loads the runs once (serve/engine.py); request bodies are checked and decoded in the server's thread pool
(serve/inputs.py) and their images answered by the inference engine: by default one worker batches whatever images
are waiting, so 8 concurrent clients cost ~2 forward passes instead of 8 (benchmarks/serve.py measures it against a
lock and against no lock). Every bad request gets a 4xx with `{"detail": "<one line>"}` and leaves the server unchanged.
"""
from __future__ import annotations

import io
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Iterable, Optional

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
from mnistlab.data.inputs import raw_to_input
from mnistlab.data.images import to_mnist_28  # MNIST's normalisation, shared with `mnistlab predict`
from mnistlab.errors import MnistlabError
from mnistlab.precision import resolve_device
from mnistlab.serve.engine import INFERENCE, Engine, GanSampler, load_classifier, load_detector
from mnistlab.serve.http import HostCheck, JsonErrorProtocol, allowed_hosts  # noqa: F401  # the latter two for `serve`
from mnistlab.serve.inputs import (IMAGE_TYPES, MAX_BYTES, MAX_PIXELS, image_from_multipart, image_to_gray,
                                   pixels_from_json, read_body)

STATIC = Path(__file__).parent / "static"
MAX_GAN_N = 64


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
    rejected: Optional[bool] = Field(None, description="the run's selector (selector.json) when it has one, else true if "
                                     "any calibrated rule rejects; true for a non-digit; null without either")
    reason: Optional[str] = Field(None, description="why the input is rejected, in one line (null when accepted)")
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
               gan_dir: str | Path | None = None, *, max_bytes: int = MAX_BYTES, inference: str = "batched",
               allowed_hosts: Iterable[str] | None = None, any_ip: bool = False, device: str = "cpu") -> FastAPI:
    """Load the runs once and build the app. `classifier_dir`: one run folder or a list (the first one answers at
    the top level of /api/predict). `inference`: batched | locked | concurrent (see `Engine`; benchmarks/serve.py
    measures them). `allowed_hosts`: the Host names answered (serve/http.py; None = any, for in-process clients),
    `any_ip`: also any IP literal. `device`: where the models run (`--device`). Raises MnistlabError for a folder
    that is not a suitable run."""
    where = resolve_device(device)  # an unknown device: one line, before any run is read
    if inference not in INFERENCE:
        raise MnistlabError(f"unknown inference mode {inference!r}; valid: {', '.join(INFERENCE)}")
    dirs = [classifier_dir] if isinstance(classifier_dir, (str, Path)) else list(classifier_dir)
    if not dirs:
        raise MnistlabError("serve needs at least one classifier run (--run DIR)")
    names = [Path(d).name for d in dirs]
    names = names if len(set(names)) == len(names) else [str(d) for d in dirs]
    classifiers = [load_classifier(d, n) for d, n in zip(dirs, names)]
    detector = load_detector(detector_dir) if detector_dir is not None else None
    gan = GanSampler.load(gan_dir) if gan_dir is not None else None
    engine = Engine(classifiers, detector, gan, inference=inference).to(where)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.close()

    # no /docs or /redoc: FastAPI's pages load Swagger/ReDoc from a CDN, and this server works offline
    app = FastAPI(title="mnistlab", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Draw a digit, see what the networks think. Every error is `{\"detail\": message}`.")
    app.state.engine = engine
    if allowed_hosts is not None:  # DNS rebinding: see serve/http.py
        app.add_middleware(HostCheck, names=allowed_hosts, any_ip=any_ip)
    add_error_handlers(app)

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
        # a run on user data decodes image files by its recorded rule (resize…)
        x28 = await run_in_threadpool(decode_image, ctype, body, classifiers[0].spec.get("image_input"))
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


def decode_image(ctype: str, body: bytes, rule: dict | None) -> np.ndarray:
    """A request body → the (28, 28) uint8 image the networks see: JSON pixels (normalised like MNIST when asked),
    else an image file, normalised like MNIST or, for a run on user data, by its recorded input `rule`."""
    if ctype == "application/json":
        x28, pre = pixels_from_json(body)
        return to_mnist_28(x28.astype(np.float32)) if pre else x28
    gray = image_to_gray(body)
    return to_mnist_28(gray) if rule is None else raw_to_input(gray, shape=(1, 28, 28), rule=rule)[0]


def add_error_handlers(app: FastAPI) -> None:
    """Every error as `{"detail": "<one line>"}`: HTTP errors as raised, MnistlabError 400, validation 422."""
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(MnistlabError)
    async def user_error(request: Request, exc: MnistlabError):  # e.g. from the shared image normalisation
        return JSONResponse({"detail": str(exc).splitlines()[0][:300]}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts)[:300]}, status_code=422)


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
