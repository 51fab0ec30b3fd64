"""Fashion-MNIST everywhere: every registered method runs on it with no code change (`--budget smoke`), classifier
outputs carry the clothes' class names, and methods ask the dataset what is label-preserving instead of testing its
name. Parametrised over the METHODS registry, so a method added later is covered without touching this file."""
import ast
import json
import math
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import mnistlab.methods
from mnistlab import api
from mnistlab.data import DATASETS, load_dataset
from mnistlab.data.sets.fashion_mnist import CLASSES as FASHION
from mnistlab.errors import MnistlabError
from mnistlab.infer import logits, mirror_tta, tta_rule
from mnistlab.methods import METHODS
from mnistlab.methods.fixmatch import FixMatchConfig
from mnistlab.runs import load_model

# the most any case trains/evaluates on; a method's own smoke budget wins when it is already smaller
TINY = {"train_subset": 1000, "test_subset": 300}
CLASSIFIER_TASKS = ("supervised", "fewlabel")


def fashion_overrides(method: str) -> dict:
    info = METHODS.info(method)
    smoke = info.get("budgets", {}).get("smoke", {})
    fields = info["config"].__dataclass_fields__
    out = {"dataset": "fashion-mnist", "threads": 1}
    if info.get("task") == "detector":
        # a digit detector trains on digits; Fashion-MNIST is what it must reject, never seen in training
        if "ood_dataset" not in fields:
            pytest.skip("a digit detector without an out-of-distribution set to judge it on")
        out = {"ood_dataset": "fashion-mnist", "threads": 1}
    for key, cap in TINY.items():
        if key in fields and not 0 < int(smoke.get(key, 0)) <= cap:
            out[key] = cap
    return out


def finite_or_none(v) -> bool:
    return v is None or isinstance(v, (str, bool)) or not isinstance(v, (int, float)) or math.isfinite(v)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_runs_on_fashion(method, tmp_path):
    out, m = api.train(method, command=METHODS.info(method).get("task") or method, out=tmp_path / method,
                       budget="smoke", overrides=fashion_overrides(method))
    config = json.loads((out / "config.json").read_text())
    bad = {k: v for k, v in m.items() if not finite_or_none(v)}
    assert not bad, f"non-finite metrics: {bad}"
    assert (out / "metrics.json").is_file() and (out / "env.json").is_file()
    task = METHODS.info(method).get("task")
    if task == "detector":
        assert config["ood_dataset"] == "fashion-mnist"
        assert any("fashion" in k for k in m), f"no Fashion-MNIST metric in {sorted(m)}"
        return
    assert config["dataset"] == "fashion-mnist" and m["dataset"] == "fashion-mnist"
    if task in CLASSIFIER_TASKS:
        # per-class results under the clothes' names, a confusion matrix over them, the confused pairs by name
        assert 0.0 <= m["test_accuracy"] <= 1.0
        report = json.loads((out / "classification_report.json").read_text())
        assert all(name in report for name in FASHION), sorted(report)
        conf = json.loads((out / "confusion.json").read_text())
        assert conf["classes"] == list(FASHION) and len(conf["matrix"]) == 10
        assert sum(map(sum, conf["matrix"])) == (config.get("test_subset") or 10000)  # every test image counted
        assert all(p["true"] in FASHION and p["pred"] in FASHION and p["true"] != p["pred"]
                   for p in conf["most_confused"])
        assert all(set(p["classes"]) <= set(FASHION) for p in conf.get("confused_pairs", []))
        if issubclass(METHODS.info(method)["config"], FixMatchConfig):
            # SSL on clothes: whole-pixel weak view (the dataset is `aligned`), mirror averaging saved with the model
            assert m["weak_view"] == "shift" and m["tta"] == "hflip" and "test_no_tta_accuracy" in m
            assert json.loads((out / "model.json").read_text())["preprocess"] == {"tta": "hflip"}
            model, spec = load_model(out)  # the saved model predicts as the reported metrics did: with the mirror
            test_x = load_dataset("fashion-mnist").test_x[: config["test_subset"]]
            # in the run's own precision: bf16 rounds logits by ~1e-2, which is not what this checks
            lg = logits(model, test_x, spec=spec["preprocess"], precision=m["precision"])
            assert np.allclose(lg, np.load(out / "test_logits.npy"), atol=1e-4)
    elif task == "gan":
        assert list(out.glob("*.png")), "a GAN run shows its samples"


def test_datasets_declare_what_is_label_preserving():
    assert load_dataset("fashion-mnist").hflip_safe is True  # a mirrored shirt is a shirt
    assert load_dataset("mnist").hflip_safe is False  # a mirrored 3 is not a 3
    assert load_dataset("fashion-mnist").aligned is True  # upright, centred: jitter by shifts, not warps
    assert load_dataset("mnist").aligned is False
    assert load_dataset("fashion-mnist").classes == FASHION and FASHION[0] == "T-shirt/top"


def _dataset_literals(node: ast.AST, names: set[str]) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and (n.value in names or any(w in n.value.lower() for w in ("mnist", "cifar")))]


