"""Lab 00_01's checks reject typical mistakes and accept other correct solutions.

Each wrong implementation is a mistake a learner really makes; the test also asserts
that the message points at the problem (the case and a useful hint), not only that it
fails.
"""

import math
import re

from model2metal import device

device.select_cuda_backend()  # before numba is imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from numba import cuda, njit  # noqa: E402

from model2metal import tvmkit  # noqa: E402
from model2metal.checks import CheckFailed  # noqa: E402
from model2metal.checks import lab00_01 as checks  # noqa: E402

from check_helpers import rejects

T = tvmkit.T


# --- NumPy ----------------------------------------------------------------------------


def test_pairwise_accepts_expansion_with_clamp():
    def by_expansion(A, B):
        sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
        return np.maximum(sq, 0)

    checks.check_pairwise_sq_dists(by_expansion)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda A, B: ((A[:, None] - B[None]) ** 2).sum(0), r"expected shape \(5, 4\)"),
        (lambda A, B: np.sqrt(((A[:, None] - B[None]) ** 2).sum(-1)), r"values differ"),
        (
            lambda A, B: (A * A).sum(1)[:, None] + (B * B).sum(1)[None] - 2 * A @ B.T,
            r">= 0.*clamp",
        ),
        (
            lambda A, B: ((A[:, None] - B[None]) ** 2).sum(-1).astype(np.float64),
            r"float32 inputs.*expected dtype float32",
        ),
    ],
)
def test_pairwise_rejects(wrong, expect):
    rejects(checks.check_pairwise_sq_dists, wrong, expect=expect)


# --- PyTorch --------------------------------------------------------------------------


def test_gradient_accepts_autograd_grad():
    def via_autograd_grad(f, x):
        t = torch.from_numpy(x.copy()).requires_grad_()
        (g,) = torch.autograd.grad(f(t), t)
        return g.numpy()

    checks.check_gradient(via_autograd_grad)


def test_gradient_rejects_missing_requires_grad():
    def no_requires_grad(f, x):
        t = torch.tensor(x)
        f(t).backward()
        return t.grad.numpy()

    rejects(
        checks.check_gradient,
        no_requires_grad,
        expect=r"raised RuntimeError.*\n.*input.*\n.*line.*\n.*requires_grad=True",
    )


def test_gradient_rejects_tensor_result():
    def returns_tensor(f, x):
        t = torch.tensor(x, requires_grad=True)
        f(t).backward()
        return t.grad

    rejects(checks.check_gradient, returns_tensor, expect=r"NumPy array.*\.numpy\(\)")


def test_gradient_rejects_accumulated_gradients():
    def backward_twice(f, x):  # .grad accumulates: the second backward adds to it
        t = torch.tensor(x, requires_grad=True)
        f(t).backward()
        f(t).backward()
        return t.grad.numpy()

    rejects(
        checks.check_gradient, backward_twice, expect=r"sum of squares.*values differ"
    )


# --- Numba CPU ------------------------------------------------------------------------


def test_saxpy_accepts_plain_numpy_and_njit():
    def vectorised(a, x, y, out):
        np.multiply(x, a, out=out)
        out += y

    checks.check_saxpy(vectorised)

    @njit
    def loop(a, x, y, out):
        for i in range(len(out)):
            out[i] = y[i] + a * x[i]

    checks.check_saxpy(loop)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda a, x, y, out: a * x + y, r"out was not written.*returned a value"),
        (lambda a, x, y, out: np.copyto(out, a * (x + y)), r"values differ"),
        (lambda a, x, y, out: np.copyto(out[:-1], (a * x + y)[:-1]), r"NaN"),
    ],
)
def test_saxpy_rejects(wrong, expect):
    rejects(checks.check_saxpy, wrong, expect=expect)


