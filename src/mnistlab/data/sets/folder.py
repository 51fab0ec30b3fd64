"""`folder:PATH`: an image folder with one sub-folder per class (PNG/JPEG/BMP, grey or colour, any size).

PATH/<class>/… (a stratified hold-out becomes the test set) or PATH/train/<class>/… + PATH/test/<class>/…. Options and
the image order: data/userdata.py; how files become arrays: data/userfiles.py.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnistlab.data import DATASET_KINDS, Dataset
from mnistlab.data.userdata import (Parts, assemble, class_folders, decode_files, folder_files, folder_layout,
                                    parse_spec, read_unlabelled)
from mnistlab.data.userfiles import name_some
from mnistlab.errors import MnistlabError


def _test_files(layout: dict[str, Path], classes: list[str], where: str) -> tuple[list[str], np.ndarray, int]:
    if "test" not in layout:
        return [], np.zeros(0, np.int64), 0
    tcls = class_folders(layout["test"], f"{where}/test")
    unknown = sorted(set(tcls) - set(classes))
    if unknown:
        raise MnistlabError(f"{where}/test: class folder(s) that train/ lacks (labels out of range): "
                            f"{name_some(unknown)}")
    files, y, ignored = folder_files(layout["test"], tcls, f"{where}/test")
    remap = np.asarray([classes.index(c) for c in tcls], np.int64)
    return files, remap[y], ignored


@DATASET_KINDS.register("folder")
def folder(name: str) -> Dataset:
    spec = parse_spec(name)
    where, root = f"folder:{spec.path}", Path(spec.path)
    layout = folder_layout(root, where)
    classes = class_folders(layout["train"], where)
    files, y, ignored = folder_files(layout["train"], classes, where)
    tfiles, ty, tignored = _test_files(layout, classes, where)
    x, kept, meta = decode_files(files + tfiles, root=root, where=where, rule=spec.get("preprocess"),
                                 size=spec.number("size"), invert=spec.flag("invert"), skip_bad=spec.flag("skip_bad"))
    is_train = kept < len(files)
    ktrain = kept[is_train]
    ytrain = y[ktrain]
    emptied = [classes[c] for c in range(len(classes)) if not (ytrain == c).any()]
    if emptied:
        raise MnistlabError(f"{where}: class folder(s) with no readable image left: {name_some(emptied)}")
    top = str(layout["train"]).rstrip(os.sep) + os.sep
    names = [files[i][len(top):] for i in ktrain]  # as in data.json and labels_from: <class>/<file>
    parts = Parts(x[is_train], ytrain, names, tuple(classes),
                  record={"rule": meta["rule"], "channels": meta["channels"], "skipped": meta["skipped"],
                          "skipped_count": sum(len(v) for v in meta["skipped"].values()),
                          "ignored_non_images": ignored + tignored, "cache": meta["cache"]})
    if tfiles:
        parts.test_x, parts.test_y = x[~is_train], ty[kept[~is_train] - len(files)]
    unl, urec = read_unlabelled(spec, rule=meta["rule"], channels=meta["channels"])
    parts.record.update(urec)
    return assemble(spec, parts, unl)
