"""The run folder: a complete record of one command, and `load_run` to rebuild its model.

    DIR/config.json      merged config (+ command, method)
    DIR/env.json         git sha + dirty flag, library versions, CPU, threads, precision
    DIR/splits.npz       every index set the run used (labelled, val, unlabelled, …)
    DIR/metrics.jsonl    one JSON line per evaluation
    DIR/metrics.json     final metrics, always with wall_seconds (written last: its presence means "finished")
    DIR/model.safetensors + DIR/model.json   weights + how to rebuild the model (name, kwargs, preprocessing)
    DIR/checkpoint.safetensors   resumable training state (weights, optimiser, step, history), while training
    DIR/.run.lock        held (flock) by the process writing the run: a second writer is refused, not interleaved
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from mnistlab import __version__, fileio
from mnistlab.config import to_dict
from mnistlab.data import load_dataset
from mnistlab.errors import MnistlabError
from mnistlab.models import check_size, check_spec, create_model
from mnistlab.models.gan import Generator, build_generator, check_gan_spec, gan_spec, recalibrate_bn
from mnistlab.precision import cpu_flags

REPO = Path(__file__).resolve().parents[2]
LOCK = ".run.lock"


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", False
    return {"git_sha": sha or None, "git_dirty": dirty if sha else None}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def env_info() -> dict[str, Any]:
    versions = {}
    for dist in ("torch", "numpy", "safetensors", "scikit-learn", "matplotlib"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {**git_info(), "mnistlab": __version__, "python": platform.python_version(), "versions": versions,
            "cpu": cpu_name(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def source_fingerprint(*modules: str) -> str:
    """Hash of the named modules' source files: part of a cache key, so a cached model (the RotNet pretext, the GAN
    metrics' classifier) is trained again when the code that trains it changes."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            raise MnistlabError(f"no source for module {name!r}")
        h.update(name.encode() + b"\0" + Path(spec.origin).read_bytes())
    return h.hexdigest()[:16]


_HELD: dict[Path, Any] = {}  # run folders this process writes → their open lock file


def lock_folder(d: Path) -> None:
    """Hold an exclusive flock on d/.run.lock for as long as this process writes d, so that a second process (a
    second terminal, two benchmark drivers) is refused instead of interleaving checkpoints and logs. The kernel drops
    the lock when the process ends, kill -9 included. Within one process a folder is locked once: a Run opened again
    on it (a resume after an in-process interruption) shares the lock."""
    key = d.resolve()
    if key in _HELD:
        return
    try:
        f = open(d / LOCK, "a")
    except OSError as e:
        raise MnistlabError(f"cannot create {d / LOCK}: {e.strerror}") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise MnistlabError(f"{d} is being written by another mnistlab process; wait for it to end or choose "
                            f"another --out") from None
    _HELD[key] = f


def unlock_folder(d: Path) -> None:
    f = _HELD.pop(d.resolve(), None)
    if f is not None:
        f.close()  # closing the file releases its flock


def resolve_out(out: str | os.PathLike | None, default: Path) -> Path:
    """The folder a command writes: `out`, or `default` when none is given. An empty path is refused (it would
    otherwise fall back to the default silently)."""
    if out is not None and not str(out).strip():
        raise MnistlabError("--out is an empty path; give a folder (or leave --out out for an auto-named one)")
    return Path(out) if out is not None else default


