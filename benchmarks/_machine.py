"""What every benchmark records about where and from what it ran (shared by the scripts in this folder)."""
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from mnistlab.precision import cpu_flags
from mnistlab.runs import cpu_name, git_info

__all__ = ["check_reuse", "cpu_flags", "cpu_name", "cpu_tag", "git_sha", "peak_gflops", "record_code", "run_cli",
           "run_devices", "run_git"]
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


# ------------------------------------------------------------------------------- reusing finished run folders
CODE_FILE = "bench_code.json"  # written beside a run by the driver that ran it: the code version it ran with


def source_fingerprint() -> str:
    """SHA-256 (16 hex) of the package's files under src/mnistlab: the code version, uncommitted edits included."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "src" / "mnistlab").rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def code_version() -> dict:
    return {**git_info(), "source": source_fingerprint()}


def record_code(out: Path, version: dict | None = None) -> None:
    """Note beside a run this driver finished the code that finished it (read back by `check_reuse`)."""
    if (out / "metrics.json").exists():
        (out / CODE_FILE).write_text(json.dumps(version or code_version(), indent=1))


def run_devices(folders) -> str:
    """The devices and precisions the run folders trained on, from their env.json, each once: e.g. 'cpu (bf16)'."""
    seen: list[str] = []
    for folder in folders:
        try:
            env = json.loads((Path(folder) / "env.json").read_text())
        except (OSError, ValueError):
            continue
        dev = f"{env.get('device', '?')} ({env.get('precision', '?')})"
        if dev not in seen:
            seen.append(dev)
    return ", ".join(seen) or "?"


def run_git(folder: Path) -> str:
    """The run's own git sha(s) from its env.json: 'abc1234', 'abc1234-dirty', 'abc1234→def5678' when resumed by
    other code; '?' when unknown."""
    try:
        env = json.loads((folder / "env.json").read_text())
    except (OSError, ValueError):
        return "?"
    parts = []
    for e in [env, *env.get("resumed", [])]:
        sha = (e.get("git_sha") or "?")[:7] + ("-dirty" if e.get("git_dirty") else "")
        if not parts or parts[-1] != sha:
            parts.append(sha)
    return "→".join(parts)


def stale_reason(out: Path, now: dict | None = None) -> str | None:
    """Why the finished run in `out` may not stand for this code (None: it may, or it is not finished). Its config is
    checked by `mnistlab … --resume` itself, which refuses a finished run started with other settings."""
    if not (out / "metrics.json").exists():
        return None
    now = now or code_version()
    try:
        rec = json.loads((out / CODE_FILE).read_text())
    except (OSError, ValueError):
        rec = {}
    if rec.get("source"):
        return None if rec["source"] == now["source"] else \
            f"it ran with source {rec['source']}, this checkout is {now['source']}"
    try:  # no record (finished outside this driver): the git shas, only when both sides are clean
        env = json.loads((out / "env.json").read_text())
    except (OSError, ValueError):
        return "its env.json is missing or unreadable"
    runs = [env, *env.get("resumed", [])]
    if now.get("git_dirty") or any(e.get("git_dirty") for e in runs):
        return "it or this checkout has uncommitted changes and it has no source record"
    if any(e.get("git_sha") != now.get("git_sha") for e in runs):
        return f"it ran at git {run_git(out)}, this checkout is {str(now.get('git_sha'))[:7]}"
    return None


def check_reuse(out: Path, *, rerun: bool, now: dict | None = None) -> None:
    """A finished run in `out` is reused only if it ran with this code: otherwise stop, or with `rerun` move it
    aside (kept, renamed *.stale-N) so that it runs again."""
    reason = stale_reason(out, now)
    if reason is None:
        return
    if not rerun:
        raise SystemExit(f"{out}: finished run not reused: {reason}. Remove it, or pass --rerun-stale to move it "
                         f"aside and run it again")
    k = 1
    while (aside := out.with_name(f"{out.name}.stale-{k}")).exists():
        k += 1
    out.rename(aside)
    print(f"{out}: {reason}; moved to {aside.name}, running again", flush=True)