def test_methods_do_not_branch_on_dataset_names():
    """`if cfg.dataset == "fashion-mnist"` in a method is what `Dataset.hflip_safe` & co. are there to avoid.

    Looks at comparisons, `match` cases and dict look-ups keyed by a dataset-name literal, in every method module
    (the `_` helpers too). A config default such as `dataset: str = "mnist"` is fine.
    """
    names = set(DATASETS.names())
    found = []
    for mod in pkgutil.iter_modules(mnistlab.methods.__path__):
        path = Path(mnistlab.methods.__path__[0]) / f"{mod.name}.py"
        if not path.is_file():
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            suspects = []
            if isinstance(node, ast.Compare):
                suspects = _dataset_literals(node, names)
            elif isinstance(node, ast.match_case):
                suspects = _dataset_literals(node.pattern, names)
            elif isinstance(node, ast.Dict) and node.keys:
                suspects = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in names]
            if suspects:
                found.append(f"{path.name}:{node.lineno}: {suspects}")
    assert not found, "methods branch on dataset names: " + "; ".join(found)


def test_confused_pairs_count_both_directions():
    import numpy as np

    from mnistlab.evaluate.metrics import confused_pairs

    cm = np.array([[8, 1, 1], [0, 10, 0], [3, 0, 7]])  # a→c 1, c→a 3: the pair a–c leads with 4
    pairs = confused_pairs(cm, ["a", "b", "c"])
    assert pairs[0] == {"classes": ["a", "c"], "count": 4, "a_to_b": 1, "b_to_a": 3, "rate": 0.2}
    assert pairs[1]["classes"] == ["a", "b"] and pairs[1]["count"] == 1 and len(pairs) == 2


def test_tta_rule_one_vocabulary_for_every_method():
    clothes, digits = load_dataset("fashion-mnist"), load_dataset("mnist")
    assert [tta_rule(s, clothes) for s in (True, "true", "hflip", "auto")] == ["hflip"] * 4
    assert [tta_rule(s, clothes) for s in (False, "false", "none")] == ["none"] * 3
    assert tta_rule("auto", digits) == "none" and tta_rule(False, digits) == "none"
    for bad, message in (("hflip", "mirrored mnist image may change class"), (True, "may change class"),
                         ("vflip", "unknown tta 'vflip'")):
        with pytest.raises(MnistlabError, match=message):
            tta_rule(bad, digits if bad != "vflip" else clothes)


@pytest.mark.slow
def test_mirror_tta_is_saved_with_the_model_and_refused_on_digits(tmp_path):
    import torch

    x = torch.rand(4, 1, 28, 28)
    fn = lambda t: t.flatten(1)[:, :3]  # noqa: E731  (B, 3): not mirror-symmetric
    assert torch.equal(mirror_tta(fn, x, {}), fn(x))
    assert torch.allclose(mirror_tta(fn, x, {"tta": "hflip"}), (fn(x) + fn(x.flip(-1))) / 2)

    over = {"dataset": "fashion-mnist", "threads": 1, "tta": True, "train_subset": 512, "test_subset": 200}
    out, m = api.train("supervised", command="supervised", out=tmp_path / "f", budget="smoke", overrides=over)
    model, spec = load_model(out)
    assert spec["preprocess"]["tta"] == "hflip"
    data = load_dataset("fashion-mnist")
    lg = logits(model, data.test_x[:200], spec=spec["preprocess"], precision=m["precision"])
    assert np.allclose(lg, np.load(out / "test_logits.npy"), atol=1e-4)  # the reported metrics used the mirror too
    with pytest.raises(MnistlabError, match="mirror"):
        api.train("supervised", command="supervised", out=tmp_path / "m", budget="smoke",
                  overrides={"dataset": "mnist", "tta": True, "threads": 1})
    assert not (tmp_path / "m" / "metrics.json").exists()


def test_supervised_augmentation_and_width_options_are_applied():
    import torch

    from mnistlab.methods.supervised import SupervisedConfig, augment_batch
    from mnistlab.models import config_options, create_model

    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    still = SupervisedConfig(degrees=0, translate=0, zoom=0, shift=0, cutout=0)
    assert torch.equal(augment_batch(x, gen(), still, hflip=False), x)  # every knob off: the images untouched
    crop = SupervisedConfig(degrees=0, translate=0, zoom=0, shift=2, cutout=0)
    y = augment_batch(x, gen(), crop, hflip=False)
    assert torch.equal(y.sum((1, 2, 3)), x.sum((1, 2, 3)))  # an exact integer shift: no ink lost or blurred
    assert set(y.unique().tolist()) <= {0.0, 1.0} and not torch.equal(y, x)
    kw = config_options(SupervisedConfig(width=8))
    assert kw["widths"] == [8, 16, 32]
    model = create_model("cnn", in_shape=(1, 28, 28), num_classes=10, **kw)
    assert model.feature_dim == 32 and model(x).shape == (8, 10)
