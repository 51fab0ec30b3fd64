"""The report's answers to the brief, written from a study's own numbers: records in, sentences out (pure).

Each `*_answers` function returns (answers, conclusion): the rows of "results at a glance" (`report.html.Answer`)
and the closing paragraph of its section. Nothing here trains or reads a file; a missing number reads "n/a".
"""
from __future__ import annotations

from typing import Any

LABELS = {"iterations": "epochs", "lr": "learning rate", "hidden": "hidden units"}
PLATEAU = 0.002  # values within 0.2 point of the best held-out accuracy count as "as good"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def sweep_summary(study: dict) -> dict[str, Any]:
    """A sweep's best and worst value by held-out accuracy, and the range of values within PLATEAU of the best."""
    rows = [r for r in study.get("rows", []) if r.get("test_accuracy") is not None]
    if not rows:
        return {}
    best = max(rows, key=lambda r: r["test_accuracy"])
    worst = min(rows, key=lambda r: r["test_accuracy"])
    near = [r["value"] for r in rows if r["test_accuracy"] >= best["test_accuracy"] - PLATEAU]
    last = max(rows, key=lambda r: r["value"])
    flat = last["value"]  # the smallest value from which every larger one is within PLATEAU of the best
    for r in sorted(rows, key=lambda r: -r["value"]):
        if r["test_accuracy"] < best["test_accuracy"] - PLATEAU:
            break
        flat = r["value"]
    return {"flat_from": flat, "best": best["value"], "best_acc": best["test_accuracy"], "worst": worst["value"],
            "worst_acc": worst["test_accuracy"], "near": (min(near), max(near)), "values": len(rows),
            "largest": last["value"], "largest_gap": (last.get("test_loss") or 0) - (last.get("train_loss") or 0)}


def sweep_answer(kind: str, study: dict) -> str:
    s = sweep_summary(study)
    if not s:
        return "n/a (no finished point)"
    lo, hi = s["near"]
    span = f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"
    return (f"best at {LABELS[kind]} {s['best']:g} ({pct(s['best_acc'])} held-out, {s['values']} values); within "
            f"{100 * PLATEAU:.1f} point of it: {span}; worst {s['worst']:g} ({pct(s['worst_acc'])})")


def plateau_sentence(s: dict, unit: str) -> str:
    """Where a sweep stops paying: still rising at its largest value, or flat (within PLATEAU) from some value on."""
    if s["flat_from"] == s["largest"]:
        return f"still rising at the largest value studied ({s['largest']:g} {unit})"
    return f"within {100 * PLATEAU:.1f} point of the best from {s['flat_from']:g} {unit} on"


def classification_answers(cnn: dict, mlp: dict, post: dict, rej: dict, studies: dict, paths: dict) -> tuple:
    """Part 2 (Q1–Q5): the supervised runs' metrics, the posteriors and rejection records, the four studies, and
    `paths[key]` the figure that shows each answer."""
    cv = studies.get("cv", {})
    kf, sel = cv.get("kfold") or {}, cv.get("selected") or {}
    chow = rej.get("rules", {}).get("chow", {}).get("at_threshold", {})
    frac = rej.get("rejected_fraction", {})
    answers = [
        {"question": "Q1.5 — test recognition rate (60k / 10k)", "figure": paths.get("q1", ""),
         "answer": f"CNN {pct(cnn.get('test_accuracy'))}, MLP {pct(mlp.get('test_accuracy'))}"},
        *({"question": q, "answer": sweep_answer(k, studies[k]), "figure": paths.get(k, "")}
          for q, k in (("Q1.7 / Part 2 — number of iterations", "iterations"), ("Part 2 — learning step", "lr"),
                       ("Q1.6 — number of hidden cells (60/40)", "hidden")) if k in studies),
        {"question": "Q2 — 60/20/20 selection and cross-validation", "figure": paths.get("cv", ""),
         "answer": f"chose {sel.get('name', 'n/a')} on validation; its test, once: "
                   f"{pct(cv.get('selected_test_accuracy'))}; {kf.get('k', 0)}-fold CV: "
                   f"{pct(kf.get('test_accuracy_mean'))} ± {pct(kf.get('test_accuracy_std'))}"},
        {"question": "Q4 — do the posteriors sum to 1?", "figure": paths.get("q4", ""),
         "answer": f"{'yes' if post.get('all_rows_sum_to_one') else 'no'}: max |Σp − 1| = "
                   f"{post.get('max_abs_sum_error', float('nan')):.1e} over {post.get('images', 'n/a')} images"},
        {"question": "Q5 — rejection (ambiguity and distance)", "figure": paths.get("q5", ""),
         "answer": f"Chow rejects {pct(chow.get('rejection_rate'))} of the test images, accuracy on the rest "
                   f"{pct(chow.get('accuracy_accepted'))} (all: {pct(rej.get('test_accuracy'))}); distance rejects "
                   f"{pct(frac.get('fashion-mnist', {}).get('distance'))} of Fashion-MNIST"}]
    return answers, classification_conclusion(cnn, mlp, studies, chow, rej)


