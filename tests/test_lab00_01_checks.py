"""Lab 00_01's checks reject typical mistakes and accept other correct solutions.

Each wrong implementation is a mistake a learner really makes; the test also asserts
that the message points at the problem (the case and a useful hint), not only that it
fails. A wrong implementation that a case added for issue 9 rejects says in a comment
why it passed the cases before.
"""

import math
import re

from model2metal import device

device.select_cuda_backend()  # before numba is imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from check_helpers import boom, raises_cleanly, rejects
from numba import cuda, njit  # noqa: E402

from model2metal import tvmkit  # noqa: E402
from model2metal.checks import CheckFailed  # noqa: E402
from model2metal.checks import lab00_01 as checks  # noqa: E402
from model2metal.checks.tvm_common import x86_packed_arith  # noqa: E402

T = tvmkit.T




# --- NumPy ----------------------------------------------------------------------------


def test_pairwise_accepts_expansion_with_clamp():
    def by_expansion(A, B):
        sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
        return np.maximum(sq, 0)

    checks.check_pairwise_sq_dists(by_expansion)


def test_pairwise_accepts_squared_norm_of_broadcast_difference():
    checks.check_pairwise_sq_dists(
        lambda A, B: np.square(np.linalg.norm(A[:, None] - B[None], axis=-1)).astype(
            A.dtype
        )
    )


def loop_over_b(A, B):  # one Python loop: np.stack of an empty list raises
    return np.stack([((A - b) ** 2).sum(axis=1) for b in B], axis=1)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda A, B: ((A[:, None] - B[None]) ** 2).sum(0),
            r"expected shape \(5, 4\).*feature axis",
        ),
        (
            lambda A, B: np.sqrt(((A[:, None] - B[None]) ** 2).sum(-1)),
            r"values differ.*distances, not their squares",
        ),
        (
            lambda A, B: (A * A).sum(1)[:, None] + (B * B).sum(1)[None] - 2 * A @ B.T,
            r">= 0.*clamp",
        ),
        (
            lambda A, B: ((A[:, None] - B[None]) ** 2).sum(-1).astype(np.float64),
            r"float32 inputs.*expected dtype float32",
        ),
        (  # the transpose: one row per point of B
            lambda A, B: ((B[:, None] - A[None]) ** 2).sum(-1),
            r"5x3 against 4x3.*expected shape \(5, 4\), got shape \(4, 5\).*transposed",
        ),
        (  # a list of rows: the lab's next cell calls D.argmin(axis=1)
            lambda A, B: [list(r) for r in ((A[:, None] - B[None]) ** 2).sum(-1)],
            r"expected a numpy.ndarray, got list",
        ),
        (  # passed before: every earlier case has points in B
            loop_over_b,
            r"no points in B.*raised ValueError.*need at least one array",
        ),
    ],
)
def test_pairwise_rejects(wrong, expect):
    rejects(checks.check_pairwise_sq_dists, wrong, expect=expect)


def test_pairwise_learner_error():
    raises_cleanly(checks.check_pairwise_sq_dists, boom, expect=r"input: ndarray")


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

    raises_cleanly(
        checks.check_gradient,
        no_requires_grad,
        expect=r"raised RuntimeError.*\n.*input.*\n.*line.*\n.*requires_grad=True",
    )


def test_gradient_rejects_tensor_result():
    def returns_tensor(f, x):
        t = torch.tensor(x, requires_grad=True)
        f(t).backward()
        return t.grad

    rejects(
        checks.check_gradient,
        returns_tensor,
        expect=r"expected a numpy.ndarray, got torch.Tensor.*NumPy array.*\.numpy\(\)",
    )


def test_gradient_rejects_float32_gradient_by_its_dtype():
    def in_float32(f, x):  # raised on the quadratic form before, with a torch error
        t = torch.tensor(x, dtype=torch.float32, requires_grad=True)
        f(t).backward()
        return t.grad.numpy()

    rejects(
        checks.check_gradient,
        in_float32,
        expect=r"sum of squares.*expected dtype float64, got dtype float32",
    )


def test_gradient_rejects_accumulated_gradients():
    def backward_twice(f, x):  # .grad accumulates: the second backward adds to it
        t = torch.tensor(x, requires_grad=True)
        f(t).backward()
        f(t).backward()
        return t.grad.numpy()

    rejects(
        checks.check_gradient,
        backward_twice,
        expect=r"sum of squares.*values differ.*2 times too large.*once",
    )


