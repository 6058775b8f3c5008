"""What a run's numbers depend on besides the versions: the CPU model, its instruction-set extensions,
the environment variables that cap the instruction set the frameworks use, and the GPUs.

XLA, oneDNN (TensorFlow) and PyTorch pick their CPU kernels by instruction set, and kernels differ in
summation order, so the same code measures slightly different errors on another machine. Reports record
this in ``run_info.machine`` and ``electra-conformance diff`` shows it next to numeric drift.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

#: the /proc/cpuinfo flags that decide which SIMD kernels XLA, oneDNN and PyTorch run
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")
#: environment variables that cap or change the kernels: XLA (--xla_cpu_max_isa), PyTorch, oneDNN
ISA_VARIABLES = ("XLA_FLAGS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS",
                 "JAX_DEFAULT_MATMUL_PRECISION")


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """(model name, ISA flags of ISA_FLAGS present) from Linux's cpuinfo; ("", []) elsewhere."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "", []
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, [f for f in ISA_FLAGS if f in flags]


def gpus() -> list[str]:
    """NVIDIA GPU models (nvidia-smi), one entry per GPU; [] without the tool or a GPU."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        done = subprocess.run([tool, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def machine_info() -> dict:
    model, isa = _cpuinfo()
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count() or 0,
        "isa": isa,
        "isa_limits": {k: os.environ[k] for k in ISA_VARIABLES if k in os.environ},
        "gpus": gpus(),
    }
