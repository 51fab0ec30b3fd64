"""Helpers that turn run folders into report pieces: metric tables, figure lists."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mnistlab import fileio

SKIP_KEYS = {"method", "dataset", "budget"}


def metrics(run_dir: Path) -> dict[str, Any]:
    p = Path(run_dir) / "metrics.json"
    return fileio.read_json(p) if p.exists() else {}


def figures(run_dir: Path, base: Path, *, names: list[str] | None = None, prefix: str = "") -> list[dict]:
    """PNG/GIF figures of a run folder (all, or those named, in that order), paths relative to `base`."""
    run_dir = Path(run_dir)
    files = [run_dir / n for n in names] if names else sorted([*run_dir.glob("*.png"), *run_dir.glob("*.gif")])
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
