"""Know your machine in numbers: copy bandwidth, peak FLOP/s and the roofline.

Scaffolding for chapter 5 (lab 05_01): the measurements a roofline needs, each taken
with :func:`model2metal.timing.measure` (warm-up, repeats, median and spread), and a
small :class:`Roofline` with a plotting helper. The kernels measured here are the
*yardsticks* — a copy and a chain of fused multiply-adds — never the lab's kernels.

* :func:`measure_copy_bandwidth`: a compiled copy loop over arrays several times the
  size of the last-level cache, so the bytes come from DRAM. Bytes are counted as the
  STREAM benchmark counts them: one read and one write per element (the cache's
  write-allocate read of the destination is real traffic but not counted).
* :func:`measure_peak_gflops`: ``lanes × chains`` independent accumulators, each
  updated ``v = v * m + c`` (one FMA, two flops) in a loop that Numba vectorises to the
  register width it uses; enough chains hide the FMA latency. ``threads > 1`` runs one
  copy per thread (``nogil``), for the all-core peak.
* :func:`vector_lanes`: the float32 lanes of the widest register Numba's code uses on
  this machine (which can be narrower than the CPU's widest: some compilers prefer
  256-bit vectors on AVX-512 parts, and ``NUMBA_CPU_NAME=generic`` gives SSE).
* :func:`numba_asm` / :func:`packed_float_ops`: the assembly of a compiled function and
  its packed float arithmetic (the parser is the checks' one, in
  :mod:`model2metal.checks.tvm_common`).

Numba is imported inside the functions, so importing this module does not fix the
CUDA backend (see :mod:`model2metal.device`).
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import timing
from .checks.tvm_common import instruction_lines, x86_packed_arith
from .device import cpu_info, hardware_string

__all__ = [
    "Measured",
    "Roofline",
    "last_level_cache_bytes",
    "dram_elements",
    "is_x86",
    "numba_asm",
    "packed_float_ops",
    "vector_registers",
    "vector_lanes",
    "measure_copy_bandwidth",
    "measure_peak_gflops",
    "accumulators",
    "peak_kernel_ops",
    "usable_cores",
    "plot_roofline",
]

_MIB = 1 << 20
_REG_BITS = {"xmm": 128, "ymm": 256, "zmm": 512}
_REG = re.compile(r"%?\b([xyz]mm)\d+\b")


# ---------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------


def last_level_cache_bytes() -> int | None:
    """Size of the largest cache the OS reports (Linux sysfs), or None."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        found = re.fullmatch(r"(\d+)\s*([KMG]?)", text)
        if found:
            scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[found[2]]
            sizes.append(int(found[1]) * scale)
    return max(sizes) if sizes else None


def dram_elements(
    itemsize: int = 4,
    factor: int = 2,
    minimum_bytes: int = 64 * _MIB,
    maximum_bytes: int = 512 * _MIB,
) -> int:
    """Elements per array so that one array is ``factor`` times the last-level cache
    (at least ``minimum_bytes``, at most ``maximum_bytes``): a DRAM-sized array."""
    llc = last_level_cache_bytes() or 32 * _MIB
    nbytes = min(max(factor * llc, minimum_bytes), maximum_bytes)
    return nbytes // itemsize


# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------


def is_x86() -> bool:
    """Whether this CPU runs x86 code (the only assembly the course parses)."""
    return bool(re.match(r"(x86_64|amd64|i\d86)$", cpu_info().arch.lower()))


def numba_asm(fn: Any, signature: Any = None) -> str:
    """The assembly of a compiled Numba function: of ``signature`` if given, else of
    its only (or first) compiled signature. ValueError if nothing is compiled yet."""
    listing = getattr(fn, "inspect_asm", None)
    if listing is None:
        raise ValueError(f"{fn!r} is not a Numba-compiled function")
    if signature is not None:
        return listing(signature)
    texts = listing()
    if not texts:
        raise ValueError("not compiled yet: call the function once first")
    return next(iter(texts.values()))


def packed_float_ops(asm: str) -> set[str]:
    """The packed float arithmetic mnemonics (``vfmadd231ps``, ``addps``, ...) of x86
    assembly; empty for scalar-only code (and for other architectures)."""
    return x86_packed_arith(asm)


def vector_registers(asm: str) -> set[str]:
    """The register widths (``"xmm"``, ``"ymm"``, ``"zmm"``) used by the packed float
    arithmetic of x86 assembly."""
    packed = x86_packed_arith(asm)
    found = set()
    for word, operands in instruction_lines(asm):
        if word in packed:
            found |= {m[1] for m in _REG.finditer(operands)}
    return found


