"""Checks for lab 04_02 "The GEMM race".

Conventions the lab states and these checks hold it to:

* ``make_matmul(m, n, k)`` returns an IRModule (or PrimFunc) whose ``main`` takes
  float32 buffers ``A (m, k)``, ``B (k, n)``, ``C (m, n)`` and has one block ``"C"``
  (iterators spatial, spatial, reduce; a ``T.init``) computing ``C = A @ B``.
* ``register_tile(lanes, registers)`` returns ``(mi, nj)``: a register tile of ``mi``
  rows and ``nj`` columns for a CPU whose vector registers hold ``lanes`` float32 and
  which has ``registers`` of them. ``nj`` is a multiple of ``lanes``; the tile's
  accumulators (``mi * nj / lanes`` registers), one row of B (``nj / lanes``) and one
  broadcast value of A (1) fit in ``registers``, and the accumulators use at least
  half of them.
* ``schedule_gemm(mod, mi, nj)`` returns the scheduled module: the reduction
  decomposed (blocks ``"C_init"``, ``"C_update"``), the loop right around
  ``"C_update"`` vectorised with extent ``nj``, the outermost loop parallel, the
  output accumulated in a ``"local"`` buffer, and B packed into a buffer of shape
  ``(ceil(n / nj), k, nj)``. Sizes need not be multiples of the tile.
* ``check_gemm_race`` builds the learner's schedule at 1024³, compares it with NumPy
  and times both in the same cell; the numbers it returns are shown in an ignored cell.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .core import (
    CheckFailed,
    assert_true,
    assert_type,
    call_learner,
    describe,
    passed,
)
from .tvm_common import (
    as_module,
    has_block,
    innermost_loop,
    matmul_operands,
    returned_module,
    run_matmul,
)

__all__ = [
    "check_matmul",
    "check_register_tile",
    "check_schedule_gemm",
    "check_gemm_race",
]

_SIZES = [(1, 1, 1), (3, 5, 7), (64, 48, 80), (100, 37, 129)]


def check_matmul(make_matmul) -> None:
    from .. import tvmkit

    name = "check_matmul"
    for m, n, k in _SIZES:
        case = f"m={m}, n={n}, k={k}"
        mod = as_module(name, case, call_learner(
            name, case, make_matmul, m, n, k,
            hint="m, n and k are ints; A is (m, k), B is (k, n), C is (m, n)"))
        assert_true(has_block(mod, "C"), name, case, "main has no block named 'C'",
                    'name the block "C": the schedule finds it by that name')
        kinds = tvmkit.block_iter_types(mod, "C")
        assert_true(kinds == "SSR", name, case,
                    f"block 'C' has iterators {kinds!r}, expected 'SSR'",
                    "the row and the column of C are spatial (S), the summed index "
                    "a reduction (R), in the order of the loops")
        assert_true(tvmkit.block_has_init(mod, "C"), name, case,
                    "block 'C' has no T.init()",
                    "a reduction block states the value its sum starts from in its "
                    "own init section (T.init)")
        run_matmul(name, case, mod, m, n, k)
    passed(name, len(_SIZES))


def check_register_tile(register_tile) -> None:
    name = "check_register_tile"
    cases = [(16, 32), (8, 16), (4, 16), (4, 32), (8, 32)]
    for lanes, registers in cases:
        case = f"lanes={lanes}, registers={registers}"
        got = call_learner(name, case, register_tile, lanes, registers,
                           hint="lanes and registers are ints")
        assert_type(got, tuple, name, case, what="tile",
                    hint="return a tuple (mi, nj)")
        ok = len(got) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in got)
        assert_true(ok, name, case, f"expected (mi, nj), two ints, got {describe(got)}",
                    "return Python ints: (mi, nj)")
        mi, nj = got
        if mi < 1 or nj < lanes or nj % lanes:
            raise CheckFailed(
                name, case, f"tile ({mi}, {nj}): nj must be a positive multiple of "
                f"lanes={lanes} and mi at least 1",
                "a column tile is a whole number of vector registers")
        vectors = nj // lanes
        used = mi * vectors + vectors + 1
        if used > registers:
            raise CheckFailed(
                name, case,
                f"tile ({mi}, {nj}) needs {mi * vectors} accumulators + {vectors} for "
                f"a row of B + 1 for A = {used} registers; the CPU has {registers}",
                "the accumulators of the tile must all stay in registers, with room "
                "for what each step loads; more would spill to the stack")
        if mi * vectors < registers // 2:
            raise CheckFailed(
                name, case,
                f"tile ({mi}, {nj}) keeps {mi * vectors} accumulators: under half "
                f"of the {registers} registers",
                "each step of k loads one row of B and does mi * nj/lanes FMAs: a "
                "larger tile does more arithmetic per load; use the registers")
    passed(name, len(cases))


def check_schedule_gemm(schedule_gemm, make_matmul) -> None:
    from .. import tvmkit

    name = "check_schedule_gemm"
    cases = [(128, 128, 128, 8, 32), (100, 37, 129, 4, 16), (64, 200, 48, 6, 16),
             (1, 1, 1, 8, 16)]
    for m, n, k, mi, nj in cases:
        case = f"m={m}, n={n}, k={k}, mi={mi}, nj={nj}"
        mod = as_module(name, case, call_learner(
            name, case, make_matmul, m, n, k, hint="exercise 1's function"))
        before = tvmkit.tir_text(mod)
        new = returned_module(name, case, call_learner(
            name, case, schedule_gemm, mod, mi, nj,
            hint="mod is your make_matmul(m, n, k); mi and nj are ints",
            evidence=[(r"transform_layout.*(pad|divisib|not.*bijective|padding)",
                       "when nj does not divide n the packed B has padding: pass "
                       "pad_value=0.0 to transform_layout")]), before, mod)
        blocks = tvmkit.block_names(new)
        assert_true("C_update" in blocks, name, case,
                    f"no block 'C_update' (blocks: {blocks})",
                    "sch.decompose_reduction(block, loop) splits off the "
                    "initialisation into 'C_init'; the update becomes 'C_update'")
        loops = tvmkit.block_loops(new, "C_update")
        inner = innermost_loop(new, "C_update")
        if inner != ("vectorized", nj):
            raise CheckFailed(
                name, case,
                f"the loop right around 'C_update' is {inner}, expected "
                f"('vectorized', {nj}); loops: {loops}",
                "the innermost loop is the nj columns of the tile: vectorise it")
        if loops[0][0] != "parallel":
            raise CheckFailed(
                name, case, f"the outermost loop is {loops[0][0]}; loops: {loops}",
                "parallelise the outermost tile loop")
        buffers = tvmkit.allocated_buffers(new)
        if not any(scope == "local" for _, scope in buffers.values()):
            raise CheckFailed(
                name, case, f"no 'local' buffer among {buffers}",
                "a cache_write into a 'local' buffer accumulates each tile in a "
                "small buffer (registers) and writes C once; reverse_compute_at "
                "places that copy after each tile")
        packed = (math.ceil(n / nj), k, nj)
        if packed not in [shape for shape, _ in buffers.values()]:
            raise CheckFailed(
                name, case,
                f"no packed copy of B of shape {packed} among {buffers}",
                "cache_read B, then transform_layout it to (j // nj, k, j % nj): each "
                "tile then reads one contiguous panel of B")
        run_matmul(name, case + ", scheduled", new, m, n, k)
    passed(name, len(cases))


#: a pause before each timed series: OpenBLAS's and TVM's worker threads spin for a
#: while after a parallel call and would otherwise compete with the other library's
SETTLE_S = 0.3


def check_gemm_race(schedule_gemm, make_matmul, mi, nj, size=1024, target=None):
    """Build the learner's schedule at size³, verify it, time it against NumPy in
    the same process, print one line and return the numbers (a dict)."""
    from .. import timing, tvmkit

    name = "check_gemm_race"
    case = f"{size}x{size}x{size}, tile ({mi}, {nj})"
    mod = as_module(name, case, call_learner(name, case, make_matmul, size, size, size,
                                             hint="exercise 1's function"))
    new = as_module(name, case, call_learner(name, case, schedule_gemm, mod, mi, nj,
                                             hint="exercise 3's function"))
    ex = call_learner(name, case, tvmkit.build, new, target, label="tvmkit.build(mod)")
    a, b = matmul_operands(size, size, size)
    out = tvmkit.empty((size, size))
    ta, tb = tvmkit.tensor(a), tvmkit.tensor(b)
    ex["main"](ta, tb, out)
    reference = a.astype(np.float64) @ b
    error = float(np.abs(out.numpy() - reference).max() / np.abs(reference).max())
    if not error < 1e-5:
        raise CheckFailed(name, case,
                          f"max error {error:.2e} relative to the largest entry",
                          "the schedule passed the small cases: is it right for this "
                          "size and these tiles?")
    time.sleep(SETTLE_S)
    tvm_s = tvmkit.time_function(ex, ta, tb, out, name="tvm").median
    time.sleep(SETTLE_S)
    numpy_s = timing.measure(lambda: a @ b, name="numpy").median
    flops = 2 * size**3
    result = {
        "tvm_gflops": flops / tvm_s / 1e9,
        "numpy_gflops": flops / numpy_s / 1e9,
        "ratio": numpy_s / tvm_s,
        "relative_error": error,
    }
    passed(name, extra=f": tile {mi}x{nj}, TVM {result['tvm_gflops']:.0f}, NumPy "
           f"{result['numpy_gflops']:.0f} GFLOP/s: {result['ratio']:.2f}x")
    return result
