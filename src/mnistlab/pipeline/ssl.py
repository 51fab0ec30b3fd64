"""Stage — the headline: semi-supervised learning with 100 labels, beside the literature."""
from __future__ import annotations

from mnistlab import api, fileio
from mnistlab.methods.recipes import default_method, default_recipe
from mnistlab.pipeline import STAGES, Context
from mnistlab.pipeline._sections import figures, metrics
from mnistlab.report import conclusions
from mnistlab.report.html import Section
from mnistlab.runs import REPO

# MNIST, 100 labels, test error % (sources in ANCHORS.md / benchmarks/results/fewlabel.md)
LITERATURE = [("CatGAN (Springenberg 2016)", 1.91), ("VAT (Miyato et al.)", 1.36),
              ("Ladder networks (Rasmus et al. 2015)", 1.06), ("Improved GAN (Salimans et al. 2016)", 0.93),
              ("Triple-GAN (Li et al. 2017)", 0.91), ("Bad GAN (Dai et al. 2017)", 0.795),
              ("IIC, no labels (Ji et al. 2019)", 0.77), ("seed report RotNet", 23.0)]
LABELS = {"smoke": [100], "quick": [100], "full": [10, 100, 1000]}
# `run --budget quick`: a third of the headline schedule (≈ 3 min on 2 idle cores, ≈ 98.5 % instead of ≈ 99 %+);
# `mnistlab fewlabel` on its own (and benchmarks/fewlabel.py) runs the full recipe. On a slow machine the study's pace
# shortens it, but never below 400 steps (min_pace): the headline section keeps a schedule worth showing
# one short self-training round instead of the recipe's three (≈ 30 s, not ≈ 3 min)
SETS = {"quick": {"steps": 1000, "refine_rounds": 1, "refine_epochs": 1.0}}


@STAGES.register("ssl", title="Semi-supervised learning: MNIST with 10 to 1000 labels",
                 estimate={"smoke": 40, "quick": 850, "full": 9000}, fixed=0.1,
                 min_pace=0.4)
def stage(ctx: Context) -> Section:
    method = default_method()
    rows, figs = [], []
    for n in LABELS[ctx.budget]:
        run_method, recipe = default_recipe(labels=n)  # what `mnistlab fewlabel --labels n` runs
        out = ctx.dir / f"{run_method}-{n}"
        api.train(run_method, command="fewlabel", out=out, resume=True, budget=ctx.budget, recipe=recipe,
                  overrides={"labels": n, "split_seed": 0, "seed": 0, **ctx.settings(SETS)})
        m = metrics(out)
        rows.append([f"mnistlab {run_method}, {n} labels", m.get("test_accuracy"),
                     100 * (1 - m["test_accuracy"]) if m.get("test_accuracy") is not None else None,
                     m.get("wall_seconds")])
        figs += figures(out, ctx.dir, names=[f for f in ("learning_curves.png", "confusion.png")
                                             if (out / f).exists()], prefix=f"{run_method}, {n} labels: ")
    lit = [[name, 1 - err / 100, err, None] for name, err in LITERATURE]
    tables = [{"title": "this run (one label draw, split seed 0) and published results for 100 labels",
               "columns": ["method", "test accuracy", "test error %", "seconds"], "rows": rows + lit}]
    paras = [f"Method: `{method}` (the default recipe of `mnistlab fewlabel`). The model evaluated is the one the "
             "method's config names (final or EMA weights); no checkpoint is chosen on the test set."]
    bench = REPO / "benchmarks" / "results"
    if (bench / "fewlabel.json").exists():
        paras.append("The benchmark (benchmarks/fewlabel.py, several label draws, mean ± std) is summarised in "
                     "benchmarks/results/fewlabel.md; its accuracy-vs-labels plot is shown below.")
        for png in sorted(bench.glob("fewlabel*.png")):
            dest = ctx.dir / png.name
            fileio.write_bytes(dest, png.read_bytes())
            figs.append({"path": png.name, "caption": f"benchmark: {png.stem} (benchmarks/results/{png.name})"})
    return {"command": f"mnistlab fewlabel --labels 100 --split-seed 0 --seed 0 --budget {ctx.budget} "
                       f"{' '.join(ctx.sets(SETS))} --out DIR",
            "seeds": {"split_seed": 0, "seed": 0}, "paragraphs": paras, "tables": tables, "figures": figs,
            **dict(zip(("answers", "conclusion"), conclusions.ssl_answers(method, rows, LITERATURE[:-1])))}
