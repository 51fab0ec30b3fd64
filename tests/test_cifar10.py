"""CIFAR-10 through the same code: download + parse of the official binary format from a local HTTP server, its
failure modes, and 3×32×32 colour images through the model registry and the training loop."""
import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading

import numpy as np
import pytest
import torch

from mnistlab.data import load_dataset
from mnistlab.data.sets import cifar10 as c10
from mnistlab.data.sources import RemoteFile
from mnistlab.errors import MnistlabError
from mnistlab.models import MODELS, create_model

RECORDS = 8  # per batch in the fixture: 5 × 8 train, 8 test (the real archive has 10 000)


def fixture_arrays(seed: int = 0):
    """Images whose pixels encode (record, channel): any transposition in the parser shows up."""
    rng = np.random.default_rng(seed)
    batches = []
    for b in range(6):
        y = rng.integers(0, 10, RECORDS).astype(np.uint8)
        x = rng.integers(0, 256, (RECORDS, 3, 32, 32), dtype=np.uint8)
        x[:, :, 0, 0] = np.arange(RECORDS)[:, None] + 10 * b  # top-left pixel: batch/record id
        x[:, 1, 0, 1], x[:, 2, 0, 1] = 101, 202  # green and blue planes are told apart
        batches.append((x, y))
    return batches


def batch_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """The official record layout: 1 label byte, then the R, G, B planes (32×32 row-major each)."""
    return np.concatenate([y[:, None], x.reshape(len(y), -1)], axis=1).astype(np.uint8).tobytes()


