"""Checks for lab 04_01 "TensorIR and schedules".

Conventions the lab states and these checks hold it to:

* ``make_broadcast_add(m, n)`` returns an IRModule (or PrimFunc) whose ``main`` takes
  float32 buffers ``A (m, n)``, ``B (n,)``, ``C (m, n)`` and has a block ``"C"``
  computing ``C[i, j] = A[i, j] + B[j]``.
* ``make_matmul_relu(m, n, k)``: ``main(A (m, k), B (k, n), C (m, n))`` with a block
  ``"matmul"`` (iterators spatial, spatial, reduce; a ``T.init``) writing an
  intermediate buffer, and a block ``"relu"`` writing ``C = max(A @ B, 0)``.
* ``schedule_broadcast_add(mod, lanes)`` returns the scheduled module: the loop right
  around block ``"C"`` is vectorised with extent ``lanes`` and the outermost loop is
  parallel. The module passed in is left as it was.
* ``schedule_matmul_relu(mod, tile_m, tile_n)``: the matmul's rows and columns tiled
  by ``tile_m`` and ``tile_n``, the innermost loop of the update vectorised with extent
  ``tile_n``, the outermost loop parallel, the reduction decomposed (blocks
  ``"matmul_init"`` and ``"matmul_update"``), and ``"relu"`` moved into the tile loops
  (it shares at least the two outer tile loops with the update).
* ``widest_simd_register(asm)`` returns 512, 256, 128 or 0: the width in bits of the
  widest x86 register (zmm, ymm, xmm) used by a *packed single-precision* arithmetic
  instruction (``addps``, ``vfmadd231ps``, ...) of the AT&T-syntax text; comments,
  labels, scalar (``ss``) and non-arithmetic instructions do not count.

Every module is compiled for the host target and run on NaN-filled outputs, on sizes
that are odd and not multiples of the tiles.
"""

from __future__ import annotations

import numpy as np

from .core import (
    CheckFailed,
    assert_equal,
    assert_true,
    assert_type,
    call_learner,
    passed,
)
from .tvm_common import (
    as_module,
    check_result,
    compile_and_run,
    expect_buffers,
    has_block,
    innermost_loop,
    returned_module,
    run_matmul,
)

__all__ = [
    "check_broadcast_add",
    "check_matmul_relu",
    "check_schedule_broadcast_add",
    "check_schedule_matmul_relu",
    "check_widest_simd_register",
]


def _rng(*sizes):
    return np.random.default_rng(sum(s * 7919**k for k, s in enumerate(sizes)))


def _made(name, case, make, *sizes, hint):
    return as_module(name, case, call_learner(name, case, make, *sizes, hint=hint))


def _need_block(name, case, mod, block, hint):
    assert_true(has_block(mod, block), name, case,
                f"main has no block named {block!r}", hint)


# ---------------------------------------------------------------------------
# 1-2. TensorIR
# ---------------------------------------------------------------------------

_BROADCAST_SIZES = [(1, 1), (7, 13), (64, 100), (3, 257)]


def _run_broadcast_add(name, case, mod, m, n):
    expect_buffers(name, case, mod, [("A", (m, n)), ("B", (n,)), ("C", (m, n))])
    rng = _rng(m, n)
    a = rng.normal(size=(m, n)).astype(np.float32)
    b = rng.normal(size=n).astype(np.float32)
    got = compile_and_run(name, case, mod, [("A", a), ("B", b)], (m, n))
    hint = None
    if m == n and m > 1 and np.allclose(got, a + b[:, None]):
        hint = "B is indexed by the row: B[j] goes with column j of A"
    check_result(name, case, got, a + b, "C", rtol=1e-6, atol=1e-6, hint=hint)


def check_broadcast_add(make_broadcast_add) -> None:
    name = "check_broadcast_add"
    for m, n in _BROADCAST_SIZES:
        case = f"m={m}, n={n}"
        mod = _made(name, case, make_broadcast_add, m, n,
                    hint="m and n are ints; they go into the buffer shapes")
        _need_block(name, case, mod, "C",
                    'name the block "C": exercise 3 schedules it by that name')
        _run_broadcast_add(name, case, mod, m, n)
    passed(name, len(_BROADCAST_SIZES))


_MATMUL_SIZES = [(1, 1, 1), (5, 7, 3), (33, 17, 64), (16, 40, 9)]


