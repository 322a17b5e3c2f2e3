"""Checks for lab 00_01 "Your toolchain": one exercise per tool of the course.

Every reference here is computed independently of the way the lab asks for it (explicit
loops, known closed-form gradients, hand-written IR snippets), so a check compares two
different routes to the same answer. Hints name a cause only when the check has
computed that mistake and the learner's result matches it; otherwise they state what
was observed.
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
    assert_type,
    assert_unchanged,
    call_learner,
    describe,
    hint_from_evidence,
    passed,
)
from .tvm_common import as_module, buffers, has_block, mnemonics, x86_packed_arith

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






def _shape(x) -> tuple[int, ...] | None:
    """The shape of an array-like, or None (never raises)."""
    try:
        return tuple(np.shape(x))
    except Exception:  # noqa: BLE001 - any object may come back
        return None


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
    """``fn(A, B)`` -> the (n, m) NumPy array of squared distances, in A's dtype."""
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
        # a loop over the points of B (np.stack of a list) fails on an empty B
        "no points in B: 3x2 against 0x2": (rng.normal(size=(3, 2)), np.empty((0, 2))),
    }
    for case, (A, B) in cases.items():
        expected = _sq_dists_by_loops(A, B).astype(A.dtype)
        got = call_learner(
            name,
            case,
            fn,
            A,
            B,
            hint="A has shape (n, d) and B (m, d): broadcasting them against each "
            "other needs a new axis in each",
        )
        if _shape(got) == expected.T.shape != expected.shape:
            hint = "rows belong to the points of A and columns to those of B: " \
                "the result is transposed"
        elif isinstance(got, np.ndarray) and got.shape != expected.shape:
            hint = "one row per point of A, one column per point of B: the feature "\
                "axis (the last one) is the one summed over"
        else:
            hint = hint_from_evidence(
                got,
                [("these are the distances, not their squares: no square root",
                  np.sqrt(expected))],
            )
        tol = 1e-5 if A.dtype == np.float32 else 1e-9
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=tol,
            atol=tol,
            dtype="same",
            expect_type=np.ndarray,
            what="distances",
            hint=hint,
        )
        if got.size and got.min() < 0:  # within tolerance: a rounding error
            raise CheckFailed(
                name,
                case,
                f"squared distances must be >= 0, got minimum {got.min():.3g}",
                "a value within rounding of 0 came out negative (as the expansion "
                "|a|² + |b|² - 2a·b can): clamp the result at 0",
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# PyTorch autograd
# ---------------------------------------------------------------------------


def check_gradient(fn) -> None:
    """``fn(f, x)`` -> the gradient of ``f`` at the float64 array ``x``, as a float64
    NumPy array of x's shape."""
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
        expected = grad(x)
        got = call_learner(
            name,
            case,
            fn,
            f,
            x,
            hint="f takes a float64 tensor; autograd records only the operations on "
            "a tensor made with requires_grad=True",
        )
        hint = hint_from_evidence(
            got,
            [
                (
                    f"the gradient came back {k} times too large: .grad adds up over "
                    "backward() calls, so call it once",
                    k * expected,
                )
                for k in (2, 3)
            ],
        )
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=1e-6,
            atol=1e-9,
            dtype=np.float64,
            expect_type=np.ndarray,
            what="gradient",
            hint=hint,
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
        a64, x64, y64 = np.float64(a), x.astype(np.float64), y.astype(np.float64)
        expected = (a64 * x64 + y64).astype(np.float32)
        returned = call_learner(
            name,
            case,
            fn,
            a,
            x,
            y,
            out,
            inplace_ok=(3,),
            inplace_hint="only out is written: x and y are read",
            hint="a is a numpy.float32; x, y and out are float32 arrays of one "
            "length",
        )
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
                "store each result in the array out you were given; assigning a new "
                "array to the name out does not change the caller's array",
            )
        hint = hint_from_evidence(
            out,
            [
                ("out holds a * (x + y): a multiplies x only", a64 * (x64 + y64)),
                ("out holds x + a * y: a multiplies x, not y", x64 + a64 * y64),
                ("out holds a * x: y is not added", a64 * x64),
            ],
            rtol=1e-5,
            atol=1e-5,
        )
        assert_array_close(
            out,
            expected,
            name,
            case,
            rtol=1e-6,
            atol=1e-6,
            what="out",
            hint=hint,
        )
    passed(name, len(cases))


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

