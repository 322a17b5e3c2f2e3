"""Checks for lab 00_01 "Your toolchain": one exercise per tool of the course.

Every reference here is computed independently of the way the lab asks for it (explicit
loops, known closed-form gradients, hand-written IR snippets), so a check compares two
different routes to the same answer.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_equal,
    assert_true,
    call_learner,
    describe,
    passed,
)

__all__ = [
    "check_pairwise_sq_dists",
    "check_gradient",
    "check_saxpy",
    "check_packed_float_ops",
    "check_blocks_for",
    "check_vector_add_kernel",
    "check_tvm_vector_add",
    "check_vectorize",
    "check_vector_widths",
    "check_bandwidth_gbs",
]


# ---------------------------------------------------------------------------
# NumPy
# ---------------------------------------------------------------------------


def _sq_dists_by_loops(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    out = np.empty((A.shape[0], B.shape[0]), dtype=np.float64)
    for i in range(A.shape[0]):
        for j in range(B.shape[0]):
            d = A[i].astype(np.float64) - B[j].astype(np.float64)
            out[i, j] = float(d @ d)
    return out


def check_pairwise_sq_dists(fn) -> None:
    name = "check_pairwise_sq_dists"
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(4, 3))
    cases = {
        "5x3 against 4x3": (rng.normal(size=(5, 3)), rng.normal(size=(4, 3))),
        "one point each, 1-D features": (np.array([[2.0]]), np.array([[-1.0]])),
        "a set against itself": (pts, pts.copy()),
        "2x7 against 6x7": (rng.normal(size=(2, 7)), rng.uniform(-3, 3, size=(6, 7))),
        "float32 inputs": (
            rng.normal(size=(3, 4)).astype(np.float32),
            rng.normal(size=(5, 4)).astype(np.float32),
        ),
    }
    for case, (A, B) in cases.items():
        got = call_learner(name, case, fn, A.copy(), B.copy())
        expected = _sq_dists_by_loops(A, B).astype(A.dtype)
        tol = 1e-5 if A.dtype == np.float32 else 1e-9
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=tol,
            atol=tol,
            dtype="same",
            hint="D[i, j] = sum over k of (A[i, k] - B[j, k])**2; "
            "broadcast A[:, None, :] against B[None, :, :]",
        )
        assert_true(
            bool(np.all(np.asarray(got) >= 0)),
            name,
            case,
            f"squared distances must be >= 0, got minimum {np.min(got):.3g}",
            "the a² + b² - 2ab expansion can round below zero: clamp at 0",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# PyTorch autograd
# ---------------------------------------------------------------------------


def check_gradient(fn) -> None:
    import torch

    name = "check_gradient"
    rng = np.random.default_rng(2)
    W = rng.normal(size=(3, 3))
    W_t = torch.tensor(W)
    cases = [
        ("sum of squares", lambda t: (t**2).sum(), rng.normal(size=4), lambda x: 2 * x),
        (
            "log-sum-exp",
            lambda t: torch.logsumexp(t, dim=0),
            rng.normal(size=5),
            lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(),
        ),
        (
            "quadratic form x^T W x",
            lambda t: t @ W_t @ t,
            rng.normal(size=3),
            lambda x: (W + W.T) @ x,
        ),
        (
            "2-D input, sum of sin",
            lambda t: torch.sin(t).sum(),
            rng.normal(size=(2, 3)),
            np.cos,
        ),
        (
            "single element",
            lambda t: 3 * t.sum() ** 3,
            np.array([0.5]),
            lambda x: 9 * x**2,
        ),
    ]
    for case, f, x, grad in cases:
        got = call_learner(
            name,
            case,
            fn,
            f,
            x.copy(),
            hint="make a tensor with requires_grad=True, call f on it, "
            "then .backward()",
        )
        assert_true(
            isinstance(got, np.ndarray),
            name,
            case,
            f"expected a NumPy array, got {describe(got)}",
            "convert the gradient tensor with .detach().numpy()",
        )
        assert_array_close(
            got,
            grad(x),
            name,
            case,
            rtol=1e-6,
            atol=1e-9,
            hint="return x.grad of the tensor you called f on",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# Numba on the CPU
# ---------------------------------------------------------------------------


def check_saxpy(fn) -> None:
    """``fn(a, x, y, out)`` must write ``a * x + y`` into the float32 array ``out``."""
    name = "check_saxpy"
    rng = np.random.default_rng(3)
    cases = {
        "1000 elements": (np.float32(2.5), 1000),
        "37 elements (not a multiple of the vector width)": (np.float32(-1.5), 37),
        "one element": (np.float32(3.0), 1),
        "a = 0": (np.float32(0.0), 64),
        "empty arrays": (np.float32(2.0), 0),
    }
    for case, (a, n) in cases.items():
        x = rng.normal(size=n).astype(np.float32)
        y = rng.normal(size=n).astype(np.float32)
        out = np.full(n, np.nan, dtype=np.float32)
        returned = call_learner(name, case, fn, a, x, y, out, inplace_ok=(3,))
        expected = (np.float64(a) * x.astype(np.float64) + y).astype(np.float32)
        if n and np.isnan(out).all():
            extra = (
                " (your function returned a value instead)"
                if returned is not None
                else ""
            )
            raise CheckFailed(
                name,
                case,
                "out was not written: it still holds only NaN" + extra,
                "write each result into out[i]",
            )
        assert_array_close(
            out,
            expected,
            name,
            case,
            rtol=1e-6,
            atol=1e-6,
            what="out",
            hint="out[i] = a * x[i] + y[i] for every i",
        )
    passed(name, len(cases))


def _x86_packed_arith(asm: str) -> set[str]:
    pattern = re.compile(
        r"^v?(add|sub|mul|div|min|max|sqrt|f[n]?m(add|sub)\d{3})p[sd]$"
    )
    found = set()
    for line in asm.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if words and not words[0].endswith(":") and pattern.match(words[0]):
            found.add(words[0])
    return found


_SCALAR_ASM = """\
saxpy_scalar:                      # scalar code: one float per instruction
\tvxorps\t%xmm1, %xmm1, %xmm1      # zeroing idiom: packed mnemonic, not arithmetic
\tvmovss\t(%rdi,%rax,4), %xmm0
\tvmulss\t%xmm2, %xmm0, %xmm0
\tvaddss\t(%rsi,%rax,4), %xmm0, %xmm0
\tmovaps\t%xmm0, %xmm3
\tvmovss\t%xmm0, (%rdx,%rax,4)
\tretq
"""

_PACKED_ATT = """\
.LBB0_4:                           # %vector.body
\tvmovups\t(%rdi,%rax,4), %ymm1
\tvfmadd213ps\t(%rsi,%rax,4), %ymm0, %ymm1
\tvmovups\t%ymm1, (%rdx,%rax,4)
\taddq\t$8, %rax
\tjne\t.LBB0_4
"""

_PACKED_INTEL = """\
loop:
    mulps   xmm0, xmm2        ; SSE: 4 floats at once
    addps   xmm0, xmm1
    vsqrtpd ymm3, ymm4        ; AVX, double precision
    ret
