"""Every registered method at `--budget smoke` (fp32, 1 thread) → its final metrics: the refactor-invariance record.

`python tests/smoke_invariance.py` records tests/data/smoke_metrics.json (run it on the code before a refactor);
tests/test_refactor_invariance.py reruns the methods and compares. Timings are left out (they vary run to run).
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

RECORD = Path(__file__).parent / "data" / "smoke_metrics.json"
def cpu_flags() -> list[str]:
    """The CPU features that change fp32 kernels (and so the last digits of a run's numbers), sorted as recorded."""
    from mnistlab.precision import cpu_flags as flags

    return sorted(flags())


def _numbers(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "seconds" not in k}


def smoke_metrics(method: str, work: Path) -> dict[str, float]:
    """`method` at budget smoke, seed 0, fp32, 1 thread, in a fresh folder under `work`; its numeric final metrics."""
    from mnistlab import api
    from mnistlab.methods import rotnet

    saved = rotnet.pretext_root
    rotnet.pretext_root = lambda: work / "pretext"  # a private pretext cache: never reuse (or leave) a real one
    try:
        # recipe={}: the method's own defaults, as when the record was made (a dataset recipe is a later choice)
        _, metrics = api.train(method, command="invariance", budget="smoke", out=work / method, recipe={},
                               overrides={"precision": "fp32", "threads": 1, "seed": 0})
    finally:
        rotnet.pretext_root = saved
    return _numbers(metrics)


def record() -> dict:
    import torch

    from mnistlab.methods import METHODS

    n = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            out = {"cpu_flags": cpu_flags(), "torch": torch.__version__,
                   "methods": {m: smoke_metrics(m, Path(tmp)) for m in METHODS.names()}}
        finally:
            torch.set_num_threads(n)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    data = record()
    RECORD.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(data['methods'])} methods recorded in {RECORD}")
