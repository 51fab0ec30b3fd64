"""Export round trip for every registered classifier model, in both formats; the CLI's one line; a GAN run refused."""
import json

import numpy as np
import pytest
import torch

from mnistlab.exporter import FORMATS, TOLERANCE, check_batch, export_run
from mnistlab.models import MODELS, create_model, model_spec
from mnistlab.runs import Run


def classifier_names():
    """Registered models that map (B, 1, 28, 28) images to (B, K) logits."""
    out = []
    for name in MODELS.names():
        try:
            m = create_model(name, in_shape=(1, 28, 28), num_classes=10).eval()
            with torch.no_grad():
                ok = tuple(m(torch.zeros(2, 1, 28, 28)).shape) == (2, 10)
        except Exception:  # a model that needs other inputs (features) is not an image classifier
            ok = False
        if ok:
            out.append(name)
    return out


def saved_run(tmp_path, name, pre=None):
    torch.manual_seed(0)
    model = create_model(name, in_shape=(1, 28, 28), num_classes=10).eval()
    run = Run(tmp_path / name)
    run.save_model(model, {**model_spec(name, in_shape=(1, 28, 28), num_classes=10, preprocess=pre),
                           "classes": [f"c{i}" for i in range(10)]})
    run.save_json("config.json", {"command": "test", "method": None, "dataset": "mnist"})
    run.close()
    return tmp_path / name


def test_every_image_classifier_is_covered():
    assert {"cnn", "mlp"} <= set(classifier_names())


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", classifier_names())
def test_export_round_trip(tmp_path, name, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="the export extra (onnx, onnxruntime) is not installed")
        pytest.importorskip("onnx")
    run = saved_run(tmp_path, name, pre={"binarize": 34} if name.startswith("seed-") else None)
    rec = export_run(run, format=fmt)
    assert rec["check"]["max_abs_diff"] <= TOLERANCE and rec["classes"][0] == "c0"
    side = json.loads((run / f"model{FORMATS[fmt]}.json").read_text())
    assert side["image_input"]["rule"] == "mnist" and side["check"]["tolerance"] == 1e-4
    x = check_batch((1, 28, 28), n=5)
    import mnistlab as ml

    ours = ml.load(run).predict_proba(x)
    if fmt == "onnx":
        import onnxruntime as ort

        theirs = ort.InferenceSession(str(run / "model.onnx")).run(["probs"], {"images": x})[0]
    else:
        with torch.no_grad():
            theirs = torch.jit.load(str(run / "model.pt"))(torch.from_numpy(x)).numpy()
    assert theirs.shape == (5, 10) and np.abs(theirs - ours).max() <= TOLERANCE


def test_export_cli_and_refusals(cli, tmp_path):
    run = saved_run(tmp_path, "cnn-small")
    code, out, err = cli("export", "--run", run, "--format", "torchscript", "--out", tmp_path / "m.pt")
    assert code == 0 and "max abs diff" in out and (tmp_path / "m.pt.json").exists(), err
    code, _, err = cli("export", "--run", tmp_path / "nothing")
    assert code == 2 and err.count("\n") == 1 and "no model.json" in err