"""

_COMMENT_ONLY = """\
# vaddps and vmulps would be packed, but these are comments
\tvaddss\t%xmm1, %xmm0, %xmm0    # not vaddps
\tcallq\tvmulps_helper@PLT
"""


def check_packed_float_ops(fn, real_asm: str | None = None) -> None:
    """``fn(asm)`` returns the set of packed floating-point arithmetic mnemonics."""
    name = "check_packed_float_ops"
    cases = {
        "scalar code (ss suffixes, a zeroing vxorps, a register movaps)": _SCALAR_ASM,
        "AT&T syntax vector loop": _PACKED_ATT,
        "Intel syntax, SSE and AVX": _PACKED_INTEL,
        "mnemonics that appear only in comments and symbol names": _COMMENT_ONLY,
        "empty text": "",
    }
    if real_asm is not None:
        cases["the assembly you passed in"] = real_asm
    for case, asm in cases.items():
        got = call_learner(name, case, fn, asm)
        try:
            got_set = set(got)
        except TypeError:
            raise CheckFailed(
                name,
                case,
                f"expected a set of mnemonics, got {describe(got)}",
                "return a set of strings such as {'vaddps'}",
            ) from None
        assert_equal(
            got_set,
            _x86_packed_arith(asm),
            name,
            case,
            what="packed mnemonics",
            hint="take the first word of each instruction line, skip labels "
            "(ending in ':') and comments, and keep add/sub/mul/div/min/max/"
            "sqrt/fmadd… forms that end in 'ps' or 'pd'",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# Numba CUDA (real GPU or simulator)
# ---------------------------------------------------------------------------


def check_blocks_for(fn) -> None:
    name = "check_blocks_for"
    cases = [(1, 128), (128, 128), (129, 128), (1000, 256), (1 << 20, 256), (5, 1)]
    for n, tpb in cases:
        case = f"n={n}, threads_per_block={tpb}"
        got = call_learner(name, case, fn, n, tpb)
        assert_true(
            isinstance(got, (int, np.integer)),
            name,
            case,
            f"expected an int, got {describe(got)}",
            "use integer division //, not /",
        )
        assert_equal(
            int(got),
            -(-n // tpb),
            name,
            case,
            what="number of blocks",
            hint="enough blocks to cover every element: round n / tpb up",
        )
    passed(name, len(cases))


def check_vector_add_kernel(make_kernel) -> None:
    """``make_kernel()`` returns a ``@cuda.jit`` kernel ``(a, b, out)``.

    Every array is a view into a larger buffer with a canary after the end, so a thread
    that writes past the end is caught on a real GPU too (where it would not crash).
    """
    from numba import cuda

    name = "check_vector_add_kernel"
    kernel = call_learner(name, "make the kernel", make_kernel)
    assert_true(
        callable(kernel) and hasattr(kernel, "__getitem__"),
        name,
        "make the kernel",
        f"expected a CUDA kernel, got {describe(kernel)}",
        "decorate the kernel function with @cuda.jit and return it",
    )
    rng = np.random.default_rng(4)
    pad, canary, tpb = 64, -7.0, 128
    sizes = [1, 100, 128, 300]
    for n in sizes:
        case = f"n={n}, {tpb} threads per block"
        blocks = -(-n // tpb)
        a = rng.normal(size=n).astype(np.float32)
        b = rng.normal(size=n).astype(np.float32)
        bufs = [
            cuda.to_device(np.concatenate([v, np.full(pad, canary, np.float32)]))
            for v in (a, b, np.full(n, np.nan, np.float32))
        ]
        d_a, d_b, d_out = (buf[:n] for buf in bufs)
        call_learner(
            name,
            case,
            lambda: kernel[blocks, tpb](d_a, d_b, d_out),
            label=f"kernel launched as [{blocks}, {tpb}]",
            hint="threads past the end must do nothing: `if i < out.size:`",
        )
        cuda.synchronize()
        out_buf = bufs[2].copy_to_host()
        assert_true(
            bool(np.all(out_buf[n:] == canary)),
            name,
            case,
            "the kernel wrote past the end of out",
            "guard the write with `if i < out.size:`",
        )
        assert_array_close(
            out_buf[:n],
            a + b,
            name,
            case,
            rtol=1e-6,
            atol=1e-6,
            what="out",
            hint="each thread handles i = cuda.grid(1), which is "
            "blockIdx.x * blockDim.x + threadIdx.x",
        )
    passed(name, len(sizes))


# ---------------------------------------------------------------------------
# TVM
# ---------------------------------------------------------------------------


def _run_tvm_add(name: str, case: str, mod, n: int) -> None:
    from .. import tvmkit

    ex = call_learner(
        name,
        case,
        tvmkit.build,
        mod,
        hint="the module should compile with tvmkit.build(mod)",
    )
    rng = np.random.default_rng(n)
    a = rng.normal(size=n).astype(np.float32)
    b = rng.normal(size=n).astype(np.float32)
    c = tvmkit.tensor(np.full(n, np.nan, dtype=np.float32))  # unwritten stays NaN
    call_learner(
        name,
        case,
        lambda: ex["main"](tvmkit.tensor(a), tvmkit.tensor(b), c),
        label="compiled main",
        hint="main must take three float32 buffers (A, B, C) of length n",
    )
    assert_array_close(c.numpy(), a + b, name, case, rtol=1e-6, atol=1e-6, what="C")


def _as_module(name: str, case: str, mod):
    from .. import tvmkit

    if isinstance(mod, tvmkit.tvm.tirx.PrimFunc):
        mod = tvmkit.tvm.IRModule({"main": mod})
    assert_true(
        isinstance(mod, tvmkit.tvm.IRModule)
        and "main" in [gv.name_hint for gv in mod.get_global_vars()],
        name,
        case,
        f"expected an IRModule with a function 'main', got {describe(mod)}",
        "return tvm.IRModule({'main': vector_add})",
    )
    return mod


def check_tvm_vector_add(make_vector_add) -> None:
    name = "check_tvm_vector_add"
    sizes = [256, 1, 1000]
    for n in sizes:
        case = f"n={n}"
        mod = _as_module(name, case, call_learner(name, case, make_vector_add, n))
        _run_tvm_add(name, case, mod, n)
    passed(name, len(sizes))


def check_vectorize(vectorize, make_vector_add) -> None:
    """``vectorize(mod)`` returns a module whose loop over block "C" is vectorized."""
    from .. import tvmkit

    name = "check_vectorize"
    n = 256
    mod = _as_module(name, "n=256", make_vector_add(n))
    before = tvmkit.tir_text(mod)
    new = _as_module(
        name,
        "n=256",
        call_learner(
            name,
            "n=256",
            vectorize,
            mod,
            hint="sch = tvmkit.schedule(mod); the loop of sch.get_sblock('C'); "
            "sch.vectorize(loop)",
        ),
    )
    assert_true(
        tvmkit.tir_text(mod) == before,
        name,
        "n=256",
        "the module you were given changed",
        "schedule a copy: tvmkit.schedule(mod)",
    )
    assert_true(
        "T.vectorized(" in tvmkit.tir_text(new),
        name,
        "n=256",
        "no vectorized loop in the returned TensorIR",
        "call sch.vectorize(loop) and return sch.mod",
    )
    _run_tvm_add(name, "n=256, vectorized", new, n)
    passed(name, 2)


_IR_CASES = {
    "one vector type": ("%5 = fadd <8 x float> %3, %4", [8]),
    "repeats and several widths": (
        "%a = load <4 x float>, ptr %p\n%b = fadd <4 x float> %a, %a\n"
        "store <16 x float> %c, ptr %q\n%d = fmul <256 x float> %e, %f",
        [4, 16, 256],
    ),
    "only scalar floats": ("%1 = fadd float %a, %b\nret float %1", []),
    "other element types": ("<8 x i32>, <4 x double>, <2 x i64>, <8 x half>", []),
    "a mix with pointers": (
        "%v = load <8 x float>, ptr %p, align 32\n"
        "call void @f(<8 x float> %v, <4 x double> %w)",
        [8],
    ),
}


def check_vector_widths(
    fn, real_ir: str | None = None, must_include: int | None = None
):
    """``fn(ir_text)`` returns the sorted distinct N of ``<N x float>`` types."""
    name = "check_vector_widths"
    cases = dict(_IR_CASES)
    for case, (text, expected) in cases.items():
        got = call_learner(name, case, fn, text)
        assert_true(
            isinstance(got, list),
            name,
            case,
            f"expected a list of ints, got {describe(got)}",
            "return sorted(...) of the widths",
        )
        assert_equal(
            [int(v) for v in got],
            expected,
            name,
            case,
            what="widths",
            hint="match <N x float> exactly (not double, half or i32), "
            "convert N to int, drop repeats, sort",
        )
    if real_ir is not None:
        got = call_learner(name, "your vectorized module's LLVM IR", fn, real_ir)
        assert_true(
            must_include is None or must_include in got,
            name,
            "your vectorized module's LLVM IR",
            f"expected width {must_include} among {got}",
        )
        cases["real IR"] = None
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def check_bandwidth_gbs(fn) -> None:
    """``fn(n, itemsize, seconds)``: GB/s moved by one saxpy over n elements."""
    name = "check_bandwidth_gbs"
    cases = [
        (1_000_000, 4, 1e-3),
        (1, 4, 1e-9),
        (10_000, 8, 2.5e-5),
        (3 << 20, 4, 0.04),
    ]
    for n, itemsize, seconds in cases:
        case = f"n={n}, itemsize={itemsize}, seconds={seconds:g}"
        got = call_learner(name, case, fn, n, itemsize, seconds)
        assert_true(
            isinstance(got, (float, int, np.floating)) and math.isfinite(got),
            name,
            case,
            f"expected a finite number, got {describe(got)}",
        )
        expected = 3 * n * itemsize / seconds / 1e9
        assert_array_close(
            np.float64(got),
            np.float64(expected),
            name,
            case,
            rtol=1e-9,
            what="GB/s",
            hint="saxpy reads x and y and writes out: 3 arrays of n items; "
            "1 GB = 1e9 bytes",
        )
    passed(name, len(cases))
