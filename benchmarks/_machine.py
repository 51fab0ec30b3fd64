"""What every benchmark records about where and from what it ran (shared by the scripts in this folder)."""
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from mnistlab.runs import cpu_name, git_info

__all__ = ["cpu_name", "git_sha", "run_cli"]
ROOT = Path(__file__).resolve().parents[1]


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