def classification_conclusion(cnn: dict, mlp: dict, studies: dict, chow: dict, rej: dict) -> str:
    it, lr, hd = (sweep_summary(studies.get(k, {})) for k in ("iterations", "lr", "hidden"))
    kf = (studies.get("cv") or {}).get("kfold") or {}
    mlps = [mlp.get("test_accuracy")] + [s["best_acc"] for s in (it, lr, hd) if s]
    best_mlp = max((a for a in mlps if a is not None), default=None)
    ahead = cnn.get("test_accuracy") is not None and best_mlp is not None and cnn["test_accuracy"] > best_mlp
    parts = [f"The CNN reaches {pct(cnn.get('test_accuracy'))} against the MLP's {pct(mlp.get('test_accuracy'))} "
             f"(best MLP of the studies: {pct(best_mlp)}): "
             + ("the convolutions' translation invariance is worth more than any MLP setting studied here." if ahead
                else "at this budget the CNN does not beat every MLP setting studied.")]
    if it:
        fit = "the start of over-fitting" if it["largest_gap"] > 0.02 else "no clear over-fitting"
        parts.append(f"Iterations: {plateau_sentence(it, 'epochs')}; at {it['largest']:g} epochs held-out minus "
                     f"training cost is {it['largest_gap']:+.3f}: {fit}.")
    if lr:
        parts.append(f"The learning step moves held-out accuracy by {100 * (lr['best_acc'] - lr['worst_acc']):.1f} "
                     f"points: {pct(lr['worst_acc'])} at {lr['worst']:g}, {pct(lr['best_acc'])} at {lr['best']:g}.")
    if hd:
        parts.append(f"Hidden cells: {pct(hd['worst_acc'])} at {hd['worst']:g}, {pct(hd['best_acc'])} at "
                     f"{hd['best']:g}; {plateau_sentence(hd, 'units')}.")
    if kf:
        parts.append(f"The {kf['k']}-fold estimate ({pct(kf.get('test_accuracy_mean'))} ± "
                     f"{pct(kf.get('test_accuracy_std'))}) says how much one split's figure can move.")
    if chow:
        parts.append(f"Rejecting the {pct(chow.get('rejection_rate'))} least confident test images lifts accuracy "
                     f"from {pct(rej.get('test_accuracy'))} to {pct(chow.get('accuracy_accepted'))} on the rest.")
    return " ".join(parts)


def seed_answers(rows: list[list]) -> tuple[list[dict], str]:
    """The seed report's table (rows: name, the report's figure, our test accuracy, …): ours, the report's protocol
    run here, and the report's own numbers side by side."""
    ours = [r for r in rows if "report protocol" not in r[0] and r[2] is not None]
    proto = [r for r in rows if "report protocol" in r[0] and r[2] is not None]
    if not ours:
        return [], "No run finished."
    best = max(ours, key=lambda r: r[2])
    best_report = max((r[1] for r in rows if r[1] is not None), default=None)
    answers = [{"question": "Seed report — best accuracy with 100 labels", "figure": f"{best[0]}/confusion.png",
                "answer": f"{best[0]}: {pct(best[2])} (the report's best: {pct(best_report)})"}]
    text = f"With the same 100 labels, our best method here is {best[0]} at {pct(best[2])}"
    text += f", against {pct(best_report)} in the report." if best_report is not None else "."
    if proto:
        bp = max(proto, key=lambda r: r[2])
        answers.append({"question": "Seed report — its own protocol, rerun here", "figure": "",
                        "answer": f"best {bp[0]}: {pct(bp[2])}"})
        text += (f" Rerun with the report's own protocol (its architectures, full-batch recipe, frozen RotNet "
                 f"convolutions), the best row is {bp[0]} at {pct(bp[2])}: "
                 + (f"{100 * (best[2] - bp[2]):.1f} points below ours (batch norm, fine-tuning, online "
                    "augmentation)." if best[2] > bp[2] else "here the report's protocol does as well as ours."))
    return answers, text



