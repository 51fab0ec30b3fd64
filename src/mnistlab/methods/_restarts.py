"""Best of K starts: one run trained from K training seeds (seed, seed + 1, …), and the start whose predictions are
the most even over its own unlabelled pool kept (`pool_balance`; no label is read for the choice).

Why: with one label a class, a FixMatch run can merge a whole class into another, and which runs do depends on the
seed. A merged class shows, without labels, as a class the model gives almost no image
(benchmarks/notes/fewlabel-10-probes.md).

Each start is a complete run folder under `restarts/seed-S/` (config, env, splits, metrics, model). The kept start's
model and outputs are copied into the run folder; `restarts.json` lists every start with its balance. A resumed run
reuses the starts that finished and resumes the one that did not.
"""
from __future__ import annotations

import dataclasses
import shutil
from typing import Any, Callable

from mnistlab import fileio
from mnistlab.errors import MnistlabError
from mnistlab.runs import LOCK, Run

MAX_RESTARTS = 16
OWN_FILES = {"config.json", "env.json", "metrics.json", "MODEL_CARD.md", LOCK}  # the run folder's own records


def start(cfg: Any, run: Run, once: Callable[..., dict], seed: int) -> dict:
    """The start of training seed `seed` in `restarts/seed-S/`: finished → its metrics; else trained (resumed)."""
    conf = fileio.read_json(run.path("config.json"))  # the run's command and method, written by `Run.start`
    folder = run.path("restarts") / f"seed-{seed}"
    begun = (folder / "config.json").exists()
    sub = Run(folder, resume=True, writer=run.writer)
    try:
        sub_cfg = dataclasses.replace(cfg, seed=seed, restarts=1)
        if sub.finished:
            sub.check_config(sub_cfg, command=conf["command"], method=conf["method"])
            return fileio.read_json(sub.path("metrics.json"))
        sub.start(sub_cfg, command=conf["command"], method=conf["method"])
        return sub.finish({"method": conf["method"], "dataset": getattr(cfg, "dataset", None), "seed": seed,
                           "budget": cfg.budget, **once(sub_cfg, sub, resume=begun)})
    finally:
        sub.close()


def keep(records: list[dict]) -> dict:
    """The start with the largest `pool_balance` (ties, and starts without one, to the lower seed)."""
    return max(records, key=lambda r: (r["pool_balance"] if r["pool_balance"] is not None else -1.0, -r["seed"]))


def best_of(cfg: Any, run: Run, once: Callable[..., dict]) -> dict:
    """Train `cfg.restarts` starts with `once(cfg, run, resume=…)`, keep the most even, copy it into `run`."""
    if not 1 < cfg.restarts <= MAX_RESTARTS:
        raise MnistlabError(f"restarts must be between 1 and {MAX_RESTARTS}, got {cfg.restarts}")
    records = []
    for seed in range(cfg.seed, cfg.seed + cfg.restarts):
        m = start(cfg, run, once, seed)
        records.append({"seed": seed, "pool_balance": m.get("pool_balance"),
                        "pool_rarest_class": m.get("pool_rarest_class"), "wall_seconds": m.get("wall_seconds"),
                        "metrics": m})
    kept = keep(records)
    src = run.path("restarts") / f"seed-{kept['seed']}"
    if run.writer:
        for f in sorted(p for p in src.iterdir() if p.is_file() and p.name not in OWN_FILES):
            with fileio.atomic_path(run.path(f.name)) as tmp:
                shutil.copyfile(f, tmp)
        run.save_json("restarts.json", {"rule": "largest pool_balance (no label read); ties to the lower seed",
                                        "kept_seed": kept["seed"],
                                        "starts": [{k: v for k, v in r.items() if k != "metrics"} for r in records]})
    out = {k: v for k, v in kept["metrics"].items() if k not in ("wall_seconds", "seed")}
    return {**out, "kept_seed": kept["seed"], "restarts": cfg.restarts,
            "restart_balances": [r["pool_balance"] for r in records]}
