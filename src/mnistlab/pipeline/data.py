"""Stage — the data: sizes, class counts, a-priori class probabilities, example grids (brief Q1.1 and Q3)."""
from __future__ import annotations

import numpy as np

from mnistlab import api, fileio
from mnistlab.pipeline import STAGES, Context
from mnistlab.report import conclusions, plots
from mnistlab.report.html import Section


@STAGES.register("data", title="Data: MNIST and Fashion-MNIST", estimate={"smoke": 5, "quick": 10, "full": 10},
                 fixed=1.0)
def stage(ctx: Context) -> Section:
    tables, figures, stats = [], [], {}
    for name in ("mnist", "fashion-mnist"):
        s = stats[name] = api.dataset_stats(name)
        api.example_grid(name, ctx.dir / f"{name}_examples.png", n=32)
        figures.append({"path": f"{name}_examples.png", "caption": f"{name}: 32 random training images"})
        fig = plots.bar_chart(s["priors"]["all"], s["classes"], title=f"{name}: a-priori class probabilities "
                              f"(frequencies over all {s['train_size'] + s['test_size']} images)", ylabel="P(class)")
        with fileio.atomic_path(ctx.dir / f"{name}_priors.png") as tmp:  # never a half-written figure
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        figures.append({"path": f"{name}_priors.png", "caption": f"{name}: priors"})
        tables.append({"title": f"{name}: {s['train_size']} train / {s['test_size']} test, images {s['shape']}",
                       "columns": ["class", "train", "test", "prior (all)"],
                       "rows": [[c, a, b, p] for c, a, b, p in zip(s["classes"], s["train_class_counts"],
                                                                  s["test_class_counts"], s["priors"]["all"])]})
        if name == "mnist":
            pri = np.array(s["priors"]["all"])
            para = (f"MNIST priors range from {pri.min():.4f} (digit {pri.argmin()}) to {pri.max():.4f} "
                    f"(digit {pri.argmax()}); a uniform prior would be 0.1.")
    return {"command": "mnistlab data stats --dataset mnist --json; mnistlab data show --dataset mnist --n 32 "
                       "--out grid.png", "seeds": {"grid": 0}, "paragraphs": [para], "tables": tables,
            "figures": figures, **dict(zip(("answers", "conclusion"), conclusions.data_answers(stats)))}
