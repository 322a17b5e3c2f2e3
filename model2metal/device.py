"""Know your machine: CPU model, cores, SIMD features, and the CUDA backend.

The CUDA backend must be chosen *before* ``numba`` is imported, because Numba reads
``NUMBA_ENABLE_CUDASIM`` once, at import time. :func:`select_cuda_backend` therefore
looks for a CUDA driver with :mod:`ctypes` (no Numba involved) and sets the variable:

* a driver that initialises and reports at least one GPU -> the real GPU;
* otherwise -> Numba's CUDA simulator, which runs every GPU thread in Python.

``M2M_CUDA=gpu`` or ``M2M_CUDA=simulator`` in the environment overrides the choice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
from dataclasses import dataclass, field

__all__ = [
    "CpuInfo",
    "cpu_info",
    "cuda_driver_gpu_count",
    "select_cuda_backend",
    "cuda_backend",
    "cuda_size",
    "hardware_string",
    "report",
]

# SIMD feature flags worth naming, in the order a learner meets them:
# (flag in /proc/cpuinfo or sysctl, name we show, vector width in bits; 0 for extensions
# that add instructions but no wider registers). The last feature of the widest width
# names the machine: AVX2 rather than AVX on a 256-bit CPU.
_X86_SIMD = [
    ("sse2", "SSE2", 128),
    ("sse4_2", "SSE4.2", 128),
    ("avx", "AVX", 256),
    ("avx2", "AVX2", 256),
    ("fma", "FMA", 0),
    ("avx512f", "AVX-512", 512),
    ("avx512bw", "AVX-512BW", 0),
    ("avx512_vnni", "AVX-512 VNNI", 0),
    ("avx512_bf16", "AVX-512 BF16", 0),
    ("amx_tile", "AMX", 0),
]
_ARM_SIMD = [
    ("asimd", "NEON", 128),
    ("neon", "NEON", 128),
    ("asimddp", "NEON dot product", 0),
    ("sve", "SVE", 0),
    ("sve2", "SVE2", 0),
    ("sme", "SME", 0),
]


@dataclass
class CpuInfo:
    model: str
    arch: str
    logical_cores: int
    usable_cores: int
    simd: list[str] = field(default_factory=list)
    widest_vector_bits: int = 0
    widest_simd: str = "none"

    @property
    def floats_per_vector(self) -> int:
        """float32 lanes in the widest vector register (8 for AVX2, 16 for AVX-512)."""
        return self.widest_vector_bits // 32


def _proc_cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if ":" in line:
                    key, _, value = line.partition(":")
                    info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def _mac_sysctl(name: str) -> str:
    import subprocess

    try:
        return subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_info() -> CpuInfo:
    """Model name, core counts and SIMD features of this CPU (Linux, macOS; best
    effort)."""
    arch = platform.machine() or "unknown"
    raw = _proc_cpuinfo()
    model = raw.get("model name") or raw.get("Hardware") or raw.get("CPU part") or ""
    flags = set((raw.get("flags") or raw.get("Features") or "").split())
    if sys.platform == "darwin":
        model = model or _mac_sysctl("machdep.cpu.brand_string")
        if arch == "arm64":
            flags |= {"asimd"}
        else:
            flags |= {
                f.lower().replace(".", "_")
                for f in (
                    _mac_sysctl("machdep.cpu.features")
                    + " "
                    + _mac_sysctl("machdep.cpu.leaf7_features")
                ).split()
            }
    table = _ARM_SIMD if arch.lower() in ("aarch64", "arm64") else _X86_SIMD
    simd, widest, widest_name = [], 0, "none"
    for flag, name, bits in table:
        if flag in flags and name not in simd:
            simd.append(name)
            if bits and bits >= widest:
                widest, widest_name = bits, name
    logical = os.cpu_count() or 1
    usable = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    )
    return CpuInfo(
        model=model or platform.processor() or "unknown CPU",
        arch=arch,
        logical_cores=logical,
        usable_cores=usable,
        simd=simd,
        widest_vector_bits=widest,
        widest_simd=widest_name,
    )


# ---------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------


def cuda_driver_gpu_count() -> int:
    """Number of GPUs the CUDA driver reports, 0 when there is no working driver.

    Uses the driver API through ctypes so that Numba is not imported.
    """
    names = [
        "libcuda.so.1",
        "libcuda.so",
        ctypes.util.find_library("cuda"),
        "nvcuda.dll",
    ]
    for name in filter(None, names):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if lib.cuInit(0) != 0:
                return 0
            count = ctypes.c_int(0)
            if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
            return int(count.value)
        except AttributeError:
            return 0
    return 0


def select_cuda_backend() -> str:
    """Choose the real GPU or the simulator for ``numba.cuda``: "gpu" or "simulator".

    Call this before the first ``import numba``. Calling it again is harmless.
    """
    forced = os.environ.get("M2M_CUDA", "").strip().lower()
    if forced in ("gpu", "simulator"):
        want_sim = forced == "simulator"
    elif "NUMBA_ENABLE_CUDASIM" in os.environ:  # chosen earlier (e.g. by conftest.py)
        want_sim = os.environ["NUMBA_ENABLE_CUDASIM"] == "1"
    else:
        want_sim = cuda_driver_gpu_count() == 0
    if "numba" in sys.modules:
        from numba.core import config  # already imported: check, do not change

        if bool(config.ENABLE_CUDASIM) != want_sim:
            have = "simulator" if config.ENABLE_CUDASIM else "gpu"
            raise RuntimeError(
                f"numba was imported before select_cuda_backend() and uses the {have}; "
                "restart the kernel and run the set-up cell first"
            )
        return "simulator" if want_sim else "gpu"
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1" if want_sim else "0"
    return "simulator" if want_sim else "gpu"


def cuda_backend() -> str:
    """A sentence naming the backend in use: the GPU's name, or the simulator."""
    backend = select_cuda_backend()
    if backend == "simulator":
        return (
            "CUDA backend: Numba CUDA simulator (no GPU found; kernels run in Python)"
        )
    from numba import cuda

    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
    cc = ".".join(map(str, dev.compute_capability))
    return f"CUDA backend: GPU {name} (compute capability {cc})"


