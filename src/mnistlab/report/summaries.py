"""Plain-text summaries of analysis records for the terminal: record in, lines out."""
from __future__ import annotations

from mnistlab.evaluate.rejection import to_json


def reject_json(res: dict) -> dict:
    """The rejection record without its per-threshold sweeps (lists), JSON-safe (no NaN)."""
    return to_json({k: v for k, v in res.items() if k != "rules"} | {"rules": {
        r: {k: v for k, v in d.items() if not isinstance(v, list)} for r, d in res["rules"].items()}})


def metrics_lines(out, metrics: dict) -> list[str]:
    """A run's final metrics, one `key: value` line each (scalars only)."""
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and v is not None}
    return [f"run folder: {out}"] + [f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}"
                                     for k, v in shown.items()]


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
