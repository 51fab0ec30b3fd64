"""Markdown layout of benchmarks/robustness.py's results (tables only; every figure comes from the JSON)."""
from __future__ import annotations

RULES = ("msp", "msp-t", "margin-t", "views", "views+dist")


def _met(ok) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[ok]


def _near(b: dict) -> str:
    """The near-family share a run used: given, the recipe's (0.5 since 2026-12-07), or even (older runs)."""
    share = b.get("det_near_share")
    return f"{100 * share:g} %" if share is not None else "50 % (the recipe)" if "det_model" in b else "an even share"


def _near_mean(d: dict) -> float | None:
    """Mean validation rejection over the families that look like writing (what near_share is chosen on)."""
    from mnistlab.data.negatives import NEAR

    v = [x for f, x in (d.get("val_family_rejected") or {}).items() if f in NEAR]
    return sum(v) / len(v) if v else None


def render_md(r: dict, *, pct) -> str:
    b, t = r["budget"], r["targets"]
    sets = list(r["cnn"]["cnn-base"]["sets"])
    shifted = [s for s in sets if s != "mnist-test"]
    lines = [f"# Robustness: letters, shifted digits, confident mistakes (issue 31){' — smoke' if b['smoke'] else ''}",
             "", f"- date {r['date']}, git `{r['git_sha']}`, wall {r['wall_seconds']} s for the whole benchmark",
             f"- machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, flags {', '.join(r['machine']['flags'])}"
             f" ({'bf16' if {'avx512_bf16', 'amx_bf16'} & set(r['machine']['flags']) else 'fp32'}); load average at the end {r['machine']['load_avg_end']} — shared with other jobs",
             f"- command: `{r['command']}`",
             f"- budget (seed {b['seed']}, one seed — no ± here): CNN `{b.get('cnn_model', 'cnn')}` "
             f"{b['cnn_epochs']} epochs on 55 000 training images (5 000 held out for validation); detector `{b.get('det_model') or ('cnn-small' if 'det_model' not in b else 'cnn')}` "
             f"{b['det_epochs']} epochs on {b['positives']} digits + as many negatives over every family "
             f"({_near(b)} from the families that look like writing), LOFO "
             f"detectors {b['lofo_epochs']} epoch each; shifted sets: the first {b['shift_size']} MNIST test images "
             f"(printed: as many renders from held-out fonts), MNIST test: the first {b['test_size']}; "
             f"the selector is fitted on {b.get('val_max')} validation images.",
             "- nothing is chosen on test: detector thresholds, temperature, α, rule and rejection threshold come from "
             "validation images carved from the training split. The shifted sets probe the shifts the robust view "
             "anticipates (same kinds of operation, different draws), not every shift a user may bring.", "",
             "## Detector", "", "| set | accepted (base) | accepted (robust=0.5) |", "|---|---|---|"]
    db, dr = r["detector"]["det-base"], r["detector"]["det-robust"]
    for s in sets:
        lines.append(f"| {s} | {pct(db['accepted'][s])} | {pct(dr['accepted'][s])} |")
    lines += [f"| letters from held-out fonts: **rejected** | {pct(db['letters_heldout_rejected'])} | "
              f"{pct(dr['letters_heldout_rejected'])} |",
              f"| Fashion-MNIST AUROC | {db['auroc_fashion']:.5f} | {dr['auroc_fashion']:.5f} |",
              f"| threshold p(digit) (validation) | {db['threshold_p_digit']:.3f} | {dr['threshold_p_digit']:.3f} |",

              *([f"| validation: digits accepted | {pct(db.get('val_digit_recall'))} | {pct(dr.get('val_digit_recall'))} |",
                 f"| validation: near families rejected (mean) | {pct(_near_mean(db))} | {pct(_near_mean(dr))} |"]
                if db.get("val_digit_recall") is not None else []),
              "", "Leave-one-family-out (robust detector; trained without the family, tested on fresh images of it; "
              "letters from held-out fonts):", "", "| family | rejected in training mix | rejected when left out |",
              "|---|---|---|"]
    for f, v in (dr.get("family_rejected") or {}).items():
        lo = (dr.get("lofo_rejected") or {}).get(f)
        lines.append(f"| {f} | {pct(v)} | {pct(lo) if lo is not None else ''} |")
    lines += ["", "## Supervised CNN accuracy", "", "| set | base | robust=0.5 | ensemble of both (reference) |",
              "|---|---|---|---|"]
    cb, cr, en = r["cnn"]["cnn-base"]["sets"], r["cnn"]["cnn-robust"]["sets"], r["ensemble"]
    for s in sets:
        lines.append(f"| {s} | {pct(cb[s]['accuracy'])} | {pct(cr[s]['accuracy'])} | {pct(en[s]['accuracy'])} |")
    for k in ("cnn-base", "cnn-robust"):
        sel = r["cnn"][k]["selector"]
        lines += ["", f"## Rejection, {k}: AURC / oracle AURC* (lower is better, 1 = oracle)", "",
                  f"Fitted on validation: T = {sel['t']:.3f}, α = {sel['alpha']:g}; chosen rule **{sel['rule']}** "
                  f"(validation AURC: " + ", ".join(f"{a} {1000 * v:.3f}‰" for a, v in
                                                    sel["info"]["validation_aurc"].items()) + ").", "",
                  "| set | error | " + " | ".join(RULES) + " |", "|---|---|" + "---|" * len(RULES)]
        for s in sets:
            rr = r["cnn"][k]["sets"][s]["rules"]
            lines.append(f"| {s} | {pct(rr['msp']['error_rate'])} | " +
                         " | ".join(f"{rr[x]['aurc_ratio']:.2f}×" if x in rr else "—" for x in RULES) + " |")
    ens = r["ensemble"]["mnist-test"]
    lines += ["", f"Ensemble of the two CNNs (msp of the mean posterior), MNIST test: AURC ratio "
                  f"{ens['aurc_ratio']:.2f}× — needs two models at prediction time, so it is not the served rule.", ""]
    # targets
    det_ok = dr["accepted"]
    best = r["cnn"]["cnn-robust"]
    rule = best["selector"]["rule"]
    lines += ["## Targets (issue 31)", "",
              f"- letters/symbols from held-out fonts ≥ 95 % rejected: {pct(dr['letters_heldout_rejected'])} — "
              f"{_met(dr['letters_heldout_rejected'] >= t['letters_rejected'])}",
              f"- MNIST test ≥ 99.5 % accepted: {pct(det_ok['mnist-test'])} — "
              f"{_met(det_ok['mnist-test'] >= t['mnist_accepted'])}",
              "- each shifted set ≥ 97 % accepted: " + ", ".join(
                  f"{s} {pct(det_ok[s])}{'' if det_ok[s] >= t['shift_accepted'] else ' ✗'}" for s in shifted)
              + f" — {_met(all(det_ok[s] >= t['shift_accepted'] for s in shifted))}",
              f"- Fashion-MNIST AUROC ≥ 0.999: {dr['auroc_fashion']:.5f} — "
              f"{_met(dr['auroc_fashion'] >= t['auroc_fashion'])}",
              "- CNN ≥ 95 % on each shifted set (robust): " + ", ".join(
                  f"{s} {pct(cr[s]['accuracy'])}{'' if cr[s]['accuracy'] >= t['cnn_shift_accuracy'] else ' ✗'}"
                  for s in shifted) + f" — {_met(all(cr[s]['accuracy'] >= t['cnn_shift_accuracy'] for s in shifted))}",
              f"- CNN ≥ 99.6 % on MNIST test: {pct(cr['mnist-test']['accuracy'])} (base {pct(cb['mnist-test']['accuracy'])})"
              f" — {_met(cr['mnist-test']['accuracy'] >= t['cnn_mnist_accuracy'])} at this budget",
              f"- AURC ≤ 1.5× oracle on MNIST test with the chosen rule ({rule}): "
              f"{best['sets']['mnist-test']['rules'][rule]['aurc_ratio']:.2f}× — "
              f"{_met(best['sets']['mnist-test']['rules'][rule]['aurc_ratio'] <= t['aurc_ratio'])}", ""]
    lines += ["## Runs", ""] + [f"- {k}: `{v['command']}` ({v['process_seconds']} s)" for k, v in r["runs"].items()]
    return "\n".join(lines) + "\n"


MARKER = "## Near-OOD families and leave-fonts-out (issue 31)"


def detector_section(r: dict, *, pct) -> str:
    """The section benchmarks/robustness.py appends to detector.md (replacing its previous one)."""
    d, b = r["detector"]["det-robust"], r["budget"]
    lines = [MARKER, "", f"From `{r['command']}` (git `{r['git_sha']}`, {r['date']}; smaller budget than the runs "
             f"above: {b['det_epochs']} epochs on {b['positives']} digits + as many negatives, one seed, robust=0.5; "
             "see robustness.md). Letters are tested on font files of a foundry never used in training.", "",
             "| measure | value |", "|---|---|",
             f"| letters/symbols from held-out fonts rejected | {pct(d['letters_heldout_rejected'])} |",
             f"| MNIST test accepted | {pct(d['accepted']['mnist-test'])} |",
             f"| Fashion-MNIST AUROC | {d['auroc_fashion']:.5f} |"]
    lines += [f"| left out: {f} rejected | {pct(v)} |" for f, v in (d.get("lofo_rejected") or {}).items()]
    return "\n".join(lines) + "\n"