def cuda_size(simulator: int, gpu: int) -> int:
    """The one place a CUDA problem size is chosen: small under the simulator (it runs
    every GPU thread in Python), realistic on a GPU."""
    return simulator if select_cuda_backend() == "simulator" else gpu


def hardware_string() -> str:
    """Short description for timing tables: model, usable cores, widest SIMD."""
    cpu = cpu_info()
    return f"{cpu.model} ({cpu.usable_cores} cores, {cpu.widest_simd})"


def _wrap_items(items, width: int, indent: int) -> str:
    """``items`` joined by ", ", lines at most ``width`` wide, never inside an item."""
    lines, line = [], ""
    for item in items:
        candidate = f"{line}, {item}" if line else item
        if line and len(candidate) + 1 > width:
            lines.append(line + ",")
            line = item
        else:
            line = candidate
    lines.append(line)
    return ("\n" + " " * indent).join(lines)


def report(cuda: bool = True) -> str:
    """The device report: everything the course wants to know about this machine."""
    cpu = cpu_info()
    lines = [
        f"CPU            : {cpu.model}",
        f"architecture   : {cpu.arch}",
        f"cores          : {cpu.usable_cores} usable of {cpu.logical_cores} logical",
        "SIMD features  : " + _wrap_items(cpu.simd or ["none found"], 75 - 17, 17),
        f"widest vector  : {cpu.widest_vector_bits} bits "
        f"= {cpu.floats_per_vector} float32 lanes",
        f"Python         : {platform.python_version()} on {platform.system()}",
    ]
    if cuda:
        lines.append(cuda_backend())
    return "\n".join(lines)
