"""The thin TVM layer: every name the course uses exists in the pinned TVM and works."""

import os

import numpy as np

from model2metal import tvmkit

T = tvmkit.T


def scale_by_two(n):
    @T.prim_func(s_tir=True)
    def scale(A: T.Buffer((n,), "float32"), B: T.Buffer((n,), "float32")):
        T.func_attr(tvmkit.NOALIAS)
        for i in range(n):
            with T.sblock("B"):
                vi = T.axis.spatial(n, i)
                B[vi] = A[vi] * T.float32(2)

    return scale


def test_threads_are_set_before_tvm_starts():
    assert int(os.environ["TVM_NUM_THREADS"]) >= 1


def test_version_and_host_target(monkeypatch):
    monkeypatch.delenv("M2M_TVM_TARGET", raising=False)
    assert tvmkit.version().startswith("0.27")
    target = tvmkit.host_target()
    assert target.kind.name == "llvm"
    assert str(target.attrs["mcpu"]) not in ("", "generic")


def test_host_target_can_be_forced_to_generic(monkeypatch):
    # make test's foreign-CPU phase compiles as for another CPU this way
    monkeypatch.setenv("M2M_TVM_TARGET", "llvm")
    target = tvmkit.host_target()
    assert target.kind.name == "llvm" and "mcpu" not in target.attrs


def test_noalias_key_is_the_tirx_one():
    # "tir.noalias" is silently ignored by TVM 0.27 and makes GEMM 2-3x slower
    assert tvmkit.NOALIAS == {"tirx.noalias": True}
    assert '"tirx.noalias": True' in tvmkit.tir_text(scale_by_two(8))


def test_build_run_and_inspect():
    ex = tvmkit.build(scale_by_two(64))
    a = np.arange(64, dtype=np.float32)
    b = tvmkit.empty((64,), "float32")
    ex["main"](tvmkit.tensor(a), b)
    np.testing.assert_array_equal(b.numpy(), 2 * a)
    assert "define" in tvmkit.llvm_ir(ex)
    assert tvmkit.assembly(ex).strip()


def test_schedule_accepts_primfunc_and_text_shows_transform():
    sch = tvmkit.schedule(scale_by_two(64))
    (loop,) = sch.get_loops(sch.get_sblock("B"))
    outer, inner = sch.split(loop, factors=[None, 16])
    sch.vectorize(inner)
    text = tvmkit.tir_text(sch)
    assert "T.vectorized(16)" in text
    assert "<16 x float>" in tvmkit.llvm_ir(tvmkit.build(sch.mod))


def test_time_function_returns_a_course_timing_result():
    ex = tvmkit.build(scale_by_two(1024))
    a, b = tvmkit.tensor(np.ones(1024, np.float32)), tvmkit.empty((1024,))
    r = tvmkit.time_function(ex, a, b, name="scale", repeat=5)
    assert r.name == "scale" and len(r.samples) == 5 and r.median > 0
    assert "median" in str(r)
