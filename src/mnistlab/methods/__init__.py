"""Method registry: one file per method (supervised, rotnet, fixmatch, detector, gan…).

A method registers its entry point with its config class and budgets:

    @METHODS.register("fixmatch", config=FixMatchConfig, budgets=BUDGETS, task="fewlabel")
    def run(cfg: FixMatchConfig, run: Run, *, resume: bool) -> dict: ...   # returns final metrics

`budgets` maps smoke/quick/full to config overrides; the entry point builds data, model and optimiser and calls
`mnistlab.train.fit`. `task` groups methods under a CLI command (`supervised`, `fewlabel`, `detect`, `gan`).
"""
from mnistlab.registry import Registry

METHODS: Registry = Registry("method", "mnistlab.methods")


def methods_for(task: str) -> list[str]:
    return [n for n in METHODS.names() if METHODS.info(n).get("task") == task]