# sub, div, min, max and the negated / subtracting fused forms, next to look-alikes
# that are not packed float arithmetic (integer add, a conversion, logic, scalar max)
_OTHER_FORMS = """\
.LBB1_2:
\tvsubps\t%ymm1, %ymm0, %ymm0
\tvdivpd\t%ymm3, %ymm2, %ymm2
\tminps\t%xmm5, %xmm4
\tvmaxpd\t%zmm1, %zmm0, %zmm0
\tvfnmadd231ps\t%ymm2, %ymm1, %ymm0
\tvfmsub132pd\t(%rdi), %ymm1, %ymm0
\tvfnmsub213ps\t%xmm2, %xmm1, %xmm0
\tvpaddd\t%ymm1, %ymm0, %ymm0
\tvcvtdq2ps\t%ymm0, %ymm1
\tvandnps\t%ymm1, %ymm0, %ymm0
\tvmaxss\t%xmm1, %xmm0, %xmm0
"""


def _packed_hint(asm: str, missing: list[str], extra: list[str]) -> str:
    """What the difference between the two sets shows, one mnemonic as the example."""
    if extra:
        word = extra[0]
        if word not in mnemonics(asm):
            return (
                f"{word!r} is in the text, but not as the first word of an "
                "instruction line: comments (after # or ;), labels and symbol names "
                "do not count"
            )
        if word.endswith(("ss", "sd")):
            return f"{word!r} is a scalar form (ss/sd): only packed ps/pd forms count"
        return (
            f"{word!r} is not one of the arithmetic operations of the exercise "
            "(add, sub, mul, div, min, max, sqrt, fused multiply-add)"
        )
    return (
        f"{missing[0]!r} is missing: all of add, sub, mul, div, min, max, sqrt and "
        "every fused multiply-add form (fmadd, fmsub, fnmadd, fnmsub) count, with or "
        "without the v prefix"
    )


def check_packed_float_ops(fn, real_asm: str | None = None) -> None:
    """``fn(asm)`` returns the set of packed floating-point arithmetic mnemonics."""
    name = "check_packed_float_ops"
    cases = {
        "scalar code (ss suffixes, a zeroing vxorps, a register movaps)": _SCALAR_ASM,
        "AT&T syntax vector loop": _PACKED_ATT,
        "Intel syntax, SSE and AVX": _PACKED_INTEL,
        "mnemonics that appear only in comments and symbol names": _COMMENT_ONLY,
        "sub, div, min, max and negated fused forms next to look-alikes": _OTHER_FORMS,
        "empty text": "",
    }
    if real_asm is not None:
        cases["the assembly you passed in"] = real_asm
    for case, asm in cases.items():
        expected = x86_packed_arith(asm)
        got = call_learner(
            name,
            case,
            fn,
            asm,
            hint="the text is split into lines; an instruction line starts with its "
            "mnemonic",
        )
        assert_type(
            got,
            (set, frozenset),
            name,
            case,
            what="result",
            hint="return a set of mnemonic strings, such as {'vaddps'}",
        )
        odd = [v for v in got if not isinstance(v, str)]
        if odd:
            raise CheckFailed(
                name,
                case,
                f"expected a set of strings, got a set holding {describe(odd[0])}",
                "re.findall returns the groups, not the whole match, when the "
                "pattern has (...) groups"
                if isinstance(odd[0], tuple)
                else "each element is a mnemonic string",
            )
        if set(got) != expected:
            missing, extra = sorted(expected - set(got)), sorted(set(got) - expected)
            problem = (
                f"packed mnemonics: expected {sorted(expected)}, got {sorted(got)}"
                + (f"\nmissing: {missing}" if missing else "")
                + (f"\nnot packed float arithmetic: {extra}" if extra else "")
            )
            raise CheckFailed(name, case, problem, _packed_hint(asm, missing, extra))
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# Numba CUDA (real GPU or simulator)
# ---------------------------------------------------------------------------


