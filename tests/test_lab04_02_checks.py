"""Lab 04_02's checks reject GEMMs that are right only for some sizes, register tiles
that spill or waste registers, and schedules that skip a step of the recipe; they
accept other correct designs (another loop order, another unroll, other tiles)."""

import pytest
from check_helpers import boom, raises_cleanly, rejects

from model2metal import tvmkit
from model2metal.checks import lab04_02 as checks

T = tvmkit.T


def matmul(m, n, k, init=True, kinds="SSR", a_shape=None, rows=None):
    a_shape = a_shape or (m, k)
    rows = m if rows is None else rows

    @T.prim_func(s_tir=True)
    def main(A: T.Buffer(a_shape, "float32"), B: T.Buffer((k, n), "float32"),
             C: T.Buffer((m, n), "float32")):
        T.func_attr(tvmkit.NOALIAS)
        for i, j, r in T.grid(rows, n, k):
            with T.sblock("C"):
                vi, vj, vr = T.axis.remap(kinds, [i, j, r])
                if init:
                    with T.init():
                        C[vi, vj] = T.float32(0)
                C[vi, vj] = C[vi, vj] + A[vi, vr] * B[vr, vj]

    return tvmkit.tvm.IRModule({"main": main})


def tile(lanes, registers):
    mi = min(8, (registers - 3) // 2)
    return mi, 2 * lanes


def gemm(mod, mi, nj, order="ji", pack=True, pad=True, local=True, vectorize=True,
         decompose=True, ku=4):
    sch = tvmkit.schedule(mod)
    block = sch.get_sblock("C")
    i, j, k = sch.get_loops(block)
    io, ii = sch.split(i, factors=[None, mi])
    jo, ji = sch.split(j, factors=[None, nj])
    ko, ki = sch.split(k, factors=[None, ku])
    outer = (jo, io) if order == "ji" else (io, jo)
    sch.reorder(*outer, ko, ki, ii, ji)
    if local:
        acc = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(acc, outer[1])
    if pack:
        sch.cache_read(block, 1, "global")
        extra = {"pad_value": 0.0} if pad else {}
        sch.transform_layout(block, ("read", 1),
                             lambda kk, jj: (jj // nj, kk, jj % nj), **extra)
    sch.unroll(ii)
    (sch.vectorize if vectorize else sch.unroll)(ji)
    sch.parallel(outer[0])
    if decompose:
        sch.decompose_reduction(block, ko)
    return sch.mod


# --- 1 ----------------------------------------------------------------------------------


def test_matmul_accepts_module_and_primfunc():
    checks.check_matmul(matmul)
    checks.check_matmul(lambda m, n, k: matmul(m, n, k)["main"])


def test_matmul_rejects_a_gemm_right_only_for_square_sizes():
    # A declared (k, m): its shape is right only when m == k
    rejects(checks.check_matmul, lambda m, n, k: matmul(m, n, k, a_shape=(k, m)),
            expect=r"m=3, n=5, k=7.*expected A \(3, 7\)")


def test_matmul_rejects_a_gemm_right_only_for_power_of_two_sizes():
    # rows rounded down to a power of two: fine for 1 and 64, not for 3 or 100
    rejects(checks.check_matmul,
            lambda m, n, k: matmul(m, n, k, rows=1 << (m.bit_length() - 1)),
            expect=r"m=3, n=5, k=7.*never written")


def test_matmul_rejects_missing_init_and_wrong_kinds():
    rejects(checks.check_matmul, lambda m, n, k: matmul(m, n, k, init=False),
            expect=r"no T.init")
    rejects(checks.check_matmul, lambda m, n, k: matmul(m, n, k, kinds="SSS"),
            expect=r"iterators 'SSS'")
    raises_cleanly(checks.check_matmul, boom, expect=r"m=1, n=1, k=1")


# --- 2 ----------------------------------------------------------------------------------


def test_register_tile_accepts_reference_and_a_taller_tile():
    checks.check_register_tile(tile)
    checks.check_register_tile(lambda lanes, regs: ((regs - 3) // 2, 2 * lanes))


def test_register_tile_rejects_a_tile_that_spills():
    rejects(checks.check_register_tile, lambda lanes, regs: (16, 2 * lanes),
            expect=r"lanes=16, registers=32.*= 35 registers; the CPU has 32")


def test_register_tile_rejects_partial_vectors_and_wasted_registers():
    rejects(checks.check_register_tile, lambda lanes, regs: (4, lanes + 2),
            expect=r"multiple of\s+lanes=16")
    rejects(checks.check_register_tile, lambda lanes, regs: (1, lanes),
            expect=r"1 accumulators: under half")
    rejects(checks.check_register_tile, lambda lanes, regs: [8, 2 * lanes],
            expect=r"return a tuple")


# --- 3 ----------------------------------------------------------------------------------


def test_schedule_gemm_accepts_reference_and_other_orders():
    checks.check_schedule_gemm(gemm, matmul)
    checks.check_schedule_gemm(lambda mod, mi, nj: gemm(mod, mi, nj, order="ij", ku=1),
                               matmul)


@pytest.mark.parametrize("mistake, expect", [
    ({"pack": False}, r"no packed copy of B of shape"),
    ({"local": False}, r"no 'local' buffer.*cache_write"),
    ({"vectorize": False}, r"expected \('vectorized', 32\)"),
    ({"decompose": False}, r"no block 'C_update'"),
])
def test_schedule_gemm_rejects_a_missing_step(mistake, expect):
    rejects(checks.check_schedule_gemm,
            lambda mod, mi, nj: gemm(mod, mi, nj, **mistake), matmul, expect=expect)


def test_schedule_gemm_names_the_padding_that_sizes_off_the_tile_need():
    rejects(checks.check_schedule_gemm, lambda mod, mi, nj: gemm(mod, mi, nj, pad=False),
            matmul, expect=r"n=37.*pad_value=0.0")


def test_gemm_race_returns_the_measured_numbers():
    result = checks.check_gemm_race(gemm, matmul, 4, 16, size=128)
    assert result["relative_error"] < 1e-5
    assert result["tvm_gflops"] > 0 and result["numpy_gflops"] > 0
    assert result["ratio"] == pytest.approx(
        result["tvm_gflops"] / result["numpy_gflops"])
