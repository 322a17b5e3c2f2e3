"""Checks for lab 04_03 "Compile the course model".

Conventions the lab states and these checks hold it to:

* ``import_model(model, batch)`` returns the Relax ``IRModule`` of ``model`` whose
  ``main`` takes one float32 tensor of shape ``(batch, 1, 8, 8)`` and computes what
  the model computes.
* ``optimise(mod)`` returns a new module in which every operator of ``main`` is a
  call of a TensorIR kernel (``call_tir``), with at most :data:`MAX_KERNELS`
  kernels, batch norm folded into the convolutions (no kernel subtracts or divides
  by the batch-norm statistics), computing what ``mod`` computes.
* ``compile_and_export(mod, path)`` compiles ``mod`` for this CPU and writes a shared
  library to ``path`` that a fresh Python process with only TVM's runtime (no
  PyTorch, no course package) loads and runs.
* ``run_library(path, images)`` is deployment code: it loads the library at
  ``path`` and returns the logits for ``images`` (float32, ``(n, 1, 8, 8)``) as a
  NumPy array. Its source is run alone, in a fresh process where ``torch`` and
  ``model2metal`` cannot be imported.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import tempfile
import textwrap

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
    call_learner,
    describe,
    passed,
)

__all__ = [
    "MAX_KERNELS",
    "check_import_model",
    "check_optimise",
    "check_compile_and_export",
    "check_run_library",
    "fresh_process_run",
    "run_deployment_code",
]

#: Kernels the course model needs after fusion: one per convolution (with its
#: folded batch norm, bias and ReLU), one per max-pool, the flatten, the linear.
MAX_KERNELS = 7

_TOLERANCE = 1e-4


# ---------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------


@functools.cache
def _model():
    from ..models import load_course_model

    return load_course_model()


def _digits(batch: int) -> np.ndarray:
    """``batch`` real test digits, preprocessed as the model expects them."""
    from ..data import load_digits_split
    from ..models import preprocess

    _, x_test, _, _ = load_digits_split()
    return preprocess(x_test[:batch]).numpy()


def _pytorch(images: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return _model()(torch.from_numpy(images)).numpy()


@functools.cache
def _imported(batch: int):
    """The check's own Relax module of the course model (never the learner's)."""
    import torch

    from .. import tvmkit

    return tvmkit.relax_from_torch(_model(), (torch.zeros(batch, 1, 8, 8),))


@functools.cache
def _optimised(batch: int):
    """The check's module after the course's fusion stages."""
    from .. import tvmkit

    return tvmkit.relax_stages(_imported(batch))[-1][2]


@functools.cache
def _reference_library(batch: int) -> str:
    """A library the check built itself, for checking the deployment code."""
    from .. import tvmkit

    mod = _optimised(batch)
    folder = tempfile.mkdtemp(prefix="m2m_lab04_03_")
    path = os.path.join(folder, f"reference_b{batch}.so")
    tvmkit.relax_export(tvmkit.build(mod), path)
    return path


def _run_module(name: str, case: str, mod, images: np.ndarray) -> np.ndarray:
    from .. import tvmkit

    ex = call_learner(name, case, tvmkit.build, mod, label="tvmkit.build(mod)",
                      hint="the module should compile for this CPU as it is")
    vm = tvmkit.relax_vm(ex)
    return call_learner(name, case, tvmkit.relax_run, vm, images,
                        label="the compiled main",
                        hint="main takes one float32 tensor (n, 1, 8, 8)")


def _same_as_pytorch(name, case, got, images, hint=None) -> None:
    assert_array_close(got, _pytorch(images), name, case, rtol=_TOLERANCE,
                       atol=_TOLERANCE, what="logits", expect_type=np.ndarray,
                       hint=hint)


def _is_module(mod) -> bool:
    from .. import tvmkit

    return isinstance(mod, tvmkit.tvm.IRModule) and "main" in [
        gv.name_hint for gv in mod.get_global_vars()]


# ---------------------------------------------------------------------------
# 1. import
# ---------------------------------------------------------------------------


def check_import_model(import_model) -> None:
    from .. import tvmkit

    name = "check_import_model"
    batches = (1, 5)
    for batch in batches:
        case = f"batch={batch}"
        mod = call_learner(name, case, import_model, _model(), batch,
                           hint="model is the course model in eval mode; batch "
                           "is an int")
        assert_true(_is_module(mod), name, case,
                    f"expected a Relax IRModule with a function 'main', got "
                    f"{describe(mod)}",
                    "the TVM importer returns the IRModule: return it")
        signature = tvmkit.relax_signature(mod)
        want = [((batch, 1, 8, 8), "float32")]
        if signature != want:
            hint = "main accepts the shape of the example input it was exported with"
            if len(signature) != 1:
                hint = ("main should take only the images: the weights belong "
                        "inside the module as constants")
            raise CheckFailed(
                name, case,
                f"main takes {signature}, expected {want}", hint)
        images = _digits(batch)
        _same_as_pytorch(name, case, _run_module(name, case, mod, images), images)
    passed(name, len(batches))


# ---------------------------------------------------------------------------
# 2. the pass pipeline
# ---------------------------------------------------------------------------


def _kernel_problem(kernels: list[str]) -> tuple[str, str] | None:
    """What the kernel names of an optimised course model show went wrong."""
    if len(kernels) > MAX_KERNELS:
        listing = ", ".join(kernels)
        if not any(k.startswith("fused_") for k in kernels):
            return (f"{len(kernels)} kernels and none of them fused: {listing}",
                    "FuseOps groups kernels by the pattern kind "
                    "(element-wise, injective, reduction, ...) that "
                    "AnnotateTIROpPattern writes on each TensorIR function: it can "
                    "only run after the operators were lowered to TensorIR, and "
                    "after the annotation")
        if any("sqrt" in k for k in kernels):
            return (f"{len(kernels)} kernels, some of them work on constants "
                    f"only: {listing}",
                    "folding batch norm into the weights leaves arithmetic on "
                    "constants (a square root of the variance, a division): "
                    "evaluate it once, at compile time, not at every call")
        if any(k.split("_")[-1].rstrip("0123456789") == "relu" for k in kernels):
            return (f"{len(kernels)} kernels; the ReLUs stayed kernels of their "
                    f"own: {listing}",
                    "each ReLU reads its convolution's result through a tuple "
                    "item (batch norm returns a tuple): clean up the bindings, "
                    "or fold the batch norm away, before fusing")
        return (f"{len(kernels)} kernels, expected at most {MAX_KERNELS}: "
                f"{listing}",
                "one kernel per convolution (batch norm, bias and ReLU fused "
                "into it), per max-pool, the flatten and the linear layer")
    decomposed = [k for k in kernels if "divide" in k or "subtract" in k]
    if decomposed:
        return ("batch norm is still computed at run time, inside "
                + ", ".join(decomposed),
                "subtract-divide-multiply-add is batch norm turned into "
                "arithmetic; chapter 2 folded it into the convolution's weights "
                "and bias instead, once, before the graph runs — fold it before "
                "anything decomposes it")
    return None


def check_optimise(optimise) -> None:
    from .. import tvmkit

    name = "check_optimise"
    batches = (1, 3)
    for batch in batches:
        case = f"the course model, batch={batch}"
        mod = _imported(batch)
        before = mod.script()
        new = call_learner(name, case, optimise, mod,
                           hint="mod is a Relax IRModule; "
                           "tvmkit.apply_passes(mod, names) runs passes by name")
        assert_true(_is_module(new), name, case,
                    f"expected an IRModule with 'main', got {describe(new)}",
                    "return the module the last pass produced")
        assert_true(mod.script() == before, name, case,
                    "the module you were given changed",
                    "passes return a new module: work on that one")
        ops = tvmkit.relax_ops(new)
        left = {op: n for op, n in ops.items()
                if op not in ("call_tir", "Var", "Tuple", "TupleGetItem")}
        if left:
            calls = left.pop("Call", 0)
            if calls and not left:
                hint = ("the fused groups are still Relax functions: FuseTIR "
                        "turns each group into one TensorIR kernel")
            else:
                hint = ("LegalizeOps lowers each Relax operator to a TensorIR "
                        "kernel (call_tir); passes that expect kernels run "
                        "after it")
            raise CheckFailed(
                name, case,
                "main still has operators that are not kernel calls: "
                + ", ".join(f"{op}×{n}" for op, n in (left or {"Call": calls})
                            .items()),
                hint)
        problem = _kernel_problem(tvmkit.relax_kernels(new))
        if problem:
            raise CheckFailed(name, case, *problem)
        images = _digits(batch)
        _same_as_pytorch(name, case, _run_module(name, case, new, images), images)
    passed(name, len(batches),
           f"; {len(tvmkit.relax_kernels(new))} kernels")


# ---------------------------------------------------------------------------
# 3-4. the artefact and the deployment code, in a fresh process
# ---------------------------------------------------------------------------

def fresh_process_run(source: str, function: str, library: str,
                      images: np.ndarray):
    """``(result, error)`` of ``function(library, images)`` from ``source``,
    run in a fresh process that cannot import PyTorch or the course package
    (:func:`model2metal.tvmkit.fresh_process_call`): the NumPy result, or the
    type name of what came back, and None; or None and the error."""
    from .. import tvmkit

    done = tvmkit.fresh_process_call(source, function, library, images)
    if done.error is not None:
        stub = re.search(r"NotImplementedError: (lab\d\d_\d\d: .*)", done.error)
        if stub:  # not started yet: the stub's own message, as in the notebook
            raise NotImplementedError(stub.group(1))
        return None, done.error
    return (done.output if done.output is not None else done.returned_type,
            None)


def check_compile_and_export(compile_and_export) -> None:
    name = "check_compile_and_export"
    batch = 2
    case = f"the course model, optimised, batch={batch}"
    from .. import tvmkit

    mod = _optimised(batch)
    with tempfile.TemporaryDirectory(prefix="m2m_export_") as folder:
        path = os.path.join(folder, "digits_cnn.so")
        call_learner(name, case, compile_and_export, mod, path,
                     hint="mod is an optimised Relax module, path a str: build "
                     "for this CPU, then write the library to path")
        written = os.listdir(folder)
        assert_true(os.path.isfile(path), name, case,
                    f"no file at the path you were given ({path}); the folder "
                    f"holds {written or 'nothing'}",
                    "write the library exactly to `path`: the application "
                    "loads it from there")
        size = os.path.getsize(path)
        assert_true(size > 0, name, case, "the file at path is empty",
                    "the compiled Executable writes itself to a library file")
        images = _digits(batch)
        got, error = fresh_process_run(tvmkit.RUNTIME_ONLY_RUNNER, "run", path,
                                         images)
    if error is not None:
        raise CheckFailed(
            name, case,
            f"a fresh Python process (TVM's runtime, no PyTorch) could not load "
            f"and run the file ({size} bytes):\n{error}",
            "only a shared library that carries the kernels, the graph and the "
            "weights loads on its own: export the compiled Executable itself, "
            "not its source, an object file or a pickle")
    if isinstance(got, str):
        raise CheckFailed(name, case, f"main returned {got}, expected a tensor")
    _same_as_pytorch(name, case, got, images,
                     hint="the library computes something else: was it built "
                     "from the module you were given?")
    passed(name, None, "; loaded and run in a fresh process")


def _source_of(name: str, case: str, fn) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise CheckFailed(
            name, case,
            f"cannot read the source of {describe(fn)} ({type(exc).__name__})",
            "define run_library with `def` in a notebook cell: the check runs "
            "its source in a fresh process") from None


def run_deployment_code(fn, library: str, images: np.ndarray):
    """``(result, error)`` of a deployment function such as the lab's
    ``run_library``, its source run alone in a fresh process that cannot
    import PyTorch or the course package (see :func:`fresh_process_run`)."""
    source = _source_of("run_deployment_code", None, fn)
    return fresh_process_run(source, getattr(fn, "__name__", "run_library"),
                             library, images)


def check_run_library(run_library) -> None:
    name = "check_run_library"
    if not callable(run_library):
        raise CheckFailed(name, None, f"expected a function, got "
                          f"{describe(run_library)}",
                          "pass the function itself: check_run_library(run_library)")
    source = _source_of(name, None, run_library)
    function = getattr(run_library, "__name__", "run_library")
    cases = [(4, "4 digits"), (1, "1 digit")]
    for batch, label in cases:
        case = f"{label}, a library built for batch {batch}"
        images = _digits(batch)
        got, error = fresh_process_run(source, function,
                                       _reference_library(batch), images)
        if error is not None:
            hint = "run it in the notebook first: run_library(path, images)"
            if "halted; None in sys.modules" in error:
                hint = ("the deployed process has TVM's runtime and NumPy, not "
                        "PyTorch or the course package: load the library with "
                        "tvm itself")
            elif "NameError" in error:
                hint = ("the check runs only this function's source, in a "
                        "fresh Python: import what it uses (tvm, numpy) inside "
                        "it; notebook variables and helpers do not exist there")
            raise CheckFailed(
                name, case,
                "your run_library failed in a fresh process (no PyTorch, no "
                f"model2metal):\n{error}", hint)
        if isinstance(got, str):
            raise CheckFailed(
                name, case, f"run_library returned {got}, expected a NumPy array "
                "of logits (n, 10)",
                "the VM returns a TVM tensor: .numpy() turns it into an array")
        _same_as_pytorch(name, case, got, images)
    passed(name, len(cases), "; ran in a fresh process without PyTorch")
