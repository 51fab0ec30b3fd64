"""`npz:PATH`: arrays `x` (N×H×W or N×H×W×C, uint8) and `y` (int), with optional `x_test`/`y_test` and `classes`
(strings). No test arrays: a stratified hold-out becomes the test set. Options: data/userdata.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistlab.data import DATASET_KINDS, Dataset
from mnistlab.data.userarrays import read_arrays, to_nchw
from mnistlab.data.userdata import Parts, assemble, parse_spec, read_unlabelled
from mnistlab.data.userfiles import fit, name_some, resolve_rule
from mnistlab.errors import MnistlabError


def labels(y: np.ndarray, n: int, k: int | None, where: str, key: str) -> np.ndarray:
    """Integer labels, one per image, in 0…k-1 (k None: any ≥ 0); else one error naming the offending entries."""
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise MnistlabError(f"{where}: {key} must be a 1-D integer array, got {y.dtype} {y.shape}")
    if len(y) != n:
        raise MnistlabError(f"{where}: x/y length mismatch: {n} images but {len(y)} labels in {key}")
    bad = np.flatnonzero((y < 0) | (y >= k if k is not None else False))
    if len(bad):
        raise MnistlabError(f"{where}: {len(bad)} label(s) out of range 0…{(k or 1) - 1 if k else 'K'}: "
                            f"{name_some(f'{key}[{i}]={y[i]}' for i in bad)}")
    return y.astype(np.int64)


def _apply_rule(x: np.ndarray, spec, rule: str) -> np.ndarray:
    """(N, C, H, W) → the rule's (N, C, S, S); `none` keeps the arrays."""
    invert = spec.flag("invert")
    if rule == "none":
        return 255 - x if invert else x
    return np.stack([fit(a.transpose(1, 2, 0) if a.shape[0] == 3 else a[0], rule=rule, size=spec.number("size"),
                         invert=invert) for a in x])


@DATASET_KINDS.register("npz")
def npz(name: str) -> Dataset:
    spec = parse_spec(name)
    where = f"npz:{spec.path}"
    if not Path(spec.path).is_file():
        raise MnistlabError(f"{where}: no such file")
    a = read_arrays(Path(spec.path), where, want=("x", "y"), optional=("x_test", "y_test", "classes"))
    x = to_nchw(a["x"], where, "x")
    names = [str(c) for c in a["classes"]] if "classes" in a else None
    y = labels(a["y"], len(x), len(names) if names else None, where, "y")
    k = len(names) if names else int(y.max()) + 1
    empty = [names[c] if names else str(c) for c in range(k) if not (y == c).any()]
    if empty:
        raise MnistlabError(f"{where}: {len(empty)} empty class(es) (no image in y): {name_some(empty)}")
    if ("x_test" in a) != ("y_test" in a):
        raise MnistlabError(f"{where}: x_test and y_test come together (only one of them is there)")
    rule = resolve_rule(spec.get("preprocess"), {x.shape[2:]})
    parts = Parts(_apply_rule(x, spec, rule), y, [str(i) for i in range(len(x))], tuple(names or map(str, range(k))),
                  record={"rule": rule, "channels": int(x.shape[1]), "skipped": {}, "skipped_count": 0})
    if "x_test" in a:
        tx = to_nchw(a["x_test"], where, "x_test")
        if tx.shape[1:] != x.shape[1:]:
            raise MnistlabError(f"{where}: x_test images are {tx.shape[1:]}, x images {x.shape[1:]}")
        parts.test_x = _apply_rule(tx, spec, rule)
        parts.test_y = labels(a["y_test"], len(tx), k, where, "y_test")
    unl, urec = read_unlabelled(spec, rule=rule, channels=int(x.shape[1]))
    parts.record.update(urec)
    return assemble(spec, parts, unl)
