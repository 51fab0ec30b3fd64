"""Stage — a GAN that draws digits (and a conditional one that draws the digit asked for), measured."""
from __future__ import annotations

from mnistlab.methods import METHODS
from mnistlab.pipeline import STAGES, Context
from mnistlab.pipeline._sections import figures, metrics


# `run --budget quick` trains each GAN for 2 epochs (≈ 1.5 min each on 2 idle cores) instead of the command's 6
SETS = {"quick": {"epochs": 2}}


@STAGES.register("gan", order=6, title="GAN: drawing digits, epoch by epoch, measured",
                 estimate={"smoke": 40, "quick": 240, "full": 1800})
def stage(ctx: Context) -> dict:
    if "gan" not in METHODS:
        return {"status": "skipped", "message": "no GAN method is registered"}
    classifier = ctx.stage_dir("classification") / "supervised-cnn"
    rows, figs, paras = [], [], []
    for cond in (False, True):
        name = "cgan" if cond else "gan"
        out = ctx.dir / name
        ctx.cli("gan", "train", *(["--conditional"] if cond else []), "--dataset", "mnist", "--budget", ctx.budget,
                "--seed", 0, *ctx.sets(SETS), "--out", out, "--resume")
        ev = ["--classifier", classifier] if (classifier / "metrics.json").exists() else []
        ctx.cli("gan", "eval", "--run", out, *ev)
        m = metrics(out)
        ev_m = {}
        for f in ("eval.json", "gan_eval.json"):
            if (out / f).exists():
                from mnistlab import fileio

                ev_m = fileio.read_json(out / f)
        merged = {**m, **ev_m}
        rows.append([name, merged.get("mnist_score"), merged.get("fid"), merged.get("fid_floor"),
                     merged.get("class_min_fraction"), merged.get("class_max_fraction"),
                     merged.get("conditional_agreement"), merged.get("wall_seconds")])
        pngs = sorted(out.glob("*.png")) + sorted(out.glob("*.gif"))
        grids = [p.name for p in pngs if "epoch" in p.name]
        others = [p.name for p in pngs if "epoch" not in p.name]
        figs += figures(out, ctx.dir, names=others + grids, prefix=f"{name}: ")
    table = {"title": "MNIST score (max 10), classifier-FID (with the real train-vs-test floor), class balance of 10k "
                      "samples, conditional agreement",
             "columns": ["model", "MNIST score", "FID", "FID floor", "min class frac.", "max class frac.",
                         "cond. agreement", "seconds"], "rows": rows}
    paras.append("The discriminator is trained to tell training images from generated ones, then the generator to "
                 "make the discriminator call its images real (non-saturating loss); a fixed noise batch is drawn "
                 "at the end of every epoch. See docs/gan.md.")
    return {"command": f"mnistlab gan train [--conditional] --budget {ctx.budget} --seed 0 "
                       f"{' '.join(ctx.sets(SETS))} --out DIR; "
                       "mnistlab gan eval --run DIR --classifier CLASSIFIER_RUN", "seeds": {"seed": 0},
            "paragraphs": paras, "tables": [table], "figures": figs}
