"""Where and how a run computes: device, precision and threads, resolved once per run and passed down.

    device     auto | cpu | cuda | cuda:N | mps      auto = cuda if available, else mps, else cpu
    precision  auto | bf16 | fp16 | fp32             auto = per device, below
        cuda: bf16 autocast where the GPU supports it, else fp16 autocast with a GradScaler
        cpu:  bf16 autocast where the CPU has AMX or AVX512-bf16, else fp32 (emulated bf16 is ~10× slower)
        mps:  fp32 (MPS autocast covers few ops in torch 2.x, and bf16 is missing on older macOS)
    threads    > 0: that many torch intra-op threads; 0: torch's default (one per core)

Weights and optimiser state stay fp32 in every precision; convolution weights and image batches are channels_last.
An unknown or absent device is a one-line MnistlabError, raised before any run folder is made.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from mnistlab.errors import MnistlabError

DEVICES = "auto, cpu, cuda, cuda:N, mps"
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class Runtime:
    """A run's resolved device and precision ("bf16" | "fp16" | "fp32"), and its rank and world under torchrun."""

    device: torch.device
    precision: str
    rank: int = 0
    world: int = 1

    def autocast(self):
        return autocast(self.precision, self.device)


SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")  # the CPU features that set this project's speed


def cpu_flags() -> list[str]:
    """The SPEED_FLAGS this CPU has, as the kernel names them in /proc/cpuinfo (e.g. ['avx2', 'fma'])."""
    try:
        line = next((l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")), "")
    except OSError:
        return []
    have = set(line.split(":", 1)[-1].split())
    return [f for f in SPEED_FLAGS if f in have]


def cpu_has_bf16() -> bool:
    """AMX or AVX512-bf16: where bf16 matmuls/convs run natively (benchmarks/notes/recipe-history.md)."""
    return bool({"amx_bf16", "avx512_bf16"} & set(cpu_flags()))


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str = "auto") -> torch.device:
    """`--device` → a torch.device that exists here, or one MnistlabError listing what does."""
    name = str(name).strip().lower()
    here = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if _mps_available() else [])
    if name == "auto":
        return torch.device("cuda" if "cuda" in here else "mps" if "mps" in here else "cpu")
    m = re.fullmatch(r"cpu|mps|cuda(?::(\d{1,3}))?", name)
    if m is None:
        raise MnistlabError(f"unknown device {name!r}; valid: {DEVICES}")
    kind = name.split(":")[0]
    if kind not in here:
        raise MnistlabError(f"device {name!r} is not available on this machine; available here: auto, "
                            f"{', '.join(here)}")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise MnistlabError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """`--precision` on `device` → "bf16" | "fp16" | "fp32" (rules in the module docstring)."""
    kind = torch.device(device).type
    if precision not in PRECISIONS:
        raise MnistlabError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if kind == "cpu" and cpu_has_bf16() else "fp32"
    if precision == "fp16" and kind != "cuda":
        raise MnistlabError(f"precision fp16 needs a CUDA device (this run is on {kind}); use bf16 or fp32")
    return precision


def resolve_runtime(cfg) -> Runtime:
    """Threads, torchrun group, device and precision of a run, from its config (`threads`, `device`, `precision`)."""
    setup_threads(getattr(cfg, "threads", 0))
    device = resolve_device(getattr(cfg, "device", "auto"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per torchrun process
    deterministic(device)
    rank, world = dist_init(device)
    return Runtime(device, resolve_precision(cfg.precision, device), rank, world)


def autocast(precision: str, device: torch.device | str = "cpu"):
    """bf16/fp16 autocast on `device` (weights and optimiser stay fp32), or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(torch.device(device).type, dtype=torch.float16)
    return contextlib.nullcontext()


def grad_scaler(precision: str, device: torch.device | str = "cpu"):
    """A GradScaler for fp16 (its small range underflows gradients without one); None otherwise."""
    return torch.amp.GradScaler(torch.device(device).type) if precision == "fp16" else None


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (cpu for a module without any)."""
    t = next(iter(module.parameters()), None)
    if t is None:
        t = next(iter(module.buffers()), None)
    return t.device if t is not None else torch.device("cpu")


def prepare_module(module: torch.nn.Module, runtime: Runtime | str | None = None) -> torch.nn.Module:
    """The module on the run's device with convolution weights channels_last (NHWC), in every precision: faster
    for these small CNNs in fp32 too (benchmarks/results/throughput*.md). A module without 4-D weights keeps its
    layout. `runtime` may be a bare precision string (cpu)."""
    device = runtime.device if isinstance(runtime, Runtime) else torch.device("cpu")
    return module.to(device=device, memory_format=torch.channels_last)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """An image batch (B, C, H, W) in the layout `prepare_module` gives the weights; other tensors unchanged."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def deterministic(device: torch.device) -> None:
    """Deterministic kernels on CUDA, warn-only (scatter/index_add backward and some convolutions have no
    deterministic CUDA kernel). CPU kernels here are already deterministic for a fixed thread count: unchanged."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


_THREADS = {"explicit": False}  # set by `setup_threads`: then `dist_init` leaves the thread count alone


def setup_threads(threads: int) -> None:
    """`threads` > 0: that many torch intra-op threads (kept under torchrun too); 0: torch's default."""
    if threads < 0:
        raise MnistlabError(f"--threads must be ≥ 0 (0 = one per core), got {threads}")
    if threads > 0:
        torch.set_num_threads(threads)
        _THREADS["explicit"] = True


def dist_init(device: torch.device | str = "cpu") -> tuple[int, int]:
    """(rank, world). Under `torchrun`, joins the process group once (nccl on CUDA, gloo on CPU); else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if cuda else "gloo")
        atexit.register(_dist_close)
        if not _THREADS["explicit"]:  # each process gets its share of the cores
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _dist_close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
