"""What a run on user data (`folder:` / `npz:`) adds around a method: the checks made before any folder exists, and
the records written into the run folder (data.json, `image_input` in model.json, the hold-out in splits.npz).

Also writes every run's MODEL_CARD.md (report/model_card.py) once the run is finished.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio
from mnistlab.data import Dataset, load_dataset
from mnistlab.data.userdata import UNLABELLED, compose, is_user_dataset
from mnistlab.data.userfiles import name_some
from mnistlab.errors import MnistlabError
from mnistlab.methods import METHODS
from mnistlab.report.model_card import write_model_card
from mnistlab.runs import Run


def prepare(cfg: Any, *, method: str, options: dict[str, Any] | None) -> Dataset | None:
    """Fold `options` into cfg.dataset (canonical, absolute paths), load the user data set and check it fits the
    method — all before a run folder exists, so bad data leaves nothing behind. None for the built-in data sets."""
    given = {k: v for k, v in (options or {}).items() if v not in (None, False, "")}
    if not is_user_dataset(getattr(cfg, "dataset", None)):
        if given:
            raise MnistlabError(f"--{next(iter(given)).replace('_', '-')} is for user data (--dataset folder:PATH or "
                                f"npz:PATH), not {getattr(cfg, 'dataset', None)!r}")
        return None
    cfg.dataset = compose(cfg.dataset, **given)
    ds = load_dataset(cfg.dataset)
    task = METHODS.info(method).get("task")
    if (ds.train_y == UNLABELLED).any() and task != "fewlabel":
        raise MnistlabError(f"{method} trains on labels only; unlabelled images (--unlabelled, --labels-from) are "
                            "for the few-label methods (mnistlab fewlabel)")
    if task == "fewlabel" and getattr(cfg, "labels", 0):
        check_label_counts(ds, cfg.labels, subset=getattr(cfg, "train_subset", 0))
    return ds


def check_label_counts(ds: Dataset, n_labels: int, *, subset: int = 0) -> None:
    """`--labels n` draws n // K of each class (data/splits.py): a class with fewer images is one error naming them.
    With unlabelled images and n ≥ the labelled count, every labelled image is used (no per-class draw)."""
    y = ds.train_y[:subset] if subset else ds.train_y
    known = y >= 0
    if not known.all() and n_labels >= known.sum():
        return
    k = ds.num_classes
    need = [n_labels // k + (c < n_labels % k) for c in range(k)]
    short = [f"{ds.classes[c]} ({int((y == c).sum())} of {need[c]})" for c in range(k) if (y == c).sum() < need[c]]
    if short:
        raise MnistlabError(f"{ds.name}: --labels {n_labels} draws {n_labels // k}+ image(s) of each class; too few "
                            f"in {len(short)} class(es): {name_some(short)}")


def record(run: Run, ds: Dataset) -> None:
    """data.json (what was read, skipped, held out), `image_input` in model.json (the rule predict / serve / export
    apply to raw images), and the hold-out indices (into the data set's image order) in splits.npz."""
    if not run.writer:
        return
    run.save_json("data.json", ds.extra["record"])
    spec_path = run.path("model.json")
    if spec_path.exists():
        spec = fileio.read_json(spec_path)
        spec["image_input"] = ds.extra["input"]
        spec.setdefault("classes", list(ds.classes))
        fileio.write_json(spec_path, spec)
    old = {}
    if run.path("splits.npz").exists():
        with np.load(run.path("splits.npz"), allow_pickle=False) as z:
            old = {k: z[k] for k in z.files}
    run.save_splits(**old, data_train=ds.extra["data_train"], data_test=ds.extra["data_test"])


def write_card(run_dir: str | Path) -> None:
    """MODEL_CARD.md from the run's records (a card that cannot be written costs the card, never the run)."""
    try:
        write_model_card(Path(run_dir))
    except Exception as e:  # noqa: BLE001 — the card is derived documentation; the run itself is complete
        print(f"mnistlab: note: no MODEL_CARD.md for {run_dir} ({type(e).__name__}: {e})", file=sys.stderr)
