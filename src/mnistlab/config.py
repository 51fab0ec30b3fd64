"""Typed configs: one dataclass per method, merged in a fixed order (later wins):

    dataclass defaults < recipe (a dataset's best settings, `fewlabel` without --method) < budget preset
    < --config file < command-line flags and --set

`methods/recipes.py` holds the recipes and does the merge (`resolve_config`); `mnistlab config show` prints each
field's source. The merged config is saved as `config.json` in the run folder and inside every checkpoint, so a run
can be rebuilt.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mnistlab.errors import MnistlabError

BUDGETS = ("smoke", "quick", "full")


@dataclass
class TrainConfig:
    """Fields every training command has. Methods subclass it and add their own."""

    dataset: str = "mnist"
    model: str = "cnn"
    seed: int = 0  # training seed: init, batch order, augmentation, dropout
    budget: str = "quick"  # smoke (seconds, tests) | quick (default) | full (benchmarks)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (auto = cuda, else mps, else cpu); mnistlab.precision
    precision: str = "auto"  # auto | bf16 | fp16 | fp32: per device, see mnistlab.precision
    batch_size: int = 128
    epochs: float = 10.0
    lr: float = 1e-3
    weight_decay: float = 0.0
    ckpt_every: int = 500  # steps between checkpoints (also written at every evaluation)
    threads: int = 0  # torch intra-op threads; 0 = torch's default (one per core)
    train_subset: int = 0  # >0: use only the first N training images (tests, quick looks)
    test_subset: int = 0  # >0: evaluate on the first N test images only (smoke runs)


def _coerce(value: Any, typ: Any, name: str) -> Any:
    """Convert a command-line string (or JSON value) to the field's declared type."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        typ = args[0]
    try:
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if typ in (int, float, str):
            out = typ(value)
            if typ is float and not math.isfinite(out):  # nan, inf, 1e400: no setting means them
                raise ValueError(out)
            if typ is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return out
        if typing.get_origin(typ) in (list, tuple):
            if isinstance(value, str):
                value = json.loads(value) if value.startswith("[") else [v for v in value.split(",") if v]
            inner = (typing.get_args(typ) or (str,))[0]
            return type(value)([_coerce(v, inner, name) for v in value]) if typing.get_origin(typ) is list \
                else tuple(_coerce(v, inner, name) for v in value)
    except (TypeError, ValueError, json.JSONDecodeError):
        raise MnistlabError(f"bad value {value!r} for {name} (expected {getattr(typ, '__name__', typ)})") from None
    return value


def merge(cls: type, *layers: dict[str, Any]) -> Any:
    """Build `cls` from its defaults updated by each layer in turn; unknown keys are an error listing the valid ones."""
    hints = typing.get_type_hints(cls)
    valid = {f.name for f in fields(cls)}
    values: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            key = key.replace("-", "_")
            if key not in valid:
                raise MnistlabError(f"unknown setting {key!r} for {cls.__name__}; valid: {', '.join(sorted(valid))}")
            values[key] = _coerce(value, hints[key], key)
    cfg = cls(**values)
    if getattr(cfg, "budget", "quick") not in BUDGETS:
        raise MnistlabError(f"unknown budget {cfg.budget!r}; valid: {', '.join(BUDGETS)}")
    check_ranges(cfg)
    return cfg


POSITIVE = ("batch_size", "epochs")
NON_NEGATIVE = ("lr", "weight_decay", "ckpt_every", "threads", "train_subset", "test_subset",
                "seed", "split_seed", "data_seed")  # numpy's generators take no negative seed
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def check_ranges(cfg: Any) -> None:
    """The shared fields' admissible values, and a config class's `RANGES` {field: (low, high)}, inclusive."""
    for name in POSITIVE:
        if hasattr(cfg, name) and not getattr(cfg, name) > 0:
            raise MnistlabError(f"{name} must be > 0, got {getattr(cfg, name)}")
    for name in NON_NEGATIVE:
        if hasattr(cfg, name) and not getattr(cfg, name) >= 0:
            raise MnistlabError(f"{name} must be ≥ 0, got {getattr(cfg, name)}")
    for name, (lo, hi) in getattr(cfg, "RANGES", {}).items():  # a method's own bounds, declared on its config
        if not lo <= getattr(cfg, name) <= hi:
            raise MnistlabError(f"{name} must be in {lo:g}…{hi:g}, got {getattr(cfg, name)}")
    if hasattr(cfg, "precision") and cfg.precision not in PRECISIONS:
        raise MnistlabError(f"unknown precision {cfg.precision!r}; valid: {', '.join(PRECISIONS)}")
    if not isinstance(getattr(cfg, "device", "auto"), str):
        raise MnistlabError(f"device must be a name (auto, cpu, cuda, cuda:N, mps), got {cfg.device!r}")


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """`--set key=value` pairs → dict."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MnistlabError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


MAX_CONFIG_BYTES = 1 << 20  # a settings file is a few hundred bytes; 1 MiB bounds what reading one can cost


def load_config_file(path: str | None) -> dict[str, Any]:
    """A JSON object of settings from a regular file of at most MAX_CONFIG_BYTES (not a device, FIFO or folder)."""
    if not path:
        return {}
    try:
        if not Path(path).is_file():  # follows links; /dev/zero, a FIFO or a folder would read forever or fail oddly
            raise MnistlabError(f"config file {path} is not a regular file" if Path(path).exists()
                                else f"config file {path} not found")
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise MnistlabError(f"config file {path} is over {MAX_CONFIG_BYTES} bytes")
        obj = json.loads(raw.decode())
    except FileNotFoundError:
        raise MnistlabError(f"config file {path} not found") from None
    except OSError as e:
        raise MnistlabError(f"config file {path}: cannot read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise MnistlabError(f"config file {path}: not valid JSON ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(obj, dict):
        raise MnistlabError(f"config file {path}: expected a JSON object")
    return obj


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