def check_matmul_relu(make_matmul_relu) -> None:
    from .. import tvmkit

    name = "check_matmul_relu"
    for m, n, k in _MATMUL_SIZES:
        case = f"m={m}, n={n}, k={k}"
        mod = _made(name, case, make_matmul_relu, m, n, k,
                    hint="m, n and k are ints; A is (m, k), B is (k, n)")
        for block in ("matmul", "relu"):
            _need_block(name, case, mod, block,
                        'two blocks, "matmul" and "relu": exercise 4 schedules them '
                        "by these names")
        kinds = tvmkit.block_iter_types(mod, "matmul")
        if kinds != "SSR":
            raise CheckFailed(
                name, case,
                f"block 'matmul' has iterators {kinds!r} (S spatial, R reduce), "
                "expected 'SSR'",
                "the row and the column of the output are spatial (S); the index "
                "that is summed over is a reduction (R)"
                if kinds.count("R") != 1
                else "declare the iterators in the order of the loops: i, j, then "
                "the reduction",
            )
        assert_true(
            tvmkit.block_has_init(mod, "matmul"), name, case,
            "block 'matmul' has no T.init(): its sum starts from whatever the "
            "buffer held",
            "a reduction block states the value its sum starts from in its own "
            "init section (T.init), which TVM runs at the first step of the sum",
        )
        run_matmul(name, case, mod, m, n, k, relu=True)
    passed(name, len(_MATMUL_SIZES))


# ---------------------------------------------------------------------------
# 3-4. schedules
# ---------------------------------------------------------------------------


def _schedule(name, case, fn, mod, *params, hint):
    from .. import tvmkit

    before = tvmkit.tir_text(mod)
    new = call_learner(name, case, fn, mod, *params, hint=hint)
    return returned_module(name, case, new, before, mod)


def _vectorized_innermost(name, case, mod, block, extent, what):
    from .. import tvmkit

    loops = tvmkit.block_loops(mod, block)
    inner = innermost_loop(mod, block)
    kinds = [kind for kind, _ in loops]
    if inner is None or inner[0] != "vectorized":
        if "vectorized" in kinds:
            hint = (
                "a vectorized loop that is not the innermost one: the loop right "
                f"around {block!r} should be vectorized (reorder, or vectorize "
                "the inner part of the split)"
            )
        elif "unrolled" in kinds:
            hint = "sch.unroll repeats the body; sch.vectorize turns it into vector code"
        elif all(kind == "serial" for kind in kinds):
            hint = ("nothing is vectorized: the schedule's changes are in sch.mod, "
                    "return that")
        else:
            hint = "split the loop by the vector width and vectorize the inner part"
        raise CheckFailed(
            name, case,
            f"the loop around block {block!r} is {inner[0] if inner else 'missing'}; "
            f"loops (outermost first): {loops}",
            hint,
        )
    if inner[1] != extent:
        raise CheckFailed(
            name, case,
            f"the vectorized loop around {block!r} has extent {inner[1]}, expected "
            f"{extent} ({what})",
            f"split with factors=[None, {what.split()[0]}] and vectorize the inner loop",
        )
    if loops[0][0] != "parallel":
        raise CheckFailed(
            name, case,
            f"the outermost loop around {block!r} is {loops[0][0]}, expected parallel; "
            f"loops: {loops}",
            "sch.parallel(outermost loop) spreads its iterations over the cores",
        )


def check_schedule_broadcast_add(schedule_broadcast_add, make_broadcast_add) -> None:
    name = "check_schedule_broadcast_add"
    cases = [(64, 100, 8), (7, 13, 8), (5, 64, 16), (3, 30, 4)]
    for m, n, lanes in cases:
        case = f"m={m}, n={n}, lanes={lanes}"
        mod = _made(name, case, make_broadcast_add, m, n, hint="exercise 1's function")
        new = _schedule(name, case, schedule_broadcast_add, mod, lanes,
                        hint="mod is your make_broadcast_add(m, n); lanes an int")
        _vectorized_innermost(name, case, new, "C", lanes, "lanes floats")
        _run_broadcast_add(name, case + ", scheduled", new, m, n)
    passed(name, len(cases))


