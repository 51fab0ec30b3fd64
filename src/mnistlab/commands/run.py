"""`mnistlab run`: the whole study in one command (skeleton: grows into the full report as the methods land)."""
from __future__ import annotations

import html
from pathlib import Path

from mnistlab import fileio


def _run(args) -> int:
    from mnistlab import api
    from mnistlab.commands.data import stats

    out = Path(args.out or "runs/study")
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    s = stats("mnist")
    parts.append(f"<h2>Data</h2><p>MNIST: {s['train_size']} train / {s['test_size']} test.</p>")
    sup_dir = out / "supervised-cnn"
    run_dir, m = api.train("supervised", command="supervised", out=sup_dir, resume=True, budget=args.budget)
    parts.append(f"<h2>Supervised CNN</h2><p>test accuracy {m['test_accuracy']:.4f} in {m['wall_seconds']:.0f} s "
                 f"(<code>{html.escape(str(run_dir))}</code>)</p>")
    fileio.write_text(out / "report.html", "<!doctype html><meta charset=utf-8><title>mnistlab report</title>"
                      "<h1>mnistlab report</h1>" + "".join(parts))
    print(out / "report.html")
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="the whole study, one HTML report")
    p.add_argument("--budget", choices=("smoke", "quick", "full"), default="quick")
    p.add_argument("--out", help="study folder (default runs/study)")
    p.add_argument("--force", action="store_true", help="recompute finished stages")
    p.set_defaults(func=_run)