def test_packed_ops_accepts_token_parser():
    wanted = {"add", "sub", "mul", "div", "min", "max", "sqrt"}

    def by_tokens(asm):
        found = set()
        for line in asm.splitlines():
            line = line.split("#")[0].split(";")[0].strip()
            if not line or line.endswith(":") or line.split()[0].endswith(":"):
                continue
            op = line.split()[0]
            core = op[1:] if op.startswith("v") else op
            if core[-2:] in ("ps", "pd") and (
                core[:-2] in wanted or re.fullmatch(r"fn?m(add|sub)\d+", core[:-2])
            ):
                found.add(op)
        return found

    checks.check_packed_float_ops(by_tokens)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda asm: {w for w in asm.split() if w.endswith("ps")},
            r"scalar code.*vxorps",
        ),
        (lambda asm: set(re.findall(r"v?(?:add|mul|fmadd\d+)p[sd]", asm)), r"comments"),
        (lambda asm: "vaddps" in asm, r"expected a set"),
    ],
)
def test_packed_ops_rejects(wrong, expect):
    rejects(checks.check_packed_float_ops, wrong, expect=expect)


def test_packed_ops_on_real_numba_assembly():
    @njit
    def saxpy(a, x, y, out):
        for i in range(x.shape[0]):
            out[i] = a * x[i] + y[i]

    saxpy(
        np.float32(1),
        np.ones(8, np.float32),
        np.ones(8, np.float32),
        np.empty(8, np.float32),
    )
    asm = next(iter(saxpy.inspect_asm().values()))
    # Numba's AT&T output has packed arithmetic, and the real text is checked as a case
    assert checks._x86_packed_arith(asm) & {
        "vaddps",
        "vmulps",
        "addps",
        "mulps",
        "vfmadd213ps",
        "vfmadd231ps",
    }
    with pytest.raises(CheckFailed, match="the assembly you passed in"):
        checks.check_packed_float_ops(
            lambda text: checks._x86_packed_arith(text) if text != asm else set(), asm
        )


# --- Numba CUDA -----------------------------------------------------------------------


def test_blocks_for_accepts_math_ceil():
    checks.check_blocks_for(lambda n, tpb: math.ceil(n / tpb))


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda n, tpb: n // tpb, r"n=1,.*expected int 1, got int 0.*round"),
        (lambda n, tpb: n // tpb + 1, r"n=128,.*expected int 1, got int 2"),
        (lambda n, tpb: n / tpb, r"expected an int.*//"),
    ],
)
def test_blocks_for_rejects(wrong, expect):
    rejects(checks.check_blocks_for, wrong, expect=expect)


def test_kernel_accepts_grid_stride_loop():
    def make():
        @cuda.jit
        def add(a, b, out):
            start, stride = cuda.grid(1), cuda.gridsize(1)
            for i in range(start, out.shape[0], stride):
                out[i] = a[i] + b[i]

        return add

    checks.check_vector_add_kernel(make)


def test_kernel_rejects_missing_bounds_guard():
    def make():
        @cuda.jit
        def add(a, b, out):
            i = cuda.grid(1)
            out[i] = a[i] + b[i]

        return add

    rejects(
        checks.check_vector_add_kernel,
        make,
        expect=r"n=1,.*IndexError.*\n.*line.*out\[i\].*\n.*if i < out.size",
    )


def test_kernel_rejects_thread_index_without_block():
    def make():
        @cuda.jit
        def add(a, b, out):
            i = cuda.threadIdx.x
            if i < out.size:
                out[i] = a[i] + b[i]

        return add

    rejects(checks.check_vector_add_kernel, make, expect=r"n=300.*NaN.*cuda.grid\(1\)")


def test_kernel_rejects_unjitted_function():
    def make():
        def add(a, b, out):
            out[:] = a + b

        return add

    rejects(
        checks.check_vector_add_kernel, make, expect=r"expected a CUDA kernel.*cuda.jit"
    )


# --- TVM ------------------------------------------------------------------------------


