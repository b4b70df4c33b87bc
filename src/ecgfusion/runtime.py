"""Thread settings for small shared CPUs, where torch's defaults can be 30x slower.

With OpenMP's default ACTIVE wait policy, idle worker threads spin for ~200 ms after each
parallel region; on 2 cores shared with other processes the spinners steal the cores the real
work needs. PASSIVE waiting and one inter-op thread remove that (measured in docs/performance.md).
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

from ecgfusion.errors import ConfigError


def configure_threads(n: int | None = None) -> int:
    """Use ``n`` intra-op threads (None: one per available core); returns the number set.

    OMP_WAIT_POLICY only takes effect before OpenMP starts, so it is set here for child processes
    and for a first call that precedes any torch op; an explicit environment value is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = max(1, int(n or 1))
    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # settable only before inter-op work has run
        torch.set_num_interop_threads(1)
    return n


PRECISIONS = ("auto", "32", "bf16")


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX); elsewhere bf16 autocast
    is emulated and slower than fp32."""
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def use_bf16(precision: str) -> bool:
    """Resolve an inference precision: "auto" is bf16 where the CPU has it natively (measured:
    ~2x the hybrid's beats/s, argmax unchanged on real beats; docs/performance.md)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and native_bf16())


def training_precision(precision: str, device_type: str = "cpu") -> str:
    """Resolve a training precision for Lightning: "auto" is "bf16-mixed" where the device computes
    bf16 natively, else "32". bf16 autocast on a CPU without AVX512-BF16/AMX was measured 8-10x
    slower than fp32 (docs/performance.md), so a preset must not ask for it unconditionally."""
    if precision not in ("auto", "32", "bf16-mixed"):
        raise ConfigError(f"trainer.precision must be auto, 32 or bf16-mixed, got {precision!r}")
    if precision != "auto":
        return precision
    if device_type == "cuda":
        native = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    else:
        native = native_bf16()
    return "bf16-mixed" if native else "32"


def inference_autocast(bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def cpu_model() -> str:
    """The CPU's model name (Linux), else what platform knows: recorded beside timings."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
