"""THE training loop, shared by every method: precision, determinism, progress, checkpoint/resume, NaN stop, DDP.

A method hands `fit` a module, its optimisers and three functions of the step number:
    batch_at(step)        -> batch            (deterministic in step: resuming replays the same data)
    loss_fn(batch, step)  -> {"loss": tensor, **floats}
    evaluate(step)        -> {name: float}    (called every `eval_every` steps and at the end)
Two extension points, no event system: `optimize(batch, step)` replaces the default zero_grad/backward/step (the GAN's
two optimisers), `after_step(step)` runs after each update (EMA).

Checkpoints (safetensors + JSON metadata) are written at step 0, every `ckpt_every` steps, at every evaluation and at
the end; `resume=True` continues from the last one with the same numbers as an uninterrupted run (data, augmentation
and dropout are functions of the step). A method may call `fit` more than once on one run (pre-training, then
fine-tuning) with distinct `ckpt_name`s: each stage remembers where its lines of metrics.jsonl start.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from tqdm import tqdm

from mnistlab.errors import MnistlabError, TrainingDiverged
from mnistlab.models import create_model
from mnistlab.precision import autocast, channels_last, grad_scaler, module_device, prepare_module, resolve_precision
from mnistlab.runs import CKPT, Run, load_checkpoint, save_checkpoint

# ------------------------------------------------------------------------------------------------ distributed


def allreduce_grads(params: list[torch.nn.Parameter], world: int, *,
                    extra: torch.Tensor | None = None) -> torch.Tensor | None:
    """Average gradients over processes: one flat all-reduce (what DDP does, without wrapping the module).

    `extra` (a float tensor, e.g. the loss) rides along in the same all-reduce; its average is returned, so every
    process sees the same value (a NaN on one rank stops them all, instead of leaving the others waiting).
    """
    if world == 1:
        return extra
    grads = [p.grad for p in params if p.grad is not None]
    tail = [] if extra is None else [extra.detach().float().reshape(-1)]
    if not grads and not tail:
        return extra
    flat = torch.cat([g.reshape(-1).float() for g in grads] + tail)
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()
    return flat[offset:].view_as(extra) if extra is not None else None


def broadcast_state(module: torch.nn.Module, world: int) -> None:
    """Rank 0's parameters and buffers to every process (same start, whatever each process initialised)."""
    if world > 1:
        for t in module.state_dict().values():
            dist.broadcast(t, 0)


def average_buffers(module: torch.nn.Module, world: int) -> None:
    """Batch-norm running statistics averaged over processes (each saw only its share of the global batch)."""
    if world > 1:
        for name, b in module.named_buffers():
            if b.is_floating_point():
                dist.all_reduce(b)
                b /= world


# ------------------------------------------------------------------------------------------------ batches


class Batcher:
    """Deterministic, resumable mini-batch indices over `n` items.

    The stream is epoch permutations laid end to end, each seeded by (seed, epoch); batch k is stream[kB:(k+1)B],
    so it depends on (seed, k) only. Under DDP every process computes the same global batch and keeps its share.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int, rank: int = 0, world: int = 1):
        if n <= 0:
            raise MnistlabError("no training examples")
        self.n, self.bs, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self._perms: dict[int, np.ndarray] = {}

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.n // self.bs)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perms[epoch]

    def __call__(self, step: int) -> torch.Tensor:
        start = step * self.bs
        idx = np.concatenate([self._perm(e) for e in range(start // self.n, (start + self.bs - 1) // self.n + 1)])
        off = start - (start // self.n) * self.n
        batch = idx[off: off + self.bs]
        return torch.from_numpy(batch[self.rank:: self.world])


def _rank_salt() -> int:
    """0 in a single process (so its numbers never change); distinct per process under torchrun."""
    return dist.get_rank() * 1_000_000_007 if dist.is_initialized() else 0


def step_generator(seed: int, step: int, stream: int = 0, *, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on `device` for augmentation at `step`, independent of everything that ran before
    (resumable). A CUDA generator draws other numbers than a CPU one with the same seed: runs match per device.

    Under DDP each process gets its own draws for its share of the batch, as one process would for the whole batch.
    """
    return torch.Generator(device).manual_seed((seed * 1_000_003 + step) * 7 + stream + _rank_salt())