@functools.lru_cache(maxsize=None)
def vector_lanes() -> int:
    """float32 lanes of the widest register in the code Numba compiles here (a
    vectorised loop is compiled and its assembly read). Off x86, the CPU's widest
    vector (4 lanes if unknown)."""
    fallback = max(cpu_info().floats_per_vector, 4)
    if not is_x86():
        return fallback
    import numpy as np
    from numba import njit

    @njit(fastmath=True)
    def probe(x, out):
        for i in range(x.shape[0]):
            out[i] = x[i] * np.float32(3.0) + out[i]

    x = np.ones(256, np.float32)
    probe(x, x.copy())
    regs = vector_registers(numba_asm(probe))
    return max((_REG_BITS[r] // 32 for r in regs), default=fallback)


# ---------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------


@dataclass
class Measured:
    """A rate measured from a timing: ``work`` units (bytes, flops) per call."""

    name: str
    unit: str  # "GB/s" or "GFLOP/s"
    work: float
    result: timing.TimingResult

    @property
    def value(self) -> float:
        """The rate at the median time, in ``unit`` (1 G = 1e9)."""
        return self.work / self.result.median / 1e9

    @property
    def low(self) -> float:
        """The rate at the upper quartile of the time."""
        return self.work / self.result.q3 / 1e9

    @property
    def high(self) -> float:
        """The rate at the lower quartile of the time."""
        return self.work / self.result.q1 / 1e9

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.value:.1f} {self.unit} "
            f"(IQR {self.low:.1f}–{self.high:.1f}, "
            f"{len(self.result.samples)} samples)"
        )


@functools.lru_cache(maxsize=None)
def _copy_kernel():
    from numba import njit

    @njit
    def copy(src, dst):
        for i in range(src.shape[0]):
            dst[i] = src[i]

    return copy


def copy_call(n: int | None = None) -> Callable[[], None]:
    """A zero-argument call of the compiled float32 copy loop over two arrays of
    ``n`` elements (default :func:`dram_elements`), compiled and its pages touched:
    the yardstick of :func:`measure_copy_bandwidth`, for :func:`timing.interleave`."""
    import numpy as np

    n = dram_elements() if n is None else int(n)
    src = np.ones(n, np.float32)
    dst = np.ones(n, np.float32)  # pages touched before timing
    kernel = _copy_kernel()
    kernel(src, dst)
    return functools.partial(kernel, src, dst)


def measure_copy_bandwidth(n: int | None = None, repeat: int = 9) -> Measured:
    """GB/s of a compiled float32 copy loop over ``n`` elements (default
    :func:`dram_elements`), counting 8 bytes per element (one read, one write)."""
    n = dram_elements() if n is None else int(n)
    result = timing.measure(copy_call(n), name="copy", warmup=2, repeat=repeat)
    return Measured("copy", "GB/s", 2 * 4 * n, result)


@functools.lru_cache(maxsize=None)
def _fma_kernel(width: int):
    """Updates ``v[j] = v[j] * m + c`` for j < width, ``iters`` times."""
    from numba import njit

    @njit(fastmath=True, nogil=True)
    def fma_chains(v, iters, m, c):
        for _ in range(iters):
            for j in range(width):  # a constant: unrolled into registers
                v[j] = v[j] * m + c

    return fma_chains


def accumulators(chains: int = 8) -> int:
    """How many float32 accumulators the peak kernel updates: ``chains`` vector
    registers' worth (at least 64, below which the loop is not vectorised)."""
    return max(64, vector_lanes() * chains)


def measure_peak_gflops(
    threads: int = 1, iters: int | None = None, repeat: int = 7
) -> Measured:
    """GFLOP/s of independent FMA chains (2 flops each) on ``threads`` threads
    (``iters`` updates of each chain per call: by default enough for a call of about
    0.5 ms on one thread, 5 ms on several, so starting threads is not timed)."""
    import numpy as np

    if iters is None:
        iters = 100_000 if threads <= 1 else 1_000_000

    width = accumulators()
    kernel = _fma_kernel(width)
    m, c = np.float32(0.999999), np.float32(1e-6)  # values stay near 1
    v = np.ones((max(1, threads), width), np.float32)
    if threads <= 1:
        fn, args = kernel, (v[0], iters, m, c)
    else:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(threads)

        def fn():
            list(pool.map(lambda t: kernel(v[t], iters, m, c), range(threads)))

        args = ()
    name = "peak, 1 core" if threads <= 1 else f"peak, {threads} threads"
    try:
        result = timing.measure(fn, *args, name=name, warmup=2, repeat=repeat)
    finally:
        if threads > 1:
            pool.shutdown()
    return Measured(name, "GFLOP/s", 2.0 * width * iters * max(1, threads), result)


