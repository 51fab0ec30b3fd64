"""Stage — the classification study of the brief (Part 2, Q1–Q5): supervised CNN and MLP, the iterations /
learning-rate / hidden-size studies, 60/20/20 selection and k-fold CV, posteriors, and the two kinds of rejection."""
from __future__ import annotations

from mnistlab import api
from mnistlab.pipeline import STAGES, Context
from mnistlab.pipeline._sections import architecture_table, class_report_table, figures, metrics, metrics_table
from mnistlab.pipeline._study import StudyConfig, run_study_kind
from mnistlab.report.conclusions import classification_answers
from mnistlab.report.html import Section

# Part 2's studies (StudyConfig fields). quick: 5 values each on the real 60/40 split of all 70k images, and 3-fold
# CV, kept to minutes by a small MLP (128 hidden units, no augmentation) rather than by less data; smoke: 512-image
# points (tests); full: `mnistlab study NAME --budget quick`'s grids
STUDIES = {"smoke": {"budget": "smoke", "sets": {"figures": False}},
           "quick": {"budget": "quick", "hidden": 128, "epochs": 2, "k": 3,
                     "sets": {"augment": False, "figures": False}, "hiddens": [64, 256], "lrs": [1e-3, 1e-2],
                     "epochs_list": [2]},
           "full": {"budget": "quick"}}
