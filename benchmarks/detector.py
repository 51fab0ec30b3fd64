"""Digit-detector benchmark (issue 6): `mnistlab detect train --budget full` over several seeds, judged on unseen data.

Each seed changes the training seed, which MNIST digits are positives (split seed) and the generated negatives (data
seed). The leave-one-family-out detectors are trained for the first seed only (one per family: the expensive part).
Runs go to --runs (finished ones are reused with --resume, so a killed benchmark continues) and the results to
benchmarks/results/detector.md and detector.json: machine, threads, load averages at start and end (the 2 cores are
shared: wall times are measured under load), git sha, date, commands, and mean ± std over seeds. Nothing is chosen on
the test set: the threshold comes from validation, and every run reports its final model.

    python benchmarks/detector.py                       # seeds 0 1 2, LOFO on seed 0
    python benchmarks/detector.py --seeds 0 --threads 1
    python benchmarks/detector.py --smoke               # seconds: checks the plumbing, writes detector-smoke.*
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mnistlab import fileio  # noqa: E402
from mnistlab.runs import cpu_name, git_info  # noqa: E402
from _machine import check_reuse, cpu_flags, record_code  # noqa: E402
from _machine import run_cli as shared_run_cli  # noqa: E402

TARGETS = {"accuracy": 0.999, "lofo_min_accuracy": 0.99, "auroc_fashion": 0.995, "train_minutes": 5.0,
           # issue 31: letters from held-out fonts rejected, MNIST test digits accepted, Fashion-MNIST AUROC
           "letters_rejected": 0.95, "digits_accepted": 0.995, "auroc_fashion_31": 0.999}
NEAR_OOD_MARKER = "## Near-OOD families and leave-fonts-out (issue 31)"  # robustness_md.MARKER: written by robustness.py
KEYS = ("accuracy", "digit_recall", "nondigit_recall", "auroc_fashion", "fpr95_fashion", "accepted_fashion",
        "val_accuracy", "threshold_p_digit", "train_seconds", "wall_seconds", "params", "precision")


def run_cli(args: list[str], out: Path, *, rerun_stale: bool = False) -> tuple[dict | None, dict]:
    """`mnistlab <args> --out <out> --resume --json` in a subprocess → (metrics or None, log entry). A finished run
    is reused only if this code made it (`_machine.check_reuse`); its settings are checked by `--resume` itself."""
    check_reuse(out, rerun=rerun_stale)
    metrics, entry = shared_run_cli([*args, "--out", str(out), "--resume", "--json"])
    if metrics is None:
        return None, entry
    record_code(out)
    entry["metrics"] = {k: metrics.get(k) for k in KEYS}
    for k in ("family_accuracy", "lofo_accuracy", "lofo_min_accuracy", "lofo_digit_recall_min"):
        if k in metrics:
            entry["metrics"][k] = metrics[k]
    print(f"  accuracy {metrics['accuracy']:.5f}  auroc_fashion {metrics.get('auroc_fashion', float('nan')):.5f}  "
          f"train {metrics['train_seconds']:.0f} s", flush=True)
    return metrics, entry


def collect(out: Path) -> tuple[dict | None, dict]:
    """Metrics of a run folder from its artefacts only (nothing is trained or re-evaluated on a model).

    A finished run gives its metrics.json; a run whose main detector is done but whose leave-one-family-out stage is
    still going is rebuilt from test_scores.npz, threshold.json, ood_margins.npy, family_accuracy.json and the folds'
    lofo/<family>/result.json written so far (`lofo_partial` says how many)."""
    import numpy as np

    from mnistlab.evaluate.ood import ood_report

    la = [round(x, 2) for x in os.getloadavg()]
    entry: dict = {"process_seconds": None, "load_avg_before": la, "load_avg_after": la, "collected": True}
    if (out / "metrics.json").exists():
        m = {**fileio.read_json(out / "metrics.json"), "run": str(out)}
    elif (out / "test_scores.npz").exists() and (out / "threshold.json").exists():
        z = np.load(out / "test_scores.npz")
        thr = fileio.read_json(out / "threshold.json")
        pred, lab = z["margin"] >= thr["margin"], z["label"] == 1
        spec = fileio.read_json(out / "model.json")
        cfg = fileio.read_json(out / "config.json")
        hist = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
        from mnistlab.models import count_params, create_model
        from mnistlab.precision import resolve_precision

        m = {"run": str(out), "accuracy": float((pred == lab).mean()), "digit_recall": float(pred[lab].mean()),
             "nondigit_recall": float(1 - pred[~lab].mean()), "val_accuracy": thr["val_accuracy"],
             "threshold_p_digit": thr["p_digit"], "train_seconds": hist[-1]["seconds"] if hist else None,
             "wall_seconds": None, "family_accuracy": fileio.read_json(out / "family_accuracy.json"),
             "families": [str(f) for f in z["families"]], "precision": resolve_precision(cfg.get("precision", "auto")),
             "params": count_params(create_model(spec["name"], in_shape=tuple(spec["in_shape"]), num_classes=2))}
        if (out / "ood_margins.npy").exists():
            rep = ood_report(z["margin"][lab], np.load(out / "ood_margins.npy"), threshold=thr["margin"])
            m.update(auroc_fashion=rep["auroc"], fpr95_fashion=rep["fpr95"], accepted_fashion=rep["accepted_out"])
        folds = {f.parent.name: fileio.read_json(f) for f in sorted((out / "lofo").glob("*/result.json"))}
        if folds and cfg.get("lofo"):
            m["lofo_accuracy"] = {f: r["accuracy"] for f, r in folds.items()}
            m["lofo_min_accuracy"] = min(m["lofo_accuracy"].values())
            m["lofo_digit_recall_min"] = min(r["digit_recall"] for r in folds.values())
            m["lofo_partial"] = f"{len(folds)} of {len(m['families'])} folds finished"
    else:
        entry["error"] = f"{out}: no finished detector in this folder yet"
        return None, entry
    entry["metrics"] = {k: m.get(k) for k in KEYS}
    for k in ("family_accuracy", "lofo_accuracy", "lofo_min_accuracy", "lofo_digit_recall_min", "lofo_partial"):
        if k in m:
            entry["metrics"][k] = m[k]
    return m, entry


def mean_std(values: list[float]) -> dict:
    v = [x for x in values if x is not None]
    if not v:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"n": len(v), "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v)}


def fmt(s: dict, *, pct: bool = True, digits: int = 2) -> str:
    """mean ± std (n) as a percentage or a plain number."""
    if not s["n"]:
        return "—"
    scale, unit = (100, " %") if pct else (1, "")
    out = f"{scale * s['mean']:.{digits}f}"
    if s["n"] > 1:
        out += f" ± {scale * s['std']:.{digits}f}"
    return f"{out}{unit} (n={s['n']})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--lofo-seeds", type=int, nargs="*", default=None, help="seeds with LOFO (default: the first)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per run (1: on 2 shared cores one thread ran 3–30× faster than two)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "bench-detector"), help="run folders (reused when finished)")
    p.add_argument("--smoke", action="store_true", help="smoke budget: checks the plumbing in seconds")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: read the run folders as they are (a run still in its LOFO stage is "
                        "reported from its saved artefacts, with the folds finished so far)")
    p.add_argument("--rerun-stale", action="store_true",
                   help="a finished run made by other code is moved aside (*.stale-N) and run again (default: stop)")
    args = p.parse_args(argv)
    budget = "smoke" if args.smoke else "full"
    name = "detector-smoke" if args.smoke else "detector"
    lofo_seeds = args.seeds[:1] if args.lofo_seeds is None else args.lofo_seeds
    started, load_start = dt.datetime.now(dt.timezone.utc), os.getloadavg()
    git = git_info()  # before this script writes its own results files
    log: list[dict] = []
    results: dict[int, dict] = {}
    for seed in args.seeds:
        flags = ["detect", "train", "--budget", budget, "--threads", str(args.threads), "--seed", str(seed),
                 "--set", f"split_seed={seed}", "--set", f"data_seed={seed + 1}"]
        if seed not in lofo_seeds:
            flags.append("--no-lofo")
        out = Path(args.runs) / budget / f"detector-s{seed}"
        if args.collect:
            metrics, entry = collect(out)
            entry["command"] = " ".join(["mnistlab", *flags, "--out", str(out), "--resume", "--json"])
        else:
            metrics, entry = run_cli(flags, out, rerun_stale=args.rerun_stale)
        entry["seed"] = seed
        log.append(entry)
        if metrics:
            results[seed] = metrics
        write(name, args, budget, started, load_start, log, results, git=git, final=False)
    write(name, args, budget, started, load_start, log, results, git=git, final=True)
    return 0 if results else 1


def targets_met(s: dict, fams: dict, lofo_min: float | None, train_max: float | None) -> dict:
    """Each target: True / False, or None when not measured."""
    def ge(stat: dict | None, key: str):
        return None if not stat or not stat["n"] else stat["mean"] >= TARGETS[key]

    return {"accuracy_ge_99.9": ge(s["accuracy"], "accuracy"),
            "lofo_every_family_ge_99": None if lofo_min is None else lofo_min >= TARGETS["lofo_min_accuracy"],
            "auroc_fashion_ge_0.995": ge(s["auroc_fashion"], "auroc_fashion"),
            "training_le_5_min": None if train_max is None else train_max <= 60 * TARGETS["train_minutes"],
            "letters_held_out_fonts_ge_95": ge(fams.get("letters"), "letters_rejected"),
            "digits_accepted_ge_99.5": ge(s["digit_recall"], "digits_accepted"),
            "auroc_fashion_ge_0.999": ge(s["auroc_fashion"], "auroc_fashion_31")}


def target_lines(t: dict, lofo_min: float | None, letters: dict | None, s: dict) -> list[str]:
    yes = {True: "met", False: "**not met**", None: "not measured"}
    return ["## Targets (issues 6 and 31)", "",
            f"- ≥ 99.9 % on 10k + 10k: {yes[t['accuracy_ge_99.9']]}",
            f"- ≥ 99 % on every left-out family: {yes[t['lofo_every_family_ge_99']]}"
            + (f" (lowest {100 * lofo_min:.2f} %)" if lofo_min is not None else ""),
            f"- AUROC ≥ 0.995 vs Fashion-MNIST (issue 6), ≥ 0.999 (issue 31): "
            f"{yes[t['auroc_fashion_ge_0.995']]}, {yes[t['auroc_fashion_ge_0.999']]}",
            f"- training ≤ 5 min wall: {yes[t['training_le_5_min']]} (slowest seed, under the load above)",
            f"- letters from held-out fonts ≥ 95 % rejected: {yes[t['letters_held_out_fonts_ge_95']]}"
            + (f" ({fmt(letters)})" if letters and letters["n"] else ""),
            f"- MNIST test digits ≥ 99.5 % accepted: {yes[t['digits_accepted_ge_99.5']]} ({fmt(s['digit_recall'])})"]


def run_shas(ms: list[dict]) -> set[str]:
    shas = set()
    for m in ms:
        env = Path(m["run"]) / "env.json"
        shas.add(str(fileio.read_json(env).get("git_sha") or "?")[:7] if env.exists() else "?")
    return shas


def write(name: str, args, budget: str, started, load_start, log: list[dict], results: dict[int, dict], *,
          git: dict, final: bool) -> None:
    """detector.json + detector.md, rewritten after every run (a partial benchmark stays on record)."""
    load_end = os.getloadavg()
    ms = list(results.values())
    summary = {k: mean_std([m.get(k) for m in ms]) for k in KEYS if k not in ("precision",)}
    fams = sorted({f for m in ms for f in m.get("family_accuracy", {})})
    fam_summary = {f: mean_std([m["family_accuracy"].get(f) for m in ms if "family_accuracy" in m]) for f in fams}
    lofo = {s: m["lofo_accuracy"] for s, m in results.items() if "lofo_accuracy" in m}
    lofo_recall = {s: m.get("lofo_digit_recall_min") for s, m in results.items() if "lofo_accuracy" in m}
    lofo_min = min((min(v.values()) for v in lofo.values()), default=None)
    train_max = max((m["train_seconds"] for m in ms), default=None)
    targets = targets_met(summary, fam_summary, lofo_min, train_max)
    import torch

    machine = {"cpu": cpu_name(), "cpu_flags": " ".join(cpu_flags()), "cores": os.cpu_count(), "torch_threads": args.threads, "torch": torch.__version__,
               "python": platform.python_version(), "load_avg_start": [round(x, 2) for x in load_start],
               "load_avg_end": [round(x, 2) for x in load_end]}
    command = " ".join(["python benchmarks/detector.py", *map(shlex.quote, sys.argv[1:])])
    obj = {"benchmark": name, "budget": budget, "complete": final, "date": started.isoformat(timespec="seconds"),
           "git_sha": git["git_sha"], "git_dirty": git["git_dirty"], "machine": machine, "command": command,
           "targets": TARGETS, "targets_met": targets, "summary": summary, "family_accuracy": fam_summary,
           "lofo_accuracy": lofo, "lofo_digit_recall_min": lofo_recall, "runs": log}
    out = ROOT / "benchmarks" / "results"
    fileio.write_json(out / f"{name}.json", obj)

    s = summary
    cfg = fileio.read_json(Path(ms[0]["run"]) / "config.json") if ms else {}
    recipe = (f"{cfg.get('model')} ({ms[0].get('params', 0) / 1000:.0f} k parameters, {ms[0].get('precision')}), "
              f"{cfg.get('positives')} MNIST training digits + {cfg.get('negatives')} generated images "
              f"({len(ms[0].get('families', []))} families, a share {cfg.get('near_share', 0)} from the ones that look "
             f"like writing, the rest equal), {cfg.get('epochs')} epochs, batch "
              f"{cfg.get('batch_size')}; LOFO detectors {cfg.get('lofo_epochs')} epochs each") if ms else "no run"
    lines = [f"# Digit detector benchmark{' (smoke)' if budget == 'smoke' else ''}", "",
             f"- date {obj['date']}, git `{(git['git_sha'] or '?')[:10]}`{' (dirty)' if git['git_dirty'] else ''}"
             f"{'' if final else ' — **partial: still running**'}",
             f"- machine: {machine['cpu']} (flags `{machine['cpu_flags'] or 'none of avx2/avx512_bf16/amx_bf16'}`), "
             f"{machine['cores']} cores, torch {machine['torch']} "
             f"({machine['torch_threads']} thread per run), Python {machine['python']}",
             f"- load average (1, 5, 15 min) at start {machine['load_avg_start']}, at end {machine['load_avg_end']}: "
             "the 2 cores were shared with other engineers' jobs, so **wall times were measured under load**.",
             f"- command: `{command}`; one run per seed (training seed = split seed = data seed − 1), "
             f"mean ± std over seeds. Budget `{budget}`: {recipe}.",
             f"- test = {cfg.get('test_subset') or 10000} MNIST test digits + {cfg.get('test_negatives')} freshly "
             "generated images (a seed never used in training; broken-digit families built from MNIST test digits);"
             f" the p(digit) threshold is chosen on validation ({cfg.get('val_size')} held-out training digits + "
             f"{cfg.get('val_size')} images generated with a validation seed). Test letters are rendered from font "
             "files never used in training (leave-fonts-out).",
             f"- runs made by git {', '.join(sorted(run_shas(ms)))} (each run's env.json).", "",
             "| metric | value |", "|---|---|",
             f"| accuracy, 10k MNIST test + 10k generated | {fmt(s['accuracy'], digits=3)} |",
             f"| digits accepted (recall) | {fmt(s['digit_recall'], digits=3)} |",
             f"| generated rejected | {fmt(s['nondigit_recall'], digits=3)} |",
             f"| AUROC vs Fashion-MNIST test (never in training) | {fmt(s['auroc_fashion'], pct=False, digits=5)} |",
             f"| FPR at 95 % TPR vs Fashion-MNIST | {fmt(s['fpr95_fashion'], digits=3)} |",
             f"| Fashion-MNIST accepted at the threshold | {fmt(s['accepted_fashion'], digits=3)} |",
             f"| threshold p(digit), chosen on validation | {fmt(s['threshold_p_digit'], pct=False, digits=3)} |",
             f"| training wall (s), under load | {fmt(s['train_seconds'], pct=False, digits=0)} |",
             f"| run wall incl. data, evaluation, LOFO (s) | {fmt(s['wall_seconds'], pct=False, digits=0)} |",
             "", "## Test accuracy per generator family (in training)", "", "| family | rejected |", "|---|---|"]
    lines += [f"| {f} | {fmt(v, digits=2)} |" for f, v in fam_summary.items()]
    lines += ["", "## Leave-one-family-out (trained without the family, tested on fresh images of it from the test seed)", ""]
    for seed, acc in lofo.items():
        part = results[seed].get("lofo_partial")
        lines += [f"Seed {seed} (each fold: its own detector, threshold from its own validation set; the lowest "
                  f"digit recall over folds was {100 * (lofo_recall[seed] or 0):.2f} %)"
                  + (f" — **partial: {part}**" if part else "") + ":", "",
                  "| left-out family | rejected |", "|---|---|"]
        lines += [f"| {f} | {100 * a:.2f} % |" for f, a in acc.items()]
        lines.append("")
    lines += target_lines(targets, lofo_min, fam_summary.get("letters"), s)
    lines += ["- published: max-softmax baseline, MNIST vs notMNIST AUROC 0.83 (Hendrycks & Gimpel); CNN trained "
              "with noise outliers 0.979–0.992 vs Fashion-MNIST (Meinke & Hein).", "", "## Runs", ""]
    for r in log:
        res = (f"error: {r['error']}" if "error" in r else
               f"accuracy {100 * r['metrics']['accuracy']:.3f} %, train {r['metrics']['train_seconds']:.0f} s, "
               + (f"run {r['metrics']['wall_seconds']:.0f} s" if r["metrics"].get("wall_seconds") else
                  "run still in its LOFO stage, collected from its artefacts"))
        lines.append(f"- `{r['command']}` → {res} (load {r['load_avg_before'][0]:.1f} → "
                     f"{r['load_avg_after'][0]:.1f})")
    old = (out / f"{name}.md").read_text() if (out / f"{name}.md").exists() else ""
    tail = old[old.index(NEAR_OOD_MARKER):] if NEAR_OOD_MARKER in old else ""  # robustness.py's section stays
    fileio.write_text(out / f"{name}.md", "\n".join(lines) + "\n" + (f"\n{tail}" if tail else ""))


if __name__ == "__main__":
    sys.exit(main())