def make_add(n, op="add", extent=None):
    m = n if extent is None else extent

    @T.prim_func(s_tir=True)
    def add(
        A: T.Buffer((n,), "float32"),
        B: T.Buffer((n,), "float32"),
        C: T.Buffer((n,), "float32"),
    ):
        T.func_attr(tvmkit.NOALIAS)
        for i in range(m):
            with T.sblock("C"):
                vi = T.axis.spatial(m, i)
                if op == "add":
                    C[vi] = A[vi] + B[vi]
                else:
                    C[vi] = A[vi] - B[vi]

    return add  # a PrimFunc is accepted as well as an IRModule


def test_tvm_add_accepts_primfunc():
    checks.check_tvm_vector_add(make_add)


def test_tvm_add_rejects_wrong_op_and_wrong_return():
    rejects(
        checks.check_tvm_vector_add,
        lambda n: make_add(n, op="sub"),
        expect=r"n=256.*C: .*values differ",
    )
    rejects(
        checks.check_tvm_vector_add,
        lambda n: "not a module",
        expect=r"IRModule with a function 'main'",
    )


def test_tvm_add_rejects_loop_that_stops_early():
    def short(n):
        return make_add(n, extent=max(n - 1, 1))

    rejects(checks.check_tvm_vector_add, short, expect=r"n=256.*NaN.*index \(255,\)")


def test_vectorize_accepts_split_then_vectorize():
    def split_vectorize(mod):
        sch = tvmkit.schedule(mod)
        (loop,) = sch.get_loops(sch.get_sblock("C"))
        _, inner = sch.split(loop, factors=[None, 8])
        sch.vectorize(inner)
        return sch.mod

    checks.check_vectorize(split_vectorize, make_add)


def test_vectorize_rejects_no_vectorize_and_parallel_only():
    rejects(
        checks.check_vectorize, lambda mod: mod, make_add, expect=r"no vectorized loop"
    )

    def parallel(mod):
        sch = tvmkit.schedule(mod)
        (loop,) = sch.get_loops(sch.get_sblock("C"))
        sch.parallel(loop)
        return sch.mod

    rejects(checks.check_vectorize, parallel, make_add, expect=r"sch.vectorize")


def test_vector_widths_accepts_alternative_parser():
    def by_split(ir):
        out = set()
        for chunk in ir.split("<")[1:]:
            head = chunk.split(">")[0].split(" x ")
            if len(head) == 2 and head[0].isdigit() and head[1] == "float":
                out.add(int(head[0]))
        return sorted(out)

    checks.check_vector_widths(by_split)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda ir: sorted(set(re.findall(r"<(\d+) x", ir))),
            r"expected \[4, 16, 256\]",
        ),
        (lambda ir: [int(n) for n in re.findall(r"<(\d+) x float>", ir)], r"repeats"),
        (
            lambda ir: {int(n) for n in re.findall(r"<(\d+) x float>", ir)},
            r"expected a list",
        ),
        (
            lambda ir: sorted({int(n) for n in re.findall(r"<(\d+) x \w+>", ir)}),
            r"other element types",
        ),
    ],
)
def test_vector_widths_rejects(wrong, expect):
    rejects(checks.check_vector_widths, wrong, expect=expect)


def test_vector_widths_with_real_ir_requires_the_width():
    ir = "%v = fadd <8 x float> %a, %b"
    rejects(
        checks.check_vector_widths,
        lambda text: sorted({int(n) for n in re.findall(r"<(\d+) x float>", text)}),
        ir,
        256,
        expect=r"expected width 256 among \[8\]",
    )


# --- measuring ------------------------------------------------------------------------


def test_bandwidth_accepts_equivalent_formula():
    checks.check_bandwidth_gbs(lambda n, s, t: (n * s * 3) / (t * 1e9))


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda n, s, t: 2 * n * s / t / 1e9, r"expected 12, got 8.*3 arrays"),
        (lambda n, s, t: 3 * n * s / t / 2**30, r"1e9 bytes"),
        (lambda n, s, t: None, r"finite number"),
    ],
)
def test_bandwidth_rejects(wrong, expect):
    rejects(checks.check_bandwidth_gbs, wrong, expect=expect)