def check_blocks_for(fn) -> None:
    """``fn(n, threads_per_block)`` -> the number of blocks, a Python int."""
    name = "check_blocks_for"
    # 96 threads per block: not a power of two (a bit shift by log2 fails there)
    cases = [
        (1, 128), (128, 128), (129, 128), (1000, 256), (1 << 20, 256), (5, 1),
        (1000, 96),
    ]
    for n, tpb in cases:
        case = f"n={n}, threads_per_block={tpb}"
        expected = -(-n // tpb)
        got = call_learner(
            name,
            case,
            fn,
            n,
            tpb,
            hint="both arguments are positive Python ints",
        )
        assert_type(
            got,
            int,
            name,
            case,
            what="number of blocks",
            hint="n / threads_per_block is a float: use integer division //"
            if isinstance(got, (float, np.floating))
            else None,
        )
        if got != expected:
            if got == n // tpb:
                hint = "rounded down: the last, partly filled block is missing"
            elif got == n // tpb + 1:
                hint = (
                    "one block too many when n is a multiple of threads_per_block: "
                    "round up only when a remainder is left"
                )
            else:
                hint = None
            assert_equal(got, expected, name, case, what="number of blocks", hint=hint)
    passed(name, len(cases))


_KERNEL_LAUNCHES = [
    (1, 128),
    (100, 128),
    (128, 128),
    (300, 128),
    # other block sizes: a kernel that assumes 128 threads per block fails here
    (300, 32),
    (300, 256),
    (5, 1),
]


def _launch(name: str, case: str, kernel, blocks: int, tpb: int, args) -> None:
    """Launch the learner's kernel through call_learner, with a hint that matches the
    error (an IndexError is a thread past the end)."""
    try:
        call_learner(
            name,
            case,
            lambda: kernel[blocks, tpb](*args),
            label=f"kernel launched as [{blocks}, {tpb}]",
            hint="the simulator runs every thread of the grid in Python; the line "
            "above is where one of them failed",
        )
    except CheckFailed as failed:
        if "IndexError" not in failed.problem:
            raise
        n = args[2].shape[0]
        # the simulator names the thread: "tid=[t, 0, 0] ctaid=[b, 0, 0]"
        where = re.search(r"tid=\[(\d+),.*?ctaid=\[(\d+),", failed.problem)
        thread = int(where[2]) * tpb + int(where[1]) if where else None
        if thread is not None and thread >= n:
            hint = (
                f"thread {thread} has no element: [{blocks}, {tpb}] starts "
                f"{blocks * tpb} threads for {n} elements, and the threads past the "
                "end must not touch the arrays"
            )
        elif thread is not None:
            hint = (
                f"thread {thread} has an element (n = {n}) but indexed outside the "
                "arrays: which index does it use?"
            )
        else:
            hint = "an index outside the arrays"
        raise CheckFailed(name, case, failed.problem, hint) from None


def check_vector_add_kernel(make_kernel) -> None:
    """``make_kernel()`` returns a ``@cuda.jit`` kernel ``(a, b, out)``.

    Every array is a view into a larger buffer with a canary after the end, so a thread
    that writes past the end is caught on a real GPU too (where it would not crash).
    The kernel is launched with several block sizes.
    """
    from numba import cuda

    name = "check_vector_add_kernel"
    kernel = call_learner(
        name,
        "make the kernel",
        make_kernel,
        hint="make_vector_add_kernel() defines the kernel and returns it",
    )
    assert_true(
        callable(kernel) and hasattr(kernel, "__getitem__"),
        name,
        "make the kernel",
        f"expected a CUDA kernel, got {describe(kernel)}",
        "decorate the kernel function with @cuda.jit and return it",
    )
    rng = np.random.default_rng(4)
    pad, canary = 64, -7.0
    fixed_size_ok = True  # every launch with 128 threads per block passed so far
    for n, tpb in _KERNEL_LAUNCHES:
        case = f"n={n}, {tpb} threads per block"
        blocks = -(-n // tpb)
        a = rng.normal(size=n).astype(np.float32)
        b = rng.normal(size=n).astype(np.float32)
        expected = a + b
        bufs = [
            cuda.to_device(np.concatenate([v, np.full(pad, canary, np.float32)]))
            for v in (a, b, np.full(n, np.nan, np.float32))
        ]
        _launch(name, case, kernel, blocks, tpb, [buf[:n] for buf in bufs])
        cuda.synchronize()
        host = [buf.copy_to_host() for buf in bufs]
        for label, buf in zip(("a", "b", "out"), host):
            assert_true(
                bool(np.all(buf[n:] == canary)),
                name,
                case,
                f"the kernel wrote past the end of {label} (the {pad} values after "
                "it changed)",
                "a thread whose index is not below n must not write",
            )
        for label, before, buf in (("a", a, host[0]), ("b", b, host[1])):
            assert_unchanged(
                before,
                buf[:n],
                name,
                case,
                f"its input `{label}`",
                "a and b are only read: write the sum into out",
            )
        out = host[2][:n]
        unwritten = np.flatnonzero(np.isnan(out))
        hint = None
        if unwritten.size and tpb != 128 and fixed_size_ok:
            hint = (
                f"with {tpb} threads per block {unwritten.size} of {n} elements were "
                f"never written (the first at index {unwritten[0]}), with 128 every "
                "one was: is the block size in the index the launched one?"
            )
        elif unwritten.size and np.all(unwritten >= min(n, tpb)):
            hint = (
                f"only the first {min(n, tpb)} elements were written, one block's "
                "worth: a thread's element depends on its block as well as on its "
                "place in the block (cuda.grid(1))"
            )
        if tpb == 128 and unwritten.size:
            fixed_size_ok = False
        assert_array_close(
            out, expected, name, case, rtol=1e-6, atol=1e-6, what="out", hint=hint
        )
    passed(name, len(_KERNEL_LAUNCHES))


# ---------------------------------------------------------------------------
# TVM
# ---------------------------------------------------------------------------


def _run_tvm_add(
    name: str,
    case: str,
    mod,
    n: int,
    other_n_hint: str = "the module is built for another n: use the n you were given",
) -> None:
    from .. import tvmkit

    found = buffers(mod)
    if found is not None and found != [((n,), "float32")] * 3:
        same_dtype = len(found) == 3 and all(d == "float32" for _, d in found)
        raise CheckFailed(
            name,
            case,
            f"main's buffers: expected three of shape ({n},) and dtype float32, got "
            + (", ".join(f"{shape} {dtype}" for shape, dtype in found) or "none"),
            other_n_hint
            if same_dtype
            else "main takes A, B and C, float32 buffers of length n",
        )
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
    expected = a + b
    ta, tb = tvmkit.tensor(a), tvmkit.tensor(b)
    c = tvmkit.tensor(np.full(n, np.nan, dtype=np.float32))  # unwritten stays NaN
    call_learner(
        name,
        case,
        lambda: ex["main"](ta, tb, c),
        label="compiled main",
        hint="main is called with three float32 buffers (A, B, C) of length n",
    )
    for label, before, tensor in (("A", a, ta), ("B", b, tb)):
        assert_unchanged(
            before,
            tensor.numpy(),
            name,
            case,
            f"its input buffer `{label}`",
            "A and B are only read: the block writes C",
        )
    assert_array_close(c.numpy(), expected, name, case, rtol=1e-6, atol=1e-6, what="C")


def check_tvm_vector_add(make_vector_add) -> None:
    """``make_vector_add(n)`` returns an IRModule (or PrimFunc) whose "main" has a
    block "C" computing C = A + B on three float32 buffers of length n."""
    name = "check_tvm_vector_add"
    sizes = [256, 1, 1000]
    for n in sizes:
        case = f"n={n}"
        mod = as_module(
            name,
            case,
            call_learner(
                name,
                case,
                make_vector_add,
                n,
                hint="the prim_func is defined inside make_vector_add, with n in "
                "the buffer shapes",
            ),
        )
        assert_true(
            has_block(mod, "C"),
            name,
            case,
            "main has no block named \"C\"",
            "name the block \"C\": the schedule of exercise 8 finds it by that "
            "name",
        )
        _run_tvm_add(name, case, mod, n)
    passed(name, len(sizes))


def check_vectorize(vectorize, make_vector_add) -> None:
    """``vectorize(mod)`` returns a module whose loop over block "C" is vectorized."""
    from .. import tvmkit

    name = "check_vectorize"
    sizes = [256, 1000]  # a second size: the module passed in, not a global one
    for n in sizes:
        case = f"n={n}"
        mod = as_module(
            name,
            case,
            call_learner(name, case, make_vector_add, n, hint="exercise 7's function"),
        )
        before = tvmkit.tir_text(mod)
        new = as_module(
            name,
            case,
            call_learner(
                name,
                case,
                vectorize,
                mod,
                hint="mod is the IRModule of your make_vector_add(n); exercise 8 "
                "lists the schedule's steps",
            ),
        )
        assert_true(
            tvmkit.tir_text(mod) == before,
            name,
            case,
            "the module you were given changed",
            "a schedule works on its own copy of the module: transform that one",
        )
        text = tvmkit.tir_text(new)
        if "T.vectorized(" not in text:
            if text == before:
                hint = (
                    "the returned module is the one you were given, unchanged: the "
                    "transformed one is the schedule's module (sch.mod)"
                )
            elif "T.parallel(" in text:
                hint = "the loop is parallel (T.parallel), not vectorized"
            elif "T.unroll(" in text:
                hint = "the loop is unrolled (T.unroll), not vectorized"
            else:
                hint = None
            raise CheckFailed(
                name, case, "no vectorized loop in the returned TensorIR", hint
            )
        _run_tvm_add(
            name,
            case + ", vectorized",
            new,
            n,
            other_n_hint="the returned module is built for another n: vectorize the "
            "module you were given, not another one",
        )
    passed(name, len(sizes))


def _float_vector_widths(ir: str) -> list[int]:
    return sorted({int(w) for w in re.findall(r"<(\d+) x float>", ir)})


_IR_CASES = {
    "one vector type": "%5 = fadd <8 x float> %3, %4",
    "repeats and several widths": (
        "%a = load <4 x float>, ptr %p\n%b = fadd <4 x float> %a, %a\n"
        "store <16 x float> %c, ptr %q\n%d = fmul <256 x float> %e, %f"
    ),
    "only scalar floats": "%1 = fadd float %a, %b\nret float %1",
    "other element types": "<8 x i32>, <4 x double>, <2 x i64>, <8 x half>",
    "a mix with pointers": (
        "%v = load <8 x float>, ptr %p, align 32\n"
        "call void @f(<8 x float> %v, <4 x double> %w)"
    ),
    # [N x float] is an array type: a pattern without the angle brackets counts it
    "array types next to vector types": (
        "%buf = alloca [16 x float], align 64\n"
        "%v = load <4 x float>, ptr %buf\n"
        "%w = load [2 x <8 x float>], ptr %q"
    ),
}


def _widths_hint(got: list[int], expected: list[int]) -> str | None:
    if sorted(set(got)) == expected:
        return "the right widths, but repeated or out of order: sort them and keep " \
            "each once"
    extra = sorted(set(got) - set(expected))
    if extra:
        return (
            f"width {extra[0]} is not the N of a <N x float> type in this text: "
            "vectors of other element types and [N x float] arrays do not count"
        )
    missing = sorted(set(expected) - set(got))
    return f"width {missing[0]} is missing" if missing else None


def check_vector_widths(
    fn, real_ir: str | None = None, must_include: int | None = None
):
    """``fn(ir_text)`` returns the sorted list of distinct N (Python ints) of the
    ``<N x float>`` types in the text."""
    name = "check_vector_widths"
    cases = dict(_IR_CASES)
    if real_ir is not None:
        cases["your vectorized module's LLVM IR"] = real_ir
    for case, text in cases.items():
        expected = _float_vector_widths(text)
        got = call_learner(name, case, fn, text, hint="the argument is LLVM IR text")
        assert_type(
            got,
            list,
            name,
            case,
            what="widths",
            hint="return a list: sorted(...) of the widths gives one",
        )
        odd = [v for v in got if isinstance(v, bool) or not isinstance(v, int)]
        if odd:
            raise CheckFailed(
                name,
                case,
                f"widths: expected a list of Python ints, got one holding "
                f"{describe(odd[0])}",
                "a regular expression finds strings: convert each N with int()"
                if isinstance(odd[0], str)
                else "return Python ints: int(n) converts a NumPy integer",
            )
        assert_equal(
            got, expected, name, case, what="widths", hint=_widths_hint(got, expected)
        )
    if real_ir is not None and must_include is not None:
        got = _float_vector_widths(real_ir)
        assert_true(
            must_include in got,
            name,
            "your vectorized module's LLVM IR",
            f"expected width {must_include} among {got}",
            f"the IR you passed in has no <{must_include} x float>: it should be "
            "the LLVM IR of the vectorized build",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def check_bandwidth_gbs(fn) -> None:
    """``fn(n, itemsize, seconds)``: GB/s moved by one saxpy over n elements (a
    float)."""
    name = "check_bandwidth_gbs"
    cases = [
        (1_000_000, 4, 1e-3),
        (1, 4, 1e-9),
        (10_000, 8, 2.5e-5),
        (3 << 20, 4, 0.04),
    ]
    for n, itemsize, seconds in cases:
        case = f"n={n}, itemsize={itemsize}, seconds={seconds:g}"
        expected = 3 * n * itemsize / seconds / 1e9
        got = call_learner(
            name,
            case,
            fn,
            n,
            itemsize,
            seconds,
            hint="n and itemsize are ints, seconds a float",
        )
        assert_type(got, (float, np.floating), name, case, what="GB/s")
        assert_true(
            math.isfinite(got),
            name,
            case,
            f"GB/s: expected a finite number, got {describe(got)}",
        )
        candidates = [
            ("2 arrays counted: saxpy reads x and y and writes out", 2 / 3),
            ("4 arrays counted: saxpy reads x and y and writes out", 4 / 3),
            ("GiB (2**30 bytes) instead of GB (1e9 bytes)", 1e9 / 2**30),
            ("bytes per second: 1 GB is 1e9 bytes", 1e9),
            ("MB/s: 1 GB is 1e9 bytes", 1e3),
        ]
        if itemsize != 4:
            candidates.append(("4 bytes per item assumed: use itemsize", 4 / itemsize))
        hint = hint_from_evidence(
            got, [(h, expected * ratio) for h, ratio in candidates], rtol=1e-9, atol=0
        )
        assert_array_close(
            np.float64(got),
            np.float64(expected),
            name,
            case,
            rtol=1e-9,
            what="GB/s",
            hint=hint,
        )
    passed(name, len(cases))
