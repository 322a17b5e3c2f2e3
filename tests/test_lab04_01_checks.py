"""Lab 04_01's checks reject typical TensorIR and schedule mistakes and accept other
correct solutions (a bare PrimFunc, another split, another loop to parallelise, a
cache-write in the schedule, another way to read the assembly)."""

import re

import pytest
from check_helpers import boom, raises_cleanly, rejects

from model2metal import tvmkit
from model2metal.checks import lab04_01 as checks

T = tvmkit.T
Module = tvmkit.tvm.IRModule


# --- reference solutions, written here as a learner would -------------------------------


def broadcast_add(m, n, index_b_by_row=False, stop_early=False, block="C"):
    cols = n - 1 if stop_early and n > 1 else n

    @T.prim_func(s_tir=True)
    def main(A: T.Buffer((m, n), "float32"), B: T.Buffer((n,), "float32"),
             C: T.Buffer((m, n), "float32")):
        T.func_attr(tvmkit.NOALIAS)
        for i, j in T.grid(m, cols):
            with T.sblock(block):
                vi, vj = T.axis.remap("SS", [i, j])
                if index_b_by_row:
                    C[vi, vj] = A[vi, vj] + B[vi]
                else:
                    C[vi, vj] = A[vi, vj] + B[vj]

    return Module({"main": main})


def matmul_relu(m, n, k, init=True, kinds="SSR", relu=True, a_shape=None):
    a_shape = a_shape or (m, k)

    @T.prim_func(s_tir=True)
    def main(A: T.Buffer(a_shape, "float32"), B: T.Buffer((k, n), "float32"),
             C: T.Buffer((m, n), "float32")):
        T.func_attr(tvmkit.NOALIAS)
        Y = T.alloc_buffer((m, n), "float32")
        for i, j, r in T.grid(m, n, k):
            with T.sblock("matmul"):
                vi, vj, vr = T.axis.remap(kinds, [i, j, r])
                if init:
                    with T.init():
                        Y[vi, vj] = T.float32(0)
                Y[vi, vj] = Y[vi, vj] + A[vi, vr] * B[vr, vj]
        for i, j in T.grid(m, n):
            with T.sblock("relu"):
                vi, vj = T.axis.remap("SS", [i, j])
                if relu:
                    C[vi, vj] = T.max(Y[vi, vj], T.float32(0))
                else:
                    C[vi, vj] = Y[vi, vj]

    return Module({"main": main})


def schedule_add(mod, lanes, kind="vectorize", parallel=True, which="inner",
                 give_back="new"):
    sch = tvmkit.schedule(mod)
    block = sch.get_sblock("C")
    i, j = sch.get_loops(block)
    outer, inner = sch.split(j, factors=[None, lanes])
    getattr(sch, kind)(inner if which == "inner" else outer)
    if parallel:
        sch.parallel(i)
    return sch.mod if give_back == "new" else mod


def schedule_mm(mod, tile_m, tile_n, decompose=True, move_relu=True, unroll=False,
                vectorize="inner", parallel=True):
    sch = tvmkit.schedule(mod)
    mm = sch.get_sblock("matmul")
    i, j, r = sch.get_loops(mm)
    io, ii = sch.split(i, factors=[None, tile_m])
    jo, ji = sch.split(j, factors=[None, tile_n])
    sch.reorder(io, jo, r, ii, ji)
    if unroll:
        sch.unroll(ii)
    sch.vectorize(ji if vectorize == "inner" else ii)
    if parallel:
        sch.parallel(io)
    if move_relu:
        relu = sch.get_sblock("relu")
        sch.reverse_compute_at(relu, jo)
        if unroll:
            sch.vectorize(sch.get_loops(relu)[-1])
    if decompose:
        sch.decompose_reduction(mm, r)
    return sch.mod


PACKED_PS = re.compile(r"^v?(add|sub|mul|div|min|max|sqrt|fn?m(add|sub)\d{3})ps$")
BITS = {"x": 128, "y": 256, "z": 512}


def widest(asm):
    best = 0
    for line in asm.splitlines():
        code = line.split("#")[0].split()
        if code and PACKED_PS.match(code[0]):
            for letter in re.findall(r"%([xyz])mm\d+", " ".join(code[1:])):
                best = max(best, BITS[letter])
    return best


# --- 1-2 ------------------------------------------------------------------------------------


def test_broadcast_add_accepts_module_and_primfunc():
    checks.check_broadcast_add(broadcast_add)
    checks.check_broadcast_add(lambda m, n: broadcast_add(m, n)["main"])


def test_broadcast_add_rejects_b_indexed_by_row():
    rejects(checks.check_broadcast_add,
            lambda m, n: broadcast_add(m, n, index_b_by_row=True),
            expect=r"m=7, n=13.*C")


def test_broadcast_add_rejects_loop_that_stops_early_and_hard_coded_sizes():
    rejects(checks.check_broadcast_add, lambda m, n: broadcast_add(m, n, stop_early=True),
            expect=r"never written.*NaN")
    rejects(checks.check_broadcast_add, lambda m, n: broadcast_add(7, 13),
            expect=r"m=1, n=1.*expected A \(1, 1\).*got \(7, 13\)")


def test_broadcast_add_rejects_other_block_name_and_learner_error():
    rejects(checks.check_broadcast_add, lambda m, n: broadcast_add(m, n, block="add"),
            expect=r"no block named 'C'")
    raises_cleanly(checks.check_broadcast_add, boom, expect=r"m=1, n=1")


def test_matmul_relu_accepts_reference():
    checks.check_matmul_relu(matmul_relu)