def data_answers(stats: dict[str, dict]) -> tuple[list[dict], str]:
    """Part 1 and Q3 from `data.stats` records by dataset name."""
    answers, parts = [], []
    for name, s in stats.items():
        pri = s["priors"]["all"]
        lo, hi = min(pri), max(pri)
        answers.append({"question": f"Part 1 / Q3 — {name}: sizes and a-priori class probabilities",
                        "figure": f"{name}_priors.png",
                        "answer": f"{s['train_size']} train / {s['test_size']} test; priors {lo:.4f}–{hi:.4f} "
                                  f"(uniform {1 / len(pri):.4f})"})
        parts.append(f"{name}'s priors stay within {100 * max(abs(lo - 1 / len(pri)), abs(hi - 1 / len(pri))):.2f} "
                     "points of uniform")
    if not parts:
        return answers, ""
    worst = max(max(abs(p - 1 / len(s["priors"]["all"])) for p in s["priors"]["all"]) for s in stats.values())
    return answers, "; ".join(parts) + (": the classes are close to balanced, so accuracy is a fair summary and a "
                                        "winner-takes-all decision needs no prior correction." if worst < 0.02 else
                                        ": the classes are unbalanced enough to report per-class recall beside accuracy.")


def ssl_answers(method: str, rows: list[list], literature: list[tuple[str, float]]) -> tuple[list[dict], str]:
    """Semi-supervised rows (name, test accuracy, error %, seconds) beside the published 100-label errors."""
    done = [r for r in rows if r[1] is not None]
    if not done:
        return [], "No run finished."
    best_lit = min(literature, key=lambda t: t[1]) if literature else None
    answers = [{"question": f"Few labels — {r[0].split(', ')[-1]} with {method}", "figure": "",
                "answer": f"{pct(r[1])} test accuracy in {r[3] or 0:.0f} s"} for r in done]
    text = "; ".join(f"{r[0].split(', ')[-1]}: {pct(r[1])}" for r in done)
    if best_lit:
        text += (f". The best published figure in the table is {best_lit[0]} at {100 - best_lit[1]:.2f} %; one "
                 "label draw at this budget is not a benchmark (benchmarks/fewlabel.py averages draws).")
    return answers, text


def detector_answers(m: dict) -> tuple[list[dict], str]:
    """Part 3 from the detector run's metrics."""
    lofo = m.get("lofo_accuracy") or {}
    worst = min(lofo.items(), key=lambda kv: kv[1]) if lofo else None
    answers = [{"question": "Part 3 — digit / non-digit on MNIST test + new generated images", "figure": "detector/confusion.png",
                "answer": f"accuracy {pct(m.get('accuracy'))}; AUROC against Fashion-MNIST (never seen) "
                          f"{m.get('auroc_fashion', float('nan')):.4f}"}]
    text = (f"The detector separates MNIST digits from fresh generated images at {pct(m.get('accuracy'))} "
            f"(digit recall {pct(m.get('digit_recall'))}, non-digit recall {pct(m.get('nondigit_recall'))}).")
    if worst:
        text += (f" Leaving a family out of training shows what it has not learnt to generalise: the hardest is "
                 f"{worst[0]} at {pct(worst[1])}.")
    return answers, text


def gan_answers(rows: list[list]) -> tuple[list[dict], str]:
    """Part 4 from the GAN table (model, MNIST score, FID, FID floor, min / max class share, agreement, seconds)."""
    done = [r for r in rows if r[1] is not None]
    if not done:
        return [], "No GAN was evaluated."
    answers = [{"question": f"Part 4 — {r[0]}: are the samples digits?", "figure": f"{r[0]}/samples.png",
                "answer": f"MNIST score {r[1]:.2f} / 10, classifier-FID {r[2]:.2f} (real-vs-real floor {r[3]:.2f}), "
                          f"class shares {100 * r[4]:.1f}–{100 * r[5]:.1f} %"} for r in done]
    text = " ".join(f"{r[0]}: MNIST score {r[1]:.2f} of 10 and FID {r[2] / max(r[3], 1e-9):.1f}× the real-data floor"
                    + (f", {pct(r[6])} of its samples are the class asked for" if r[6] is not None else "") + "."
                    for r in done)
    return answers, text + " The per-epoch grids show how the samples evolve from the first epoch on."


def fashion_answers(rows: list[list], confused: list[dict]) -> tuple[list[dict], str]:
    """Part 5 from the Fashion-MNIST table (run, model, test accuracy, seconds) and the most confused pairs."""
    done = [r for r in rows if r[2] is not None]
    answers = [{"question": f"Part 5 — Fashion-MNIST, {r[0]}", "figure": "", "answer": pct(r[2])} for r in done]
    text = "; ".join(f"{r[0]}: {pct(r[2])}" for r in done) or "No run finished"
    if confused:
        c = confused[0]
        text += f". The hardest pair is {c['true']} read as {c['pred']} ({c['count']} test images)"
    return answers, text + "."
