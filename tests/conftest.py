"""Shared test set-up: quiet progress bars, small helpers."""
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MNISTLAB_QUIET", "1")


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """In-process runs with --threads change torch's global thread count: restore it for the tests that follow."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """An empty, private data home (cache + downloads) for tests that exercise the sources."""
    home = tmp_path / "data"
    monkeypatch.setenv("MNISTLAB_DATA", str(home))
    from mnistlab.data import load_dataset

    load_dataset.cache_clear()
    yield home
    load_dataset.cache_clear()


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from mnistlab.cli import main

    def call(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def digits_like(n: int = 8, seed: int = 0) -> np.ndarray:
    """Small uint8 (n, 1, 28, 28) images with a bright stroke: a stand-in for digits in unit tests."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 28, 28), np.uint8)
    for i in range(n):
        r = rng.integers(6, 20)
        x[i, 0, r: r + 3, 6:22] = 255
    return x


@pytest.fixture(scope="session")
def serve_classifier(tmp_path_factory):
    """The tiny supervised run shared by the serve tests (API, schema, browser): trained once per session."""
    from mnistlab import api

    out = tmp_path_factory.getbasetemp() / "serve-clf"
    if not (out / "metrics.json").exists():
        api.train("supervised", command="supervised", budget="smoke", out=out,
                  overrides={"train_subset": 256, "test_subset": 100})
    return out
