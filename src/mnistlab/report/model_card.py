"""MODEL_CARD.md of a run folder, written from its records only (config, env, metrics, splits, model.json, data.json):
data, labels and how they were drawn, method, metrics with their protocol, hardware and time, intended use, limits."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio
from mnistlab.report.summaries import balance_warning

# what each metric family measures (prefix → protocol), so a number is never read without its protocol
PROTOCOL = {
    "test": "on the test set, with the final model (nothing is chosen on the test set)",
    "val": "on the validation labels carved from the training labels (watched, never selected on)",
    "ulb": "on the unlabelled training pool with its hidden labels: a development measure a real user cannot make",
    "train": "on training batches (last logged step)",
    "refine": "self-training refine stage, on the unlabelled pool (development measure)",
    "pool": "on the unlabelled training pool, reading no label: the least-predicted class's share of the predictions "
            "over its share of the labels (1 = as expected, near 0 = a class the model no longer gives)",
}


def _read(d: Path, name: str) -> dict:
    return fileio.read_json(d / name) if (d / name).exists() else {}


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def data_section(cfg: dict, data: dict, splits: dict[str, int]) -> list[str]:
    lines = ["## Data", ""]
    if data:
        lines += [f"- Source: `{data['dataset']}:{data['path']}` ({len(data['classes'])} classes: "
                  f"{', '.join(data['classes'][:20])}{' …' if len(data['classes']) > 20 else ''})",
                  f"- Images per class (before any hold-out): {data['images_per_class']}",
                  f"- Training pool {data['train_images']} images ({data['labelled_images']} with a label, "
                  f"{data['unlabelled_images']} without); test set {data['test_images']} images: {data['test_set']}",
                  f"- Input rule: preprocess={data.get('rule')}, channels={data.get('channels')}; skipped files "
                  f"(--skip-bad): {data.get('skipped_count', 0)}; data cache: {data.get('cache', 'n/a')}"]
    else:
        lines.append(f"- Data set: `{cfg.get('dataset')}` (registered; its official train/test split)")
    if cfg.get("train_subset") or cfg.get("test_subset"):
        lines.append(f"- Subsets: first {cfg.get('train_subset') or 'all'} training / "
                     f"{cfg.get('test_subset') or 'all'} test images (budget {cfg.get('budget')})")
    return lines + [""]


def labels_section(cfg: dict, data: dict, splits: dict[str, int]) -> list[str]:
    lines = ["## Labels", ""]
    if "labelled" in splits:
        lines.append(f"- {splits['labelled']} labelled training images, {splits.get('val', 0)} validation images "
                     f"carved from the labels, {splits.get('unlabelled', 0)} unlabelled (splits.npz)")
        lf = (data or {}).get("labels_from")
        how = (f"fixed by the file {lf['file']} ({lf['images']} images)" if lf else
               f"a class-balanced draw with split seed {cfg.get('split_seed', 0)} (training seed {cfg.get('seed')})")
        lines.append(f"- How drawn: {how}")
    else:
        lines.append(f"- Every training label was used ({_what(cfg)}); indices in "
                     "splits.npz where the method held some out")
    return lines + [""]


def metrics_section(metrics: dict) -> list[str]:
    lines = ["## Metrics", "", "| metric | value | protocol |", "|---|---|---|"]
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "wall_seconds":
            scored = k.endswith(("accuracy", "loss", "f1", "balance"))  # counts and settings have no protocol
            proto = next((p for pre, p in PROTOCOL.items() if k.startswith(pre + "_")), "") if scored else ""
            lines.append(f"| {k} | {_fmt(v)} | {proto} |")
    return lines + [""]


def limits_section(cfg: dict, spec: dict, data: dict, metrics: dict) -> list[str]:
    warning = balance_warning(metrics, (data or {}).get("classes") or spec.get("classes"))
    lines = ["## Intended use and known limits", "", *([f"- **Warning**: {warning}."] if warning else []),
             f"- Intended use: classify images like the training data ({cfg.get('dataset')}), preprocessed by the "
             "rule in model.json (`mnistlab predict`, `mnistlab serve`, `mnistlab export` apply it)."]
    if spec.get("image_input"):
        lines.append(f"- Raw images are brought to the model's input by: {spec['image_input']}")
    if spec.get("task") == "detector" or "threshold" in spec:
        lines.append(f"- Detector threshold {spec.get('threshold')} (tuned on its validation split); it was trained "
                     f"against the negatives named in config.json ({cfg.get('negatives', 'see config.json')}); "
                     "other kinds of non-digits are untested")
    lines += ["- Not calibrated for images unlike the training data (other scripts, photos, drawings of other "
              "objects): use `mnistlab reject` / a detector run to refuse them.",
              "- The numbers above come from one training seed and one label draw; benchmarks/ reports the spread "
              "over draws."]
    return lines + [""]


def model_card(d: Path) -> str:
    cfg, env, metrics = _read(d, "config.json"), _read(d, "env.json"), _read(d, "metrics.json")
    spec, data = _read(d, "model.json"), _read(d, "data.json")
    splits = {}
    if (d / "splits.npz").exists():
        with np.load(d / "splits.npz", allow_pickle=False) as z:
            splits = {k: int(z[k].size) for k in z.files}
    head = [f"# Model card: {_what(cfg)} on {cfg.get('dataset')}", "",
            f"Written from the records of {d.name} (config.json, env.json, metrics.json, splits.npz, model.json"
            f"{', data.json' if data else ''}).", ""]
    method = ["## Method", "", f"- {cfg.get('method')} with model `{cfg.get('model', spec.get('name'))}`, budget "
              f"{cfg.get('budget')}, seed {cfg.get('seed')}, precision {metrics.get('precision', cfg.get('precision'))}"
              f"; epochs {cfg.get('epochs')}, lr {cfg.get('lr')}, batch size {cfg.get('batch_size')} (config.json "
              "holds every setting)", ""]
    hw = ["## Hardware and time", "", f"- {env.get('cpu')} ({env.get('cpu_count')} cores, {env.get('torch_threads')} "
          f"torch threads), {env.get('platform')}", f"- Wall time {metrics.get('wall_seconds')} s; started "
          f"{env.get('date')}; git {str(env.get('git_sha'))[:10]}{' (dirty)' if env.get('git_dirty') else ''}; "
          f"mnistlab {env.get('mnistlab')}, torch {env.get('versions', {}).get('torch')}", ""]
    return "\n".join(head + data_section(cfg, data, splits) + labels_section(cfg, data, splits) + method
                     + metrics_section(metrics) + hw + limits_section(cfg, spec, data, metrics))


def write_model_card(d: Path) -> Path:
    fileio.write_text(d / "MODEL_CARD.md", model_card(d))
    return d / "MODEL_CARD.md"


def _what(cfg: dict) -> str:
    """`fewlabel fixmatch`, or `supervised` once where the command and the method share a name."""
    parts = [str(cfg.get("command") or ""), str(cfg.get("method") or "")]
    return " ".join(dict.fromkeys(p for p in parts if p)) or "run"
