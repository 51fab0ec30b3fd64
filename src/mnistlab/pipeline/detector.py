"""Stage — is there a digit? The detector trained against generated images, judged on images it never saw."""
from __future__ import annotations

from mnistlab import api
from mnistlab.methods import METHODS
from mnistlab.pipeline import STAGES, Context
from mnistlab.pipeline._sections import figures, metrics
from mnistlab.report import conclusions
from mnistlab.report.html import Section


# `run --budget quick`: the quarter-compute backbone, 1.5 epochs and 0.3 epoch per left-out family (17 of them)
# instead of `cnn`, 3 and 1 (the study's 30 minutes; `mnistlab detect train` runs the full recipe)
SETS = {"quick": {"model": "cnn-small", "epochs": 1.5, "lofo_epochs": 0.3}}


@STAGES.register("detector", title="Digit / non-digit detector", estimate={"smoke": 40, "quick": 580, "full": 1800},
                 fixed=0.2)
def stage(ctx: Context) -> Section:
    if "detector" not in METHODS:
        return {"status": "skipped", "message": "no detector method is registered"}
    out = ctx.dir / "detector"
    api.train("detector", command="detect", out=out, resume=True, budget=ctx.budget,
              overrides={"dataset": "mnist", "seed": 0, **ctx.settings(SETS)})
    m = metrics(out)
    rows = [[k, m.get(k)] for k in ("accuracy", "val_accuracy", "digit_recall", "nondigit_recall", "auroc_fashion",
                                    "fpr95_fashion", "lofo_min_accuracy", "threshold_p_digit", "wall_seconds")
            if k in m]
    fam = [[f, m.get("family_accuracy", {}).get(f), m.get("lofo_accuracy", {}).get(f)]
           for f in sorted(set(m.get("family_accuracy", {})) | set(m.get("lofo_accuracy", {})))]
    tables = [{"title": "MNIST test + freshly generated negatives (new seed); Fashion-MNIST never seen in training",
               "columns": ["metric", "value"], "rows": rows}]
    if fam:
        tables.append({"title": "per generator family: accuracy when trained with it / when left out of training",
                       "columns": ["family", "accuracy (in training)", "accuracy (left out)"], "rows": fam})
    figs = figures(out, ctx.dir, names=[n for n in ("families.png", "learning_curves.png", "confusion.png",
                                                    "predictions.png", "scores.png", "lofo.png")
                                        if (out / n).exists()])
    return {"command": f"mnistlab detect train --dataset mnist --budget {ctx.budget} --seed 0 "
                       f"{' '.join(ctx.sets(SETS))} --out DIR",
            "seeds": {"seed": 0}, "tables": tables, "figures": figs,
            **dict(zip(("answers", "conclusion"), conclusions.detector_answers(m))),
            "paragraphs": ["The decision threshold on p(digit) is chosen on validation data; test images and "
                           "generator seeds are new. AUROC vs Fashion-MNIST measures out-of-distribution detection."]}
