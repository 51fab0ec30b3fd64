"""Stage — beyond digits: the same code on Fashion-MNIST (supervised and few labels)."""
from __future__ import annotations

from mnistlab import api, fileio
from mnistlab.methods.recipes import default_method
from mnistlab.pipeline import STAGES, Context
from mnistlab.pipeline._sections import figures, metrics, per_class_table
from mnistlab.report import conclusions
from mnistlab.report.html import Section


# The clothes recipe of benchmarks/fashion.py (padded random crop + mirror instead of the digits' rotation and zoom,
# label smoothing, mirror test-time averaging); `quick` trains it 4 epochs at the default width, `full` as benchmarked.
CLOTHES = {"degrees": 0, "zoom": 0, "translate": 0, "shift": 2, "label_smoothing": 0.1, "tta": "true"}
SUP_SETS = {"quick": {"epochs": 4, **CLOTHES}, "full": {"epochs": 10, "width": 48, **CLOTHES}}
FEW_SETS = {"quick": {"steps": 800, "refine_rounds": 1, "refine_epochs": 1.0}}  # one short self-training round


def model_of(run_dir) -> str | None:
    """The backbone a run trained (from its config: metrics do not repeat it)."""
    cfg = run_dir / "config.json"
    return fileio.read_json(cfg).get("model") if cfg.exists() else None


@STAGES.register("fashion", title="Fashion-MNIST: the same code on clothes",
                 estimate={"smoke": 30, "quick": 1313, "full": 4500}, fixed=0.1)
def stage(ctx: Context) -> Section:
    rows, figs, tables = [], [], []
    sup = ctx.dir / "supervised"
    api.train("supervised", command="supervised", out=sup, resume=True, budget=ctx.budget,
              overrides={"dataset": "fashion-mnist", "seed": 0, **ctx.settings(SUP_SETS)})
    m = metrics(sup)
    rows.append(["supervised (60k labels)", model_of(sup), m.get("test_accuracy"), m.get("wall_seconds")])
    figs += figures(sup, ctx.dir, names=["learning_curves.png", "confusion.png"], prefix="supervised: ")
    method = default_method("fashion-mnist")  # its budget presets and FEW_SETS set the schedule
    n = 100 if ctx.budget == "smoke" else 1000  # smoke runs train on a small subset: 10 labels per class fit
    fl = ctx.dir / f"fewlabel-{method}-{n}"
    api.train(method, command="fewlabel", out=fl, resume=True, budget=ctx.budget,  # --method given: no recipe
              overrides={"dataset": "fashion-mnist", "labels": n, "split_seed": 0, "seed": 0,
                         **ctx.settings(FEW_SETS)})
    m2 = metrics(fl)
    rows.append([f"{method}, {n} labels", model_of(fl), m2.get("test_accuracy"), m2.get("wall_seconds")])
    figs += figures(fl, ctx.dir, names=["confusion.png"], prefix=f"{method}, {n} labels: ")
    tables.append({"title": "Fashion-MNIST 10k test", "columns": ["run", "model", "test accuracy", "seconds"],
                   "rows": rows})
    tables.append(per_class_table([("supervised", sup), (f"{method}, {n} labels", fl)], metric="recall",
                                  title="recall per class (test set)"))
    conf, pairs = sup / "confusion.json", []
    if conf.exists():
        pairs = fileio.read_json(conf).get("most_confused", [])[:6]
        tables.append({"title": "most confused classes (supervised)", "columns": ["true", "predicted", "count"],
                       "rows": [[p["true"], p["pred"], p["count"]] for p in pairs]})
    return {"command": f"mnistlab supervised --dataset fashion-mnist --budget {ctx.budget} --seed 0 "
                       f"{' '.join(ctx.sets(SUP_SETS))} --out DIR; mnistlab fewlabel --dataset fashion-mnist "
                       f"--labels {n} --split-seed 0 --seed 0 --budget {ctx.budget} {' '.join(ctx.sets(FEW_SETS))} "
                       "--out DIR",
            "seeds": {"seed": 0, "split_seed": 0}, "tables": [t for t in tables if t], "figures": figs,
            **dict(zip(("answers", "conclusion"), conclusions.fashion_answers(rows, pairs))),
            "paragraphs": ["Horizontal flips are label-preserving for clothes (the dataset says so); methods ask the "
                           "dataset, they never branch on its name."]}
