"""Method registry: one file per method (supervised, rotnet, fixmatch, detector, gan…).

A method registers its entry point with its config class and budgets:

    @METHODS.register("fixmatch", config=FixMatchConfig, budgets=BUDGETS, task="fewlabel")
    def run(cfg: FixMatchConfig, run: Run, *, resume: bool) -> dict: ...   # returns final metrics

`budgets` maps smoke/quick/full to config overrides; the entry point builds data, model and optimiser and calls
`mnistlab.train.fit`. `task` groups methods under a CLI command (`supervised`, `fewlabel`, `detect`, `gan`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from mnistlab.registry import Info, Registry


@dataclass(frozen=True)
class MethodInfo(Info):
    """What a method registers beside its entry point."""

    config: type  # its config dataclass (a TrainConfig subclass)
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)  # smoke / quick / full → config overrides
    task: str | None = None  # the CLI command it belongs to: supervised, fewlabel, detect, gan
    model_options: Callable[[Any], dict] | None = None  # cfg → the options it passes to its model (checked early)


METHODS: Registry = Registry("method", "mnistlab.methods", info=MethodInfo)


def methods_for(task: str) -> list[str]:
    return [n for n in METHODS.names() if METHODS.info(n).task == task]