# ------------------------------------------------------------------------------------------------ the loop


def _default_optimizer(module: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer], params: list, *,
                       loss_fn: Callable[[Any, int], dict], precision: str, world: int, grad_clip: float | None):
    """The standard update: loss under autocast, backward (through a GradScaler in fp16), all-reduce, clip, step."""
    device = module_device(module)
    scaler = grad_scaler(precision, device)

    def default_optimize(batch: Any, step: int) -> dict:
        with autocast(precision, device):
            out = loss_fn(batch, step)
        loss = out["loss"]
        if world == 1 and not torch.isfinite(loss.detach()):
            return out
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        (loss if scaler is None else scaler.scale(loss)).backward()
        mean_loss = allreduce_grads(params, world, extra=loss.detach())
        if not torch.isfinite(mean_loss):  # some process diverged: nobody steps, everybody stops
            return {**out, "loss": mean_loss}
        if scaler is not None:
            for opt in optimizers.values():
                scaler.unscale_(opt)  # clip the true gradients
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        for opt in optimizers.values():
            opt.step() if scaler is None else scaler.step(opt)
        if scaler is not None:
            scaler.update()
        return out

    return default_optimize


def _step_logs(logs: dict, step: int, ckpt_path) -> dict[str, float]:
    """A step's logs as floats; a non-finite loss stops the run (the last good checkpoint is kept)."""
    logs = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in logs.items()}
    bad = [k for k, v in logs.items() if "loss" in k and not math.isfinite(v)]
    if bad:
        kept = f"last good checkpoint kept in {ckpt_path}" if ckpt_path.exists() else "no checkpoint yet"
        raise TrainingDiverged(f"{bad[0]} became {logs[bad[0]]} at step {step}; {kept}")
    return logs