def test_gradient_rejects_input_changed_in_place():
    def shares_and_zeroes(f, x):
        t = torch.from_numpy(x).requires_grad_()
        f(t).backward()
        g = t.grad.numpy().copy()
        x[...] = 0  # "clean up": the caller's x is gone
        return g

    rejects(
        checks.check_gradient, shares_and_zeroes, expect=r"changed its input `x`"
    )


def test_gradient_learner_error():
    raises_cleanly(checks.check_gradient, boom, expect=r"input: function <lambda>")


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


def scale_x_in_place(a, x, y, out):  # out is right, the caller's x is not
    x *= a
    np.add(x, y, out=out)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda a, x, y, out: a * x + y, r"out was not written.*returned a value"),
        (
            lambda a, x, y, out: np.copyto(out, a * (x + y)),
            r"values differ.*a \* \(x \+ y\)",
        ),
        (lambda a, x, y, out: np.copyto(out, x + a * y), r"values differ.*not y"),
        (lambda a, x, y, out: np.copyto(out[:-1], (a * x + y)[:-1]), r"NaN"),
        (scale_x_in_place, r"changed its input `x` in place.*only out is written"),
    ],
)
def test_saxpy_rejects(wrong, expect):
    rejects(checks.check_saxpy, wrong, expect=expect)


def test_saxpy_learner_error():
    raises_cleanly(checks.check_saxpy, boom, expect=r"input: numpy.float32 2.5")


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
    checks.check_packed_float_ops(lambda asm: frozenset(by_tokens(asm)))


def first_words(asm):
    for line in asm.splitlines():
        words = re.split(r"[#;]", line)[0].split()
        if words and not words[0].endswith(":"):
            yield words[0]


def few_operations(asm):  # add, mul, sqrt, fmadd: every form the old cases held
    pattern = re.compile(r"v?(add|mul|sqrt|fmadd\d{3})p[sd]")
    return {w for w in first_words(asm) if pattern.fullmatch(w)}


def plain_fmadd_only(asm):  # the negated and subtracting fused forms are missing
    pattern = re.compile(r"v?(add|sub|mul|div|min|max|sqrt|fmadd\d{3})p[sd]")
    return {w for w in first_words(asm) if pattern.fullmatch(w)}


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda asm: {w for w in asm.split() if w.endswith("ps")},
            r"scalar code.*not packed float arithmetic: \[.*'vxorps'.*not one of",
        ),
        (
            lambda asm: set(re.findall(r"v?(?:add|mul|sqrt|fmadd\d+)p[sd]", asm)),
            r"comments.*'vaddps' is in the text, but not as the first word",
        ),
        (lambda asm: "vaddps" in asm, r"expected a set or a frozenset, got a bool: False"),
        (
            lambda asm: sorted(few_operations(asm)),
            r"expected a set or a frozenset, got a list: \[",
        ),
        (
            lambda asm: set(re.findall(r"(v?(add|mul|sqrt|fmadd\d+)p[sd])", asm)),
            r"set holding tuple.*groups",
        ),
        (  # passed before: no earlier case holds sub, div, min or max
            few_operations,
            r"sub, div, min, max.*missing: \['minps', 'vdivpd'.*'minps' is missing",
        ),
        (  # passed before: no earlier case holds fnmadd, fmsub or fnmsub
            plain_fmadd_only,
            r"negated fused forms.*missing: \['vfmsub132pd', 'vfnmadd231ps', "
            r"'vfnmsub213ps'\].*fnmadd",
        ),
        (  # packed suffix without the arithmetic list: counts vcvtdq2ps and vandnps
            lambda asm: {w for w in first_words(asm) if w.endswith(("ps", "pd"))},
            r"not packed float arithmetic: \[.*\]",
        ),
    ],
)
def test_packed_ops_rejects(wrong, expect):
    rejects(checks.check_packed_float_ops, wrong, expect=expect)


