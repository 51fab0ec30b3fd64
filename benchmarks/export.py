"""User-data import speed and exported-model latency (issue 29's targets).

1. Import: the first 10 000 MNIST training images written as 28×28 PNGs into a class-folder tree (not timed), then
   `load_dataset("folder:…")` timed with an empty cache (decode + cache write) and again (cache read), in a private
   data home. Targets: ≤ 30 s and ≤ 2 s on 2 cores.
2. Latency (both runtimes on `--threads`, default 1): the `cnn` (random weights: latency does not depend on them) exported to ONNX; one uint8 28×28 image
   through mnistlab's exported wrapper in torch (fp32, no grad) and through onnxruntime, timed in turns (round-robin,
   so load bursts on the shared CPU hit both), median and mean ± std of per-call milliseconds.
Writes benchmarks/results/export.md and export.json (machine, CPU flags, command, git sha, date, load averages).

    python benchmarks/export.py                      # 10 000 images, 7 rounds × 200 calls
    python benchmarks/export.py --images 2000 --rounds 3
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from _machine import cpu_name, git_sha  # noqa: E402
from mnistlab import fileio  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]


def import_times(n: int, work: Path) -> dict:
    mnist = load_dataset("mnist")
    root = work / "folder"
    for i in range(n):
        d = root / str(int(mnist.train_y[i]))
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mnist.train_x[i, 0]).save(d / f"{i:05d}.png")
    os.environ["MNISTLAB_DATA"] = str(work / "data-home")  # empty cache
    t0 = time.perf_counter()
    ds = load_dataset(f"folder:{root}")
    first = time.perf_counter() - t0
    assert ds.extra["record"]["cache"] == "miss"
    cached = []
    for _ in range(3):
        t0 = time.perf_counter()
        again = load_dataset(f"folder:{root}")
        cached.append(time.perf_counter() - t0)
        assert again.extra["record"]["cache"] == "hit"
    return {"images": n, "first_import_s": round(first, 2), "cached_s": [round(c, 3) for c in cached],
            "cached_mean_s": round(statistics.mean(cached), 3)}


def latency(work: Path, rounds: int, calls: int, threads: int) -> dict:
    import onnxruntime as ort

    from mnistlab.exporter import Exported, export_run
    from mnistlab.models import create_model, model_spec
    from mnistlab.runs import Run

    torch.manual_seed(0)
    model = create_model("cnn", in_shape=(1, 28, 28), num_classes=10).eval()
    run = Run(work / "cnn")
    run.save_model(model, model_spec("cnn", in_shape=(1, 28, 28), num_classes=10))
    run.close()
    rec = export_run(work / "cnn", format="onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    sess = ort.InferenceSession(rec["file"], opts, providers=["CPUExecutionProvider"])
    torch.set_num_threads(threads)
    wrapper = Exported(model, {}).eval()
    x = np.random.default_rng(0).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    xt = torch.from_numpy(x)

    def torch_call():
        with torch.no_grad():
            wrapper(xt)

    def ort_call():
        sess.run(["probs"], {"images": x})

    fns = {"torch": torch_call, "onnxruntime": ort_call}
    for fn in fns.values():  # warm-up, not timed
        for _ in range(20):
            fn()
    ms: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            ms[k].append((time.perf_counter() - t0) / calls * 1000)
    out = {k: {"median_ms": round(statistics.median(v), 4), "mean_ms": round(statistics.mean(v), 4),
               "std_ms": round(statistics.stdev(v), 4) if len(v) > 1 else 0.0} for k, v in ms.items()}
    out["ratio_torch_over_onnxruntime"] = round(out["torch"]["median_ms"] / out["onnxruntime"]["median_ms"], 2)
    out["export_check_max_abs_diff"] = rec["check"]["max_abs_diff"]
    return out


def markdown(r: dict) -> str:
    imp, lat = r["import"], r["latency"]
    return "\n".join([
        "# User-data import and exported-model latency", "",
        f"- Machine: {r['cpu']} ({r['cpu_count']} cores; flags {', '.join(r['cpu_flags']) or 'none'}), "
        f"threads {r['torch_threads']} (torch and onnxruntime, latency part), load average {r['load_before']} → {r['load_after']}",
        f"- Command: `{r['command']}`; git {r['git_sha']}; {r['date']}", "",
        "## Import of a folder of 28×28 PNGs", "",
        f"- {imp['images']} images: first import (decode + cache write) {imp['first_import_s']} s (target ≤ 30 s); "
        f"from the cache {imp['cached_mean_s']} s (mean of {len(imp['cached_s'])}: {imp['cached_s']}; target ≤ 2 s)",
        "", "## Single-image latency, `cnn`, fp32 (uint8 image in, probabilities out)", "",
        "| runtime | median ms | mean ± std ms |", "|---|---|---|",
        *[f"| {k} | {lat[k]['median_ms']} | {lat[k]['mean_ms']} ± {lat[k]['std_ms']} |"
          for k in ("torch", "onnxruntime")],
        "", f"torch / onnxruntime median ratio: {lat['ratio_torch_over_onnxruntime']}× (same process, in turns); "
        f"export check max abs diff {lat['export_check_max_abs_diff']:.2e} (tolerance 1e-4).", ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10000, help="PNG files to import (default 10000)")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds per runtime (default 7)")
    ap.add_argument("--calls", type=int, default=200, help="single-image calls per round (default 200)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of both runtimes in the latency part (default 1: one image is latency-bound, and "
                         "on a shared 2-core machine a 2-thread pool waits on busy cores)")
    args = ap.parse_args(argv)
    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        imp = import_times(args.images, Path(tmp))
        lat = latency(Path(tmp), args.rounds, args.calls, args.threads)
    r = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "cpu_flags": cpu_flags(),
         "torch_threads": args.threads, "git_sha": git_sha(),
         "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
         "command": "python benchmarks/export.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
         "load_before": load_before, "load_after": [round(v, 2) for v in os.getloadavg()], "import": imp,
         "latency": lat}
    fileio.write_json(ROOT / "benchmarks" / "results" / "export.json", r)
    fileio.write_text(ROOT / "benchmarks" / "results" / "export.md", markdown(r))
    print(markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
