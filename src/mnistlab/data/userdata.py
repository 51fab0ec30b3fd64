"""Your own images as a data set: `folder:PATH` (one sub-folder per class) and `npz:PATH` (arrays x, y[, x_test, y_test]).

The options are part of the data set's name, `KIND:PATH?key=value&…` (as FixMatch names its splits `cifar10.3@250-1`),
so config.json records them and every command that reloads a run's data set gets the same arrays:
    preprocess=auto|none|resize|centre  size=28  invert=0|1   how files become model inputs (data/userfiles.py)
    unlabelled=PATH      a folder or .npz (key x) of images without labels, added to the training pool (label -1)
    labels_from=FILE     one index (into the image order below) or file name (as in data.json) a line: the only
                         images whose labels training may use; the others join the unlabelled pool (label -1)
    skip_bad=0|1         skip corrupt files / decompression bombs (counted in data.json) instead of refusing
    test_fraction=0.2  holdout_seed=0   with no test set, a seeded stratified hold-out becomes the test set
Folder layout: PATH/<class>/… or PATH/train/<class>/… + PATH/test/<class>/…. Image order: by file path inside its class
folder, then class, so files numbered in their original order (00001.png …) keep that order.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistlab import fileio
from mnistlab.data import Dataset
from mnistlab.data.sources import cache_path
from mnistlab.data.splits import holdout
from mnistlab.data.userarrays import read_arrays, to_nchw
from mnistlab.data.userfiles import (MAX_IMAGES, BadImage, decode, fit, list_image_names, name_some, probe,
                                     resolve_rule)
from mnistlab.errors import MnistlabError

UNLABELLED = -1  # the label of an image whose class training may not use
KINDS = ("folder", "npz")
CACHE_VERSION = 1  # bump when decoding changes: old cache entries are then never read
DEFAULTS = {"preprocess": "auto", "size": "28", "invert": "0", "unlabelled": "", "labels_from": "", "skip_bad": "0",
            "test_fraction": "0.2", "holdout_seed": "0"}
PATH_KEYS = ("unlabelled", "labels_from")


@dataclass(frozen=True)
class Spec:
    kind: str
    path: str
    options: dict = field(default_factory=dict)

    def get(self, key: str) -> str:
        return self.options.get(key, DEFAULTS[key])

    def flag(self, key: str) -> bool:
        return self.get(key).lower() in ("1", "true", "yes", "on")

    def number(self, key: str, typ=int):
        try:
            return typ(self.get(key))
        except ValueError:
            raise MnistlabError(f"{self.kind}:{self.path}: option {key}={self.get(key)!r} is not a number") from None


def is_user_dataset(name: object) -> bool:
    return isinstance(name, str) and name.split(":", 1)[0] in KINDS and ":" in name


def parse_spec(name: str) -> Spec:
    """`folder:PATH?preprocess=centre&skip_bad=1` → Spec; an unknown option is one error naming the valid ones."""
    kind, _, rest = name.partition(":")
    if kind not in KINDS or not rest:
        raise MnistlabError(f"bad data set {name!r}; user data is folder:PATH or npz:PATH")
    path, _, query = rest.partition("?")
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise MnistlabError(f"{kind}:{path}: unknown option {', '.join(unknown)}; valid: {', '.join(DEFAULTS)}")
    return Spec(kind, path, options)


def compose(dataset: str, **options: object) -> str:
    """A data set name with its options, paths made absolute (so a run folder's config works from anywhere) and
    defaults left out: `compose("folder:scans", preprocess="centre")` → "folder:/home/u/scans?preprocess=centre"."""
    spec = parse_spec(dataset)
    merged = {**spec.options, **{k: v for k, v in options.items() if v is not None}}
    clean = {}
    for k, v in merged.items():
        if k not in DEFAULTS:
            raise MnistlabError(f"unknown data option {k!r}; valid: {', '.join(DEFAULTS)}")
        v = ("1" if v else "0") if isinstance(v, bool) else str(v)
        if k in PATH_KEYS and v:
            v = os.path.abspath(v)
        if v != DEFAULTS[k]:
            clean[k] = v
    query = urllib.parse.urlencode(sorted(clean.items()), safe="/:")
    return f"{spec.kind}:{os.path.abspath(spec.path)}" + (f"?{query}" if query else "")


# ------------------------------------------------------------------------------------------------ decoding + cache
def _cache_key(files: list[str], params: dict) -> str:
    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **params}, sort_keys=True).encode())
    for f in files:
        st = os.stat(f)
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return "user-" + h.hexdigest()[:24]


def _read_cache(key: str):
    path = cache_path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["x"], z["kept"], json.loads(bytes(z["meta"]).decode())
    except Exception:  # a damaged cache only costs a decode: rebuild it
        return None


def _write_cache(key: str, x: np.ndarray, kept: np.ndarray, meta: dict) -> None:
    try:
        with fileio.atomic_path(cache_path(key)) as tmp, open(tmp, "wb") as f:
            np.savez(f, x=x, kept=kept, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    except (MnistlabError, OSError):
        pass  # a read-only or full data home only costs speed next time


def _refuse_bad(where: str, bad: dict[str, list[str]], skip_bad: bool, total: int) -> None:
    bombs, corrupt = bad.get("bomb", []), bad.get("corrupt", [])
    if not bombs and not corrupt:
        return
    if skip_bad and len(bombs) + len(corrupt) < total:
        return
    parts = []
    if corrupt:
        parts.append(f"{len(corrupt)} unreadable or corrupt file(s): {name_some(corrupt)}")
    if bombs:
        parts.append(f"{len(bombs)} decompression bomb(s) (over the pixel/byte limit): {name_some(bombs)}")
    hint = "no usable image left" if skip_bad else "--skip-bad skips them (counted in the run record)"
    raise MnistlabError(f"{where}: " + "; ".join(parts) + f"; {hint}")


def decode_files(files: list[str], *, root: Path, where: str, rule: str, size: int, invert: bool,
                 skip_bad: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """Files → (uint8 (M, C, S, S), indices of the M kept files, meta), through the cache (path + sizes + mtimes)."""
    params = {"rule": rule, "size": size, "invert": invert, "skip_bad": skip_bad}
    key = _cache_key(files, params)
    hit = _read_cache(key)
    if hit is not None:
        return hit[0], hit[1], {**hit[2], "cache": "hit"}
    top = str(root).rstrip(os.sep) + os.sep
    rel = [f[len(top):] if f.startswith(top) else f for f in files]
    bad: dict[str, list[str]] = {}
    probes = {}
    for i, f in enumerate(files):
        try:
            probes[i] = probe(f)
        except BadImage as e:
            bad.setdefault(e.kind, []).append(rel[i])
    by_channels: dict[int, list[int]] = {}
    for i, p in probes.items():
        by_channels.setdefault(p.channels, []).append(i)
    if len(by_channels) > 1:
        fewer = min(by_channels.values(), key=len)
        kinds = " and ".join(f"{len(v)} {'grey' if c == 1 else 'colour'}" for c, v in sorted(by_channels.items()))
        raise MnistlabError(f"{where}: mixed channel counts ({kinds}); the {len(fewer)} odd one(s): "
                            f"{name_some(rel[i] for i in fewer)}")
    channels = next(iter(by_channels), 1)
    resolved = resolve_rule(rule, {p.size for p in probes.values()})
    out, kept = [], []
    for i in sorted(probes):
        try:
            out.append(fit(decode(files[i], channels), rule=resolved, size=size, invert=invert))
            kept.append(i)
        except BadImage as e:
            bad.setdefault(e.kind, []).append(rel[i])
    _refuse_bad(where, bad, skip_bad, len(files))
    shapes = {a.shape for a in out}
    if len(shapes) > 1:  # only `none` can get here with mixed sizes
        raise MnistlabError(f"{where}: preprocess=none needs one image size, got {name_some(sorted(shapes))}; "
                            "use preprocess=resize (or auto)")
    x = np.stack(out) if out else np.zeros((0, channels, size, size), np.uint8)
    meta = {"rule": resolved, "channels": channels, "skipped": {k: sorted(v) for k, v in bad.items()}}
    kept_arr = np.asarray(kept, np.int64)
    _write_cache(key, x, kept_arr, meta)
    return x, kept_arr, {**meta, "cache": "miss"}


# ------------------------------------------------------------------------------------------------ folders
def class_folders(root: Path, where: str) -> list[str]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise MnistlabError(f"{where}: no class sub-folders (expected PATH/<class>/image.png …)")
    return classes


def folder_files(root: Path, classes: list[str], where: str) -> tuple[list[str], np.ndarray, int]:
    """Every image of the class folders (full paths) in the documented order, its label, and the count of ignored
    non-images."""
    items, ignored, empty = [], 0, []
    for c, name in enumerate(classes):
        folder = os.path.join(root, name)
        names, ign = list_image_names(folder)
        ignored += ign
        if not names:
            empty.append(folder)
        items += [(n, c, os.path.join(folder, n)) for n in names]
    if empty:
        raise MnistlabError(f"{where}: {len(empty)} empty class folder(s) (no .png/.jpg/.jpeg/.bmp): "
                            f"{name_some(empty)}")
    if len(items) > MAX_IMAGES:
        raise MnistlabError(f"{where}: more than {MAX_IMAGES} images; split the data set")
    items.sort(key=lambda t: (t[0], t[1]))
    return [f for _, _, f in items], np.asarray([c for _, c, _ in items], np.int64), ignored


def folder_layout(root: Path, where: str) -> dict[str, Path]:
    """{"train": …[, "test": …]}: a train/ + test/ pair of class folders gives the test set; else all is train."""
    if not root.is_dir():
        raise MnistlabError(f"{where}: no such folder")
    subs = {d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")}
    if {"train", "test"} <= subs:
        return {"train": root / "train", "test": root / "test"}
    return {"train": root}


# ------------------------------------------------------------------------------------------------ assembly
@dataclass
class Parts:
    """What a kind (folder / npz) read: uint8 (N, C, S, S) images, labels, names (for messages and labels_from)."""

    train_x: np.ndarray
    train_y: np.ndarray
    train_names: list[str]
    classes: tuple[str, ...]
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None
    record: dict = field(default_factory=dict)


def read_labels_from(path: str, names: list[str], where: str) -> np.ndarray:
    """A text file of indices or file names, one a line (# comments, blank lines ignored) → sorted unique indices."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        raise MnistlabError(f"labels_from {path}: {e.strerror or e}") from None
    index = {n: i for i, n in enumerate(names)}
    out, unknown = [], []
    for raw in lines:
        s = raw.split("#", 1)[0].strip()
        if not s:
            continue
        if s.lstrip("-").isdigit():
            i = int(s)
            (out.append(i) if 0 <= i < len(names) else unknown.append(s))
        elif s in index:
            out.append(index[s])
        else:
            unknown.append(s)
    if unknown:
        raise MnistlabError(f"labels_from {path}: {len(unknown)} line(s) name no image of {where} (indices 0…"
                            f"{len(names) - 1} or file names as in data.json): {name_some(unknown)}")
    if not out:
        raise MnistlabError(f"labels_from {path}: no index or file name in it")
    return np.unique(np.asarray(out, np.int64))


def _split_test(spec: Spec, parts: Parts, fixed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(train indices, test indices, how) into parts.train_*: the given test set, or a seeded stratified hold-out
    (never one of the `labels_from` images: those are the user's labels)."""
    n = len(parts.train_y)
    if parts.test_x is not None:
        return np.arange(n), np.zeros(0, np.int64), "the data set's own test set"
    frac, seed = spec.number("test_fraction", float), spec.number("holdout_seed")
    if not 0 < frac < 1:
        raise MnistlabError(f"{spec.kind}:{spec.path}: test_fraction must be in (0, 1), got {frac}")
    pool = np.setdiff1d(np.arange(n), fixed) if fixed is not None else np.arange(n)
    keep, test = holdout(len(pool), (1 - frac, frac), seed=seed, labels=parts.train_y[pool])
    how = f"stratified hold-out of {frac:g} (holdout_seed {seed}), saved in splits.npz as data_test"
    return np.sort(np.concatenate([pool[keep], fixed if fixed is not None else []]).astype(np.int64)), pool[test], how


def assemble(spec: Spec, parts: Parts, unlabelled: np.ndarray | None) -> Dataset:
    """Parts + options → the Dataset (test set or hold-out, labels_from mask, unlabelled pool); extra holds the
    record (data.json), the input rule (model.json) and the hold-out indices (splits.npz)."""
    where = f"{spec.kind}:{spec.path}"
    lf = spec.get("labels_from")
    fixed = read_labels_from(lf, parts.train_names, where) if lf else None
    tr, te, how = _split_test(spec, parts, fixed)
    train_x, train_y = parts.train_x[tr], parts.train_y[tr].copy()
    if fixed is not None:
        train_y[~np.isin(tr, fixed)] = UNLABELLED
    test_x, test_y = ((parts.test_x, parts.test_y) if parts.test_x is not None
                      else (parts.train_x[te], parts.train_y[te]))
    if unlabelled is not None and len(unlabelled):
        if unlabelled.shape[1:] != train_x.shape[1:]:
            raise MnistlabError(f"{where}: the unlabelled images come out {unlabelled.shape[1:]}, the labelled ones "
                                f"{train_x.shape[1:]}; give preprocess=resize (and size=) so both match")
        train_x = np.concatenate([train_x, unlabelled])
        train_y = np.concatenate([train_y, np.full(len(unlabelled), UNLABELLED, np.int64)])
    counts = {c: int((parts.train_y == k).sum()) for k, c in enumerate(parts.classes)}
    record = {**parts.record, "dataset": spec.kind, "path": spec.path, "options": spec.options,
              "classes": list(parts.classes), "images_per_class": counts, "train_images": int(len(train_y)),
              "labelled_images": int((train_y >= 0).sum()), "unlabelled_images": int((train_y < 0).sum()),
              "test_images": int(len(test_y)), "test_set": how,
              "labels_from": {"file": lf, "images": int(len(fixed))} if fixed is not None else None}
    sample = train_x[:: max(1, len(train_x) // 10000)].astype(np.float32) / 255.0
    for a in (train_x, test_x):
        a.setflags(write=False)
    return Dataset(spec_name(spec), train_x, train_y, test_x, test_y.astype(np.int64), classes=parts.classes,
                   mean=float(sample.mean()), std=float(sample.std()),
                   extra={"record": record, "input": input_rule(spec, parts.record), "data_train": tr,
                          "data_test": te})


def input_rule(spec: Spec, rec: dict) -> dict:
    """How a raw image becomes this data set's uint8 input: saved in model.json as `image_input`."""
    return {"rule": rec.get("rule", "none"), "size": spec.number("size"), "invert": spec.flag("invert"),
            "channels": rec.get("channels", 1)}


def spec_name(spec: Spec) -> str:
    query = urllib.parse.urlencode(sorted(spec.options.items()), safe="/:")
    return f"{spec.kind}:{spec.path}" + (f"?{query}" if query else "")


def read_unlabelled(spec: Spec, *, rule: str, channels: int) -> tuple[np.ndarray | None, dict]:
    """The `unlabelled=` folder (any layout) or .npz (key x) → uint8 (M, C, S, S) under the data set's own rule."""
    path = spec.get("unlabelled")
    if not path:
        return None, {}
    p, where = Path(path), f"unlabelled {path}"
    if p.is_file() and p.suffix.lower() == ".npz":
        x = to_nchw(read_arrays(p, where, want=("x",))["x"], where, "x")
        if rule != "none":
            x = np.stack([fit(a.transpose(1, 2, 0) if a.shape[0] == 3 else a[0], rule=rule, size=spec.number("size"),
                              invert=spec.flag("invert")) for a in x])
        elif spec.flag("invert"):
            x = 255 - x
        return x, {"unlabelled_source": str(p)}
    if not p.is_dir():
        raise MnistlabError(f"{where}: no such folder or .npz file")
    files = [os.path.join(p, n) for n in list_image_names(str(p))[0]]
    if not files:
        raise MnistlabError(f"{where}: no .png/.jpg/.jpeg/.bmp images in it")
    x, _, meta = decode_files(files, root=p, where=where, rule=rule, size=spec.number("size"),
                              invert=spec.flag("invert"), skip_bad=spec.flag("skip_bad"))
    if x.shape[1] != channels:
        raise MnistlabError(f"{where}: {x.shape[1]}-channel images, the labelled ones have {channels}")
    return x, {"unlabelled_source": str(p), "unlabelled_skipped": meta["skipped"]}
