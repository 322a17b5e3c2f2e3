"""Lab 04_03's checks reject imports for the wrong batch or with the weights as
inputs, pass pipelines that skip or misorder a step, libraries that do not load in a
fresh process, and deployment code that needs PyTorch, the course package or the
notebook; they accept other correct answers (another pipeline, another target,
another way to load the library)."""

import pickle

import torch
from check_helpers import boom, raises_cleanly, rejects

from model2metal import tvmkit
from model2metal.checks import lab04_03 as checks

# ---------------------------------------------------------------------------
# 1. import
# ---------------------------------------------------------------------------


def import_model(model, batch):
    return tvmkit.relax_from_torch(model, (torch.zeros(batch, 1, 8, 8),))


def import_batch_one(model, batch):
    return tvmkit.relax_from_torch(model, (torch.zeros(1, 1, 8, 8),))


def import_weights_as_inputs(model, batch):
    from tvm.relax.frontend.torch import from_exported_program

    program = torch.export.export(model, (torch.zeros(batch, 1, 8, 8),))
    return from_exported_program(program, keep_params_as_input=True,
                                 unwrap_unit_return_tuple=True)


def import_program_only(model, batch):
    return torch.export.export(model, (torch.zeros(batch, 1, 8, 8),))


def import_by_onnx(model, batch):
    import io

    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    from model2metal import onnxkit

    buffer = io.BytesIO()
    onnxkit.quietly(torch.onnx.export, model, (torch.zeros(batch, 1, 8, 8),),
                    buffer, input_names=["images"], dynamo=False)
    return from_onnx(onnx.load_from_string(buffer.getvalue()),
                     keep_params_in_input=False)


def test_import_accepts_torch_export():
    checks.check_import_model(import_model)


def test_import_accepts_onnx_frontend():
    checks.check_import_model(import_by_onnx)


def test_import_rejects_fixed_batch():
    rejects(checks.check_import_model, import_batch_one,
            expect=r"batch=5.*main takes \[\(\(1, 1, 8, 8\).*example input")


def test_import_rejects_weights_as_inputs():
    rejects(checks.check_import_model, import_weights_as_inputs,
            expect=r"main takes .*weights belong\s+inside the module")


def test_import_rejects_exported_program():
    rejects(checks.check_import_model, import_program_only,
            expect=r"expected a Relax IRModule.*ExportedProgram")


def test_import_reports_a_raising_function():
    raises_cleanly(checks.check_import_model, boom, expect="ZeroDivisionError")


# ---------------------------------------------------------------------------
# 2. the pass pipeline
# ---------------------------------------------------------------------------

GOOD = ["FoldBatchnormToConv2D", "FoldConstant", "DeadCodeElimination",
        "LegalizeOps", "AnnotateTIROpPattern", "FuseOps", "FuseTIR"]


def pipeline(names):
    def optimise(mod):
        return tvmkit.apply_passes(mod, names)

    return optimise


def without(*dropped):
    return pipeline([n for n in GOOD if n not in dropped])


def test_optimise_accepts_the_lab_pipeline():
    checks.check_optimise(pipeline(GOOD))


def test_optimise_accepts_canonicalised_pipeline():
    checks.check_optimise(pipeline(
        ["FoldBatchnormToConv2D", "CanonicalizeBindings", "DeadCodeElimination",
         "FoldConstant", "LegalizeOps", "AnnotateTIROpPattern", "FuseOps",
         "FuseTIR", "DeadCodeElimination"]))


def test_optimise_rejects_nothing_done():
    rejects(checks.check_optimise, pipeline([]),
            expect=r"not kernel calls: .*nn\.conv2d.*LegalizeOps lowers")


def test_optimise_rejects_no_annotation():
    rejects(checks.check_optimise, without("AnnotateTIROpPattern"),
            expect=r"none of them fused.*AnnotateTIROpPattern")


def test_optimise_rejects_fusion_before_lowering():
    rejects(checks.check_optimise, pipeline(
        ["FoldBatchnormToConv2D", "FoldConstant", "DeadCodeElimination",
         "AnnotateTIROpPattern", "FuseOps", "FuseTIR", "LegalizeOps"]),
        expect=r"none of them fused")


def test_optimise_rejects_missing_fuse_tir():
    rejects(checks.check_optimise, without("FuseTIR"),
            expect=r"Call×\d+.*FuseTIR")


def test_optimise_accepts_no_dead_code_pass():
    checks.check_optimise(without("DeadCodeElimination"))


def test_optimise_rejects_weights_folded_at_run_time():
    rejects(checks.check_optimise, without("FoldConstant"),
            expect=r"constants\s+only: .*sqrt.*compile time")


def test_optimise_rejects_unfused_relu():
    rejects(checks.check_optimise, pipeline(
        ["DecomposeOpsForInference", "FoldConstant", "LegalizeOps",
         "AnnotateTIROpPattern", "FuseOps", "FuseTIR", "DeadCodeElimination"]),
        expect=r"ReLUs stayed kernels.*tuple")