def fit(module: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer] | torch.optim.Optimizer, *,
        run: Run, total_steps: int, batch_at: Callable[[int], Any],
        loss_fn: Callable[[Any, int], dict] | None = None,
        optimize: Callable[[Any, int], dict] | None = None,
        evaluate: Callable[[int], dict] | None = None, eval_every: int = 0,
        lr_at: Callable[[int], float] | None = None, after_step: Callable[[int], None] | None = None,
        precision: str = "fp32", seed: int = 0, ckpt_every: int = 500, resume: bool = False,
        grad_clip: float | None = None, steps_per_epoch: int | None = None, desc: str = "train",
        world: int = 1, ckpt_name: str = CKPT) -> list[dict]:
    """Train for `total_steps` steps; returns the history (one dict per evaluation). See the module docstring."""
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = {"opt": optimizers}
    if (loss_fn is None) == (optimize is None):
        raise ValueError("give exactly one of loss_fn / optimize")
    eval_every = eval_every or steps_per_epoch or total_steps
    ckpt_path, device = run.path(ckpt_name), module_device(module)
    for opt in optimizers.values():
        for g in opt.param_groups:
            g.setdefault("base_lr", g["lr"])
    params = [p for opt in optimizers.values() for g in opt.param_groups for p in g["params"]]
    run.checkpoints.add(ckpt_name)
    start, history, wall_before = 0, [], 0.0
    sums: dict[str, float] = {}  # running sums of the step logs since the last evaluation
    count = 0
    log_base = len(run.read_log())  # lines an earlier stage of this run wrote before this `fit`
    if resume and ckpt_path.exists():
        meta = load_checkpoint(ckpt_path, module, optimizers)
        start, history, wall_before = meta["step"], meta["history"], meta["train_seconds"]
        sums, count, log_base = meta["sums"], meta["count"], meta.get("log_base", 0)
        # the log is exactly what it was at the checkpoint: lines written after it (before a kill) are replayed
        run.rewrite_log(run.read_log()[:log_base] + history)
        run.resumed_seconds += wall_before  # so metrics.json's wall_seconds counts the work before the kill
    if world > 1:
        dist.barrier()  # every process has decided where to start before rank 0 writes a checkpoint
        broadcast_state(module, world)
    t0 = time.time()

    def checkpoint(step: int) -> None:
        if not run.writer:
            return
        if not all(bool(torch.isfinite(p).all()) for p in params):
            kept = f"last good checkpoint kept in {ckpt_path}" if ckpt_path.exists() else "no checkpoint yet"
            raise TrainingDiverged(f"parameters became NaN/inf by step {step}; {kept}")
        save_checkpoint(ckpt_path, module, optimizers,
                        {"step": step, "history": history, "sums": sums, "count": count, "log_base": log_base,
                         "train_seconds": wall_before + time.time() - t0, "device": str(device)})

    if start == 0:
        checkpoint(0)  # records where this stage's log starts, so a kill before the first real checkpoint is safe
    if optimize is None:
        optimize_step = _default_optimizer(module, optimizers, params, loss_fn=loss_fn, precision=precision,
                                           world=world, grad_clip=grad_clip)
    else:
        def optimize_step(batch: Any, step: int) -> dict:
            with autocast(precision, device):
                return optimize(batch, step)
    bar = _progress(total_steps, start, desc, run.writer)
    module.train()
    for step in range(start, total_steps):
        torch.manual_seed(seed * 1_000_003 + step + _rank_salt())  # dropout & co: a function of the step (resumable)
        if lr_at is not None:
            scale = lr_at(step)
            for opt in optimizers.values():
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * scale
        logs = _step_logs(optimize_step(batch_at(step), step), step, ckpt_path)
        if after_step is not None:
            after_step(step)
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        bar.update(1)
        done = step + 1
        if done % eval_every == 0 or done == total_steps:
            average_buffers(module, world)
            record: dict[str, Any] = {"step": done}
            if steps_per_epoch:
                record["epoch"] = round(done / steps_per_epoch, 3)
            record.update({f"train_{k}": v / count for k, v in sums.items()})
            if evaluate is not None and run.writer:
                module.eval()
                with torch.no_grad(), autocast(precision, device):
                    record.update(evaluate(done))
                module.train()
            record["seconds"] = round(wall_before + time.time() - t0, 2)
            history.append(record)
            run.log(record)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("step", "epoch", "seconds")})
            sums, count = {}, 0
            checkpoint(done)  # also at the end: a kill during the method's final outputs resumes without training
        elif ckpt_every and done % ckpt_every == 0:
            checkpoint(done)
    bar.close()
    module.eval()
    return history


def _progress(total: int, initial: int, desc: str, enabled: bool):
    quiet = not enabled or os.environ.get("MNISTLAB_QUIET") == "1"
    return tqdm(total=total, initial=initial, desc=desc, disable=quiet, leave=True, file=sys.stderr,
                mininterval=1.0, dynamic_ncols=True)


def calibrate(*, steps: int = 6, warmup: int = 3, batch: int = 256) -> float:
    """Seconds per training step of `cnn` (forward, loss, backward, AdamW) on `batch` 28×28 images, in the precision
    and layout the methods use here (`precision=auto`, channels_last); the median of `steps` timed steps."""
    precision = resolve_precision("auto")
    gen = torch.Generator().manual_seed(0)
    net = prepare_module(create_model("cnn", in_shape=(1, 28, 28), num_classes=10).train(), precision)
    x = channels_last(torch.rand(batch, 1, 28, 28, generator=gen))
    y = torch.randint(0, 10, (batch,), generator=gen)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with autocast(precision):
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]
