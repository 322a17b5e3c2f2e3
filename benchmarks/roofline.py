"""The one-core roofline of this machine, and lab 05_01's kernels on it.

Measures one core's copy bandwidth on DRAM-sized arrays and its peak FP32 FLOP/s
(``model2metal.hwkit``), then saxpy and a fastmath dot on DRAM-sized arrays and the
naive (i-j-k) and cache-blocked matrix products at 256³, each with its GB/s, its
GFLOP/s and the fraction of its roofline bound it reaches. Intensities use the lab's
counts: saxpy 2 flops per 12 bytes, dot 2 per 8, matmul 2n³ per 12n² (compulsory
traffic). Ratios in one run are what the course quotes; absolute numbers depend on
the machine (and, on a shared VM, on the neighbours).

    .venv/bin/python benchmarks/roofline.py [--repeat 9] [--write]

``--write`` saves the table to ``benchmarks/results/roofline.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import functools

import numpy as np
from numba import njit

from model2metal import hwkit, timing
from results_file import emit

TI, TK, TJ = 32, 128, 256


@njit
def saxpy(a, x, y, out):
    for i in range(x.shape[0]):
        out[i] = a * x[i] + y[i]


@njit(fastmath=True)
def dot(x, y):
    acc = np.float32(0.0)
    for i in range(x.shape[0]):
        acc += x[i] * y[i]
    return acc


@njit
def matmul_naive(a, b, c):
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = np.float32(0.0)
            for k in range(a.shape[1]):
                acc += a[i, k] * b[k, j]
            c[i, j] = acc


@njit
def matmul_blocked(a, b, c):
    m, depth = a.shape
    n = b.shape[1]
    c[:] = 0.0
    for i0 in range(0, m, TI):
        for k0 in range(0, depth, TK):
            for j0 in range(0, n, TJ):
                j1 = min(j0 + TJ, n)
                for i in range(i0, min(i0 + TI, m)):
                    c_row = c[i, j0:j1]
                    for k in range(k0, min(k0 + TK, depth)):
                        aik = a[i, k]
                        b_row = b[k, j0:j1]
                        for j in range(c_row.shape[0]):
                            c_row[j] += aik * b_row[j]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--write", action="store_true", help="save the results file")
    args = parser.parse_args()
    n = hwkit.dram_elements()
    bw = hwkit.measure_copy_bandwidth(n, repeat=args.repeat)
    peak = hwkit.measure_peak_gflops(repeat=args.repeat)
    peak_all = hwkit.measure_peak_gflops(threads=hwkit.usable_cores(),
                                         repeat=args.repeat)
    bw_first = bw  # a fresh process's first DRAM pass is often slow on a VM
    bw = hwkit.measure_copy_bandwidth(n, repeat=args.repeat)
    bw = max(bw, bw_first, key=lambda m: m.value)
    roof = hwkit.Roofline.measured(peak, bw)
    x, y = np.ones(n, np.float32), np.ones(n, np.float32)
    out = np.ones_like(x)  # pages touched before timing
    N = 256
    rng = np.random.default_rng(0)
    A = rng.standard_normal((N, N), dtype=np.float32)
    B = rng.standard_normal((N, N), dtype=np.float32)
    C = np.empty((N, N), np.float32)
    kernels = [  # name, fn, args, flops, bytes
        ("saxpy (DRAM)", saxpy, (np.float32(2), x, y, out), 2 * n, 12 * n),
        ("dot, fastmath (DRAM)", dot, (x, y), 2 * n, 8 * n),
        (f"matmul naive i-j-k ({N}³)", matmul_naive, (A, B, C), 2 * N**3,
         12 * N**2),
        (f"matmul blocked ({N}³)", matmul_blocked, (A, B, C), 2 * N**3,
         12 * N**2),
    ]
    rows = ["| kernel | flop/byte | median | GB/s | GFLOP/s | bound | of bound |",
            "|---|---:|---:|---:|---:|---|---:|"]
    data = {"copy_gbs": bw.value, "peak_gflops": peak.value,
            "peak_all_cores_gflops": peak_all.value,
            "ridge_point": roof.ridge_point, "kernels": {}}
    for name, fn, fargs, flops, nbytes in kernels:
        r = timing.measure(fn, *fargs, name=name, warmup=2, repeat=args.repeat)
        intensity, gflops = flops / nbytes, flops / r.median / 1e9
        frac = roof.fraction(intensity, gflops)
        rows.append(
            f"| {name} | {intensity:.3g} | {timing.format_seconds(r.median)} | "
            f"{nbytes / r.median / 1e9:.1f} | {gflops:.1f} | "
            f"{roof.bound(intensity)} | {frac:.0%} |"
        )
        data["kernels"][name] = {"intensity": intensity, "gflops": gflops,
                                 "gbs": nbytes / r.median / 1e9,
                                 "fraction_of_bound": frac}
    # the lab's claim as a ratio in one run: the copy and saxpy timed in turns,
    # the median of the rounds' ratios (lab 05_01's saxpy_vs_copy)
    runs = timing.interleave(
        {"copy": hwkit.copy_call(n),
         "saxpy": functools.partial(saxpy, np.float32(2), x, y, out)},
        rounds=80)
    ratio = float(np.median((12 / np.array(runs["saxpy"].samples))
                            / (8 / np.array(runs["copy"].samples))))
    data["saxpy_over_copy_interleaved"] = ratio
    summary = (
        f"- saxpy bandwidth / copy bandwidth, the two timed in turns (median of "
        f"80 rounds' ratios): {ratio:.2f} (lab 05_01 claims >= 0.9)\n"
        f"- copy bandwidth (one core, {4 * n / 2**20:.0f} MiB per array): "
        f"{bw.value:.1f} GB/s (IQR {bw.low:.1f}–{bw.high:.1f}; the higher of "
        f"two measurements, the first gave {bw_first.value:.1f})\n"
        f"- peak FP32, one core: {peak.value:.1f} GFLOP/s "
        f"(IQR {peak.low:.1f}–{peak.high:.1f}); "
        f"{hwkit.usable_cores()} threads: {peak_all.value:.1f} GFLOP/s\n"
        f"- ridge point: {roof.ridge_point:.2f} flop/byte\n\n"
    )
    method = (f"hwkit copy loop (8 bytes counted per element) and FMA chains "
              f"({hwkit.accumulators()} float32 accumulators); kernels float32, "
              f"2 warm-up calls, median of {args.repeat} samples (timing.measure); "
              "bytes counted once per array, without write-allocate")
    emit("roofline", method, summary + "\n".join(rows), args.write, data=data)


if __name__ == "__main__":
    main()