def test_matmul_relu_rejects_reduction_without_init():
    rejects(checks.check_matmul_relu, lambda m, n, k: matmul_relu(m, n, k, init=False),
            expect=r"no T.init\(\).*Hint: .*T.init")


@pytest.mark.parametrize("kinds", ["SSS", "RSS"])
def test_matmul_relu_rejects_wrong_iterator_kinds(kinds):
    rejects(checks.check_matmul_relu,
            lambda m, n, k: matmul_relu(m, n, k, kinds=kinds),
            expect=rf"iterators '{kinds}'.*Hint: ")


def test_matmul_relu_rejects_missing_relu():
    rejects(checks.check_matmul_relu, lambda m, n, k: matmul_relu(m, n, k, relu=False),
            expect=r"without the ReLU")


def test_matmul_relu_rejects_a_transposed_a_that_only_fits_square_sizes():
    # A declared (k, m): right shape only when m == k, as in the first case
    rejects(checks.check_matmul_relu,
            lambda m, n, k: matmul_relu(m, n, k, a_shape=(k, m)),
            expect=r"m=5, n=7, k=3.*expected A \(5, 3\)")


# --- 3-4 ------------------------------------------------------------------------------------


def test_schedule_add_accepts_reference_and_parallel_split_rows():
    checks.check_schedule_broadcast_add(schedule_add, broadcast_add)

    def rows_split(mod, lanes):
        sch = tvmkit.schedule(mod)
        i, j = sch.get_loops(sch.get_sblock("C"))
        io, ii = sch.split(i, factors=[2, None])
        _, ji = sch.split(j, factors=[None, lanes])
        sch.vectorize(ji)
        sch.parallel(io)
        return sch.mod

    checks.check_schedule_broadcast_add(rows_split, broadcast_add)


def test_schedule_add_rejects_unroll_instead_of_vectorize():
    rejects(checks.check_schedule_broadcast_add,
            lambda mod, lanes: schedule_add(mod, lanes, kind="unroll"),
            broadcast_add,
            expect=r"is unrolled.*Hint: sch.unroll")


def test_schedule_add_rejects_vectorizing_the_outer_loop():
    rejects(checks.check_schedule_broadcast_add,
            lambda mod, lanes: schedule_add(mod, lanes, which="outer"),
            broadcast_add,
            expect=r"not the innermost")


def test_schedule_add_rejects_missing_parallel_and_unchanged_module():
    rejects(checks.check_schedule_broadcast_add,
            lambda mod, lanes: schedule_add(mod, lanes, parallel=False),
            broadcast_add,
            expect=r"outermost loop.*serial, expected parallel")
    rejects(checks.check_schedule_broadcast_add,
            lambda mod, lanes: schedule_add(mod, lanes, give_back="old"),
            broadcast_add,
            expect=r"nothing is vectorized.*sch.mod")


def test_schedule_add_rejects_other_vector_width():
    rejects(checks.check_schedule_broadcast_add,
            lambda mod, lanes: schedule_add(mod, 4),
            broadcast_add,
            expect=r"extent 4, expected 8")


def test_schedule_mm_accepts_reference_and_unrolled_rows():
    checks.check_schedule_matmul_relu(schedule_mm, matmul_relu)
    checks.check_schedule_matmul_relu(
        lambda mod, tm, tn: schedule_mm(mod, tm, tn, unroll=True), matmul_relu)


def test_schedule_mm_rejects_missing_decomposition():
    rejects(checks.check_schedule_matmul_relu,
            lambda mod, tm, tn: schedule_mm(mod, tm, tn, decompose=False),
            matmul_relu, expect=r"no block 'matmul_update'.*decompose_reduction")


def test_schedule_mm_rejects_relu_left_outside_the_tiles():
    rejects(checks.check_schedule_matmul_relu,
            lambda mod, tm, tn: schedule_mm(mod, tm, tn, move_relu=False),
            matmul_relu, expect=r"shares 0 loop.*reverse_compute_at")


def test_schedule_mm_rejects_vectorizing_the_rows():
    rejects(checks.check_schedule_matmul_relu,
            lambda mod, tm, tn: schedule_mm(mod, tm, tn, vectorize="rows"),
            matmul_relu, expect=r"not the innermost|is serial")


def test_schedule_mm_learner_error_is_feedback():
    raises_cleanly(checks.check_schedule_matmul_relu, boom, matmul_relu,
                   expect=r"m=64, n=64, k=64")


# --- 5 -----------------------------------------------------------------------------------


def test_widest_accepts_reference_and_real_assembly():
    checks.check_widest_simd_register(widest)
    ex = tvmkit.build(schedule_add(broadcast_add(8, 64), 16))
    assert widest(tvmkit.assembly(ex)) >= 128


def test_widest_rejects_any_register_in_any_instruction():
    def any_register(asm):
        found = re.findall(r"%([xyz])mm", asm)
        return max((BITS[f] for f in found), default=0)

    rejects(checks.check_widest_simd_register, any_register,
            expect=r"scalar only.*expected int 0, got int 128.*packed single-precision")


def test_widest_rejects_counting_comments_and_doubles():
    def no_comment_strip(asm):
        return max((BITS[x] for line in asm.splitlines()
                    if re.search(r"v?(add|mul|fmadd\d+|max)p[sd]", line)
                    for x in re.findall(r"%([xyz])mm", line)), default=0)

    rejects(checks.check_widest_simd_register, no_comment_strip,
            expect=r"wide registers without packed float arithmetic")


def test_widest_rejects_wrong_type_and_learner_error():
    rejects(checks.check_widest_simd_register, lambda asm: "zmm",
            expect=r"width in bits.*Hint: return an int")
    raises_cleanly(checks.check_widest_simd_register, boom, expect=r"AVX-512 loop")