def default_out(command: str, name: str) -> Path:
    """runs/<command>-<name>-<time>, with a -2, -3… suffix when that folder already exists (two runs in a second)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{command}-{name}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


class Run:
    """A run folder being written. Rank ≠ 0 processes of a distributed run get a Run that writes nothing."""

    def __init__(self, out: str | os.PathLike, *, resume: bool = False, writer: bool = True):
        self.dir = Path(out)
        self.writer = writer
        self.resume = resume
        self.checkpoints: set[str] = {"checkpoint.safetensors"}  # resumable states to drop when the run finishes
        self.started = time.time()
        self.resumed_seconds = 0.0  # training time spent before a resume (set by the loop)
        if not writer:
            return
        if (self.dir / "metrics.json").exists() and not resume:
            raise MnistlabError(f"{self.dir} holds a finished run; choose another --out (or --resume to reuse it)")
        if self.dir.exists() and not self.dir.is_dir():
            raise MnistlabError(f"--out {self.dir} is a file, not a folder")
        # a folder that holds anything but a run (or a run killed before its config.json) is not ours, --resume or
        # not: a fresh start would delete its checkpoint*.safetensors and overwrite its metrics and model files
        if self.dir.is_dir() and not (self.dir / "config.json").exists() and (
                foreign := sorted(p.name for p in self.dir.iterdir() if p.name not in ("env.json", LOCK)
                                  and not (p.name.startswith(".") and p.name.endswith(".tmp")))):
            raise MnistlabError(f"--out {self.dir} is a non-empty folder that is not a run folder (it holds "
                                f"{foreign[0]}{' …' if len(foreign) > 1 else ''}); choose another --out")
        # made by this run (or holding only a dead run's lock file): removable if it fails
        self.fresh = not self.dir.exists() or not any(p.name != LOCK for p in self.dir.iterdir())
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MnistlabError(f"cannot create {self.dir}: {e.strerror}") from None
        lock_folder(self.dir)
        fileio.remove_stale_temps(self.dir)  # locked: temporaries older than this process are a dead writer's

    def path(self, name: str) -> Path:
        return self.dir / name

    def close(self) -> None:
        """Let another process write this folder (the lock also ends with the process)."""
        if self.writer:
            unlock_folder(self.dir)

    @property
    def finished(self) -> bool:
        return (self.dir / "metrics.json").exists()

    def check_config(self, cfg: Any, *, command: str, method: str | None = None) -> dict[str, Any]:
        """The config as saved (command, method + fields); one error if the folder's config.json differs: a resumed
        run, finished or not, continues only what it was started with. → the config to save."""
        conf = {"command": command, "method": method, **(to_dict(cfg) if not isinstance(cfg, dict) else cfg)}
        old = self.dir / "config.json"
        if old.exists():
            prev = fileio.read_json(old)  # an object, else one error
            ignore = {"resume", "threads", "device"}  # a run may continue on another device
            # a setting the old run did not have yet (added to the code since) counts as its default, so an
            # interrupted run still resumes after an upgrade; where the default is not the old behaviour, the config
            # class says in LEGACY what the old runs did
            defaults = ({f.name: f.default for f in dataclasses.fields(cfg) if f.default is not dataclasses.MISSING}
                        if dataclasses.is_dataclass(cfg) else {})
            defaults.update(getattr(cfg, "LEGACY", {}))
            diff = sorted(k for k in set(prev) | set(conf)
                          if k not in ignore and prev.get(k, defaults.get(k)) != conf.get(k))
            if diff:
                raise MnistlabError(f"{self.dir} was started with another config (differs in {', '.join(diff)}); "
                                    f"use another --out")
        return conf

    def start(self, cfg: Any, *, command: str, method: str | None = None, resolved: dict[str, Any] | None = None) -> None:
        """Write config.json and env.json (+ `resolved`: what the run resolved, e.g. its device and precision)."""
        if not self.writer:
            return
        conf = self.check_config(cfg, command=command, method=method)
        old = self.dir / "config.json"
        env = self.dir / "env.json"
        if self.resume and env.exists():  # keep the original record; note who continued it
            prev_env = fileio.read_json(env)
            now = {**env_info(), **(resolved or {})}
            prev_env.setdefault("resumed", []).append({k: now[k] for k in ("date", "git_sha", "git_dirty", "device")
                                                       if k in now})
            fileio.write_json(env, prev_env)
        else:
            # a fresh start in an unfinished folder: drop what the interrupted attempt left
            (self.dir / "metrics.jsonl").unlink(missing_ok=True)
            for ck in self.dir.glob("checkpoint*.safetensors"):
                ck.unlink()
            fileio.write_json(env, {**env_info(), **(resolved or {})})
        fileio.write_json(old, conf)

    # ---------------------------------------------------------------------------------------------- artefacts
    def save_json(self, name: str, obj: Any) -> None:
        if self.writer:
            fileio.write_json(self.dir / name, obj)

    def save_splits(self, **indices: np.ndarray) -> None:
        """Index arrays, int64, in one npz (read back with allow_pickle=False)."""
        if not self.writer:
            return
        with fileio.atomic_path(self.dir / "splits.npz") as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **{k: np.asarray(v, dtype=np.int64) for k, v in indices.items()})

    def save_array(self, name: str, arr: np.ndarray) -> None:
        if self.writer:
            with fileio.atomic_path(self.dir / name) as tmp, open(tmp, "wb") as f:
                np.save(f, arr, allow_pickle=False)

    def save_figure(self, name: str, fig: Any) -> None:
        """Save a matplotlib figure as PNG and close it."""
        import matplotlib.pyplot as plt  # lazy: matplotlib costs ~0.5 s to import, and most runs.py users never plot

        if self.writer:
            with fileio.atomic_path(self.dir / name) as tmp:
                fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)

    def log(self, record: dict[str, Any]) -> None:
        if self.writer:
            with open(self.dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record, default=fileio._jsonable) + "\n")

    def read_log(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl so far (a torn last line, from a kill mid-write, is dropped)."""
        path = self.dir / "metrics.jsonl"
        if not self.writer or not path.exists():
            return []
        out = []
        for line in path.read_bytes().decode(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break
            if not isinstance(rec, dict):
                break
            out.append(rec)
        return out

    def discard_if_unstarted(self) -> bool:
        """After a failure: remove the folder if this run made it and it holds no training yet (no checkpoint past
        step 0, no metrics.json), so a bad setting leaves nothing behind to block the next try. → removed?"""
        if not (self.writer and getattr(self, "fresh", False) and self.dir.is_dir()) or self.finished:
            return False
        for ck in self.dir.glob("checkpoint*.safetensors"):
            try:
                meta = checkpoint_meta(ck)
            except MnistlabError:
                return False  # unreadable: not ours to judge
            if not isinstance(meta, dict) or meta.get("step", 0):
                return False
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return True

    def rewrite_log(self, records: list[dict[str, Any]]) -> None:
        """After a resume: the log is exactly the history up to the checkpoint (no duplicated lines)."""
        if self.writer:
            fileio.write_text(self.dir / "metrics.jsonl",
                              "".join(json.dumps(r, default=fileio._jsonable) + "\n" for r in records))

    def save_model(self, model: torch.nn.Module, spec: dict[str, Any], name: str = "model") -> None:
        """Weights as safetensors + `name.json` = how to rebuild (`models.create_model(**spec)`)."""
        if not self.writer:
            return
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        with fileio.atomic_path(self.dir / f"{name}.safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"mnistlab": json.dumps(spec)})
        fileio.write_json(self.dir / f"{name}.json", spec)

    def finish(self, metrics: dict[str, Any], *, extra_seconds: float = 0.0) -> dict[str, Any]:
        """Write metrics.json (last: its presence marks the run complete) and drop the resumable checkpoint."""
        seconds = time.time() - self.started + self.resumed_seconds + extra_seconds
        metrics = {**metrics, "wall_seconds": round(seconds, 2)}
        if self.writer:
            fileio.write_json(self.dir / "metrics.json", metrics)
            for name in self.checkpoints:
                (self.dir / name).unlink(missing_ok=True)
        self.close()
        return metrics


# ------------------------------------------------------------------------------------------------ checkpoints

CKPT = "checkpoint.safetensors"
_CKPT_ERR = {"what": " checkpoint", "hint": "; delete it to start over"}


def save_checkpoint(path: Path, module: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                    meta: dict[str, Any]) -> None:
    """Module + optimiser state in one safetensors file (JSON metadata for the rest); replaced atomically. Tensors
    are copied to the CPU, so the file loads on any device."""
    tensors = {f"model/{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    opt_meta = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, st in sd["state"].items():
            for key, val in st.items():
                if torch.is_tensor(val):
                    tensors[f"opt/{name}/{pid}/{key}"] = val.detach().cpu().contiguous().clone()
                else:
                    scalars.setdefault(str(pid), {})[key] = val
        opt_meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    with fileio.atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"meta": json.dumps({**meta, "optimizers": opt_meta},
                                                                   default=fileio._jsonable)})


def checkpoint_meta(path: Path) -> dict:
    """The JSON metadata of a checkpoint (step, history, …) without loading its tensors."""
    return fileio.read_safetensors(path, missing=f"missing checkpoint {path}", meta_key="meta", tensors=False,
                                   **_CKPT_ERR)[1]


def _check_loop_meta(meta: Any) -> None:
    """The loop's own bookkeeping, in the types it writes (a hand-edited or foreign file fails here, not mid-run)."""
    for key, kind in (("step", int), ("history", list), ("sums", dict), ("count", (int, float)),
                      ("train_seconds", (int, float))):
        if key not in meta:
            raise KeyError(key)
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool) or (key == "step" and meta[key] < 0):
            raise TypeError(f"{key} is {type(meta[key]).__name__} {meta[key]!r:.40}")
    if not all(isinstance(r, dict) for r in meta["history"]):
        raise TypeError("history holds non-records")