def test_optimise_rejects_batch_norm_decomposed_not_folded():
    rejects(checks.check_optimise, pipeline(
        ["DecomposeOpsForInference", "FoldConstant", "CanonicalizeBindings",
         "DeadCodeElimination", "LegalizeOps", "AnnotateTIROpPattern", "FuseOps",
         "FuseTIR"]),
        expect=r"batch norm is still computed.*divide.*fold it before")


def test_optimise_rejects_fold_after_decomposition():
    rejects(checks.check_optimise, pipeline(
        ["DecomposeOpsForInference", "FoldBatchnormToConv2D", "FoldConstant",
         "CanonicalizeBindings", "DeadCodeElimination", "LegalizeOps",
         "AnnotateTIROpPattern", "FuseOps", "FuseTIR"]),
        expect=r"batch norm is still computed")


def test_optimise_reports_a_raising_function():
    raises_cleanly(checks.check_optimise, boom, expect="ZeroDivisionError")


# ---------------------------------------------------------------------------
# 3. the library
# ---------------------------------------------------------------------------


def export(mod, path):
    tvmkit.relax_export(tvmkit.build(mod), path)


def export_generic(mod, path):
    tvmkit.relax_export(tvmkit.build(mod, tvmkit.generic_target()), path)


def export_elsewhere(mod, path):
    tvmkit.relax_export(tvmkit.build(mod), path + ".lib.so")


def export_object_file(mod, path):
    tvmkit.build(mod).mod.write_to_file(path)


def export_pickle(mod, path):
    with open(path, "wb") as f:
        pickle.dump(mod.script(), f)


def export_other_model(mod, path):
    tvmkit.relax_export(tvmkit.build(checks._imported(1)), path)


def test_export_accepts_host_and_generic_targets():
    checks.check_compile_and_export(export)
    checks.check_compile_and_export(export_generic)


def test_export_rejects_another_path():
    rejects(checks.check_compile_and_export, export_elsewhere,
            expect=r"no file at the path.*digits_cnn\.so\.lib\.so")


def test_export_rejects_object_file():
    rejects(checks.check_compile_and_export, export_object_file,
            expect=r"fresh Python process .* could not load.*shared library")


def test_export_rejects_pickle():
    rejects(checks.check_compile_and_export, export_pickle,
            expect=r"could not load")


def test_export_rejects_library_of_another_batch():
    rejects(checks.check_compile_and_export, export_other_model,
            expect=r"could not load and run")


def test_export_reports_a_raising_function():
    raises_cleanly(checks.check_compile_and_export, boom, expect="ZeroDivisionError")


# ---------------------------------------------------------------------------
# 4. the deployment code (these run in fresh processes, so they are defined at
#    module level, imports inside, as the lab asks)
# ---------------------------------------------------------------------------


def run_library(path, images):
    import numpy as np
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(np.ascontiguousarray(images))).numpy()


def run_library_in_chunks(path, images):
    import numpy
    import tvm

    module = tvm.runtime.load_module(path)
    machine = tvm.relax.VirtualMachine(module, tvm.cpu(0))
    out = machine["main"](tvm.runtime.tensor(numpy.asarray(images, "float32")))
    return numpy.array(out.numpy(), copy=True)


def run_library_with_course_package(path, images):
    from model2metal import tvmkit as kit

    return kit.relax_run(kit.relax_vm(path), images)


def run_library_with_torch(path, images):
    import numpy as np
    import torch
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu())
    x = torch.from_numpy(images)
    return np.asarray(vm["main"](tvm.runtime.tensor(x.numpy())).numpy())


def run_library_without_imports(path, images):
    vm = relax.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu())  # noqa: F821
    return vm["main"](tvm.runtime.tensor(images)).numpy()  # noqa: F821


def run_library_returns_tensor(path, images):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(images))


def run_library_raising(path, images):
    raise RuntimeError("library not found")


def test_run_library_accepts_two_ways():
    checks.check_run_library(run_library)
    checks.check_run_library(run_library_in_chunks)


def test_run_library_rejects_course_package():
    rejects(checks.check_run_library, run_library_with_course_package,
            expect=r"fresh process.*model2metal halted.*not\s+PyTorch or the course")


def test_run_library_rejects_torch():
    rejects(checks.check_run_library, run_library_with_torch,
            expect=r"torch halted.*not\s+PyTorch")


def test_run_library_rejects_notebook_names():
    rejects(checks.check_run_library, run_library_without_imports,
            expect=r"NameError: name 'relax'.*import what it uses")


def test_run_library_rejects_tvm_tensor():
    rejects(checks.check_run_library, run_library_returns_tensor,
            expect=r"returned tvm\S*Tensor.*\.numpy\(\)")


def test_run_library_reports_an_error_with_its_line():
    rejects(checks.check_run_library, run_library_raising,
            expect=r"RuntimeError: library not found\n\s+at: raise RuntimeError")


def test_run_library_rejects_a_lambda_cleanly():
    rejects(checks.check_run_library, lambda p, x: x, expect=r"expected|source|failed")


def run_library_stub(path, images):
    raise NotImplementedError("lab04_03: implement run_library()")


def test_run_library_stub_is_not_started_yet():
    import pytest

    with pytest.raises(NotImplementedError, match=r"^lab04_03: implement"):
        checks.check_run_library(run_library_stub)