def check_schedule_matmul_relu(schedule_matmul_relu, make_matmul_relu) -> None:
    from .. import tvmkit

    name = "check_schedule_matmul_relu"
    cases = [(64, 64, 64, 8, 16), (37, 50, 19, 4, 16), (1, 1, 1, 8, 8),
             (40, 96, 33, 8, 32)]
    for m, n, k, tile_m, tile_n in cases:
        case = f"m={m}, n={n}, k={k}, tile_m={tile_m}, tile_n={tile_n}"
        mod = _made(name, case, make_matmul_relu, m, n, k, hint="exercise 2's function")
        new = _schedule(name, case, schedule_matmul_relu, mod, tile_m, tile_n,
                        hint="mod is your make_matmul_relu(m, n, k); the tiles are ints")
        names = tvmkit.block_names(new)
        if "matmul_update" not in names:
            raise CheckFailed(
                name, case,
                f"no block 'matmul_update' (blocks: {names})",
                "sch.decompose_reduction(matmul, loop) splits the block into "
                "matmul_init and matmul_update; give it the loop the initialisation "
                "should go above (the reduction loop)",
            )
        _vectorized_innermost(name, case, new, "matmul_update", tile_n, "tile_n columns")
        loops = tvmkit.block_loops(new, "matmul_update")
        inner_extents = [extent for _, extent in loops[-2:]]
        if len(loops) < 5 or inner_extents[0] != tile_m:
            raise CheckFailed(
                name, case,
                f"loops around 'matmul_update' (outermost first): {loops}; expected "
                "five: row tiles, column tiles, the reduction, then tile_m rows and "
                "tile_n columns inside the tile",
                "split i by tile_m and j by tile_n, then reorder(i_outer, j_outer, r, "
                "i_inner, j_inner)",
            )
        shared = tvmkit.shared_loops(new, "matmul_update", "relu")
        if shared < 2:
            raise CheckFailed(
                name, case,
                f"'relu' shares {shared} loop(s) with 'matmul_update'; expected at "
                "least the two tile loops",
                "reverse_compute_at moves a consumer block under a loop of its "
                "producer: under the column-tile loop, each tile's ReLU runs right "
                "after the tile is computed, while it is still in cache",
            )
        run_matmul(name, case + ", scheduled", new, m, n, k, relu=True)
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 5. assembly
# ---------------------------------------------------------------------------

_ASM_CASES = {
    "AVX-512 loop": (
        ".LBB0_7:\n"
        "\tvbroadcastss\t-24(%rbx,%rax), %zmm18\n"
        "\tvmovups\t-384(%rcx), %zmm19\n"
        "\tvfmadd231ps\t%zmm19, %zmm18, %zmm1\n"
        "\tjne\t.LBB0_7\n",
        512,
    ),
    "AVX2 add, an xmm epilogue": (
        "\tvaddps\t(%rsi,%rax,4), %ymm0, %ymm0\n"
        "\tvaddps\t%xmm1, %xmm2, %xmm2\n"
        "\tvmovups\t%ymm0, (%rdx,%rax,4)\n",
        256,
    ),
    "SSE": ("\tmovups\t(%rdi), %xmm0\n\taddps\t(%rsi), %xmm0\n\tmulps\t%xmm1, %xmm0\n",
            128),
    "scalar only": (
        "\tvmovss\t(%rdi,%rax,4), %xmm0\n"
        "\tvaddss\t(%rsi,%rax,4), %xmm0, %xmm0\n"
        "\tvfmadd231ss\t%xmm2, %xmm1, %xmm0\n",
        0,
    ),
    # wide registers in moves, zeroing idioms, integer and double arithmetic,
    # comments and labels do not make float32 arithmetic packed
    "wide registers without packed float arithmetic": (
        "# vaddps %zmm0, %zmm1, %zmm2 would count, but it is a comment\n"
        "\tvxorps\t%zmm3, %zmm3, %zmm3\n"
        "\tvmovups\t%zmm0, (%rdi)\n"
        "\tvpaddd\t%zmm1, %zmm0, %zmm0\n"
        "\tvaddpd\t%ymm1, %ymm0, %ymm0\n"
        "\tvaddss\t%xmm1, %xmm0, %xmm0    # scalar\n"
        "vmulps_zmm_helper:\n",
        0,
    ),
    "packed float next to wider other code": (
        "\tvmovups\t%zmm0, (%rdi)\n"
        "\tvmulps\t%ymm1, %ymm0, %ymm0\n"
        "\tvmaxps\t%ymm2, %ymm0, %ymm0\n",
        256,
    ),
}


def check_widest_simd_register(widest_simd_register) -> None:
    name = "check_widest_simd_register"
    for case, (asm, expected) in _ASM_CASES.items():
        got = call_learner(name, case, widest_simd_register, asm,
                           hint="the argument is AT&T-syntax assembly text")
        assert_type(got, int, name, case, what="width in bits",
                    hint="return an int: 512, 256, 128, or 0 when nothing is packed")
        hint = None
        if got in (128, 256, 512) and expected != got:
            hint = (
                "count only packed single-precision arithmetic (…ps: add, sub, "
                "mul, div, min, max, sqrt, fmadd…): moves, zeroing idioms, integer "
                "(vpadd…), double (…pd) and scalar (…ss) instructions do not, and "
                "neither do comments or labels"
            )
        elif got == 0 and expected:
            hint = ("xmm is 128 bits, ymm 256, zmm 512; the register operands follow "
                    "the mnemonic after a tab or spaces")
        assert_equal(got, expected, name, case, what="width in bits", hint=hint)
    passed(name, len(_ASM_CASES))

