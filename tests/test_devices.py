"""Devices: --device resolution and its one-line errors, one step of every method on cpu and auto under a recorder of
tensor devices, and checkpoints read onto the CPU whatever device wrote them. What keeps the GPU path honest here."""
import json

import pytest
import torch
from torch.overrides import TorchFunctionMode

from mnistlab import api, fileio, runs
from mnistlab.errors import MnistlabError
from mnistlab.methods import METHODS
from mnistlab.precision import autocast, resolve_device, resolve_precision


class DeviceRecorder(TorchFunctionMode):
    """Logs every torch call whose tensor results are not on `expected`, and every host copy (`.numpy()`,
    `.tolist()`): inside a training step, either would be a host↔device transfer on a GPU."""

    HOST = {torch.Tensor.numpy, torch.Tensor.tolist}

    def __init__(self, expected):
        super().__init__()
        self.expected = torch.device(expected)
        self.bad: list[str] = []
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.calls += 1
        name = getattr(func, "__qualname__", getattr(func, "__name__", str(func)))
        if func in self.HOST:
            self.bad.append(f"{name}: host copy")
        stack = [out]
        while stack:
            o = stack.pop()
            if isinstance(o, torch.Tensor) and o.device.type != self.expected.type:
                self.bad.append(f"{name} → {o.device}")
            elif isinstance(o, (tuple, list)):
                stack.extend(o)
            elif isinstance(o, dict):
                stack.extend(o.values())
        return out


def test_recorder_catches_a_tensor_off_the_device_and_a_host_copy():
    with DeviceRecorder("meta") as rec:
        torch.zeros(3, device="meta") + 1  # on the device: fine
    assert rec.bad == [] and rec.calls >= 1
    with DeviceRecorder("meta") as rec:
        torch.zeros(3)  # a CPU tensor where the model lives on 'meta'
    assert rec.bad and "cpu" in rec.bad[0]
    with DeviceRecorder("cpu") as rec:
        torch.ones(2).numpy()
    assert any("host copy" in b for b in rec.bad)