def make_tarball(batches, *, override: dict | None = None, meta: bool = True) -> bytes:
    names = [*c10.TRAIN_BATCHES, c10.TEST_BATCH]
    files = {f"{c10.FOLDER}/{n}": batch_bytes(*b) for n, b in zip(names, batches)}
    if meta:
        files[f"{c10.FOLDER}/batches.meta.txt"] = ("\n".join(c10.CLASSES) + "\n\n").encode()
    files.update(override or {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on 127.0.0.1 (ephemeral port) serving tmp_path/www; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def serve_archive(server, data_home, monkeypatch):
    """Put `blob` on the server as cifar-10-binary.tar.gz, pin `sha` (default: the blob's own), point the mirror."""
    www, url = server
    monkeypatch.setenv("MNISTLAB_MIRROR", url)
    monkeypatch.setattr(c10, "RECORDS_PER_BATCH", RECORDS)

    def put(blob: bytes, sha: str | None = None):
        (www / c10.ARCHIVE.name).write_bytes(blob)
        monkeypatch.setattr(c10, "ARCHIVE", RemoteFile(c10.ARCHIVE.name, sha or hashlib.sha256(blob).hexdigest()))
        return data_home

    return put


def test_pinned_checksum_is_the_official_one():
    assert c10.ARCHIVE.name == "cifar-10-binary.tar.gz"
    assert c10.ARCHIVE.sha256 == "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
    assert c10.RECORD_BYTES == 3073 and c10.RECORDS_PER_BATCH == 10_000


def test_download_and_parse_from_local_server(serve_archive):
    batches = fixture_arrays()
    home = serve_archive(make_tarball(batches))
    ds = load_dataset("cifar10")
    assert ds.shape == (3, 32, 32) and ds.classes == c10.CLASSES and ds.hflip_safe
    assert ds.train_x.dtype == np.uint8 and ds.train_y.dtype == np.int64
    assert (len(ds.train_y), len(ds.test_y)) == (5 * RECORDS, RECORDS)
    np.testing.assert_array_equal(ds.train_x, np.concatenate([x for x, _ in batches[:5]]))
    np.testing.assert_array_equal(ds.train_y, np.concatenate([y for _, y in batches[:5]]))
    np.testing.assert_array_equal(ds.test_x, batches[5][0])
    assert ds.train_x[RECORDS + 3, 0, 0, 0] == 13 and ds.test_x[2, 0, 0, 0] == 52  # (batch, record) order kept
    assert (ds.train_x[:, 1, 0, 1] == 101).all() and (ds.train_x[:, 2, 0, 1] == 202).all()  # planes = channels
    assert 0 < ds.mean < 1 and ds.std > 0
    # a verified copy and the array cache are kept; no temporary file is left behind
    assert (home / "downloads" / c10.ARCHIVE.name).is_file() and (home / "cifar10.npz").is_file()
    assert not [p for p in home.rglob("*") if p.name.endswith(".tmp")]


def test_checksum_mismatch_is_refused_and_nothing_is_kept(serve_archive):
    home = serve_archive(make_tarball(fixture_arrays()), sha="0" * 64)
    with pytest.raises(MnistlabError, match="SHA-256 mismatch") as e:
        load_dataset("cifar10")
    assert "\n" not in str(e.value) and "MNISTLAB_MIRROR" in str(e.value)
    assert not (home / "cifar10.npz").exists() and not (home / "downloads" / c10.ARCHIVE.name).exists()


def test_truncated_archive_is_a_clear_error(serve_archive):
    blob = make_tarball(fixture_arrays())
    with pytest.raises(MnistlabError, match="corrupt or truncated"):
        c10.parse_archive(blob[: len(blob) // 2], records_per_batch=RECORDS)
    # a truncated file whose checksum was pinned anyway (a bad mirror + a bad pin) still fails at parse time
    home = serve_archive(blob[: len(blob) * 2 // 3])
    with pytest.raises(MnistlabError, match="truncated"):
        load_dataset("cifar10")
    assert not (home / "cifar10.npz").exists()


@pytest.mark.parametrize("problem", ["short batch", "missing batch", "bad label", "wrong classes", "directory"])
def test_strict_format_checks(problem):
    batches = fixture_arrays()
    name = f"{c10.FOLDER}/data_batch_3.bin"
    good = batch_bytes(*batches[2])
    override, expect = {}, ""
    if problem == "short batch":
        override, expect = {name: good[:-1]}, "expected 24584"
    elif problem == "bad label":
        override, expect = {name: bytes([10]) + good[1:]}, "label 10 outside"
    elif problem == "wrong classes":
        override, expect = {f"{c10.FOLDER}/batches.meta.txt": b"cat\ndog\n"}, "batches.meta.txt lists"
    blob = make_tarball(batches, override=override)
    if problem in ("missing batch", "directory"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as src, tarfile.open(fileobj=buf, mode="w:gz") as dst:
            for m in src.getmembers():
                if m.name != name:
                    dst.addfile(m, src.extractfile(m))
            if problem == "directory":
                d = tarfile.TarInfo(name)
                d.type = tarfile.DIRTYPE
                dst.addfile(d)
        blob = buf.getvalue()
        expect = "no cifar-10-batches-bin/data_batch_3.bin" if problem == "missing batch" else "not a regular file"
    with pytest.raises(MnistlabError, match=expect):
        c10.parse_archive(blob, records_per_batch=RECORDS)
    assert len(good) == RECORDS * 3073


def test_unavailable_is_one_clear_line(data_home, monkeypatch):
    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
    with pytest.raises(MnistlabError) as e:
        load_dataset("cifar10")
    msg = str(e.value)
    assert "dataset 'cifar10' is not available" in msg and "MNISTLAB_MIRROR" in msg and "\n" not in msg


def test_unavailable_through_the_cli(cli, data_home, server, monkeypatch):
    _, url = server  # serves an empty folder: 404
    monkeypatch.setenv("MNISTLAB_MIRROR", url)
    code, _, err = cli("data", "stats", "--dataset", "cifar10")
    assert code == 2 and err.startswith("mnistlab: error: dataset 'cifar10' is not available")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", MODELS.names())
def test_classifiers_take_colour_32x32(name):
    """Every registered classifier builds for (3, 32, 32) and gives logits and features: no 1×28×28 baked in."""
    torch.manual_seed(0)
    model = create_model(name, in_shape=(3, 32, 32), num_classes=10).eval()
    if not hasattr(model, "embed"):
        pytest.skip(f"{name} is not a classifier (no embed)")
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        logits, feats = model(x), model.embed(x)
    assert logits.shape == (4, 10) and feats.shape == (4, model.feature_dim)
    assert torch.isfinite(logits).all()


@pytest.mark.slow
def test_cifar10_through_the_supervised_loop(serve_archive, cli, tmp_path):
    """The same registry, method and loop as the digits: a smoke run on the fixture ends with a loadable model."""
    serve_archive(make_tarball(fixture_arrays()))
    out = tmp_path / "run"
    code, stdout, err = cli("supervised", "--dataset", "cifar10", "--budget", "smoke", "--out", out, "--json",
                            "--batch-size", "16", "--epochs", "2", "--threads", "1")
    assert code == 0, err
    m = json.loads(stdout)
    assert m["dataset"] == "cifar10" and 0 <= m["test_accuracy"] <= 1 and m["steps"] == 4
    spec = json.loads((out / "model.json").read_text())
    assert spec["in_shape"] == [3, 32, 32]
    report = json.loads((out / "classification_report.json").read_text())
    assert set(c10.CLASSES) <= set(report)
    from mnistlab.runs import load_model

    model, _ = load_model(out)
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_a_cache_of_the_wrong_shape_is_rebuilt(serve_archive):
    from mnistlab.data.sources import write_cache

    home = serve_archive(make_tarball(fixture_arrays()))
    grey = np.zeros((5 * RECORDS, 1, 28, 28), np.uint8)
    write_cache("cifar10", (grey, np.zeros(5 * RECORDS, np.int64), grey[:RECORDS], np.zeros(RECORDS, np.int64)))
    ds = load_dataset("cifar10")
    assert ds.shape == (3, 32, 32)
    from mnistlab.data.sources import read_cache

    assert read_cache("cifar10")[0].shape[1:] == (3, 32, 32) and (home / "cifar10.npz").is_file()


def test_a_local_copy_through_a_file_mirror(data_home, tmp_path, monkeypatch):
    """What the error message recommends when there is no network: MNISTLAB_MIRROR=file:///folder/."""
    blob = make_tarball(fixture_arrays(seed=3))
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / c10.ARCHIVE.name).write_bytes(blob)
    monkeypatch.setenv("MNISTLAB_MIRROR", folder.as_uri() + "/")
    monkeypatch.setattr(c10, "RECORDS_PER_BATCH", RECORDS)
    monkeypatch.setattr(c10, "ARCHIVE", RemoteFile(c10.ARCHIVE.name, hashlib.sha256(blob).hexdigest()))
    ds = load_dataset("cifar10")
    np.testing.assert_array_equal(ds.test_x, fixture_arrays(seed=3)[5][0])
