"""Helpers that turn run folders into report pieces: metric tables, figure lists."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mnistlab import fileio
from mnistlab.models import create_model, layer_summary

SKIP_KEYS = {"method", "dataset", "budget"}


def metrics(run_dir: Path) -> dict[str, Any]:
    p = Path(run_dir) / "metrics.json"
    return fileio.read_json(p) if p.exists() else {}


def figures(run_dir: Path, base: Path, *, names: list[str] | None = None, prefix: str = "") -> list[dict]:
    """PNG/GIF figures of a run folder (all, or those named, in that order; names=[] → none), paths relative to
    `base`."""
    run_dir = Path(run_dir)
    files = [run_dir / n for n in names] if names is not None else sorted([*run_dir.glob("*.png"), *run_dir.glob("*.gif")])
    out = []
    for f in files:
        if f.is_file():
            cap = f"{prefix}{f.stem.replace('_', ' ')}"
            out.append({"path": str(f.resolve().relative_to(Path(base).resolve())), "caption": cap})
    return out


def metrics_table(rows: list[tuple[str, dict]], keys: list[str], *, title: str = "") -> dict:
    return {"title": title, "columns": ["run", *keys], "rows": [[name, *[m.get(k) for k in keys]] for name, m in rows]}


def run_folder_section(run_dir: Path) -> dict:
    """A generic section for `mnistlab report RUN_DIR`: its config, final metrics and every figure."""
    run_dir = Path(run_dir)
    cfg = fileio.read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else {}
    m = metrics(run_dir)
    scalar = {k: v for k, v in m.items() if isinstance(v, (int, float, str)) and k not in SKIP_KEYS}
    return {"id": run_dir.name, "title": f"{cfg.get('command', 'run')} {cfg.get('method') or ''} — {run_dir.name}",
            "status": "ok", "seeds": {k: cfg[k] for k in ("seed", "split_seed") if k in cfg} or None,
            "seconds": m.get("wall_seconds"),
            "tables": [{"title": "final metrics", "columns": ["metric", "value"],
                        "rows": [[k, v] for k, v in scalar.items()]}],
            "figures": figures(run_dir, run_dir)}


def class_order(run_dir: Path, report: dict) -> list[str]:
    """The classes of a per-class report in the dataset's order (the JSON file keeps its keys sorted): the order of
    the run's confusion.json, else the report's own."""
    conf = Path(run_dir) / "confusion.json"
    names = [c for c, v in report.items() if isinstance(v, dict) and c not in ("macro avg", "weighted avg")]
    if conf.exists():
        order = [c for c in fileio.read_json(conf).get("classes", []) if c in report]
        return order + [c for c in names if c not in order]
    return names


def class_report_table(run_dir: Path, *, title: str) -> dict | None:
    """The per-class report of a classifier run (precision, recall, F1, support per class, then the averages) as a
    table, from its classification_report.json; None when the run has none."""
    p = Path(run_dir) / "classification_report.json"
    if not p.exists():
        return None
    rep = fileio.read_json(p)
    rows = [[name, *[rep[name].get(k) for k in ("precision", "recall", "f1-score", "support")]]
            for name in [*class_order(run_dir, rep), "macro avg", "weighted avg"] if name in rep]
    if "accuracy" in rep:
        rows.append(["accuracy", None, None, rep["accuracy"], None])
    return {"title": title, "columns": ["class", "precision", "recall", "F1", "support"], "rows": rows}


def per_class_table(runs: list[tuple[str, Path]], *, metric: str = "f1-score", title: str) -> dict | None:
    """One per-class metric (precision, recall or f1-score) of several classifier runs side by side: a row per class,
    a column per run, from their classification_report.json; runs without one are left out."""
    reps = [(name, fileio.read_json(Path(d) / "classification_report.json")) for name, d in runs
            if (Path(d) / "classification_report.json").exists()]
    if not reps:
        return None
    classes = class_order(next(Path(d) for _, d in runs if (Path(d) / "classification_report.json").exists()),
                          reps[0][1])
    rows = [[c, *[rep.get(c, {}).get(metric) for _, rep in reps]] for c in [*classes, "macro avg"]]
    return {"title": title, "columns": ["class", *[name for name, _ in reps]], "rows": rows}


def architecture_table(run_dir: Path, *, prefix: str = "") -> dict | None:
    """The network a run trained (from its model.json, no weights needed) as the seed report drew it: one row per
    weight layer (convolution or linear) with the layers that follow it up to the next (batch norm, activation,
    pooling, dropout), the output shape (channels × height × width, or units) and the parameters."""
    spec_file = Path(run_dir) / "model.json"
    if not spec_file.exists():
        return None
    spec = fileio.read_json(spec_file)
    in_shape = tuple(spec["in_shape"])
    model = create_model(spec["name"], in_shape=in_shape, num_classes=spec["num_classes"], **spec.get("kwargs", {}))
    blocks: list[tuple[str, list]] = []  # (first leaf's name, its leaves (type, shape, params) in forward order)
    for name, kind, shape, params in layer_summary(model, in_shape):
        if not blocks or kind.startswith(("Conv", "Linear")):
            blocks.append((name, []))
        blocks[-1][1].append((kind, shape, params))
    rows = [["input", "", " × ".join(map(str, in_shape)), 0]]
    rows += [[block, " → ".join(k for k, _, _ in leaves), " × ".join(map(str, leaves[-1][1])),
              sum(p for _, _, p in leaves)] for block, leaves in blocks]
    total = sum(r[3] for r in rows)
    return {"title": f"{prefix}the network `{spec['name']}`, one row per weight layer ({total:,} parameters)",
            "columns": ["block", "layers", "output shape", "parameters"], "rows": rows}