def test_resolve_device_here():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else
                                           "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(" CPU ") == torch.device("cpu")
    for bad in ("tpu", "cuda:x", "gpu", "", "cuda:-1"):
        with pytest.raises(MnistlabError, match="unknown device"):
            resolve_device(bad)
    assert resolve_precision("auto", "cpu") in ("bf16", "fp32") and resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(MnistlabError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    with autocast("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device,words", [("cuda", "not available on this machine"), ("cuda:1", "not available"),
                                          ("tpu", "unknown device 'tpu'")])
def test_unavailable_or_unknown_device_is_one_line_exit_2_and_no_folder(cli, tmp_path, device, words):
    out = tmp_path / "run"
    code, stdout, err = cli("supervised", "--budget", "smoke", "--device", device, "--out", out)
    assert code == 2 and words in err and err.startswith("mnistlab: error:") and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


class _Stop(Exception):
    """Raised after a method's first training step: the rest of its run is not what is tested here."""


@pytest.fixture
def one_step(monkeypatch, tmp_path):
    """Every method module's `fit` replaced by one step whose batch, loss and update run under a DeviceRecorder."""
    from mnistlab import train
    from mnistlab.methods import rotnet

    monkeypatch.setattr(rotnet, "pretext_root", lambda: tmp_path / "pretext")
    real_fit, seen = train.fit, {}

    def fake_fit(module, optimizers, **kw):
        expected = next(module.parameters()).device
        rec = DeviceRecorder(expected)

        def traced(fn):
            def call(*a):  # a tensor made without a device lands on meta and is logged (on a GPU: a CPU one)
                with rec, torch.device("meta"):
                    return fn(*a)
            return call if fn is not None else None

        for key in ("batch_at", "loss_fn", "optimize", "after_step"):
            kw[key] = traced(kw.get(key))
        real_fit(module, optimizers, **{**kw, "total_steps": 1, "evaluate": None})
        seen.update(device=expected, bad=rec.bad, calls=rec.calls)
        raise _Stop

    METHODS.names()
    import sys

    for name, mod in list(sys.modules.items()):
        if name.startswith("mnistlab.methods") and getattr(mod, "fit", None) is real_fit:
            monkeypatch.setattr(mod, "fit", fake_fit)
    return seen


# every method with its smoke defaults (supervised on MNIST: the robust view, by recipe), and the options whose
# batch code the defaults do not reach
CASES = [(m, {}) for m in METHODS.names()] + [("detector", {"robust": 0.5}), ("fixmatch", {"skip_unconfident": True}),
                                              ("fixmatch", {"sinkhorn": 3, "teacher_bn": "batch"}),
                                              ("fixmatch", {"labelled_view": "strong"})]


@pytest.mark.parametrize("device", ["cpu", "auto"])
@pytest.mark.parametrize("method,extra", CASES, ids=[m + "".join(f"-{k}" for k in e) for m, e in CASES])
def test_one_step_of_every_method_keeps_tensors_on_the_model_device(one_step, tmp_path, method, extra, device):
    out = tmp_path / method
    with pytest.raises(_Stop):
        api.train(method, command="test", budget="smoke", out=out,
                  overrides={"device": device, "threads": 1, "precision": "fp32", **extra})
    want = resolve_device(device)
    assert one_step["device"].type == want.type and one_step["calls"] > 10
    assert one_step["bad"] == [], f"{method}: {one_step['bad'][:5]}"
    assert json.loads((out / "env.json").read_text())["device"] == str(want)


def test_checkpoints_load_onto_the_cpu_whatever_wrote_them(tmp_path, monkeypatch):
    """Every safetensors read goes through fileio.read_safetensors with device='cpu' (map_location), so a
    checkpoint written on a GPU loads for predict and serve on a CPU; the checkpoint says where it was written."""
    opened = []
    real = fileio.safe_open

    def spy(path, framework, device="cpu"):
        opened.append(device)
        return real(path, framework, device=device)

    monkeypatch.setattr(fileio, "safe_open", spy)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.rand(2, 1, 5, 5)).sum().backward()
    opt.step()
    meta = {"step": 3, "history": [], "sums": {}, "count": 0, "train_seconds": 1.0, "device": "cuda:0"}
    runs.save_checkpoint(tmp_path / "ck.safetensors", net, {"opt": opt}, meta)
    fresh = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    got = runs.load_checkpoint(tmp_path / "ck.safetensors", fresh, {"opt": fresh_opt})
    assert got["device"] == "cuda:0" and got["step"] == 3 and opened == ["cpu"]
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), net.state_dict().values()))
    assert fresh_opt.state_dict()["state"][0]["momentum_buffer"].device.type == "cpu"
    tensors, _ = fileio.read_safetensors(tmp_path / "ck.safetensors", missing="none")
    assert {t.device.type for t in tensors.values()} == {"cpu"}


def test_predict_runs_a_model_on_the_device_asked(cli, serve_classifier, tmp_path):
    import numpy as np

    imgs = tmp_path / "x.npy"
    np.save(imgs, np.zeros((2, 28, 28), np.uint8))
    code, out, err = cli("predict", "--run", serve_classifier, "--images", imgs, "--device", "auto", "--json")
    assert code == 0, err and len(out.splitlines()) == 2
    code, _, err = cli("predict", "--run", serve_classifier, "--images", imgs, "--device", "tpu")
    assert code == 2 and "unknown device 'tpu'" in err and len(err.strip().splitlines()) == 1


def test_serve_and_run_refuse_an_unknown_device_in_one_line_before_any_work(cli, serve_classifier, tmp_path):
    pytest.importorskip("fastapi")
    for args in (("serve", "--run", serve_classifier), ("run", "--budget", "smoke", "--out", tmp_path / "study")):
        code, _, err = cli(*args, "--device", "tpu")
        assert code == 2 and "unknown device 'tpu'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "study").exists()


def test_serve_runs_its_models_on_the_device_asked(serve_classifier):
    pytest.importorskip("fastapi")
    import numpy as np
    from fastapi.testclient import TestClient

    from mnistlab.serve.app import create_app

    app = create_app(serve_classifier, device="auto")  # read onto the CPU, then moved (cpu here)
    assert {next(c.model.parameters()).device.type for c in app.state.engine.classifiers} == {
        resolve_device("auto").type}
    with TestClient(app) as client:
        x = np.zeros((28, 28), int)
        x[6:22, 13:15] = 255  # a stroke: a blank image is refused (no ink)
        r = client.post("/api/predict", json={"pixels": x.tolist()})
    assert r.status_code == 200 and len(r.json()["probs"]) == 10
