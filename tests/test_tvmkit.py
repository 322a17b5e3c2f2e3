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


def test_target_summary_is_one_short_line():
    summary = tvmkit.target_summary(tvmkit.Target({"kind": "llvm", "mcpu": "znver4"}))
    assert summary.startswith("llvm, mcpu=znver4") and len(summary) <= 76
    assert tvmkit.target_summary(tvmkit.Target("llvm")).split(",")[0] == "llvm"


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


# --- the chapter 4 additions ------------------------------------------------------------


matmul = tvmkit.matmul_module


def test_simd_lanes_and_registers_of_the_generic_target():
    # the generic x86-64 target may assume SSE2 only, whatever this CPU has
    import platform

    generic = tvmkit.generic_target()
    if platform.machine() in ("x86_64", "AMD64"):
        assert tvmkit.simd_lanes(generic) == 4
        assert tvmkit.vector_registers(generic) == 16
    host = tvmkit.host_target()
    assert tvmkit.simd_lanes(host) >= tvmkit.simd_lanes(generic)
    assert tvmkit.simd_lanes(host, bits=64) == tvmkit.simd_lanes(host) // 2


def test_block_introspection_before_and_after_a_schedule():
    mod = matmul(32, 48, 16)
    assert tvmkit.block_names(mod) == ["C"]
    assert tvmkit.block_iter_types(mod, "C") == "SSR"
    assert tvmkit.block_has_init(mod, "C")
    assert tvmkit.block_loops(mod, "C") == [("serial", 32), ("serial", 48),
                                            ("serial", 16)]
    sch = tvmkit.schedule(mod)
    block = sch.get_sblock("C")
    i, j, k = sch.get_loops(block)
    jo, ji = sch.split(j, factors=[None, 16])
    sch.reorder(i, jo, k, ji)
    sch.vectorize(ji)
    sch.parallel(i)
    local = sch.cache_write(block, 0, "local")
    sch.reverse_compute_at(local, jo)
    sch.decompose_reduction(block, k)
    assert tvmkit.block_names(sch) == ["C_init", "C_update", "C_local"]
    assert tvmkit.block_loops(sch, "C_update") == [
        ("parallel", 32), ("serial", 3), ("serial", 16), ("vectorized", 16)]
    assert not tvmkit.block_has_init(sch, "C_update")
    assert tvmkit.shared_loops(sch, "C_update", "C_local") == 2
    assert tvmkit.allocated_buffers(sch) == {"C_local": ((32, 48), "local")}


def test_tir_lines_fit_the_page():
    text = tvmkit.tir_lines(matmul(100, 100, 100), width=60)
    assert "T.sblock(\"C\")" in text and "from tvm.script" not in text
    assert max(len(line) for line in text.splitlines()) <= 60


def test_relax_import_stages_export_and_reload(tmp_path):
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).eval()
    x = torch.randn(2, 8)
    mod = tvmkit.relax_from_torch(model, (x,))
    assert sum(tvmkit.relax_ops(mod).values()) >= 2
    stages = tvmkit.relax_stages(mod)
    assert [s for s, _, _ in stages][-1] == "fused"
    assert tvmkit.relax_kernels(stages[0][2]) == []
    fused = stages[-1][2]
    assert 1 <= len(tvmkit.relax_kernels(fused)) <= 2
    ex = tvmkit.build(fused)
    size = tvmkit.relax_export(ex, tmp_path / "model.so")
    assert size > 0
    vm = tvmkit.relax_vm(tmp_path / "model.so")
    got = vm["main"](tvmkit.tensor(x.numpy())).numpy()
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