def test_packed_ops_learner_error():
    raises_cleanly(checks.check_packed_float_ops, boom, expect=r"input: 'saxpy_scalar")


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
    assert x86_packed_arith(asm) & {
        "vaddps",
        "vmulps",
        "addps",
        "mulps",
        "vfmadd213ps",
        "vfmadd231ps",
    }
    with pytest.raises(CheckFailed, match="the assembly you passed in"):
        checks.check_packed_float_ops(
            lambda text: x86_packed_arith(text) if text != asm else set(), asm
        )


# --- Numba CUDA -----------------------------------------------------------------------


def test_blocks_for_accepts_math_ceil_and_remainder():
    checks.check_blocks_for(lambda n, tpb: math.ceil(n / tpb))
    checks.check_blocks_for(lambda n, tpb: n // tpb + (n % tpb > 0))


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda n, tpb: n // tpb, r"n=1,.*expected int 1, got int 0.*rounded down"),
        (
            lambda n, tpb: n // tpb + 1,
            r"n=128,.*expected int 1, got int 2.*one block too many",
        ),
        (lambda n, tpb: n / tpb, r"expected an int, got float.*//"),
        (lambda n, tpb: np.ceil(n / tpb), r"got numpy.float64.*//"),
        (lambda n, tpb: np.int64(-(-n // tpb)), r"got numpy.int64.*int\(x\)"),
        (  # passed before: every earlier block size was a power of two
            lambda n, tpb: (n + tpb - 1) >> (tpb.bit_length() - 1),
            r"threads_per_block=96.*expected int 11, got int 17",
        ),
    ],
)
def test_blocks_for_rejects(wrong, expect):
    rejects(checks.check_blocks_for, wrong, expect=expect)


def test_blocks_for_learner_error():
    raises_cleanly(checks.check_blocks_for, boom, expect=r"input: int 1, int 128")


def test_kernel_accepts_grid_stride_loop():
    def make():
        @cuda.jit
        def add(a, b, out):
            start, stride = cuda.grid(1), cuda.gridsize(1)
            for i in range(start, out.shape[0], stride):
                out[i] = a[i] + b[i]

        return add

    checks.check_vector_add_kernel(make)


def test_kernel_accepts_explicit_index():
    def make():
        @cuda.jit
        def add(a, b, out):
            i = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
            if i < a.shape[0]:
                out[i] = b[i] + a[i]

        return add

    checks.check_vector_add_kernel(make)


def test_kernel_rejects_missing_bounds_guard():
    def make():
        @cuda.jit
        def add(a, b, out):
            i = cuda.grid(1)
            out[i] = a[i] + b[i]

        return add

    raises_cleanly(
        checks.check_vector_add_kernel,
        make,
        expect=r"n=1,.*IndexError.*\n.*line.*out\[i\].*\n.*thread \d+ has no element"
        r".*\[1, 128\] starts 128 threads for 1 elements",
    )


def test_kernel_rejects_wrong_index_of_a_thread_with_an_element():
    def make():
        @cuda.jit
        def add(a, b, out):
            i = cuda.grid(1)
            if i < out.size:
                out[i] = a[i + 1] + b[i]  # off by one

        return add

    raises_cleanly(
        checks.check_vector_add_kernel,
        make,
        expect=r"n=1,.*IndexError.*thread 0 has an element \(n = 1\)",
    )


def test_kernel_rejects_thread_index_without_block():
    def make():
        @cuda.jit
        def add(a, b, out):
            i = cuda.threadIdx.x
            if i < out.size:
                out[i] = a[i] + b[i]

        return add

    rejects(
        checks.check_vector_add_kernel,
        make,
        expect=r"n=300.*NaN.*first 128 elements.*cuda.grid\(1\)",
    )


def test_kernel_rejects_hard_coded_block_size():
    # passed before: every launch had 128 threads per block
    def make():
        @cuda.jit
        def add(a, b, out):
            i = cuda.blockIdx.x * 128 + cuda.threadIdx.x
            if i < out.size:
                out[i] = a[i] + b[i]

        return add

    rejects(
        checks.check_vector_add_kernel,
        make,
        expect=r"n=300, 32 threads per block.*NaN.*with 32 threads per block \d+ of "
        r"300 elements were never written.*launched one",
    )


def test_kernel_rejects_writing_into_an_input():
    # passed before: out was right and only out was compared
    def make():
        @cuda.jit
        def add(a, b, out):
            i = cuda.grid(1)
            if i < out.size:
                a[i] += b[i]
                out[i] = a[i]

        return add

    rejects(
        checks.check_vector_add_kernel,
        make,
        expect=r"n=1, 128.*changed its input `a` in place.*only read",
    )


def test_kernel_rejects_unjitted_function():
    def make():
        def add(a, b, out):
            out[:] = a + b

        return add

    rejects(
        checks.check_vector_add_kernel, make, expect=r"expected a CUDA kernel.*cuda.jit"
    )


def test_kernel_learner_error_in_the_maker():
    raises_cleanly(
        checks.check_vector_add_kernel, boom, expect=r"make the kernel.*boom\(\)"
    )


# --- TVM ------------------------------------------------------------------------------


def make_add(n, op="add", extent=None, block="C", length=None, write_a=False):
    m = n if extent is None else extent
    size = n if length is None else length

    @T.prim_func(s_tir=True)
    def add(
        A: T.Buffer((size,), "float32"),
        B: T.Buffer((size,), "float32"),
        C: T.Buffer((size,), "float32"),
    ):
        T.func_attr(tvmkit.NOALIAS)
        for i in range(m):
            with T.sblock(block):
                vi = T.axis.spatial(m, i)
                if op == "add":
                    C[vi] = A[vi] + B[vi]
                else:
                    C[vi] = A[vi] - B[vi]

    @T.prim_func(s_tir=True)
    def add_into_a(
        A: T.Buffer((size,), "float32"),
        B: T.Buffer((size,), "float32"),
        C: T.Buffer((size,), "float32"),
    ):
        T.func_attr(tvmkit.NOALIAS)
        for i in range(m):
            with T.sblock(block):
                vi = T.axis.spatial(m, i)
                A[vi] = A[vi] + B[vi]
                C[vi] = A[vi]

    return add_into_a if write_a else add  # a PrimFunc is accepted like an IRModule


def test_tvm_add_accepts_primfunc_and_module():
    checks.check_tvm_vector_add(make_add)
    checks.check_tvm_vector_add(lambda n: tvmkit.tvm.IRModule({"main": make_add(n)}))


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


def test_tvm_add_rejects_hard_coded_length():
    rejects(
        checks.check_tvm_vector_add,
        lambda n: make_add(256),
        expect=r"n=1.*expected three of shape \(1,\).*got \(256,\) float32.*another n",
    )


def test_tvm_add_rejects_block_with_another_name():
    # passed before; exercise 8's schedule then fails to find block "C"
    rejects(
        checks.check_tvm_vector_add,
        lambda n: make_add(n, block="add"),
        expect=r"no block named \"C\"",
    )


def test_tvm_add_rejects_writing_into_an_input():
    # passed before: C was right and only C was compared
    rejects(
        checks.check_tvm_vector_add,
        lambda n: make_add(n, write_a=True),
        expect=r"n=256.*changed its input buffer `A` in place",
    )


def test_tvm_add_learner_error():
    raises_cleanly(checks.check_tvm_vector_add, boom, expect=r"n=256.*input: int 256")


def vectorize_ok(mod):
    sch = tvmkit.schedule(mod)
    (loop,) = sch.get_loops(sch.get_sblock("C"))
    sch.vectorize(loop)
    return sch.mod


def test_vectorize_accepts_split_then_vectorize():
    def split_vectorize(mod):
        sch = tvmkit.schedule(mod)
        (loop,) = sch.get_loops(sch.get_sblock("C"))
        _, inner = sch.split(loop, factors=[None, 8])
        sch.vectorize(inner)
        return sch.mod

    checks.check_vectorize(split_vectorize, make_add)
    checks.check_vectorize(vectorize_ok, make_add)


def test_vectorize_rejects_no_vectorize_and_parallel_only():
    rejects(
        checks.check_vectorize,
        lambda mod: mod,
        make_add,
        expect=r"no vectorized loop.*unchanged.*sch.mod",
    )

    def parallel(mod):
        sch = tvmkit.schedule(mod)
        (loop,) = sch.get_loops(sch.get_sblock("C"))
        sch.parallel(loop)
        return sch.mod

    rejects(checks.check_vectorize, parallel, make_add, expect=r"T.parallel")


def test_vectorize_rejects_a_module_other_than_its_argument():
    # passed before, when the only size was the lab's 256: the lab has a global
    # `mod = make_vector_add(256)`, and a typo uses it instead of the argument
    global_mod = make_add(256)

    rejects(
        checks.check_vectorize,
        lambda mod: vectorize_ok(global_mod),
        make_add,
        expect=r"n=1000, vectorized.*got \(256,\) float32.*module you were given",
    )


def test_vectorize_learner_errors():
    raises_cleanly(checks.check_vectorize, boom, make_add, expect=r"n=256.*IRModule")
    raises_cleanly(
        checks.check_vectorize, vectorize_ok, boom, expect=r"n=256.*input: int 256"
    )


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
            lambda ir: sorted({int(n) for n in re.findall(r"<(\d+) x", ir)}),
            r"other element types.*width 2 is not the N of a <N x float>",
        ),
        (
            lambda ir: [int(n) for n in re.findall(r"<(\d+) x float>", ir)],
            r"repeats.*repeated or out of order",
        ),
        (
            lambda ir: {int(n) for n in re.findall(r"<(\d+) x float>", ir)},
            r"expected a list, got a set: \{8\}",
        ),
        (
            lambda ir: sorted(set(re.findall(r"<(\d+) x float>", ir))),
            r"list of Python ints, got one holding '8'.*int\(\)",
        ),
        (  # passed before: no earlier case has an array type [N x float]
            lambda ir: sorted({int(n) for n in re.findall(r"(\d+) x float", ir)}),
            r"array types next to vector types.*width 16 is not.*\[N x float\] arrays",
        ),
    ],
)
def test_vector_widths_rejects(wrong, expect):
    rejects(checks.check_vector_widths, wrong, expect=expect)