def peak_kernel_ops() -> set[str]:
    """The packed float arithmetic of the peak kernel (compiled on first use)."""
    import numpy as np

    kernel = _fma_kernel(accumulators())
    kernel(np.ones(accumulators(), np.float32), 1, np.float32(1), np.float32(0))
    return packed_float_ops(numba_asm(kernel))


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1


# ---------------------------------------------------------------------------
# the roofline
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Roofline:
    """``attainable(I) = min(peak, bandwidth × I)`` for an intensity ``I`` in flops
    per byte of DRAM traffic; GFLOP/s and GB/s (1 G = 1e9)."""

    peak_gflops: float
    bandwidth_gbs: float
    hardware: str = ""

    def __post_init__(self):
        if not (self.peak_gflops > 0 and self.bandwidth_gbs > 0):
            raise ValueError("peak and bandwidth must be positive")

    @classmethod
    def measured(cls, peak: Measured, bandwidth: Measured) -> "Roofline":
        return cls(peak.value, bandwidth.value, hardware_string())

    @property
    def ridge_point(self) -> float:
        """The intensity where the two roofs meet: peak / bandwidth."""
        return self.peak_gflops / self.bandwidth_gbs

    def attainable(self, intensity):
        """The roofline bound in GFLOP/s; works on floats and NumPy arrays."""
        import numpy as np

        bound = np.minimum(self.peak_gflops, self.bandwidth_gbs * np.asarray(
            intensity, dtype=float))
        return float(bound) if np.ndim(bound) == 0 else bound

    def bound(self, intensity: float) -> str:
        """``"memory"`` left of the ridge point, ``"compute"`` from it on."""
        return "memory" if intensity < self.ridge_point else "compute"

    def fraction(self, intensity: float, gflops: float) -> float:
        """Measured GFLOP/s as a fraction of the bound at that intensity."""
        return gflops / self.attainable(intensity)

    def __str__(self) -> str:
        where = f" on {self.hardware}" if self.hardware else ""
        return (
            f"roofline{where}: peak {self.peak_gflops:.1f} GFLOP/s, "
            f"bandwidth {self.bandwidth_gbs:.1f} GB/s, "
            f"ridge point {self.ridge_point:.2f} flop/byte"
        )


def plot_roofline(
    roofline: Roofline,
    points: Mapping[str, tuple[float, float]] | Sequence[tuple[str, float, float]]
    = (),
    ax=None,
    title: str | None = None,
):
    """Log-log roofline with the ridge point marked and each ``name: (intensity,
    GFLOP/s)`` point labelled; returns the axes."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .plotting import COLORS, use_course_style

    use_course_style()
    items = list(points.items()) if isinstance(points, Mapping) else [
        (name, (i, g)) for name, i, g in points
    ]
    if ax is None:
        _, ax = plt.subplots()
    xs = [i for _, (i, _) in items] + [roofline.ridge_point]
    lo = 10 ** math.floor(math.log10(min(xs) / 2))
    hi = 10 ** math.ceil(math.log10(max(xs) * 2))
    grid = np.logspace(math.log10(lo), math.log10(hi), 200)
    ax.plot(grid, roofline.attainable(grid), color=COLORS["other"], lw=2,
            label="roofline")
    ridge = roofline.ridge_point
    ax.axvline(ridge, color=COLORS["other"], ls=":", lw=1)
    ax.text(ridge * 1.1, 0.03, f"ridge {ridge:.2g} flop/B", fontsize="small",
            transform=ax.get_xaxis_transform())  # at the foot: clear of points
    palette = [c for k, c in COLORS.items() if k != "other"]
    for k, (name, (intensity, gflops)) in enumerate(items):
        color = palette[k % len(palette)]
        ax.plot([intensity], [gflops], "o", color=color)
        # neighbouring points alternate above and below, so labels do not overlap
        ax.annotate(name, (intensity, gflops), textcoords="offset points",
                    xytext=(5, 4 if k % 2 == 0 else -11), fontsize="small",
                    color=color)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi),
           xlabel="arithmetic intensity (flop per DRAM byte)", ylabel="GFLOP/s",
           title=title or f"roofline of {roofline.hardware or 'this machine'}")
    return ax