def load_checkpoint(path: Path, module: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Restore module + optimisers from `save_checkpoint`'s file (read on the CPU; `load_state_dict` copies each
    tensor to the device of the module's / optimiser's own); returns its metadata."""
    tensors, meta = fileio.read_safetensors(path, missing=f"missing checkpoint {path}", meta_key="meta", **_CKPT_ERR)
    try:
        module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
        for name, opt in optimizers.items():
            om = meta["optimizers"][name]
            state: dict[int, dict[str, Any]] = {}
            for k, v in tensors.items():
                if k.startswith(f"opt/{name}/"):
                    _, _, pid, key = k.split("/", 3)
                    state.setdefault(int(pid), {})[key] = v
            for pid, sc in om["scalars"].items():
                state.setdefault(int(pid), {}).update(sc)
            opt.load_state_dict({"state": state, "param_groups": om["param_groups"]})
        _check_loop_meta(meta)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MnistlabError(f"{path}: checkpoint does not fit this run ({msg}); delete it to start over") from None
    return meta


@dataclass
class LoadedRun:
    dir: Path
    config: dict[str, Any]
    spec: dict[str, Any]
    model: torch.nn.Module
    metrics: dict[str, Any]


def check_finite(state: dict[str, torch.Tensor], where: Path) -> None:
    """Weights with NaN or ±inf (a diverged run saved by hand, a damaged file) would answer NaN to every image."""
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise MnistlabError(f"{where}: weight {bad} holds NaN or infinite values")


def check_dtypes(state: dict[str, torch.Tensor], model: torch.nn.Module, where: Path) -> None:
    """Integer or bool tensors where the model holds floats would be cast silently (a foreign or tampered file);
    integer buffers (BatchNorm's num_batches_tracked) stay integers."""
    want = model.state_dict()
    bad = next((k for k, v in state.items() if k in want and want[k].is_floating_point()
                and not v.is_floating_point()), None)
    if bad is not None:
        raise MnistlabError(f"{where}: weight {bad} is {state[bad].dtype}, expected floating point")


def load_model(path: str | os.PathLike, name: str = "model", *,
               device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a model from `name.json` + `name.safetensors` in a folder (no pickle anywhere). The weights are read
    onto the CPU whatever device trained them, then the model is moved to `device`."""
    d = Path(path)
    spec = fileio.read_json(d / f"{name}.json")
    check_spec(spec, str(d / f"{name}.json"))
    state, _ = fileio.read_safetensors(d / f"{name}.safetensors",
                                       missing=f"{d} has no {name}.safetensors; is it a finished run folder?")
    check_finite(state, d / f"{name}.safetensors")
    try:
        check_size(spec, sum(v.numel() for v in state.values()))  # before allocating anything
        model = create_model(spec["name"], in_shape=tuple(spec["in_shape"]), num_classes=spec["num_classes"],
                             **spec.get("kwargs", {}))
    except (TypeError, ValueError, RuntimeError, MnistlabError) as e:  # options it does not take, sizes it cannot build
        raise MnistlabError(f"{d / (name + '.json')}: bad model spec ({str(e).splitlines()[0]})") from None
    check_dtypes(state, model, d / f"{name}.safetensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise MnistlabError(f"{d}: weights do not fit model {spec['name']} ({str(e).splitlines()[0]})") from None
    # channels_last like every trained module (precision.prepare_module): NCHW weights would convert the layout of
    # `infer`'s batches in every convolution (benchmarks/notes/recipe-history.md)
    return model.to(device=device, memory_format=torch.channels_last).eval(), spec


def load_run(path: str | os.PathLike) -> LoadedRun:
    """Rebuild the model of a finished run folder, with its config and metrics."""
    d = Path(path)
    if not d.is_dir():
        raise MnistlabError(f"run folder {d} does not exist")
    config = fileio.read_json(d / "config.json")
    model, spec = load_model(d)
    metrics = fileio.read_json(d / "metrics.json") if (d / "metrics.json").exists() else {}
    return LoadedRun(d, config, spec, model, metrics)


def load_generator(run_dir: str | os.PathLike) -> tuple[Generator, dict[str, Any]]:
    """Rebuild the (EMA) generator saved by a `gan`/`cgan` run: generator.json + generator.safetensors, on the CPU."""
    d = Path(run_dir)
    if not d.is_dir():
        raise MnistlabError(f"run folder {d} does not exist")
    if not (d / "generator.safetensors").exists() and (d / CKPT).exists():
        return _generator_from_checkpoint(d)
    if not (d / "generator.json").exists():
        raise MnistlabError(f"{d} has no generator.json; is it a finished `gan train` run?")
    spec = fileio.read_json(d / "generator.json")
    if spec.get("kind") != "dcgan":
        raise MnistlabError(f"{d / 'generator.json'}: not a GAN generator spec")
    check_gan_spec(spec, str(d / "generator.json"))
    state, _ = fileio.read_safetensors(d / "generator.safetensors",
                                       missing=f"{d} has no generator.safetensors; is the run finished?")
    check_finite(state, d / "generator.safetensors")
    G = build_generator(spec)
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        raise MnistlabError(f"{d}: weights do not fit the generator spec ({str(e).splitlines()[0]})") from None
    return G.eval(), spec


def _generator_from_checkpoint(d: Path) -> tuple[Generator, dict[str, Any]]:
    """An unfinished run: the EMA generator of its last checkpoint (spec from config.json), batch norm recalibrated.

    The returned spec carries `checkpoint_step`, so reports can say how far training had got.
    """
    cfg = fileio.read_json(d / "config.json")
    if cfg.get("method") not in ("gan", "cgan"):
        raise MnistlabError(f"{d} is not a gan/cgan run")
    ds = load_dataset(cfg["dataset"])
    spec = gan_spec(nz=cfg["nz"], g_width=cfg["g_width"], d_width=cfg["d_width"], channels=ds.shape[0],
                    num_classes=ds.num_classes if cfg["conditional"] else 0)
    state, meta = fileio.read_safetensors(d / CKPT, missing=f"{d} has no {CKPT}", meta_key="meta",
                                          prefix="model/G_ema.")
    if not isinstance(meta, dict) or "step" not in meta:
        raise MnistlabError(f"{d / CKPT}: unreadable (no step in its metadata)")
    G = build_generator(spec)
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        raise MnistlabError(f"{d}: checkpoint does not fit the generator ({str(e).splitlines()[0]})") from None
    recalibrate_bn(G, seed=cfg["seed"])
    return G.eval(), {**spec, "checkpoint_step": meta["step"]}
