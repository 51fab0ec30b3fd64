"""Load test of `mnistlab serve` (issue 10): 8 concurrent clients on loopback, latency of POST /api/predict, errors.

Bounded: every client sends a fixed number of requests (with a hard time limit per phase), then the server it started
is stopped. Each phase starts a fresh server process (uvicorn, one worker) serving a classifier run with a fitted
rejector (so every request also computes features and Mahalanobis distances) and a detector run, and 8 client threads
(one keep-alive connection each, like 8 open pages) post either 28×28 JSON pixels or 280×280 PNG drawings (what the
page sends: decoded, centred and rescaled server-side). Server variants (`create_app(inference=…)`): batched (one
worker runs all waiting images as one batch), locked (one image at a time), concurrent (no lock); torch threads 1 or 2. Rounds interleave the variants so that the shared machine's load drifts over all of them alike.

Results go to benchmarks/results/serve.md and serve.json: machine, threads, load averages at start and end (the 2
cores are shared by several people: latencies are measured under that load), git sha, date, commands, and per variant
p50 / p90 / p99 / max latency and throughput as mean ± std over rounds, plus the error count.

    python benchmarks/serve.py                      # prepares runs under runs/bench-serve (reused), 3 rounds
    python benchmarks/serve.py --run DIR [--detector DIR] --rounds 5
    python benchmarks/serve.py --smoke              # seconds: checks the plumbing, writes serve-smoke.*
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from mnistlab import fileio  # noqa: E402
from mnistlab.runs import cpu_name, git_info  # noqa: E402

CLIENTS = 8
TARGET_P99_MS = 50.0
PHASE_LIMIT_S = 180.0  # hard stop of one phase, whatever happens
VARIANTS = [{"name": "batched, 1 thread", "inference": "batched", "threads": 1},  # `mnistlab serve`'s default
            {"name": "locked, 1 thread", "inference": "locked", "threads": 1},
            {"name": "concurrent, 1 thread", "inference": "concurrent", "threads": 1},
            {"name": "batched, 2 threads", "inference": "batched", "threads": 2}]
SERVER = """
import sys, torch, uvicorn
from mnistlab.serve.app import create_app
torch.set_num_threads({threads})
app = create_app({run!r}, detector_dir={detector!r}, inference={inference!r})
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def sh(args: list[str], log: list) -> dict | None:
    """`mnistlab <args> --json` in a subprocess → its final metrics (the command is logged)."""
    shown = "mnistlab " + " ".join(shlex.quote(a) for a in args)
    print(f"$ {shown}", flush=True)
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "mnistlab", *args], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "MNISTLAB_QUIET": "1"})
    log.append({"command": shown, "seconds": round(time.time() - t0, 1), "returncode": res.returncode})
    if res.returncode != 0:
        sys.exit(f"failed: {shown}\n{res.stderr.strip()[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def prepare(root: Path, *, smoke: bool, log: list) -> tuple[Path, Path, dict]:
    """A classifier run (default CNN) with a fitted rejector, and a detector run; finished ones are reused."""
    clf, det = root / "clf", root / "det"
    if smoke:
        m = sh(["supervised", "--budget", "smoke", "--out", str(clf), "--resume", "--json"], log)
    else:  # the default classifier architecture (cnn, 0.29 M params); latency depends on it, not on the accuracy
        m = sh(["supervised", "--set", "train_subset=10000", "--epochs", "2", "--out", str(clf), "--resume",
                "--json"], log)
    if not (clf / "rejector.json").exists():
        from mnistlab import infer
        from mnistlab.data import load_dataset
        from mnistlab.evaluate.rejection import fit_rejector
        from mnistlab.runs import load_run

        model = load_run(clf).model
        ds = load_dataset("mnist")
        x, y = ds.train_x[-3000:], ds.train_y[-3000:]  # calibration images (training set, never test)
        fit_rejector(infer.logits(model, x), infer.embeddings(model, x), y, num_classes=10).save(clf)
    log.append({"command": f"evaluate.rejection.fit_rejector on the last 3000 training images → {clf}/rejector.json "
                           "(kept when present)"})
    sh(["detect", "train", "--budget", "smoke", "--no-lofo", "--out", str(det), "--resume", "--json"], log)
    return clf, det, {"test_accuracy": m.get("test_accuracy"), "run": str(clf)}


def payloads(kind: str, n: int = 200) -> list[tuple[bytes, str]]:
    """Bodies a client sends: MNIST test digits as 28×28 JSON, or as 280×280 white-on-black PNG drawings."""
    from PIL import Image

    from mnistlab.data import load_dataset

    x = load_dataset("mnist").test_x[:n, 0]
    if kind == "json":
        return [(json.dumps({"pixels": im.tolist()}).encode(), "application/json") for im in x]
    out = []
    for im in x:
        buf = io.BytesIO()
        Image.fromarray(np.kron(im, np.ones((10, 10), np.uint8))).save(buf, format="PNG")
        out.append((buf.getvalue(), "image/png"))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(variant: dict, run: Path, detector: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = SERVER.format(threads=variant["threads"], run=str(run), detector=str(detector),
                         inference=variant["inference"], port=port)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), or NaN where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return float("nan")


def load_phase(url: str, bodies: list[tuple[bytes, str]], *, per_client: int, warmup: int, pid: int) -> dict:
    """CLIENTS threads × per_client requests, all started together; latency measured by each client."""
    import httpx

    with httpx.Client(timeout=30) as c:  # warm-up (first calls allocate, fill caches)
        for body, ctype in bodies[:warmup]:
            c.post(url + "/api/predict", content=body, headers={"content-type": ctype})
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)
    stop_at = time.time() + PHASE_LIMIT_S

    def client(k: int) -> None:
        mine, errs = [], []
        with httpx.Client(timeout=30) as c:
            start.wait()
            for i in range(per_client):
                if time.time() > stop_at:
                    errs.append("phase time limit reached")
                    break
                body, ctype = bodies[(k * per_client + i) % len(bodies)]
                t0 = time.perf_counter()
                try:
                    r = c.post(url + "/api/predict", content=body, headers={"content-type": ctype})
                    ok = r.status_code == 200 and len(r.json()["probs"]) == 10
                    if not ok:
                        errs.append(f"HTTP {r.status_code}")
                except (httpx.HTTPError, ValueError, KeyError) as e:
                    errs.append(type(e).__name__)
                mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)
            errors.extend(errs)

    t0, cpu0 = time.perf_counter(), cpu_seconds(pid)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    ms = np.array(lat) * 1000
    return {"requests": len(lat), "errors": len(errors), "error_kinds": sorted(set(errors)),
            "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "req_per_s": len(lat) / wall,
            # the server's own CPU per answered request: what the load of other jobs does not change much
            "server_cpu_ms_per_req": 1000 * cpu / max(1, len(lat))}


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="classifier run folder (default: prepared under --runs)")
    ap.add_argument("--detector", help="detector run folder (default: prepared under --runs)")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "bench-serve"), help="run folders (reused when finished)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-client", type=int, default=100, help="requests per client per phase")
    ap.add_argument("--smoke", action="store_true", help="tiny runs, 1 round, 10 requests per client")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.per_client = 1, 10
        args.runs = str(Path(args.runs).with_name("serve-smoke"))
    load_start, t_start = os.getloadavg(), time.time()
    log: list = []
    model_info = {}
    if args.run:
        run, detector = Path(args.run), Path(args.detector) if args.detector else None
        if detector is None:
            sys.exit("--run needs --detector too (the benchmark serves the full page: classifier + detector)")
    else:
        run, detector, model_info = prepare(Path(args.runs), smoke=args.smoke, log=log)
    bodies = {"json": payloads("json"), "png": payloads("png")}
    results = {(v["name"], kind): [] for v in VARIANTS for kind in bodies}
    for r in range(args.rounds):
        for v in VARIANTS:
            proc, url = start_server(v, run, detector)
            try:
                for kind, b in bodies.items():
                    res = load_phase(url, b, per_client=args.per_client, warmup=20, pid=proc.pid)
                    res["load_avg"] = [round(x, 2) for x in os.getloadavg()]
                    results[(v["name"], kind)].append(res)
                    print(f"round {r} {v['name']:>20} {kind:>4}: p50 {res['p50_ms']:6.1f} ms  p99 {res['p99_ms']:6.1f}"
                          f" ms  {res['req_per_s']:6.1f} req/s  server cpu {res['server_cpu_ms_per_req']:.2f} ms/req"
                          f"  errors {res['errors']}  load {res['load_avg'][0]}", flush=True)
            finally:
                stop_server(proc)
    load_end = os.getloadavg()

    rows = []
    for (name, kind), rs in results.items():
        row = {"variant": name, "payload": kind, "rounds": len(rs), "requests": sum(x["requests"] for x in rs),
               "errors": sum(x["errors"] for x in rs), "error_kinds": sorted({e for x in rs for e in x["error_kinds"]})}
        for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "req_per_s", "server_cpu_ms_per_req"):
            row[key] = mean_std([x[key] for x in rs])
        row["rounds_detail"] = rs
        rows.append(row)
    default = [r for r in rows if r["variant"] == VARIANTS[0]["name"]]
    verdict = {kind: {"p99_ms": r["p99_ms"][0], "errors": r["errors"],
                      "meets_target": r["p99_ms"][0] <= TARGET_P99_MS and r["errors"] == 0}
               for r in default for kind in [r["payload"]]}
    g = git_info()
    meta = {"benchmark": "serve", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "git_sha": g["git_sha"], "git_dirty": g["git_dirty"], "cpu": cpu_name(), "cpu_count": os.cpu_count(),
            "clients": CLIENTS, "per_client": args.per_client, "rounds": args.rounds,
            "command": "python benchmarks/serve.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in load_end],
            "wall_seconds": round(time.time() - t_start, 1), "run": str(run), "detector": str(detector),
            "classifier": model_info, "prepare": log, "target": {"p99_ms": TARGET_P99_MS, "errors": 0},
            "default_variant": VARIANTS[0]["name"], "verdict": verdict}
    name = "serve-smoke" if args.smoke else "serve"
    out = ROOT / "benchmarks" / "results"
    fileio.write_json(out / f"{name}.json", {**meta, "results": rows})
    fileio.write_text(out / f"{name}.md", render(meta, rows))
    print(f"wrote {out / name}.md and .json")


