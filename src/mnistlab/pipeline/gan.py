"""Stage — a GAN that draws digits (and a conditional one that draws the digit asked for), measured."""
from __future__ import annotations

from mnistlab import api, fileio
from mnistlab.methods import METHODS
from mnistlab.pipeline import STAGES, Context
from mnistlab.pipeline._sections import figures, metrics
from mnistlab.report import conclusions
from mnistlab.report.html import Section


# `run --budget quick` trains each GAN for 2 epochs (≈ 1.5 min each on 2 idle cores) instead of the command's 6
SETS = {"quick": {"epochs": 2, "train_subset": 60000}}
# a slow machine's pace shortens the epochs by training on fewer images (the first train_subset), not by cutting
# epochs: the brief asks for a grid per epoch. Never below 0.3 (18 000 images): at 0.15 (282 steps) the samples were
# mostly not digits yet (MNIST score 2.5 / 3.9 for gan / cgan, against 3.8 / 7.3 at 0.25; run-quick-epyc-paced.md)
PACED = ("train_subset",)
# generated images the metrics are computed on: smoke generators are noise, 1000 show that and cost a tenth
EVAL_N = {"smoke": 1000, "quick": 10000, "full": 10000}


@STAGES.register("gan", title="GAN: drawing digits, epoch by epoch, measured",
                 estimate={"smoke": 40, "quick": 890, "full": 5400}, fixed=0.09,
                 min_pace=0.3, uses=("classification",))
def stage(ctx: Context) -> Section:
    if "gan" not in METHODS:
        return {"status": "skipped", "message": "no GAN method is registered"}
    classifier = ctx.stage_dir("classification") / "supervised-cnn"
    # the study's own classifier scores the samples; without it (its stage failed or has not run) `gan eval` trains
    # its cached default, and the section says so
    have_clf = (classifier / "metrics.json").exists()
    n_eval = EVAL_N[ctx.budget]
    rows, figs, paras = [], [], []
    for cond in (False, True):
        name = "cgan" if cond else "gan"
        out = ctx.dir / name
        api.train(name, command="gan train", out=out, resume=True, budget=ctx.budget,
                  overrides={"dataset": "mnist", "seed": 0, **ctx.settings(SETS, PACED)})
        api.evaluate_gan(out, classifier=classifier if have_clf else None, n=n_eval, device=ctx.device)
        m = metrics(out)
        ev_m = fileio.read_json(out / "gan_eval.json") if (out / "gan_eval.json").exists() else {}
        hist = ev_m.get("class_histogram", {})
        rows.append([name, ev_m.get("mnist_score"), ev_m.get("fid"), ev_m.get("fid_floor_train_vs_test"),
                     hist.get("min_fraction"), hist.get("max_fraction"), ev_m.get("conditional_agreement"),
                     m.get("wall_seconds")])
        # curves, samples and the GIF, then the fixed-noise grid drawn at the end of every epoch (grids/epoch_NNN.png)
        others = [p.name for p in sorted([*out.glob("*.png"), *out.glob("*.gif")])]
        grids = [f"grids/{p.name}" for p in sorted(out.glob("grids/epoch_*.png"))]
        figs += figures(out, ctx.dir, names=others + grids, prefix=f"{name}: ")
    table = {"title": f"MNIST score (max 10), classifier-FID (with the real train-vs-test floor), class balance of "
                      f"{n_eval} samples, conditional agreement",
             "columns": ["model", "MNIST score", "FID", "FID floor", "min class frac.", "max class frac.",
                         "cond. agreement", "seconds"], "rows": rows}
    paras.append("The discriminator is trained to tell training images from generated ones, then the generator to "
                 "make the discriminator call its images real (non-saturating loss); a fixed noise batch is drawn "
                 "at the end of every epoch (the grids below, epoch 0 = before training). See docs/gan.md.")
    if not have_clf:
        paras.append("The classification stage's CNN was not there: the samples were scored by `gan eval`'s own "
                     "cached supervised classifier.")
    return {"command": f"mnistlab gan train [--conditional] --budget {ctx.budget} --seed 0 "
                       f"{' '.join(ctx.sets(SETS, PACED))} --out DIR; "
                       f"mnistlab gan eval --run DIR --n {n_eval}{' --classifier CLASSIFIER_RUN' if have_clf else ''}",
            "seeds": {"seed": 0},
            "paragraphs": paras, "tables": [table], "figures": figs,
            **dict(zip(("answers", "conclusion"), conclusions.gan_answers(rows)))}
