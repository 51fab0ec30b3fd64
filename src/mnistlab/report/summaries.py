"""Plain-text summaries of analysis records for the terminal: record in, lines out."""
from __future__ import annotations

import json

from mnistlab.evaluate.rejection import to_json


def reject_json(res: dict) -> dict:
    """The rejection record without its per-threshold sweeps (lists), JSON-safe (no NaN)."""
    return to_json({k: v for k, v in res.items() if k != "rules"} | {"rules": {
        r: {k: v for k, v in d.items() if not isinstance(v, list)} for r, d in res["rules"].items()}})


def metrics_lines(out, metrics: dict) -> list[str]:
    """A run's final metrics, one `key: value` line each (scalars only), then any warning about them."""
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and v is not None}
    warning = balance_warning(metrics)
    return [f"run folder: {out}"] + [f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}"
                                     for k, v in shown.items()] + ([f"warning: {warning}"] if warning else [])


BALANCE_WARN = 0.5  # a lost class is predicted for < 0.1 of its share; a sound 10-label run 0.8-1


def balance_warning(metrics: dict, classes: list[str] | None = None) -> str | None:
    """The label-free sign of a merged class (`pool_balance` below BALANCE_WARN), in words; None when there is none."""
    b, k = metrics.get("pool_balance"), metrics.get("pool_rarest_class")
    if not isinstance(b, (int, float)) or b >= BALANCE_WARN or not isinstance(k, int):
        return None
    name = classes[k] if classes and 0 <= k < len(classes) else str(k)
    return (f"class {name} is predicted for {100 * b:.0f} % of its expected share of the unlabelled images: the "
            "model may have merged it into another class (another --seed, or a few more labels, may avoid it)")


KEY_METRICS = ("test_accuracy", "mnist_score", "val_accuracy")  # the first a run has is its one-line summary


def finished_line(name: str, out, metrics: dict) -> str:
    """One line for a finished run: `done  fewlabel fixmatch: test_accuracy 98.12 % in 2.3 min  (runs/…)`."""
    key = next((k for k in KEY_METRICS if isinstance(metrics.get(k), (int, float))), None)
    what = "" if key is None else (f" {key} {100 * metrics[key]:.2f} %" if "accuracy" in key else
                                   f" {key} {metrics[key]:.3f}")
    secs = metrics.get("wall_seconds")
    took = "" if not isinstance(secs, (int, float)) else f" in {secs / 60:.1f} min" if secs >= 60 else f" in {secs:.0f} s"
    return f"done  {name}:{what}{took}  ({out})"


def reject_lines(res: dict) -> list[str]:
    """The rejection study (`analyses.reject`): accuracy, a row per rule at its threshold, the interpretation."""
    lines = [f"test accuracy without rejection: {100 * res['test_accuracy']:.2f} %",
             f"{'rule':>9} {'threshold':>10} {'rejected':>9} {'acc.acc':>8} {'AURC‰':>7} {'AURC*‰':>7} {'acc@95%':>8}"]
    for r, d in res["rules"].items():
        a = d["at_threshold"]
        lines.append(f"{r:>9} {d['threshold']:>10.4g} {100 * a['rejection_rate']:>8.2f}% "
                     f"{100 * (a['accuracy_accepted'] or 0):>7.3f}% {1000 * d['aurc']:>7.3f} "
                     f"{1000 * d['aurc_optimal']:>7.3f} {100 * d['selective_accuracy']['0.95']:>7.3f}%")
    return lines + ["  " + line for line in res["interpretation"]]


def posteriors_lines(res: dict, path) -> list[str]:
    """The posteriors record (`analyses.posteriors`): shape, row-sum check, recognition rates."""
    rr = res["recognition_rate"]
    return [f"{path}: {res['images']} × {len(res['classes'])} posteriors ({res['order']})",
            f"  max |sum − 1| = {res['max_abs_sum_error']:.3g}  (rows off by > 1e-5: "
            f"{res['rows_off_by_more_than']['count']})",
            f"  WTA recognition rate: train {100 * rr['train']:.2f} %, test {100 * rr['test']:.2f} %, "
            f"all {100 * rr['all']:.2f} %"]


def gan_eval_lines(res: dict) -> list[str]:
    """The GAN metrics (`api.evaluate_gan`): scalars, class shares, FID beside its floor, targets met."""
    return [*metrics_lines(res["run"], {k: v for k, v in res.items() if not isinstance(v, (dict, list))}),
            "  class shares: " + " ".join(f"{f:.3f}" for f in res["class_histogram"]["fractions"]),
            f"  classifier-FID {res['fid']:.3f} vs real train-vs-test floor {res['fid_floor_train_vs_test']:.3f} "
            f"(×{res['fid_ratio_to_floor']:.2f})",
            "  targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in res["targets"].items())]


def gan_classifier_note(plan: dict, step_seconds: float) -> str:
    """What `gan eval` without --classifier trains first (`api.gan_classifier_plan`), and its expected time."""
    return (f"mnistlab: note: no --classifier: training a supervised {plan['model']} on {plan['dataset']} to score "
            f"the samples ({plan['epochs']:g} epochs of {plan['images']} images, {plan['steps']} steps of "
            f"{step_seconds:.2f} s ≈ {plan['steps'] * step_seconds / 60:.0f} min here), once, into {plan['cache']}; "
            "later evaluations reuse it")


def stats_lines(s: dict) -> list[str]:
    """A data set's sizes, and per class its counts and prior (`data.stats.stats`)."""
    return [f"{s['dataset']}: {s['train_size']} train / {s['test_size']} test, images {tuple(s['shape'])}",
            f"{'class':>14} {'train':>7} {'test':>6} {'prior(all)':>10}",
            *(f"{c:>14} {a:>7} {b:>6} {p:>10.4f}" for c, a, b, p in
              zip(s["classes"], s["train_class_counts"], s["test_class_counts"], s["priors"]["all"]))]


def config_lines(command: str, method: str, budget: str, fields: dict) -> list[str]:
    """`config show`: each field's value and source (`recipes.config_sources`)."""
    width = max(map(len, fields))
    return [f"mnistlab {command}: method {method}, budget {budget} (later sources win: default < recipe < budget < "
            "file < flag)", *(f"  {k:<{width}}  {json.dumps(v):<14} {s}" for k, (v, s) in fields.items())]


def prediction_line(r: dict) -> str:
    """One `predict` record: file (or #index), label, its probability, and the detector's verdict when present."""
    line = f"{r.get('file', '#' + str(r['index']))}\t{r['label']}\tp={r['probs'][r['pred']]:.3f}"
    if "p_digit" in r:
        line += f"\t{'digit' if r['is_digit'] else 'not a digit'} (p={r['p_digit']:.3f})"
    return line

