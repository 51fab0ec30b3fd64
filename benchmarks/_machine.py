"""What every benchmark records about where and from what it ran (shared by the scripts in this folder)."""
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from mnistlab.precision import cpu_flags
from mnistlab.runs import cpu_name, git_info

__all__ = ["cpu_flags", "cpu_name", "cpu_tag", "git_sha", "peak_gflops", "run_cli"]
ROOT = Path(__file__).resolve().parents[1]


def cpu_tag() -> str:
    """A short name for the CPU's class in result file names: amx, avx512bf16, avx512, avx2 or other."""
    f = set(cpu_flags())
    return ("amx" if "amx_bf16" in f else "avx512bf16" if "avx512_bf16" in f else "avx512" if "avx512f" in f
            else "avx2" if "avx2" in f else "other")


def peak_gflops() -> dict[str, float]:
    """Peak estimate, cores × FLOP/cycle × clock: fp32 FMA is 2 × 8 lanes × 2 units (AVX2) or × 16 lanes (AVX-512);
    bf16 (AVX512-bf16 dot products) doubles it. The clock is /proc/cpuinfo's current MHz (a turbo clock is higher)."""
    mhz = 0.0
    try:
        mhz = max(float(l.split(":")[1]) for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("cpu MHz"))
    except (OSError, ValueError):
        pass
    f, cores = set(cpu_flags()), os.cpu_count() or 1
    per_cycle = 64 if "avx512f" in f else 32 if {"avx2", "fma"} <= f else 8
    out = {"fp32": cores * per_cycle * mhz / 1000}
    if "avx512_bf16" in f:
        out["bf16"] = 2 * out["fp32"]
    return out


def git_sha() -> str:
    """Short sha with a -dirty suffix when tracked files differ from HEAD; "unknown" outside a checkout."""
    g = git_info()
    return g["git_sha"][:7] + ("-dirty" if g["git_dirty"] else "") if g["git_sha"] else "unknown"


def run_cli(args: list[str]) -> tuple[dict | None, dict]:
    """`python -m mnistlab <args>` in a subprocess → (last JSON line of stdout or None, log entry with the command,
    its seconds and the load average before and after)."""
    shown = "mnistlab " + " ".join(shlex.quote(a) for a in args)
    print(f"$ {shown}", flush=True)
    t0, load0 = time.time(), os.getloadavg()
    res = subprocess.run([sys.executable, "-m", "mnistlab", *args], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "MNISTLAB_QUIET": "1"})
    entry = {"command": shown, "process_seconds": round(time.time() - t0, 1),
             "load_avg_before": [round(x, 2) for x in load0], "load_avg_after": [round(x, 2) for x in os.getloadavg()]}
    if res.returncode != 0:
        entry["error"] = (res.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  failed: {entry['error']}", flush=True)
        return None, entry
    return json.loads(res.stdout.strip().splitlines()[-1]), entry