VALUES = {"quick": {"iterations": [0.5, 1, 2, 4, 8], "lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                    "hidden": [16, 32, 128, 512, 1024]}}
# `run --budget quick`: 3 epochs of the CNN (≈ 99.3 %, ≈ 1.5 min) instead of the command's 12 (≈ 99.6 %, ≈ 6 min)
SETS = {"cnn": {"quick": {"epochs": 3}}, "mlp": {"quick": {"epochs": 6}}}


def supervised_part(ctx: Context, tables: list, figs: list) -> None:
    """Q1 — the CNN and the MLP on the official 60k / 10k split."""
    rows = []
    for model in ("cnn", "mlp"):
        out = ctx.dir / f"supervised-{model}"
        api.train("supervised", command="supervised", out=out, resume=True, budget=ctx.budget,
                  overrides={"model": model, "seed": 0, **ctx.settings(SETS[model])})
        rows.append((model, metrics(out)))
        figs += figures(out, ctx.dir, names=[n for n in ("learning_curves.png", "confusion.png", "prediction_0.png",
                                                         "prediction_2.png", "mistakes.png")
                                             if (out / n).exists()], prefix=f"{model}: ")
    tables.append(metrics_table(rows, ["test_accuracy", "test_loss", "params", "epochs", "wall_seconds"],
                                title="Q1 — 60k train / 10k test, winner-takes-all, final epoch (nothing chosen on "
                                      "test)"))
    tables += [class_report_table(ctx.dir / f"supervised-{m}", title=f"Q1 — {m}: per-class report (test set)")
               for m in ("cnn", "mlp")]
    tables += [architecture_table(ctx.dir / f"supervised-{m}", prefix="Q1 — ") for m in ("cnn", "mlp")]


def posterior_part(ctx: Context, paras: list, figs: list) -> dict:
    """Q4 — posteriors of every image of the base, and whether each row sums to 1."""
    post = ctx.dir / "posteriors"
    p = api.posteriors(ctx.dir / "supervised-cnn", out=post)
    paras.append(f"Q4 — posteriors of the CNN for {p['images']} images ({p['order']}): max |Σp − 1| = "
                 f"{p['max_abs_sum_error']:.2e}; every row sums to 1 within 1e-5: {p['all_rows_sum_to_one']}. "
                 f"Recognition rate on the whole base: {p['recognition_rate']['all']:.4f}.")
    figs += figures(post, ctx.dir, prefix="posteriors: ")
    return p


def reject_part(ctx: Context, tables: list, paras: list, figs: list) -> dict:
    """Q5 — ambiguity (Chow, margin) and distance rejection, with Fashion-MNIST and noise as outliers."""
    rej = ctx.dir / "reject"
    r = api.reject(ctx.dir / "supervised-cnn", out=rej, ood=["fashion-mnist"])
    paras += [f"Q5 — {line}" for line in r.get("interpretation", [])]
    frac = r.get("rejected_fraction", {})
    if frac:
        rules = sorted({k for v in frac.values() for k in v})
        tables.append({"title": "fraction rejected at the chosen thresholds (chosen on training data)",
                       "columns": ["inputs", *rules], "rows": [[src, *[v.get(k) for k in rules]]
                                                               for src, v in frac.items()]})
    for rule, d in r.get("rules", {}).items():  # the sweep behind the curves: a dozen thresholds per rule
        if d.get("thresholds"):
            tables.append({"title": f"Q5 — {rule} rejection, test images: rates at each threshold",
                           "columns": ["threshold", "rejected", "recognised (of all)", "accuracy on the accepted",
                                       "error on the accepted"],
                           "rows": [list(v) for v in zip(d["thresholds"], d["rejection_rate"], d["recognition_rate"],
                                                         d["accuracy_accepted"], d["error_accepted"])]})
    figs += figures(rej, ctx.dir, prefix="rejection: ")
    return r


def cv_tables(s: dict, paras: list) -> list:
    """Q2 — the 60/20/20 selection and the k-fold CV of the selected candidate."""
    sel, kf = s.get("selected", {}), s.get("kfold") or {}
    paras.append(f"Q2 — {s.get('protocol')}: selected {sel.get('name')} on validation "
                 f"(val acc. {sel.get('val_accuracy', float('nan')):.4f}); test once: "
                 f"{s.get('selected_test_accuracy', float('nan')):.4f}. "
                 + (f"{kf.get('k')}-fold CV: test {kf.get('test_accuracy_mean', 0):.4f} ± "
                    f"{kf.get('test_accuracy_std', 0):.4f}." if kf else ""))
    out = [{"title": "Q2 — 60/20/20: candidates compared on the validation part (test kept aside)",
            "columns": ["candidate", "train acc.", "val acc.", "val loss"],
            "rows": [[c["name"], c.get("train_accuracy"), c.get("val_accuracy"), c.get("val_loss")]
                     for c in s.get("candidates", [])]}]
    if kf.get("folds"):
        out.append({"title": f"Q2 — {kf['k']}-fold cross-validation of {sel.get('name')} ({kf.get('on')})",
                    "columns": ["fold", "val acc.", "test acc."],
                    "rows": [[f["fold"], f["val_accuracy"], f["test_accuracy"]] for f in kf["folds"]]})
    return out


def study_config(ctx: Context, name: str) -> StudyConfig:
    """The stage's settings of one Part 2 study at this budget."""
    fields = dict(STUDIES[ctx.budget])
    values = VALUES.get(ctx.budget, {}).get(name)
    if name != "cv":
        fields = {k: v for k, v in fields.items() if k not in ("hiddens", "lrs", "epochs_list", "k")}
    return StudyConfig(study=name, device=ctx.device, values=values, **fields)


def study_part(ctx: Context, tables: list, paras: list, figs: list) -> dict:
    """Q1.6/Q1.7/Q2 — studies of iterations, learning rate, hidden size; 60/20/20 selection and k-fold CV."""
    done = {}
    for name in ("iterations", "lr", "hidden", "cv"):
        out = ctx.dir / f"study-{name}"
        cfg = study_config(ctx, name)
        s = done[name] = run_study_kind(cfg, out)
        if name == "cv":
            tables += cv_tables(s, paras)
        else:
            tables.append({"title": f"study: {name} ({s.get('model')}, split {s.get('split')}, budget {cfg.budget}; "
                                    "test = the held-out 40 %)", "kind": "study",
                           "columns": [name, "train acc.", "test acc.", "train loss", "test loss", "seconds"],
                           "rows": [[r_["value"], r_.get("train_accuracy"), r_.get("test_accuracy"),
                                     r_.get("train_loss"), r_.get("test_loss"), r_.get("wall_seconds")]
                                    for r_ in s["rows"]]})
        figs += figures(out, ctx.dir, names=[n for n in ("study.png", "study_costs.png", "study_history.png")
                                             if (out / n).exists()], prefix=f"study {name}: ")
    return done


# the figure that shows each answer of "results at a glance" (paths relative to the stage folder)
ANSWER_FIGS = {"q1": "supervised-cnn/confusion.png", "iterations": "study-iterations/study_costs.png",
               "lr": "study-lr/study_costs.png", "hidden": "study-hidden/study.png", "cv": "study-cv/study.png",
               "q4": "posteriors/priors.png", "q5": "reject/risk_coverage.png"}


@STAGES.register("classification", title="Classification study: supervised CNN and MLP, splits, posteriors, "
                 "rejection", estimate={"smoke": 120, "quick": 685, "full": 7200}, fixed=0.21)
def stage(ctx: Context) -> Section:
    figs, tables, paras = [], [], []
    supervised_part(ctx, tables, figs)
    post = posterior_part(ctx, paras, figs)
    rej = reject_part(ctx, tables, paras, figs)
    studies = study_part(ctx, tables, paras, figs)
    answers, conclusion = classification_answers(metrics(ctx.dir / "supervised-cnn"),
                                                 metrics(ctx.dir / "supervised-mlp"), post, rej, studies, ANSWER_FIGS)
    q = STUDIES[ctx.budget]
    return {"command": f"mnistlab supervised --model cnn --budget {ctx.budget} --seed 0 "
                       f"{' '.join(ctx.sets(SETS['cnn']))} --out DIR; mnistlab "
                       "posteriors --run DIR; mnistlab reject --run DIR --ood fashion-mnist; mnistlab study "
                       f"iterations|lr|hidden|cv --budget {q['budget']}"
                       + (f" --hidden {q['hidden']} --epochs {q['epochs']} --k {q['k']} --set augment=false "
                          "--set figures=false --values … (the tables list them)" if "k" in q else ""),
            "seeds": {"seed": 0, "split_seed": 0}, "paragraphs": paras, "tables": [t for t in tables if t],
            "figures": figs, "answers": answers, "conclusion": conclusion}