def render(meta: dict, rows: list[dict]) -> str:
    def ms(v):
        return f"{v[0]:.1f} ± {v[1]:.1f}"

    lines = [
        "# `mnistlab serve` load test: POST /api/predict, 8 concurrent clients on loopback", "",
        f"- date {meta['date']}, git {meta['git_sha'][:10] if meta['git_sha'] else '?'}"
        f"{' (dirty)' if meta['git_dirty'] else ''}; {meta['cpu']}, {meta['cpu_count']} cores",
        f"- command: `{meta['command']}` ({meta['wall_seconds']} s)",
        f"- load average (1/5/15 min) at start {meta['load_avg_start']}, at end {meta['load_avg_end']}: the cores are "
        "shared with other people's jobs, so every latency here was measured under that load.",
        f"- served: classifier `{meta['run']}` (test accuracy {meta['classifier'].get('test_accuracy')}) with a fitted "
        "rejector (chow, margin, Mahalanobis distance to the class means; logits and features from one pass) + "
        f"detector `{meta['detector']}`; one uvicorn worker, fresh per variant.",
        f"- clients: {meta['clients']} threads in one process, one keep-alive connection each, "
        f"{meta['per_client']} requests each per phase, {meta['rounds']} round(s); latency measured by the client "
        "(request sent → JSON answer parsed). `json`: 28×28 pixel lists; `png`: 280×280 drawings (decoded, inverted "
        "if needed, centred and rescaled server-side, as the page's canvas is).",
        f"- target: p99 ≤ {meta['target']['p99_ms']:.0f} ms and 0 errors with the default server "
        f"({meta['default_variant']}).", "",
        "| server | payload | requests | errors | p50 ms | p90 ms | p99 ms | max ms | req/s | server CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['payload']} | {r['requests']} | {r['errors']} | {ms(r['p50_ms'])} | "
                     f"{ms(r['p90_ms'])} | {ms(r['p99_ms'])} | {ms(r['max_ms'])} | {ms(r['req_per_s'])} | "
                     f"{r['server_cpu_ms_per_req'][0]:.2f} ± {r['server_cpu_ms_per_req'][1]:.2f} |")
    lines += ["", "Values are mean ± std over rounds. Server CPU ms/req = the server process's user + system CPU time "
              "during the phase / requests answered: the work per request, which the other jobs' load changes far less "
              "than the latencies (8 closed-loop clients on a server that batches need roughly 8 × that much CPU per "
              "round of answers).", ""]
    for kind, v in meta["verdict"].items():
        lines.append(f"- default server, {kind}: p99 {v['p99_ms']:.1f} ms, {v['errors']} errors → "
                     f"{'meets' if v['meets_target'] else 'MISSES'} the target")
    if meta["prepare"]:
        lines += ["", "Runs prepared with:", ""] + [f"- `{e['command']}`" for e in meta["prepare"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
