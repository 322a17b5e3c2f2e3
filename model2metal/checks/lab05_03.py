"""Checks for lab 05_03 "CUDA kernels II: shared memory, reductions, atomics".

Every kernel is launched by the check itself, with the launch the lab states:

* ``matmul_tiled(A, B, C)``: ``C = A @ B`` for float32 ``A`` (m, k) and ``B`` (k, n);
  a 2-D grid of ``tile`` × ``tile`` blocks, ``x`` along the columns of ``C`` and
  ``y`` along its rows, ``ceil(n / tile)`` × ``ceil(m / tile)`` blocks.
* ``block_sum(x, partial)``: a 1-D grid of ``block`` threads per block; block ``b``
  writes the sum of ``x[b * block : (b + 1) * block]`` (what is left of it at the
  end) to ``partial[b]``.
* ``histogram(values, counts)``: a 1-D grid of ``block`` threads per block over the
  int32 ``values`` (each in ``range(len(counts))``); ``counts`` starts at zero and
  ends as ``np.bincount(values, minlength=len(counts))``.

Each launch runs in the simulator through :func:`model2metal.cudakit.trace`, so
besides the values the checks see the memory traffic (tiling must cut global
reads), races (``syncthreads`` and atomics), barriers that not every thread
reaches, and reads of shared memory that no thread wrote. On a machine with a GPU
the trace runs in a simulator process and the kernel also runs on the GPU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import cudakit, device
from .core import CheckFailed, call_learner, describe, passed

__all__ = ["check_matmul_tiled", "check_block_sum", "check_histogram"]

RTOL, ATOL = 1e-4, 1e-4  # float32 sums of at most ~40 products of values in [0, 1)

_RACE_HINT = {
    "matmul_tiled": (
        "a thread may read a tile only after every thread has stored its part "
        "(a barrier between the loads and the inner loop), and may overwrite the "
        "tile only after every thread has finished reading it (a second barrier "
        "at the end of each step)"
    ),
    "block_sum": (
        "each halving step reads what other threads wrote in the step before: "
        "every thread of the block must wait at a barrier between two steps"
    ),
    "histogram": (
        "counts[b] += 1 is three steps (read, add, write); two threads that do it "
        "to the same bin at once lose one increment. Use an atomic add"
    ),
}

_DIVERGENCE_HINT = (
    "every thread of a block must reach every syncthreads(): put the bounds "
    "guard around the loads and stores, not around the barrier, and do not "
    "return early"
)


def _require_kernel(check: str, kernel: Any) -> None:
    if not (callable(kernel) and hasattr(kernel, "py_func")):
        raise CheckFailed(
            check, "the argument",
            f"expected a @cuda.jit kernel, got {describe(kernel)}",
            "decorate the function with @cuda.jit and pass the kernel itself",
        )


def _run(check: str, case: str, kernel, grid, block, *args) -> cudakit.Trace:
    """Launch through the tracer; learner errors become a CheckFailed, the
    stub's NotImplementedError passes through; then the races and barriers."""
    tr = call_learner(
        check, case, cudakit.trace, kernel, grid, block, *args,
        label=f"{kernel.py_func.__name__}[{grid}, {block}]", inplace_ok=True,
        hint="the message names the GPU thread (tid, ctaid) that failed: check "
        "which index it computed, and the bounds guard",
        evidence=[(r"IndexError", "a thread indexed past the end of an array: "
                   "guard every global load and store with the array's shape "
                   "(the last blocks have threads beyond it)")],
    )
    divergent = tr.barrier_divergence()
    if divergent:
        raise CheckFailed(check, case, "not every thread reached the same "
                          f"barriers: {divergent[0]}", _DIVERGENCE_HINT)
    races = tr.hazards(limit=1)
    if races:
        raise CheckFailed(check, case, f"data race: {races[0]}",
                          _RACE_HINT[check.removeprefix("check_")])
    return tr


