"""Chapter 5's CUDA kernels on a real GPU, against the library that ships with it.

Copy bandwidth: a coalesced copy kernel, the same copy walked down the columns
(strided), and the driver's device-to-device copy, in GB/s counting bytes read and
written, beside the chip's spec-sheet bandwidth where it is known. Matrix products
in float32 at ``--n`` (default 4096): the naive kernel and the shared-memory tiled
kernel of lab 05_03, and register-tiled kernels (each thread keeps a TM x TN block
of C in registers; 4 x 4 and 8 x 8), as GFLOP/s and as ratios to ``torch.matmul``
in float32 with TF32 off (cuBLAS' SGEMM). Times come from CUDA events: 3 warm-up
launches, then ``--repeat`` single launches, median and quartiles.

    python benchmarks/gpu_kernels.py [--n 4096] [--repeat 20] [--write]  # a GPU
    python benchmarks/gpu_kernels.py --simulate   # correctness only, the simulator
    python benchmarks/gpu_kernels.py --ptx        # local memory and FMAs per kernel

(from the repository root with ``.venv/bin/python``, or ``PYTHONPATH=.`` and the
machine's own Python where that one has numba-cuda and a CUDA build of torch).

``--simulate`` runs every kernel in Numba's CUDA simulator on sizes that are not
multiples of any tile and compares it with NumPy; it times nothing (the simulator's
times mean nothing). ``--ptx`` compiles each matrix kernel to PTX for sm_80, which
needs no GPU, and counts its local-memory instructions (an accumulator array that
spilled out of registers) and its FMAs. ``--write`` (GPU only) saves the table to
``benchmarks/results/gpu_kernels.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

# Spec-sheet numbers (NVIDIA datasheets, SXM parts): HBM bandwidth in GB/s and
# FP32 (non-tensor) peak in GFLOP/s. Labelled as the datasheet's, never measured.
SPEC = {
    "H200": (4800.0, 67_000.0),
    "H100": (3350.0, 67_000.0),
    "A100": (2039.0, 19_500.0),
}

TILE = 16                     # lab 05_03's shared-memory tile
THREADS = 16                  # register kernels: 16 x 16 threads per block
REGISTER_SHAPES = ((4, 16), (8, 8))   # (TM = TN, BK): 64x64 and 128x128 C tiles


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--simulate", action="store_true",
                      help="check every kernel in the CUDA simulator; no timing")
    mode.add_argument("--ptx", action="store_true",
                      help="count local-memory instructions and FMAs in the PTX")
    p.add_argument("--n", type=int, default=4096, help="matrix size (GPU)")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--write", action="store_true")
    return p.parse_args(argv)


ARGS = parse() if __name__ == "__main__" else None
if ARGS is not None and ARGS.simulate:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"   # before numba is imported

import numpy as np  # noqa: E402
from numba import cuda, float32  # noqa: E402


@cuda.jit
def copy_rows(src, dst):
    """Thread x walks along a row: a warp reads 32 neighbours (coalesced)."""
    col, row = cuda.grid(2)
    if row < src.shape[0] and col < src.shape[1]:
        dst[row, col] = src[row, col]


@cuda.jit
def copy_cols(src, dst):
    """Thread x walks down a column: a warp reads 32 different rows (strided)."""
    row, col = cuda.grid(2)
    if row < src.shape[0] and col < src.shape[1]:
        dst[row, col] = src[row, col]


@cuda.jit
def matmul_naive(A, B, C):
    col, row = cuda.grid(2)
    if row < C.shape[0] and col < C.shape[1]:
        acc = float32(0.0)
        for k in range(A.shape[1]):
            acc += A[row, k] * B[k, col]
        C[row, col] = acc


@cuda.jit
def matmul_tiled(A, B, C):
    a_tile = cuda.shared.array((TILE, TILE), float32)
    b_tile = cuda.shared.array((TILE, TILE), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    m, depth, n = A.shape[0], A.shape[1], B.shape[1]
    acc = float32(0.0)
    for k0 in range(0, depth, TILE):
        ok = row < m and k0 + tx < depth
        a_tile[ty, tx] = A[row, k0 + tx] if ok else float32(0.0)
        ok = k0 + ty < depth and col < n
        b_tile[ty, tx] = B[k0 + ty, col] if ok else float32(0.0)
        cuda.syncthreads()
        for j in range(TILE):
            acc += a_tile[ty, j] * b_tile[j, tx]
        cuda.syncthreads()
    if row < m and col < n:
        C[row, col] = acc


def register_kernel(tm: int, bk: int):
    """A kernel whose 16 x 16 threads compute a (16 tm) x (16 tm) tile of C.

    Thread (tx, ty) owns rows ty + 16 i and columns tx + 16 j (i, j < tm): a warp's
    reads of the B tile and its writes of C are contiguous, its reads of the A tile
    are broadcasts. Per step the block stages a (16 tm) x bk slice of A and a
    bk x (16 tm) slice of B in shared memory; per k each thread loads tm values of
    each and does tm * tm FMAs on registers.
    """
    side = THREADS * tm
    per_thread = side * bk // (THREADS * THREADS)   # staged values per thread

    @cuda.jit
    def kernel(A, B, C):
        a_s = cuda.shared.array((side, bk), float32)
        b_s = cuda.shared.array((bk, side), float32)
        acc = cuda.local.array((tm, tm), float32)
        a_r = cuda.local.array(tm, float32)
        b_r = cuda.local.array(tm, float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * THREADS + tx
        row0 = cuda.blockIdx.y * side
        col0 = cuda.blockIdx.x * side
        m, depth, n = A.shape[0], A.shape[1], B.shape[1]
        for i in range(tm):
            for j in range(tm):
                acc[i, j] = float32(0.0)
        for k0 in range(0, depth, bk):
            for s in range(per_thread):
                e = tid + s * THREADS * THREADS
                r, c = e // bk, e % bk            # A slice: side x bk
                ok = row0 + r < m and k0 + c < depth
                a_s[r, c] = A[row0 + r, k0 + c] if ok else float32(0.0)
                r, c = e // side, e % side        # B slice: bk x side
                ok = k0 + r < depth and col0 + c < n
                b_s[r, c] = B[k0 + r, col0 + c] if ok else float32(0.0)
            cuda.syncthreads()
            for kk in range(bk):
                for i in range(tm):
                    a_r[i] = a_s[ty + THREADS * i, kk]
                    b_r[i] = b_s[kk, tx + THREADS * i]
                for i in range(tm):
                    for j in range(tm):
                        acc[i, j] += a_r[i] * b_r[j]
            cuda.syncthreads()
        for i in range(tm):
            for j in range(tm):
                row, col = row0 + ty + THREADS * i, col0 + tx + THREADS * j
                if row < m and col < n:
                    C[row, col] = acc[i, j]

    kernel.side = side
    return kernel


REGISTER = {f"register {tm}x{tm}": register_kernel(tm, bk)
            for tm, bk in REGISTER_SHAPES}


def matmul_kernels() -> dict:
    """name -> (kernel, launch(m, n) -> (grid, block))."""
    def square(tile):
        return lambda m, n: ((math.ceil(n / tile), math.ceil(m / tile)), (tile, tile))

    kernels = {"naive": (matmul_naive, square(TILE)),
               "shared tiled 16": (matmul_tiled, square(TILE))}
    for name, k in REGISTER.items():
        kernels[name] = (k, lambda m, n, s=k.side: (
            (math.ceil(n / s), math.ceil(m / s)), (THREADS, THREADS)))
    return kernels


def check_in_simulator(kernels: dict | None = None) -> int:
    """Every kernel against NumPy on awkward sizes; returns the number of failures.

    ``kernels``: name -> (kernel, launch), by default :func:`matmul_kernels`.
    """
    rng = np.random.default_rng(0)
    failures = 0
    m, depth, n = 21, 37, 19        # multiples of no tile or k-step
    A = rng.random((m, depth), dtype=np.float32)
    B = rng.random((depth, n), dtype=np.float32)
    want = A @ B
    for name, (kernel, launch) in (kernels or matmul_kernels()).items():
        C = np.full((m, n), np.nan, np.float32)
        grid, block = launch(m, n)
        kernel[grid, block](A, B, C)
        ok = np.allclose(C, want, rtol=1e-5, atol=1e-5)
        failures += not ok
        print(f"{name:16} {m}x{depth} @ {depth}x{n}: "
              f"{'matches NumPy' if ok else 'WRONG'}")
    src = rng.random((19, 37), dtype=np.float32)
    for name, kernel in (("copy rows", copy_rows), ("copy cols", copy_cols)):
        dst = np.zeros_like(src)
        shape = src.shape if kernel is copy_cols else src.shape[::-1]
        grid = tuple(math.ceil(s / 16) for s in shape)
        kernel[grid, (16, 16)](src, dst)
        ok = np.array_equal(dst, src)
        failures += not ok
        print(f"{name:16} {src.shape}: {'copies' if ok else 'WRONG'}")
    print("simulator: correctness only; no times (they would mean nothing)")
    return failures


def ptx_counts() -> dict:
    """Per matrix kernel: local-memory instructions and FMAs in its sm_80 PTX."""
    sig = "void(float32[:, ::1], float32[:, ::1], float32[:, ::1])"
    counts = {}
    for name, (kernel, _) in matmul_kernels().items():
        text, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
        counts[name] = {
            "local": len(re.findall(r"\b(?:ld|st)\.local\.", text)),
            "fma": len(re.findall(r"\bfma\.rn\.f32\b", text)),
        }
        print(f"{name:16} local-memory instructions {counts[name]['local']:3}  "
              f"fma.rn.f32 {counts[name]['fma']:4}")
    return counts


def event_time(run, repeat: int, name: str):
    """Samples of one launch each, timed by CUDA events after 3 warm-ups."""
    from model2metal import device, timing

    for _ in range(3):
        run()
    cuda.synchronize()
    samples = []
    for _ in range(repeat):
        start, stop = cuda.event(), cuda.event()
        start.record()
        run()
        stop.record()
        stop.synchronize()
        samples.append(cuda.event_elapsed_time(start, stop) / 1e3)
    return timing.TimingResult(name=name, samples=samples, number=1, warmup=3,
                               hardware=device.hardware_string())


def on_gpu(n: int, repeat: int) -> tuple[str, dict]:
    import torch

    gpu = cuda.get_current_device().name
    gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    spec = next((v for k, v in SPEC.items() if k in gpu), None)
    rng = np.random.default_rng(0)
    rows = []
    data = {"gpu": gpu, "n": n, "copy": {}, "matmul": {}}

    side = 8192                                  # 256 MiB per array
    src = cuda.to_device(rng.random((side, side), dtype=np.float32))
    dst = cuda.device_array_like(src)
    moved = 2 * src.nbytes
    runs = {
        "copy kernel, coalesced": lambda: copy_rows[(side // 32, side // 8),
                                                    (32, 8)](src, dst),
        "copy kernel, strided": lambda: copy_cols[(side // 32, side // 8),
                                                  (32, 8)](src, dst),
        "driver device-to-device copy": lambda: dst.copy_to_device(src),
    }
    rows.append(f"Copy of {side} x {side} float32 (GB/s count bytes read and "
                "written):\n")
    rows.append("| copy | median ms | GB/s | of spec bandwidth |")
    rows.append("|---|---:|---:|---:|")
    for name, run in runs.items():
        r = event_time(run, repeat, name)
        gbs = moved / r.median / 1e9
        frac = f"{gbs / spec[0]:.0%}" if spec else "n/a"
        rows.append(f"| {name} | {r.median * 1e3:.3f} | {gbs:,.0f} | {frac} |")
        data["copy"][name] = {"median_s": r.median, "q1_s": r.q1, "q3_s": r.q3,
                              "gb_per_s": gbs}
    del src, dst

    A = rng.random((n, n), dtype=np.float32)
    B = rng.random((n, n), dtype=np.float32)
    dA, dB = cuda.to_device(A), cuda.to_device(B)
    dC = cuda.device_array((n, n), np.float32)
    torch.backends.cuda.matmul.allow_tf32 = False
    tA, tB = torch.from_numpy(A).cuda(), torch.from_numpy(B).cuda()
    want = (tA.double() @ tB.double()).float().cpu().numpy()
    flops = 2 * n ** 3
    results = {}
    base = event_time(lambda: torch.matmul(tA, tB), repeat, "torch.matmul")
    results["torch.matmul (cuBLAS, fp32, TF32 off)"] = (base, True)
    for name, (kernel, launch) in matmul_kernels().items():
        grid, block = launch(n, n)
        r = event_time(lambda: kernel[grid, block](dA, dB, dC), repeat, name)
        err = float(np.max(np.abs(dC.copy_to_host() - want)) / np.max(np.abs(want)))
        results[name] = (r, err < 1e-4)
        data["matmul"][name] = {"max_rel_error": err}
    rows.append(f"\nMatrix product {n} x {n} x {n}, float32:\n")
    rows.append("| kernel | median ms (q1-q3) | GFLOP/s | of cuBLAS | "
                "of spec FP32 peak | right |")
    rows.append("|---|---:|---:|---:|---:|---|")
    for name, (r, ok) in results.items():
        gf = flops / r.median / 1e9
        frac = f"{gf / spec[1]:.0%}" if spec else "n/a"
        rows.append(f"| {name} | {r.median * 1e3:.2f} ({r.q1 * 1e3:.2f}-"
                    f"{r.q3 * 1e3:.2f}) | {gf:,.0f} | {base.median / r.median:.2f} | "
                    f"{frac} | {'yes' if ok else 'NO'} |")
        data["matmul"].setdefault(name, {}).update(
            median_s=r.median, q1_s=r.q1, q3_s=r.q3, gflop_per_s=gf,
            of_cublas=base.median / r.median)
    if spec:
        rows.append(f"\nSpec sheet of the {gpu}: {spec[0]:,.0f} GB/s, "
                    f"{spec[1]:,.0f} GFLOP/s FP32 (NVIDIA's datasheet, not measured).")
    return "\n".join(rows) + "\n", data


def main(args: argparse.Namespace) -> int:
    if args.simulate:
        return 1 if check_in_simulator() else 0
    if args.ptx:
        ptx_counts()
        return 0
    if not cuda.is_available():
        print("no GPU here: run with --simulate (correctness) or --ptx, or on a "
              "machine with a CUDA GPU")
        return 2
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from results_file import emit

    body, data = on_gpu(args.n, args.repeat)
    method = (f"CUDA events around single launches, 3 warm-ups, {args.repeat} "
              "repeats, median and quartiles; float32, TF32 off")
    emit("gpu_kernels", method, body, args.write, cuda=True, data=data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(ARGS))
