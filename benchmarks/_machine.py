"""What a benchmark JSON records about the machine, beyond pytest-benchmark's own fields.

torch version and threads, the CPU model and core count, and, when CUDA is present, every GPU's
name with the driver version (from ``nvidia-smi``; ``None`` where it cannot be read).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch

__all__ = ["cpu_model", "device_info", "gpu_driver", "machine_info"]


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else the platform's answer)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def gpu_driver() -> str | None:
    """The NVIDIA driver version as ``nvidia-smi`` reports it, or ``None``."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    versions = [line.strip() for line in out.splitlines() if line.strip()]
    return versions[0] if versions else None


def machine_info() -> dict[str, Any]:
    """The extra machine fields: torch, threads, CPU, and GPU name / driver / CUDA version."""
    cuda = torch.cuda.is_available()
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return {
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "gpu_name": gpus[0] if gpus else None,
        "gpu_names": gpus,
        "gpu_driver": gpu_driver() if cuda else None,
    }


def device_info(device: torch.device, dtype: str) -> dict[str, Any]:
    """The ``extra_info`` fields every benchmark carries: device, its name, and the dtype."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {"device": device.type, "device_name": name, "dtype": dtype}