def _on_gpu(check: str, case: str, kernel, grid, block, args, expect, compare):
    """On a real GPU, run the kernel there too and compare (the trace above ran
    in the simulator)."""
    if device.select_cuda_backend() != "gpu":
        return
    fresh = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    call_learner(check, case + " (on the GPU)", cudakit.launch, kernel, grid,
                 block, *fresh, label=f"{kernel.py_func.__name__} on the GPU",
                 inplace_ok=True)
    compare(case + " (on the GPU)", fresh, expect)


def _uninitialised(tr: cudakit.Trace) -> str:
    reads = tr.uninitialised_reads(limit=1)
    return f"\nevidence: {reads[0]}" if reads else ""


# --- 1. tiled matmul ------------------------------------------------------------


def _matmul_cases(tile: int):
    rng = np.random.default_rng(53)
    shapes = [
        ("one tile", (tile, tile, tile)),
        ("sizes that are not multiples of the tile",
         (tile + 5, tile + 3, 2 * tile - 6)),
        ("a thin matrix, k < tile", (3, max(tile // 2, 1), tile + 1)),
        ("1 x 1 x 1", (1, 1, 1)),
    ]
    for name, (m, k, n) in shapes:
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        yield f"{name}: A {m}x{k} @ B {k}x{n}", a, b


def check_matmul_tiled(kernel, tile: int) -> None:
    """The tiled matmul is right on every shape, has no races, reaches every
    barrier, and reads each A and B value from global memory once per tile."""
    check = "check_matmul_tiled"
    _require_kernel(check, kernel)
    if not isinstance(tile, (int, np.integer)) or not 1 <= tile <= 32:
        raise CheckFailed(check, "the tile",
                          f"expected an int in 1..32, got {describe(tile)}",
                          "pass the TILE constant your kernel uses")
    tile = int(tile)
    n_cases = 0
    for case, a, b in _matmul_cases(tile):
        m, k = a.shape
        n = b.shape[1]
        c = np.full((m, n), np.nan, np.float32)
        grid, block = (math.ceil(n / tile), math.ceil(m / tile)), (tile, tile)
        tr = _run(check, case, kernel, grid, block, a, b, c)
        expect = (a.astype(np.float64) @ b).astype(np.float32)

        def compare(case, args, expect, tr=tr):
            got = args[2]
            bad = ~np.isclose(got, expect, rtol=RTOL, atol=ATOL)
            if bad.any():
                i, j = map(int, np.argwhere(bad)[0])
                raise CheckFailed(
                    check, case,
                    f"C[{i}, {j}]: expected {expect[i, j]:.5g}, got {got[i, j]:.5g} "
                    f"({int(bad.sum())} of {got.size} entries wrong)"
                    + (_uninitialised(tr) if tr else ""),
                    "where a tile hangs over the edge of A or B, the threads "
                    "past the end still fill their tile slot, with 0 (else it "
                    "keeps the previous step's value, or garbage), and only "
                    "threads inside C store their entry"
                    if m % tile or n % tile or k % tile else
                    "compare one entry by hand: which A and B values does the "
                    "inner loop multiply for step t of the tile loop?",
                )

        compare(case, (a, b, c), expect)
        writes = tr.count("global", "w", "C")
        if writes != m * n:
            raise CheckFailed(
                check, case, f"C was written {writes} times for {m * n} entries",
                "accumulate the dot product in a local variable and store each "
                "entry of C once, after the tile loop")
        most = max(tr.per_thread("global", "r").values(), default=0)
        tiles = math.ceil(k / tile)
        if most > 2 * tiles:
            raise CheckFailed(
                check, case,
                f"one thread read {most} values from global memory; with tiles "
                f"of {tile} it needs at most {2 * tiles} (one of A and one of B "
                f"per tile step), instead of the naive kernel's {2 * k}",
                "each thread loads one element of A and one of B into shared "
                "memory per step; the inner loop reads only the shared tiles",
            )
        _on_gpu(check, case, kernel, grid, block, (a, b, c), expect,
                lambda case, args, expect: compare(case, args, expect, tr=None))
        n_cases += 1
    passed(check, n_cases, ": no races, global reads cut by the tile width")


# --- 2. block reduction ----------------------------------------------------------


def _check_block(check, block):
    if not isinstance(block, (int, np.integer)) or block < 1 or block & (block - 1) \
            or block > 1024:
        raise CheckFailed(check, "the block size", "expected a power of two "
                          f"from 1 to 1024, got {describe(block)}",
                          "pass the BLOCK constant your kernel uses")
    return int(block)


def check_block_sum(kernel, block: int) -> None:
    """Each block's partial sum is right for sizes that are and are not multiples
    of the block, with no races and every barrier reached, and the loads are
    spread over the threads."""
    check = "check_block_sum"
    _require_kernel(check, kernel)
    block = _check_block(check, block)
    rng = np.random.default_rng(5)
    sizes = [("one element", 1), ("exactly one block", block),
             ("one more than a block", block + 1),
             ("not a multiple of the block", 3 * block - 5)]
    for case, n in sizes:
        x = rng.random(n, dtype=np.float32)
        blocks = math.ceil(n / block)
        partial = np.full(blocks, np.nan, np.float32)
        case = f"{case}: n = {n}, {blocks} block(s) of {block}"
        tr = _run(check, case, kernel, blocks, block, x, partial)
        pad = np.zeros(blocks * block)
        pad[:n] = x
        expect = pad.reshape(blocks, block).sum(axis=1).astype(np.float32)

        def compare(case, args, expect, tr=tr):
            got = args[1]
            bad = ~np.isclose(got, expect, rtol=RTOL, atol=ATOL)
            if bad.any():
                b = int(np.argmax(bad))
                last = b == blocks - 1 and n % block
                raise CheckFailed(
                    check, case,
                    f"partial[{b}]: expected {expect[b]:.6g}, got {got[b]:.6g}"
                    + (_uninitialised(tr) if tr else ""),
                    "the last block is only partly filled: threads past the end "
                    "of x still take part in the tree, so they must put the "
                    "neutral value 0 in their shared slot" if last else
                    "follow one block's tree by hand: at each step, which slots "
                    "are added, and does every step wait for the one before?",
                )

        compare(case, (x, partial), expect)
        loads = tr.per_thread("global", "r")
        if loads and max(loads.values()) > 2:
            raise CheckFailed(
                check, case,
                f"one thread read {max(loads.values())} values of x from global "
                "memory",
                "in a block reduction every thread loads its own element into "
                "shared memory, then the active threads halve at each step",
            )
        if tr.shared_reads == 0:
            raise CheckFailed(check, case, "the kernel used no shared memory",
                              "the threads of a block combine their values "
                              "through a cuda.shared.array")
        _on_gpu(check, case, kernel, blocks, block, (x, partial), expect,
                lambda case, args, expect: compare(case, args, expect, tr=None))
    passed(check, len(sizes), ": right for any size, no races")


# --- 3. histogram ----------------------------------------------------------------


def check_histogram(kernel, block: int) -> None:
    """The counts equal np.bincount, and no two threads update one bin without
    an atomic."""
    check = "check_histogram"
    _require_kernel(check, kernel)
    block = _check_block(check, block)
    rng = np.random.default_rng(7)
    cases = [("one value", 1, 4), ("many values, 8 bins", 3 * block + 7, 8),
             ("all values in one bin", block + 3, 5)]
    for case, n, bins in cases:
        values = rng.integers(0, bins, n).astype(np.int32)
        if case.startswith("all"):
            values[:] = 2
        counts = np.zeros(bins, np.int32)
        blocks = math.ceil(n / block)
        case = f"{case}: {n} values, {bins} bins, {blocks} block(s)"
        _run(check, case, kernel, blocks, block, values, counts)
        expect = np.bincount(values, minlength=bins).astype(np.int32)

        def compare(case, args, expect):
            got = args[1]
            if not np.array_equal(got, expect):
                b = int(np.argmax(got != expect))
                raise CheckFailed(
                    check, case,
                    f"counts[{b}]: expected {expect[b]}, got {got[b]} "
                    f"(expected {describe(expect)}, got {describe(got)})",
                    "each thread adds 1 to the bin of its own value, if its "
                    "index is inside values",
                )

        compare(case, (values, counts), expect)
        _on_gpu(check, case, kernel, blocks, block, (values, counts), expect,
                compare)
    passed(check, len(cases), ": no lost updates")
