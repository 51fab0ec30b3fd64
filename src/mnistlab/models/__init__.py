"""Model registry. A model is a plain `nn.Module` taking float images (B, C, H, W) in [0, 1].

Classifiers return logits (B, num_classes) from `forward` and penultimate features (B, D) from `embed` — the space in
which distance rejection, k-NN probes and classifier-FID work.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch

from mnistlab.errors import MnistlabError
from mnistlab.registry import Registry

MODELS: Registry = Registry("model", "mnistlab.models")


def create_model(name: str, *, in_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10,
                 **kwargs: Any) -> torch.nn.Module:
    """Build a registered model; `kwargs` are the factory's own options (widths, hidden sizes, dropout…).
    An option the factory does not take is one MnistlabError naming the ones it does (`--set width=48` on an MLP)."""
    check_options(name, kwargs)
    return MODELS.get(name)(in_shape=tuple(in_shape), num_classes=num_classes, **kwargs)


def check_options(name: str, kwargs: dict) -> None:
    """Options the model's factory does not take are one MnistlabError naming those it does (`width=48` on an MLP)."""
    own = [p for p in inspect.signature(MODELS.get(name)).parameters if p not in ("in_shape", "num_classes")]
    unknown = sorted(set(kwargs) - set(own))
    if unknown:
        raise MnistlabError(f"model {name!r} has no option {', '.join(unknown)}; its options: {', '.join(own) or 'none'}")


def config_options(cfg: Any) -> dict:
    """The model options a method's config asks for, in the factories' terms: `width` w > 0 → CNN stage widths
    (w, 2w, 4w); `hidden` h > 0 → one MLP hidden layer of h; `dropout` ≥ 0. Unset (0 / < 0) = the model's default."""
    kw: dict[str, Any] = {}
    if getattr(cfg, "width", 0) > 0:
        kw["widths"] = [cfg.width, 2 * cfg.width, 4 * cfg.width]
    if getattr(cfg, "hidden", 0) > 0:
        kw["hidden"] = [cfg.hidden]
    if getattr(cfg, "dropout", -1) >= 0:
        kw["dropout"] = cfg.dropout
    return kw


def model_spec(name: str, *, in_shape, num_classes: int, preprocess: dict | None = None, **kwargs: Any) -> dict:
    """What `runs.load_model` needs to rebuild the model, saved as model.json."""
    return {"name": name, "in_shape": list(in_shape), "num_classes": num_classes, "kwargs": kwargs,
            "preprocess": preprocess or {}}


def check_spec(spec: dict, where: str) -> None:
    """A model.json read from disk holds what `model_spec` writes, in the types it writes; else one MnistlabError
    naming the field (a hand-edited or foreign file must not end in a traceback or a 10¹² -class allocation)."""
    def bad(field: str, want: str) -> MnistlabError:
        return MnistlabError(f"{where}: bad model spec: {field} must be {want}, got {spec.get(field)!r:.60}")

    def small_int(v: Any, lo: int, hi: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    if not isinstance(spec.get("name"), str):
        raise bad("name", "a model name")
    shape = spec.get("in_shape")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 3 and all(small_int(d, 1, 4096) for d in shape)):
        raise bad("in_shape", "a list of 1 to 3 sizes in 1…4096")
    if not small_int(spec.get("num_classes"), 1, 10000):
        raise bad("num_classes", "an integer in 1…10000")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise bad("kwargs", "an object")
    for key, v in kwargs.items():  # options are sizes, rates and switches: bounded before anything is built
        items = v if isinstance(v, list) else [v]
        if len(items) > MAX_OPTION_ITEMS or not all(_small_option(i) for i in items):
            raise MnistlabError(f"{where}: bad model spec: kwargs.{key} must be a number in ±{MAX_OPTION_VALUE}, a "
                                f"switch or a list of ≤ {MAX_OPTION_ITEMS} of them, got {v!r:.60}")
    pre = spec.get("preprocess", {})
    if not isinstance(pre, dict):
        raise bad("preprocess", "an object")
    if pre.get("binarize") is not None and not small_int(pre["binarize"], 0, 255):
        raise MnistlabError(f"{where}: bad model spec: preprocess.binarize must be a threshold in 0…255")
    if pre.get("features") is not None and not isinstance(pre["features"], str):
        raise MnistlabError(f"{where}: bad model spec: preprocess.features must be a feature-set name")
    classes = spec.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, (str, int)) for c in classes)):
        raise bad("classes", "a list of class names")


MAX_OPTION_ITEMS = 16  # layers in a width/hidden list
MAX_OPTION_VALUE = 1 << 16  # a width, a hidden size, a count


def _small_option(v: Any) -> bool:
    if isinstance(v, (bool, str)) or v is None:
        return not isinstance(v, str) or len(v) <= 64
    return isinstance(v, (int, float)) and abs(v) <= MAX_OPTION_VALUE


def check_size(spec: dict, available: int) -> None:
    """The model a checked spec describes holds no more numbers than `available` (the weights file's): counted on
    the meta device, which allocates nothing, so `hidden: [20000, 20000]` (1.6 GB) is refused before it is built."""
    with torch.device("meta"):
        meta = create_model(spec["name"], in_shape=tuple(spec["in_shape"]), num_classes=spec["num_classes"],
                            **spec.get("kwargs", {}))
    need = sum(t.numel() for t in meta.state_dict().values())
    if need > available:
        raise MnistlabError(f"it describes {need} weights, the weights file holds {available}")


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_summary(model: torch.nn.Module, in_shape: tuple[int, ...]) -> list[tuple[str, str, tuple[int, ...], int]]:
    """(name, layer type — with its kernel for convolutions and pools —, output shape without the batch, parameters)
    of every leaf module, in forward order, from one forward pass of a zero batch of 2 images (eval mode, no grad)."""
    rows: list[tuple[str, str, tuple[int, ...], int]] = []
    hooks = []
    for name, m in model.named_modules():
        if name and not list(m.children()):
            def hook(mod, _inp, out, name=name):
                shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()
                k = getattr(mod, "kernel_size", None)
                k = f" {k[0]}×{k[1]}" if isinstance(k, tuple) else f" {k}×{k}" if isinstance(k, int) else ""
                rows.append((name, type(mod).__name__ + k, shape, sum(p.numel() for p in mod.parameters())))
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(2, *in_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows
