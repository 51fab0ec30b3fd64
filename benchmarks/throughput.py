"""Training-step throughput (img/s): fp32 vs bf16 autocast, contiguous vs channels_last, on `cnn` and `cnn-small`;
with --compile, also torch.compile (inductor) of the model in the layout training uses, with its compile seconds.

One step = forward + cross-entropy + backward + AdamW step on a batch of 256 real MNIST images (already float tensors:
data handling is not timed). Every (model, precision, layout) setting runs in the same process; after a warm-up that is
not timed, the settings are timed in turns (round-robin, so a burst of load on the shared CPU hits them all alike) and
each reports the median and mean ± std of its timings. Writes benchmarks/results/throughput.md and throughput.json with
the machine, torch threads, command, date, git sha and load averages at start and end.

    python benchmarks/throughput.py                       # both models, 4 settings, 7 timings of 8 steps each
    python benchmarks/throughput.py --models cnn --repeats 3 --steps 4
    python benchmarks/throughput.py --compile --out benchmarks/results/throughput-compile-epyc-avx2

Compile seconds = the warm-up's wall time minus as many steps at the setting's median speed: what a run pays once.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mnistlab import fileio  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402
from mnistlab.models import count_params, create_model  # noqa: E402
from mnistlab.runs import cpu_name  # noqa: E402
from mnistlab.precision import autocast, cpu_has_bf16, resolve_precision  # noqa: E402
from _machine import cpu_flags, git_sha  # noqa: E402

SETTINGS = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]  # (precision, channels_last)
COMPILED = [("fp32", False), ("fp32", True), ("bf16", True)]  # with --compile (bf16 only where it is native)


class Bench:
    """One (model, precision, layout) setting: its own model, optimiser and input batch."""

    def __init__(self, model_name: str, precision: str, channels_last: bool, x: torch.Tensor, y: torch.Tensor,
                 compiled: bool = False):
        torch.manual_seed(0)
        self.name = f"{model_name} {precision}{' channels_last' if channels_last else ''}{' compiled' if compiled else ''}"
        self.model, self.precision, self.channels_last, self.compiled = model_name, precision, channels_last, compiled
        self.net = create_model(model_name, in_shape=tuple(x.shape[1:]), num_classes=10).train()
        self.x = x
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            self.x = x.contiguous(memory_format=torch.channels_last)
        self.y = y
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-3)
        self.timings: list[float] = []  # img/s of each timed block
        self.warmup_seconds = 0.0
        if compiled:  # after the optimiser took the parameters: compile wraps the module, the weights stay shared
            self.net = torch.compile(self.net)

    def warm(self, steps: int) -> None:
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.warmup_seconds = time.perf_counter() - t0

    def step(self) -> None:
        with autocast(self.precision):
            loss = F.cross_entropy(self.net(self.x).float(), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def time(self, steps: int) -> None:
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.timings.append(steps * len(self.y) / (time.perf_counter() - t0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="cnn,cnn-small")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per setting (oneDNN kernel selection)")
    ap.add_argument("--steps", type=int, default=8, help="steps per timing")
    ap.add_argument("--repeats", type=int, default=7, help="timings per setting (median reported)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (inductor) of the model")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "throughput"))
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load_start, started = os.getloadavg(), time.time()

    ds = load_dataset("mnist")
    x = torch.from_numpy(ds.train_x[: args.batch_size].copy()).float() / 255.0  # (B, 1, 28, 28)
    y = torch.from_numpy(ds.train_y[: args.batch_size].copy())
    settings = [(p, cl, False) for p, cl in SETTINGS]
    settings += [(p, cl, True) for p, cl in COMPILED if args.compile and (p == "fp32" or cpu_has_bf16())]
    benches = [Bench(m, p, cl, x, y, compiled=c) for m in args.models.split(",") for p, cl, c in settings]
    for b in benches:
        b.warm(args.warmup)
    for r in range(args.repeats):
        for b in benches:
            b.time(args.steps)
        print(f"round {r + 1}/{args.repeats}: " + ", ".join(f"{b.name} {b.timings[-1]:.0f}" for b in benches),
              flush=True)

    rows = []
    for b in benches:
        base = next(o for o in benches if o.model == b.model and o.precision == "fp32" and not o.channels_last)
        med, base_med = statistics.median(b.timings), statistics.median(base.timings)
        rows.append({"model": b.model, "params": count_params(b.net), "precision": b.precision,
                     "channels_last": b.channels_last, "compiled": b.compiled, "img_per_s_median": round(med, 1),
                     "compile_seconds": round(max(0.0, b.warmup_seconds - args.warmup * len(b.y) / med), 1)
                     if b.compiled else None,
                     "img_per_s_mean": round(statistics.mean(b.timings), 1),
                     "img_per_s_std": round(statistics.stdev(b.timings), 1) if len(b.timings) > 1 else 0.0,
                     "speedup_vs_fp32": round(med / base_med, 2), "timings": [round(t, 1) for t in b.timings]})
    winners = {}
    for m in args.models.split(","):
        best = max((r for r in rows if r["model"] == m), key=lambda r: r["img_per_s_median"])
        winners[m] = (f"{best['precision']}{' + channels_last' if best['channels_last'] else ''}"
                      f"{' + compiled' if best['compiled'] else ''}")
    result = {
        "benchmark": "throughput", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_sha(), "command": "python benchmarks/throughput.py " + " ".join(shlex.quote(a) for a in
                                                                             (argv if argv is not None else sys.argv[1:])),
        "machine": {"cpu": cpu_name(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "bf16_hardware": cpu_has_bf16(), "torch": torch.__version__},
        "auto_precision": resolve_precision("auto"),
        "settings": {"batch_size": args.batch_size, "warmup": args.warmup, "steps": args.steps,
                     "repeats": args.repeats},
        "loadavg_start": [round(v, 2) for v in load_start], "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "seconds": round(time.time() - started, 1), "results": rows, "fastest": winners,
    }
    out = Path(args.out)
    fileio.write_json(out.with_suffix(".json"), result)
    fileio.write_text(out.with_suffix(".md"), markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# Training-step throughput: fp32 vs bf16 autocast, contiguous vs channels_last",
        "",
        f"{r['date']} · git {r['git']} · `{r['command']}`",
        "",
        f"Machine: {m['cpu']} (CPU flags: {' '.join(m.get('cpu_flags', [])) or '?'}), {m['cpu_count']} cores, "
        f"torch {m['torch']} with {m['torch_threads']} threads, "
        f"bf16 hardware (AMX/AVX512-bf16): {'yes' if m['bf16_hardware'] else 'no'}. "
        f"Load average {r['loadavg_start'][0]:.1f} at start, {r['loadavg_end'][0]:.1f} at end: the CPU was shared "
        f"with other jobs, so absolute img/s are measured under load; the settings were timed in turns, so their "
        f"ratios are fairer than their absolute values.",
        "",
        f"One step: forward + cross-entropy + backward + AdamW on {r['settings']['batch_size']} MNIST images; "
        f"{r['settings']['warmup']} warm-up steps not timed; {r['settings']['repeats']} timings of "
        f"{r['settings']['steps']} steps per setting.",
        "",
        "| model | params | precision | layout | img/s (median) | mean ± std | × fp32 | compile s |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for x in r["results"]:
        layout = ("channels_last" if x["channels_last"] else "contiguous") + (", compiled" if x.get("compiled") else "")
        compile_s = f"{x['compile_seconds']:.1f}" if x.get("compile_seconds") is not None else ""
        lines.append(f"| {x['model']} | {x['params']:,} | {x['precision']} | {layout} | {x['img_per_s_median']:.0f} | "
                     f"{x['img_per_s_mean']:.0f} ± {x['img_per_s_std']:.0f} | {x['speedup_vs_fp32']:.2f} | {compile_s} |")
    lines += ["", "Fastest per model: " + ", ".join(f"{k}: {v}" for k, v in r["fastest"].items()) +
              f". `--precision auto` resolves to **{r['auto_precision']}** here (bf16 where the CPU has AMX or "
              "AVX512-bf16, else fp32); training and inference use channels_last in either precision.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
