"""The serve API through FastAPI's test client: answers agree with offline inference, every bad input gets a clear
4xx and leaves the server unchanged, models are read-only and thread-safe, the OpenAPI schema documents it all."""
import hashlib
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

fastapi = pytest.importorskip("fastapi", reason="the `serve` extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from mnistlab import infer  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402
from mnistlab.errors import MnistlabError  # noqa: E402
from mnistlab.evaluate.metrics import softmax  # noqa: E402
from mnistlab.models import create_model, model_spec  # noqa: E402
from mnistlab.runs import Run  # noqa: E402
from mnistlab.serve.app import MAX_BYTES, create_app  # noqa: E402

pytestmark = pytest.mark.slow  # every test here serves a trained run (the session's `serve_classifier`)



@pytest.fixture(scope="module")
def runs(tmp_path_factory, serve_classifier):
    """The tiny trained classifier run and a hand-made (untrained) 2-class detector run folder."""
    root = tmp_path_factory.mktemp("serve")
    torch.manual_seed(0)
    det = create_model("cnn-small", num_classes=2)
    Run(root / "det").save_model(det, model_spec("cnn-small", in_shape=(1, 28, 28), num_classes=2))
    return {"clf": serve_classifier, "det": root / "det", "root": root}


@pytest.fixture(scope="module")
def client(runs):
    app = create_app(runs["clf"], detector_dir=runs["det"])
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("mnist")
    return ds.test_x[:4, 0]  # (4, 28, 28) uint8


def png(a: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def on_paper(x28: np.ndarray) -> np.ndarray:
    """A 28×28 MNIST digit as a 10× larger photo-like image: dark ink on white paper, off-centre."""
    big = 255 - np.kron(x28, np.ones((10, 10), np.uint8))  # (280, 280)
    page = np.full((400, 360), 255, np.uint8)
    page[20:300, 60:340] = big
    return page


def state_hash(app) -> str:
    h = hashlib.sha256()
    for c in app.state.engine.classifiers:
        for k, v in sorted(c.model.state_dict().items()):
            h.update(k.encode() + v.numpy().tobytes())
    return h.hexdigest()


# -------------------------------------------------------------------------------------------------- good input
def test_health_and_models(client, runs):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["classifiers"] == 1 and h["detector"] is True and h["gan"] is False
    m = client.get("/api/models").json()
    (c,) = m["classifiers"]
    assert c["dir"] == str(runs["clf"]) and c["classes"] == [str(i) for i in range(10)]
    assert c["method"] == "supervised" and c["model"] == "cnn-small" and 0 <= c["metrics"]["test_accuracy"] <= 1
    assert m["gan"] is None and m["limits"]["max_bytes"] == MAX_BYTES


def test_predict_pixels_matches_offline_inference(client, digits):
    app = client.app
    clf = app.state.engine.classifiers[0]
    det_model, det_spec, _ = app.state.engine.detector
    for x in digits:
        r = client.post("/api/predict", json={"pixels": x.tolist()})
        assert r.status_code == 200, r.text
        d = r.json()
        lg = infer.logits(clf.model, x[None, None])[0]
        p = torch.softmax(torch.from_numpy(lg).double(), 0).numpy()
        assert len(d["probs"]) == 10 and abs(sum(d["probs"]) - 1) < 1e-6
        np.testing.assert_allclose(d["probs"], p, atol=1e-5)
        assert d["pred"] == int(p.argmax()) == int(np.argmax(d["probs"])) and d["label"] == str(d["pred"])
        assert d["input"] == x.astype(int).tolist()  # pixels are used as they are
        assert d["reject"] == {"chow": {"score": pytest.approx(p.max()), "threshold": None, "reject_below": None,
                                        "reject": None}}  # no rejector in this run: the max-probability score only
        # no rejector: only the detector can reject (a non-digit), and it says why
        not_digit = d["p_digit"] < det_spec.get("threshold", 0.5)
        assert d["rejected"] is (True if not_digit else None) and d["classifiers"][0]["probs"] == d["probs"]
        assert (d["reason"] is not None) == not_digit and (not not_digit or "not a digit" in d["reason"])
        p_digit = torch.softmax(torch.from_numpy(infer.logits(det_model, x[None, None])).double(), 1)[0, 1]
        assert d["p_digit"] == pytest.approx(float(p_digit), abs=1e-6)


def shift_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a − b| over 28×28 pixels, minimised over whole-pixel shifts of ±1 (rounding of the centre of mass)."""
    a, b = a.astype(int), b.astype(int)
    return min(np.abs(np.roll(a, (dy, dx), (0, 1)) - b).mean() for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_images_are_preprocessed_like_mnist(client, digits):
    """The same digit as a big dark-on-light PNG, JPEG or multipart upload comes back as (nearly) the MNIST image."""
    for x in digits:
        page = on_paper(x)
        ref = client.post("/api/predict", json={"pixels": x.tolist()}).json()
        for kw in ({"content": png(page), "headers": {"content-type": "image/png"}},
                   {"content": png(page, "JPEG"), "headers": {"content-type": "image/jpeg"}},
                   {"files": {"image": ("digit.png", png(page), "image/png")}}):
            r = client.post("/api/predict", **kw)
            assert r.status_code == 200, r.text
            seen = np.array(r.json()["input"])
            assert seen.shape == (28, 28) and seen.dtype.kind == "i" and 0 <= seen.min() and seen.max() <= 255
            # inverted, cropped, rescaled and centred back: the MNIST image up to a pixel of centring and a little
            # interpolation/JPEG noise (a wrong polarity or scale would be ~40+)
            assert shift_distance(seen, x) < 8, shift_distance(seen, x)
            ys, xs = np.nonzero(seen)
            cy, cx = np.average(ys, weights=seen[ys, xs]), np.average(xs, weights=seen[ys, xs])
            assert abs(cy - 14) < 1 and abs(cx - 14) < 1  # MNIST: 14.0 ± 0.3
            assert ref["probs"] != r.json()["probs"] or np.array_equal(seen, x)  # it really saw the new input


def test_preprocess_flag_centres_json_pixels(client, digits):
    x = np.zeros((28, 28), np.uint8)
    x[:8, :8] = digits[0][10:18, 10:18]  # ink stuck in a corner
    x[2:6, 2:6] = 255
    seen = np.array(client.post("/api/predict", json={"pixels": x.tolist(), "preprocess": True}).json()["input"])
    cy, cx = np.argwhere(seen > 0).mean(0)
    assert 11 < cy < 17 and 11 < cx < 17
    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21  # ink fitted in 20×20 (+1 for anti-aliasing)


def test_concurrent_requests_are_batched_and_agree(runs, digits):
    """Batched inference under 8 concurrent callers: every answer is the single-image answer (to float rounding),
    and the worker really ran fewer passes than images."""
    xs = [digits[i % 4] for i in range(64)]
    with TestClient(create_app(runs["clf"], inference="locked")) as c:
        exact = [c.app.state.engine.predict(x)["probs"] for x in xs[:4]]
        clf = c.app.state.engine.classifiers[0]
        ref = [softmax(infer.logits(clf.model, d[None, None]).astype(np.float64))[0] for d in digits]
        assert np.array_equal(np.array(exact), np.array(ref))  # locked = offline one-image inference, bitwise
    for mode in ("batched", "concurrent"):
        with TestClient(create_app(runs["clf"], inference=mode)) as c:
            engine = c.app.state.engine
            with ThreadPoolExecutor(8) as pool:
                got = list(pool.map(lambda x: engine.predict(x)["probs"], xs))
            np.testing.assert_allclose(got, [exact[i % 4] for i in range(64)], rtol=0, atol=1e-6)
    # batching, made deterministic: the worker is held on its first image until the other 63 are waiting
    with TestClient(create_app(runs["clf"])) as c:
        engine, gate, run_batch = c.app.state.engine, threading.Event(), c.app.state.engine.run_batch

        def held(x):
            gate.wait(30)
            return run_batch(x)

        engine.run_batch = held
        with ThreadPoolExecutor(64) as pool:
            futs = [pool.submit(engine.predict, x) for x in xs]
            deadline = time.time() + 30
            while engine._queue.qsize() < 63 and time.time() < deadline:
                time.sleep(0.01)
            gate.set()
            got = [f.result(timeout=60)["probs"] for f in futs]
        np.testing.assert_allclose(got, [exact[i % 4] for i in range(64)], rtol=0, atol=1e-6)
        assert (engine.batches, engine.images) == (2, 64)  # 1 image, then the 63 that waited, as one batch
        assert c.get("/api/health").json()["batches"] == 2
    with pytest.raises(MnistlabError, match="inference mode"):
        create_app(runs["clf"], inference="fast")


def test_rejector_decisions_are_shown(runs, digits, tmp_path):
    """A run with a fitted rejector (evaluate.rejection): every rule's score, threshold and decision, as the rejector
    itself decides them."""
    import shutil

    from mnistlab.evaluate.rejection import fit_rejector, load_rejector
    from mnistlab.runs import load_run

    run_dir = tmp_path / "clf-with-rejector"
    shutil.copytree(runs["clf"], run_dir)
    model = load_run(run_dir).model
    ds = load_dataset("mnist")
    x, y = ds.train_x[:300], ds.train_y[:300]
    fit_rejector(infer.logits(model, x), infer.embeddings(model, x), y, num_classes=10).save(run_dir)
    rejector = load_rejector(run_dir)
    with TestClient(create_app(run_dir)) as c:
        assert c.get("/api/models").json()["classifiers"][0]["rejector"] is True
        assert c.app.state.engine.classifiers[0].fused  # cnn: logits = head(embed(x)), one pass gives both
        for img in digits:
            d = c.post("/api/predict", json={"pixels": img.tolist()}).json()
            ref = rejector.decide(infer.logits(model, img[None, None]), infer.embeddings(model, img[None, None]))
            assert set(d["reject"]) == {"chow", "margin", "distance"}
            for rule, got in d["reject"].items():
                assert got["score"] == pytest.approx(float(ref[rule]["score"][0]), rel=1e-5)
                assert got["threshold"] == pytest.approx(ref[rule]["threshold"])
                assert got["reject"] == bool(ref[rule]["reject"][0]) and got["reject_below"] == ref[rule]["reject_below"]
            assert d["rejected"] == bool(ref["reject_any"][0])
            assert d["reject"]["chow"]["score"] == pytest.approx(max(d["probs"]))


def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"] and 'id="pad"' in r.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "http://" not in r.text and "https://" not in r.text  # offline: nothing fetched from elsewhere
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would load Swagger UI from a CDN


# --------------------------------------------------------------------------------------------------- bad input
def huge_png() -> bytes:
    return png(np.zeros((5000, 5000), np.uint8))  # ~25 kB on the wire, 25 Mpixel decoded


BAD = {
    "not an image": (b"hello, I am text", "image/png", 400, "not an image"),
    "truncated png": (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png", 400, "image"),
    "empty body": (b"", "image/png", 400, "empty"),
    "huge file": (b"\0" * (MAX_BYTES + 1), "image/png", 413, "limit"),
    "huge decoded image": (None, "image/png", 413, "pixel limit"),
    "blank image": (png(np.full((50, 50), 255, np.uint8)), "image/png", 400, "blank"),
    "wrong content type": (b"x", "text/plain", 415, "unsupported content type"),
    "no content type": (b"x", "", 415, "unsupported content type"),
    "invalid json": (b"{pixels: ", "application/json", 400, "invalid JSON"),
    "deeply nested json": (b"[" * 100_000, "application/json", 400, "invalid JSON"),
    "json not an object": (b"[1, 2]", "application/json", 400, "pixels"),
    "missing pixels": (b'{"image": 1}', "application/json", 400, "pixels"),
    "unknown field": (json.dumps({"pixels": [[0] * 28] * 28, "x": 1}).encode(), "application/json", 400, "unknown"),
    "wrong shape 27x28": (json.dumps({"pixels": [[0] * 28] * 27}).encode(), "application/json", 400, "28×28"),
    "wrong shape ragged": (json.dumps({"pixels": [[0] * 28] * 27 + [[0] * 5]}).encode(), "application/json", 400,
                           "28×28"),
    "wrong shape 3d": (json.dumps({"pixels": [[[0]] * 28] * 28}).encode(), "application/json", 400, "numbers"),
    "flat 784": (json.dumps({"pixels": [0] * 784}).encode(), "application/json", 400, "rows"),
    "nan": (b'{"pixels": [' + b",".join([b"[" + b",".join([b"NaN"] * 28) + b"]"] * 28) + b"]}", "application/json",
            400, "NaN"),
    "infinity": (b'{"pixels": [[Infinity]]}', "application/json", 400, "not a number"),
    "overflow 1e400": (json.dumps({"pixels": [[0] * 28] * 27 + [[0] * 27 + ["X"]]}).replace('"X"', "1e400").encode(),
                       "application/json", 400, "finite"),
    "overflow 10**400": (json.dumps({"pixels": [[0] * 28] * 27 + [[10 ** 400] + [0] * 27]}).encode(),
                         "application/json", 400, "finite"),  # an integer: no float parse to overflow to inf
    "out of range": (json.dumps({"pixels": [[0] * 28] * 27 + [[256] + [0] * 27]}).encode(), "application/json", 400,
                     "0..255"),
    "negative": (json.dumps({"pixels": [[-1] * 28] * 28}).encode(), "application/json", 400, "0..255"),
    "strings": (json.dumps({"pixels": [["0"] * 28] * 28}).encode(), "application/json", 400, "numbers"),
    "booleans": (json.dumps({"pixels": [[True] * 28] * 28}).encode(), "application/json", 400, "numbers"),
    "preprocess not bool": (json.dumps({"pixels": [[0] * 28] * 28, "preprocess": "yes"}).encode(),
                            "application/json", 400, "preprocess"),
    "blank json": (json.dumps({"pixels": [[0] * 28] * 28}).encode(), "application/json", 400, "blank"),
    "blank json preprocessed": (json.dumps({"pixels": [[9] * 28] * 27 + [[0] * 28], "preprocess": True}).encode(),
                                "application/json", 400, "blank"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_predict_input_is_a_clear_4xx(client, digits, name):
    body, ctype, code, words = BAD[name]
    body = huge_png() if body is None else body
    before = state_hash(client.app)
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/api/predict", content=body, headers=headers)
    assert r.status_code == code, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    msg = r.json()["detail"]
    assert isinstance(msg, str) and words in msg and "\n" not in msg and len(msg) < 400
    assert state_hash(client.app) == before  # the models are read-only
    assert client.get("/api/health").json()["status"] == "ok"


def test_wide_palette_and_bilevel_images_are_read(client, digits):
    """Photos wider than the working side are box-reduced; palette (GIF, P-mode PNG) and 1-bit images first become
    grey, since `reduce` takes neither."""
    page = np.full((600, 800), 255, np.uint8)
    page[150:430, 260:540] = 255 - np.kron(digits[0], np.ones((10, 10), np.uint8))
    ref = client.post("/api/predict", content=png(page), headers={"content-type": "image/png"}).json()["pred"]
    for mode, fmt in (("P", "GIF"), ("P", "PNG"), ("1", "PNG")):
        buf = io.BytesIO()
        Image.fromarray(page).convert(mode).save(buf, format=fmt)
        r = client.post("/api/predict", content=buf.getvalue(), headers={"content-type": f"image/{fmt.lower()}"})
        assert r.status_code == 200 and r.json()["pred"] == ref, (mode, fmt, r.text)


def test_bad_multipart(client):
    cases = [({"files": {"photo": ("a.png", png(np.eye(28, dtype=np.uint8) * 255), "image/png")}}, 400, "image"),
             ({"files": {"image": ("a.txt", b"not an image", "text/plain")}}, 400, "not an image"),
             ({"data": {"image": "just text"}, "files": {"x": ("x", b"x", "text/plain")}}, 400, "file field"),
             ({"data": {"image": "form-encoded"}}, 415, "unsupported content type"),
             ({"content": b"--xx\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=xx"}}, 400,
              "image")]
    for kw, code, words in cases:
        r = client.post("/api/predict", **kw)
        assert r.status_code == code and words in r.json()["detail"], r.text


def test_answers_unchanged_after_bad_input(client, digits):
    """A good request answers exactly the same before and after a barrage of bad ones."""
    good = {"pixels": digits[1].tolist()}
    first = client.post("/api/predict", json=good).json()
    for body, ctype, _, _ in BAD.values():
        client.post("/api/predict", content=body or b"", headers={"content-type": ctype})
    assert client.post("/api/predict", json=good).json() == first


@pytest.mark.parametrize("query, code, words", [
    ("n=4", 404, "no GAN run loaded"),
    ("n=1000000", 422, "n"),
    ("n=0", 422, "n"),
    ("n=abc", 422, "n"),
    ("digit=11&n=2", 422, "digit"),
    ("n=2&format=gif", 422, "format"),
])
def test_gan_sample_without_gan_or_bad_query(client, query, code, words):
    r = client.get(f"/api/gan/sample?{query}")
    assert r.status_code == code and words in r.json()["detail"], r.text


def test_user_errors_from_shared_code_are_400(runs, digits, monkeypatch):
    """A MnistlabError raised below the routes (here: by the image normalisation) is a 400 with its message."""
    import mnistlab.serve.app as serve_app

    def broken(gray):
        raise MnistlabError("image has NaN/inf pixels")

    monkeypatch.setattr(serve_app, "to_mnist_28", broken)
    with TestClient(create_app(runs["clf"])) as c:
        r = c.post("/api/predict", content=png(on_paper(digits[0])), headers={"content-type": "image/png"})
        assert r.status_code == 400 and r.json() == {"detail": "image has NaN/inf pixels"}


def test_unknown_route_and_method(client):
    assert client.get("/api/nope").status_code == 404 and "detail" in client.get("/api/nope").json()
    assert client.get("/api/predict").status_code == 405


# ------------------------------------------------------------------------------------------------------ GAN
@pytest.fixture(scope="module")
def gan_client(runs):
    """An app with a hand-made conditional generator run (the format `gan train` saves: generator.json/.safetensors)."""
    from mnistlab.models.gan import build_generator, gan_spec

    torch.manual_seed(0)
    spec = gan_spec(num_classes=10)
    Run(runs["root"] / "cgan").save_model(build_generator(spec).eval(), spec, name="generator")
    with TestClient(create_app(runs["clf"], gan_dir=runs["root"] / "cgan")) as c:
        yield c


def test_gan_samples(gan_client, runs):
    from mnistlab.models.gan import sample
    from mnistlab.runs import load_generator

    assert gan_client.get("/api/models").json()["gan"]["conditional"] is True
    r = gan_client.get("/api/gan/sample?digit=3&n=5&seed=7")
    assert r.status_code == 200, r.text
    d = r.json()
    imgs = np.array(d["images"])
    assert imgs.shape == (5, 28, 28) and imgs.min() >= 0 and imgs.max() <= 255 and d["seed"] == 7 and d["digit"] == 3
    G, _ = load_generator(runs["root"] / "cgan")
    assert np.array_equal(imgs, sample(G, 5, seed=7, digit=3)[0][:, 0].numpy())  # what the GAN engineer's API gives
    assert gan_client.get("/api/gan/sample?digit=3&n=5&seed=7").json()["images"] == d["images"]  # seeded
    assert gan_client.get("/api/gan/sample?digit=4&n=5&seed=7").json()["images"] != d["images"]  # conditional
    a, b = gan_client.get("/api/gan/sample?n=3").json(), gan_client.get("/api/gan/sample?n=3").json()
    assert a["seed"] != b["seed"] and a["images"] != b["images"]  # no seed: new samples each time
    png_r = gan_client.get("/api/gan/sample?digit=1&n=10&seed=1&format=png")
    assert png_r.headers["content-type"] == "image/png" and png_r.headers["x-seed"] == "1"
    assert Image.open(io.BytesIO(png_r.content)).size == (8 * 30 + 2, 2 * 30 + 2)  # 8 per row, 2 rows
    r = gan_client.get(f"/api/gan/sample?n={10**9}")
    assert r.status_code == 422 and "n" in r.json()["detail"]


def test_unconditional_gan_refuses_a_digit(runs):
    from mnistlab.models.gan import build_generator, gan_spec

    spec = gan_spec(num_classes=0)
    Run(runs["root"] / "gan").save_model(build_generator(spec).eval(), spec, name="generator")
    with TestClient(create_app(runs["clf"], gan_dir=runs["root"] / "gan")) as c:
        r = c.get("/api/gan/sample?digit=2&n=2")
        assert r.status_code == 400 and "unconditional" in r.json()["detail"]
        assert np.array(c.get("/api/gan/sample?n=2").json()["images"]).shape == (2, 28, 28)
    with pytest.raises(MnistlabError, match="generator"):
        create_app(runs["clf"], gan_dir=runs["clf"])  # a classifier run is not a GAN run


# ------------------------------------------------------------------------------------------------ loading runs
def test_create_app_refuses_unsuitable_runs(runs, tmp_path):
    with pytest.raises(MnistlabError, match="does not exist"):
        create_app(tmp_path / "missing")
    with pytest.raises(MnistlabError, match="2-class"):
        create_app(runs["clf"], detector_dir=runs["clf"])
    with pytest.raises(MnistlabError, match="at least one"):
        create_app([])


def test_serve_cli_errors_are_one_line(cli, tmp_path, runs):
    code, _, err = cli("serve", "--run", tmp_path / "nope", "--port", 1)
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("serve", "--run", tmp_path, "--port", "70000")
    assert code == 2 and "port" in err
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, err = cli("serve", "--run", runs["clf"], "--port", busy.getsockname()[1])
        assert code == 2 and "cannot listen on 127.0.0.1" in err and len(err.strip().splitlines()) == 1


def test_openapi_documents_the_api(client):
    s = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/gan/sample", "/api/health", "/api/models"} <= set(s["paths"])
    body = s["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "image/png", "image/jpeg", "multipart/form-data"} <= set(body)
    assert {"200", "400", "413", "415"} <= set(s["paths"]["/api/predict"]["post"]["responses"])


def test_only_allowed_host_names_are_answered(runs, digits):
    """DNS rebinding: a page under another name reaching 127.0.0.1 is refused (serve/http.py)."""
    from mnistlab.serve.http import allowed_hosts

    names, any_ip = allowed_hosts("127.0.0.1", ["digits.lan"])
    with TestClient(create_app(runs["clf"], allowed_hosts=names, any_ip=any_ip)) as c:
        for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST.", "[::1]:8000", "digits.lan"):
            r = c.get("/api/models", headers={"host": host})
            assert r.status_code == 200, (host, r.text)
        for host in ("evil.example:8000", "127.0.0.1.evil.example", "10.0.0.1", ""):
            r = c.get("/api/models", headers={"host": host})
            assert r.status_code == 400 and r.headers["content-type"] == "application/json", host
            assert "is not served here" in r.json()["detail"] and "--allowed-host" in r.json()["detail"]
            assert c.post("/api/predict", json={"pixels": digits[0].tolist()}, headers={"host": host}).status_code == 400
    names, any_ip = allowed_hosts("0.0.0.0")  # every interface: IP literals too, never another name
    with TestClient(create_app(runs["clf"], allowed_hosts=names, any_ip=any_ip)) as c:
        assert c.get("/api/health", headers={"host": "192.168.1.20:8000"}).status_code == 200
        assert c.get("/api/health", headers={"host": "evil.example"}).status_code == 400