def test_vector_widths_compares_the_real_ir_with_the_reference():
    # passed before: on the real IR only `256 in result` was asked
    ir = "%v = fadd <8 x float> %a, %b\n%w = fadd <256 x float> %c, %d"

    def drops_small_widths_of_long_text(text):
        found = sorted({int(n) for n in re.findall(r"<(\d+) x float>", text)})
        return [w for w in found if w > 8] if "%c, %d" in text else found

    rejects(
        checks.check_vector_widths,
        drops_small_widths_of_long_text,
        ir,
        256,
        expect=r"your vectorized module's LLVM IR.*expected \[8, 256\], got \[256\]",
    )


def test_vector_widths_with_real_ir_requires_the_width():
    ir = "%v = fadd <8 x float> %a, %b"
    rejects(
        checks.check_vector_widths,
        lambda text: sorted({int(n) for n in re.findall(r"<(\d+) x float>", text)}),
        ir,
        256,
        expect=r"expected width 256 among \[8\].*vectorized build",
    )


def test_vector_widths_learner_error():
    raises_cleanly(checks.check_vector_widths, boom, expect=r"input: '%5 = fadd")


# --- measuring ------------------------------------------------------------------------


def test_bandwidth_accepts_equivalent_formula():
    checks.check_bandwidth_gbs(lambda n, s, t: (n * s * 3) / (t * 1e9))
    checks.check_bandwidth_gbs(lambda n, s, t: np.float64(3 * n * s) / t * 1e-9)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda n, s, t: 2 * n * s / t / 1e9, r"expected 12, got 8.*2 arrays counted"),
        (lambda n, s, t: 3 * n * s / t / 2**30, r"GiB \(2\*\*30 bytes\)"),
        (lambda n, s, t: 3 * n * s / t, r"bytes per second"),
        (lambda n, s, t: 3 * n * 4 / t / 1e9, r"itemsize=8.*4 bytes per item assumed"),
        (lambda n, s, t: None, r"expected a float or a numpy.floating, got None"),
        (lambda n, s, t: math.inf, r"finite number"),
        (lambda n, s, t: f"{3 * n * s / t / 1e9:.1f} GB/s", r"got a str: '12.0 GB/s'"),
        (lambda n, s, t: 5 * n * s / t / 1e9, r"expected 12, got 20 \(abs error 8\)$"),
    ],
)
def test_bandwidth_rejects(wrong, expect):
    msg = rejects(checks.check_bandwidth_gbs, wrong, expect=expect)
    if "got 20" in msg:
        assert "Hint" not in msg  # no candidate matches: the observation alone


def test_bandwidth_learner_error():
    raises_cleanly(checks.check_bandwidth_gbs, boom, expect=r"input: int 1000000")
