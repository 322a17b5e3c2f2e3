"""Block F of tvmkit (the page "Graph level with Relax"): printing Relax and
TensorIR at page width, op patterns, TVM's default build pipeline and its
memory plan, kernels compiled and timed alone, a library run in a fresh
process."""

import shutil

import numpy as np
import pytest
import torch

from model2metal import onnxkit, tvmkit
from model2metal.models import load_course_model

X1 = torch.zeros(1, 1, 8, 8)


@pytest.fixture(scope="module")
def model():
    return load_course_model()


@pytest.fixture(scope="module")
def block_mod(model):
    block = torch.nn.Sequential(model.conv1, model.bn1, model.relu).eval()
    return tvmkit.relax_from_torch(block, (X1,))


@pytest.fixture(scope="module")
def legalized(block_mod):
    return tvmkit.apply_passes(block_mod, [
        "DecomposeOpsForInference", "FoldConstant", "CanonicalizeBindings",
        "DeadCodeElimination", "LegalizeOps", "AnnotateTIROpPattern"])


@pytest.fixture(scope="module")
def model_mod(model):
    return tvmkit.relax_from_torch(model, (X1,))


def test_relax_script_abbreviates_and_fits(block_mod):
    text = tvmkit.relax_script(block_mod, width=70)
    assert "meta[0]" in text and "metadata[" not in text
    assert ', dtype="float32"' not in text    # out_dtype=... stays
    assert "R.nn.batch_norm" in text
    assert max(len(line) for line in text.splitlines()) <= 70
    assert not any(line.lstrip().startswith("#") for line in text.splitlines())


def test_relax_script_keep_filters_lines(block_mod):
    text = tvmkit.relax_script(block_mod, keep=("R.nn.relu",))
    assert "R.nn.relu" in text and "R.nn.conv2d" not in text


def test_tir_outline_keeps_loops_blocks_allocations(legalized):
    fused = tvmkit.apply_passes(legalized, ["FuseOps", "FuseTIR"])
    (name,) = tvmkit.relax_kernels(fused)
    outline = tvmkit.tir_outline(fused[name])
    assert 'T.sblock("conv2d_nchw")' in outline
    assert "T.grid(1, 16, 8, 8, 1, 3, 3)" in outline      # int64 shortened
    assert "alloc_buffer" in outline
    assert "T.reads" not in outline and "T.axis" not in outline
    assert outline.splitlines()[0].strip() == "def main(...):"


def test_op_patterns(legalized):
    kinds = tvmkit.op_patterns(legalized)
    assert kinds["conv2d"] == "out-EWise-fusable"
    assert {kinds[k] for k in ("subtract", "divide", "multiply", "add",
                               "relu")} == {"elementwise"}
    # after FuseTIR the attribute is gone
    fused = tvmkit.apply_passes(legalized, ["FuseOps", "FuseTIR"])
    assert set(tvmkit.op_patterns(fused).values()) == {"-"}


def test_relax_from_onnx_static_and_symbolic():
    static = tvmkit.relax_from_onnx(onnxkit.COURSE_ONNX,
                                    shapes={"images": (1, 1, 8, 8)})
    ops = tvmkit.relax_ops(static)
    assert ops["nn.conv2d"] == 3 and "nn.batch_norm" not in ops
    assert tvmkit.relax_signature(static)[0][0] == (1, 1, 8, 8)
    symbolic = tvmkit.relax_from_onnx(onnxkit.COURSE_ONNX)
    assert tvmkit.relax_signature(symbolic)[0][0] == ("batch", 1, 8, 8)


def test_default_build_passes_are_tvm_compiles_pipeline(model_mod):
    # if TVM changes its default pipeline, DEFAULT_BUILD_PASSES is stale
    from tvm import relax

    target = tvmkit.generic_target()
    with target:
        expected = relax.get_pipeline("default")(model_mod)
    tvmkit.tvm.ir.assert_structural_equal(
        tvmkit.relax_lower(model_mod, target), expected)


def test_relax_lower_upto_and_skip(model_mod):
    legal = tvmkit.relax_lower(model_mod, upto="LegalizeOps")
    assert set(tvmkit.relax_ops(legal)) <= {"call_tir", "Tuple",
                                            "TupleGetItem", "Var"}
    assert tvmkit.relax_memory(legal)["storages"] == 0
    planned = tvmkit.relax_memory(tvmkit.relax_lower(model_mod))
    unplanned = tvmkit.relax_memory(tvmkit.relax_lower(
        model_mod, skip=("StaticPlanBlockMemory",)))
    assert planned["tensors"] == unplanned["tensors"] > 0
    assert unplanned["storages"] == unplanned["tensors"]   # one each
    assert 0 < planned["storages"] < unplanned["storages"]
    assert 0 < planned["storage bytes"] < unplanned["storage bytes"]


def test_kernel_calls_shapes_including_tuple_outputs(model_mod):
    calls = tvmkit.kernel_calls(tvmkit.relax_lower(model_mod,
                                                   upto="LegalizeOps"))
    assert calls["conv2d"] == [(1, 1, 8, 8), (16, 1, 3, 3), (1, 16, 8, 8)]
    # batch norm (not decomposed) returns a tuple: output, mean, variance
    assert calls["batch_norm"][-3:] == [(1, 16, 8, 8), (16,), (16,)]


def test_time_kernels_and_build_kernel(legalized):
    times = tvmkit.time_kernels(legalized, tvmkit.generic_target(),
                                repeat=3, min_repeat_ms=1)
    assert set(times) == set(tvmkit.kernel_calls(legalized))
    assert all(t.median > 0 for t in times.values())
    ex = tvmkit.build_kernel(legalized, "relu", tvmkit.generic_target())
    x = np.linspace(-1, 1, 16 * 64, dtype=np.float32).reshape(1, 16, 8, 8)
    out = tvmkit.empty((1, 16, 8, 8))
    ex["relu"](tvmkit.tensor(x), out)
    np.testing.assert_array_equal(out.numpy(), np.maximum(x, 0))


def test_cpu_has():
    generic = tvmkit.generic_target()
    assert tvmkit.cpu_has("avx512f", generic) is False
    assert tvmkit.cpu_has("no-such-feature") is False
    if tvmkit.cpu_has("sse2", generic):               # x86-64
        assert tvmkit.cpu_has("fma", tvmkit.with_llvm_options(
            generic, mattr=["+fma"])) is True


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                    reason="export_library needs a C++ compiler")
def test_run_library_fresh_without_torch(model, model_mod, tmp_path):
    path = tmp_path / "m.so"
    tvmkit.relax_export(tvmkit.build(model_mod, tvmkit.generic_target()),
                        path)
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8),
                                                  dtype=np.float32)
    result = tvmkit.run_library_fresh(path, x)
    assert "tvm" in result["modules"]
    assert "torch" not in result["modules"]
    assert "model2metal" not in result["modules"]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(result["output"], expected, atol=1e-4)


def test_run_library_fresh_reports_failure(tmp_path):
    bad = tmp_path / "not_a_library.so"
    bad.write_bytes(b"nothing")
    with pytest.raises(RuntimeError, match="fresh process failed"):
        tvmkit.run_library_fresh(bad, np.zeros((1, 1, 8, 8), np.float32))
