"""Stage — the classification study of the brief (Part 2): supervised CNN and MLP, curves, predictions."""
from __future__ import annotations

from mnistlab.pipeline import STAGES, Context
from mnistlab.pipeline._sections import figures, metrics, metrics_table

BUDGET_ARGS = {  # per study budget: the supervised runs' own budget and overrides
    "smoke": ["--budget", "smoke"],
    "quick": ["--budget", "quick"],
    "full": ["--budget", "full"],
}


@STAGES.register("classification", order=4, title="Classification study: supervised CNN and MLP",
                 estimate={"smoke": 15, "quick": 420, "full": 900})
def stage(ctx: Context) -> dict:
    rows, figs = [], []
    for model in ("cnn", "mlp"):
        out = ctx.dir / f"supervised-{model}"
        ctx.cli("supervised", "--model", model, *BUDGET_ARGS[ctx.budget], "--seed", 0, "--out", out, "--resume")
        m = metrics(out)
        rows.append((model, m))
        figs += figures(out, ctx.dir, names=["learning_curves.png", "confusion.png", "prediction_0.png",
                                             "prediction_2.png"], prefix=f"{model}: ")
    table = metrics_table(rows, ["test_accuracy", "test_loss", "params", "epochs", "wall_seconds"],
                          title="60k train / 10k test, winner-takes-all decision, final epoch (no selection on test)")
    return {"command": f"mnistlab supervised --model cnn {' '.join(BUDGET_ARGS[ctx.budget])} --seed 0 --out DIR",
            "seeds": {"seed": 0}, "tables": [table], "figures": figs}
