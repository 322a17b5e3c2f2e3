"""Checks for lab 05_01 "Know your machine: SIMD and the roofline".

Each kernel check runs the learner's Numba function on several sizes (odd lengths and
sizes that are not multiples of a vector or a tile included) against a float64
reference, then reads the assembly Numba compiled for the float32 call it just made:
a kernel whose float arithmetic is scalar (``vaddss``, ``vmulss``) or absent (the work
done in a library call) is rejected with what the assembly shows. The counting check
compares the learner's flop and byte counts with the course's conventions, naming the
usual miscount when the answer equals it.

The x86 parsing is :mod:`model2metal.checks.tvm_common`'s. Off x86 (ARM) the assembly
is not read and the pass line says so.
"""

from __future__ import annotations

import math

import numpy as np

from .. import hwkit
from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
    assert_type,
    call_learner,
    describe,
    hint_from_evidence,
    passed,
)
from .tvm_common import x86_packed_arith, x86_scalar_arith

__all__ = [
    "check_saxpy",
    "check_dot",
    "check_matmul_blocked",
    "check_counts",
    "packed_report",
]


# ---------------------------------------------------------------------------
# the assembly
# ---------------------------------------------------------------------------


def _asm_for(name: str, fn, args) -> str:
    """The assembly of ``fn`` for the types of ``args`` (the call just made)."""
    import numba

    wanted = tuple(numba.typeof(a) for a in args)
    sig = next((s for s in fn.signatures if tuple(s) == wanted), None)
    try:
        return hwkit.numba_asm(fn, sig)
    except Exception as exc:  # noqa: BLE001 - report, never crash
        raise CheckFailed(name, "reading the assembly",
                          f"inspect_asm() raised {type(exc).__name__}: {exc}") from None


def _require_numba(name: str, fn) -> None:
    assert_true(
        callable(getattr(fn, "inspect_asm", None))
        and hasattr(fn, "signatures"),
        name,
        "the function",
        f"expected a Numba-compiled function, got {describe(fn)}",
        "decorate the function with @njit (from numba import njit): the check "
        "reads the machine code Numba makes",
    )


def packed_report(asm: str) -> tuple[set[str], set[str], set[str]]:
    """(packed float32 ops, packed float64 ops, scalar float ops) in x86 assembly."""
    packed = x86_packed_arith(asm)
    return ({w for w in packed if w.endswith("ps")},
            {w for w in packed if w.endswith("pd")},
            x86_scalar_arith(asm))


def _require_packed(name: str, fn, args, hint: str) -> bool:
    """The float32 arithmetic of ``fn``'s code for ``args`` is packed SIMD. False if
    the assembly could not be read here (not x86), True if it is packed; raises
    CheckFailed with what the assembly shows otherwise."""
    if not hwkit.is_x86():
        return False
    label = getattr(fn, "__name__", "your function")
    single, double, scalar = packed_report(_asm_for(name, fn, args))
    if single:
        return True
    problem = (f"the assembly of {label}() for float32 arrays has no packed float32 "
               "arithmetic (no ...ps instruction such as vfmadd231ps or vaddps on "
               "xmm/ymm/zmm registers)")
    if double:
        problem += (f"\nit has packed float64 arithmetic ({', '.join(sorted(double))})"
                    ": something in the loop is computed in float64")
        hint = ("a Python float constant or a float64 array makes the arithmetic "
                "float64: keep every value float32 (np.float32(...))")
    elif scalar:
        problem += (f"\nits float arithmetic is scalar: {', '.join(sorted(scalar))} "
                    "(ss/sd: one number per instruction)")
    else:
        problem += ("\nit has no float arithmetic instructions at all: the work is "
                    "done in a function it calls (np.dot and @ call a library)")
        hint = "write the loop yourself: the lab is about the code it compiles to"
    raise CheckFailed(name, "the assembly", problem, hint)


def _pass_extra(checked: bool, what: str) -> str:
    return f", {what}" if checked else ", assembly not checked (not an x86 CPU)"


# ---------------------------------------------------------------------------
# saxpy
# ---------------------------------------------------------------------------

_SIZES = [0, 1, 7, 16, 33, 1003, 4099]


def check_saxpy(fn) -> None:
    """``fn(a, x, y, out)``, ``@njit``: out = a * x + y, element by element in
    float32, written into ``out``; its code uses packed SIMD arithmetic."""
    name = "check_saxpy"
    _require_numba(name, fn)
    rng = np.random.default_rng(501)
    args = None
    for n in _SIZES:
        a = np.float32(rng.choice([2.0, -0.5, 3.25]))
        case = f"n={n}, a={float(a):g}"
        x = rng.normal(size=n).astype(np.float32)
        y = rng.normal(size=n).astype(np.float32)
        out = np.full(n, np.nan, np.float32)
        args = (a, x, y, out)
        returned = call_learner(
            name, case, fn, *args, inplace_ok=(3,),
            inplace_hint="only out is written: x and y are read",
            hint="a is a numpy.float32; x, y and out are float32 arrays of one length",
        )
        a64, x64, y64 = np.float64(a), x.astype(np.float64), y.astype(np.float64)
        if n and np.isnan(out).all():
            raise CheckFailed(
                name, case, "out was not written: it still holds only NaN"
                + (" (your function returned a value instead)"
                   if returned is not None else ""),
                "store each result in the array out you were given, and let the "
                "loop run over every element, n = x.shape[0] of them",
            )
        hint = hint_from_evidence(out, [
            ("out holds a * (x + y): a multiplies x only", a64 * (x64 + y64)),
            ("out holds x + a * y: a multiplies x, not y", x64 + a64 * y64),
            ("out holds a * x: y is not added", a64 * x64),
        ], rtol=1e-5, atol=1e-5)
        assert_array_close(out, (a64 * x64 + y64).astype(np.float32), name, case,
                           rtol=1e-6, atol=1e-6, what="out", hint=hint)
    checked = _require_packed(
        name, fn, args,
        "a plain loop over every element, with nothing carried from one "
        "iteration to the next, vectorises; an early exit (break, return) or a "
        "value carried between iterations keeps it scalar",
    )
    passed(name, len(_SIZES), _pass_extra(checked, "packed SIMD arithmetic"))


# ---------------------------------------------------------------------------
# dot
# ---------------------------------------------------------------------------


def check_dot(fn) -> None:
    """``fn(x, y)``, ``@njit``: the float32 dot product as a float; its code uses
    packed SIMD arithmetic (which a reduction gets only with ``fastmath``)."""
    name = "check_dot"
    _require_numba(name, fn)
    rng = np.random.default_rng(502)
    cases = []
    # small integers: every partial sum is exact in float32, in any order
    for n in (0, 1, 2, 7, 1003, 10007):
        x = rng.integers(-3, 4, size=n).astype(np.float32)
        y = rng.integers(-3, 4, size=n).astype(np.float32)
        cases.append((f"n={n}, small integers", x, y))
    x = rng.normal(size=4099).astype(np.float32)
    cases.append(("n=4099, normal values", x, rng.normal(size=4099).astype(np.float32)))
    args = None
    for case, x, y in cases:
        args = (x, y)
        got = call_learner(name, case, fn, x, y,
                           hint="x and y are float32 arrays of one length")
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        expected = float(x64 @ y64)
        assert_type(got, (float, np.floating), name, case, what="the dot product",
                    hint="return the sum, one number (a float)")
        scale = float(np.abs(x64 * y64).sum())
        tol = 1e-5 * scale + 1e-6  # float32 rounding in any order of the sum
        if not (math.isfinite(float(got)) and abs(float(got) - expected) <= tol):
            candidates = []
            if x.size == 1:
                candidates.append(("the loop ran no iteration for n = 1: does it "
                                   "stop one early or start at 1?", 0.0))
            if x.size > 1:
                candidates += [
                    ("the last element is missing: range(n - 1) stops one early",
                     float(x64[:-1] @ y64[:-1])),
                    ("the first element is missing: the loop starts at 1",
                     float(x64[1:] @ y64[1:])),
                ]
            candidates += [("x · x: y is not used", float(x64 @ x64)),
                           ("twice the dot product: the sum started from a non-zero "
                            "value, or each product was added twice", 2 * expected)]
            hint = hint_from_evidence(np.float64(got), candidates, rtol=0,
                                      atol=tol)
            raise CheckFailed(
                name, case,
                f"expected {expected:.9g}, got {describe(got)} "
                f"(abs error {abs(float(got) - expected):.3g}, tolerance {tol:.3g})",
                hint,
            )
    fastmath = bool(getattr(fn, "targetoptions", {}).get("fastmath"))
    checked = _require_packed(
        name, fn, args,
        "a float32 sum is vectorised only when the compiler may add in another "
        "order (which changes the rounding): @njit(fastmath=True), or "
        "fastmath={'reassoc'}"
        if not fastmath else
        "one accumulator updated with x[i] * y[i] in a plain loop over i is what "
        "the vectoriser recognises as a reduction",
    )
    passed(name, len(cases), _pass_extra(checked, "packed SIMD arithmetic"))


# ---------------------------------------------------------------------------
# blocked matmul
# ---------------------------------------------------------------------------

_MATMUL_SHAPES = [(1, 1, 1), (3, 5, 2), (64, 64, 64), (70, 33, 129),
                  (300, 150, 260)]


def check_matmul_blocked(fn) -> None:
    """``fn(a, b, c)``, ``@njit``: c = a @ b for float32 a (m, k), b (k, n), written
    into c (m, n) whatever it held; the code uses packed SIMD arithmetic."""
    name = "check_matmul_blocked"
    _require_numba(name, fn)
    rng = np.random.default_rng(503)
    args = None
    for m, k, n in _MATMUL_SHAPES:
        case = f"a {m}x{k} @ b {k}x{n}"
        a = rng.normal(size=(m, k)).astype(np.float32)
        b = rng.normal(size=(k, n)).astype(np.float32)
        c = np.full((m, n), np.nan, np.float32)
        args = (a, b, c)
        returned = call_learner(
            name, case, fn, *args, inplace_ok=(2,),
            inplace_hint="only c is written: a and b are read",
            hint="a (m, k), b (k, n) and c (m, n) are C-contiguous float32 arrays",
        )
        expected = a.astype(np.float64) @ b.astype(np.float64)
        nan = np.isnan(c)
        hint = None
        if nan.all():
            hint = ("every element is NaN (the check fills c with NaN before the "
                    "call): c was not written, or your code added into c without "
                    "first setting it to zero"
                    + (" (your function returned a value instead of writing c)"
                       if returned is not None else ""))
        elif nan.any():
            i, j = (int(v) for v in np.argwhere(nan)[0])
            hint = (f"c[{i}, {j}] and {int(nan.sum()) - 1} other element(s) were "
                    "never written: the tiles at the edges are partial, so a tile's "
                    "loops end at the smaller of the tile's end and the matrix's")
        if hint is None and not nan.any():
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            hint = hint_from_evidence(c, [
                (f"c is the product over the first {t} values of k only: the "
                 "last, partial tile along k (the summed axis) is skipped",
                 a64[:, :t] @ b64[:t]) for t in sorted({k - k % s for s in
                                                        (8, 16, 32, 64, 128, 256)})
                if 0 < t < k
            ] + [("c holds twice the product: the sum did not start from zero",
                  2 * expected)], rtol=1e-4, atol=1e-4 * math.sqrt(k))
        assert_array_close(
            c, expected.astype(np.float32), name, case, rtol=1e-4,
            atol=1e-4 * math.sqrt(k), what="c", hint=hint,
        )
    checked = _require_packed(
        name, fn, args,
        "the innermost loop must be the one over j (stride 1 in b and c, "
        "independent iterations), and its index provably non-negative: with a "
        "variable start (range(j0, j1)) Numba's negative-index wraparound keeps "
        "the loop scalar; count it from 0 over a view of the row instead",
    )
    passed(name, len(_MATMUL_SHAPES), _pass_extra(checked, "packed SIMD arithmetic"))


# ---------------------------------------------------------------------------
# counting flops and bytes
# ---------------------------------------------------------------------------


def _pair(name: str, case: str, got) -> tuple[float, float]:
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        raise CheckFailed(
            name, case, f"expected a tuple (flops, bytes), got {describe(got)}",
            "return two numbers: return flops, dram_bytes",
        )
    for label, v in zip(("flops", "bytes"), got):
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
            v, (bool, np.bool_)) and math.isfinite(float(v))
        assert_true(ok, name, case, f"{label}: expected a number, got {describe(v)}")
    return float(got[0]), float(got[1])


def _only(hints: list[str]) -> str | None:
    """The hint when exactly one miscount explains the number (two that coincide
    on a case are evidence for neither)."""
    return hints[0] if len(hints) == 1 else None


def _compare_counts(name, case, got, flops_ok, bytes_ok, flop_hints, byte_hints):
    flops, nbytes = got
    if flops not in flops_ok:
        hint = _only([h for v, h in flop_hints if flops == v])
        if hint is None and (flops, nbytes) == (bytes_ok[0], flops_ok[0]):
            hint = "the two numbers are swapped: flops first, then bytes"
        raise CheckFailed(name, case,
                          f"flops: expected {flops_ok[0]:,.0f}, got {flops:,.0f}",
                          hint)
    if nbytes not in bytes_ok:
        hint = _only([h for v, h in byte_hints if nbytes == v])
        raise CheckFailed(name, case,
                          f"DRAM bytes: expected {bytes_ok[0]:,.0f}, got {nbytes:,.0f}",
                          hint)


def check_counts(saxpy_counts, dot_counts, matmul_counts) -> None:
    """Each ``fn(n)`` returns ``(flops, dram_bytes)`` for float32 data: saxpy and dot
    over n elements, the matmul of two n×n matrices into a third. Conventions: an FMA
    is 2 flops; each array crosses the DRAM bus once (no write-allocate counted)."""
    name = "check_counts"
    n_cases = 0
    for n in (1000, 1, 1 << 24):
        case = f"saxpy_counts({n})"
        got = _pair(name, case, call_learner(name, case, saxpy_counts, n,
                                             hint="n is a Python int"))
        _compare_counts(
            name, case, got, [2 * n], [12 * n],
            [(n, "a multiply and an add per element: 2 flops, even when one FMA "
                 "instruction does both")],
            [(8 * n, "three arrays move: x and y are read and out is written"),
             (16 * n, "write-allocate counted (the cache reads out before writing "
                      "it): real traffic, but the course counts as STREAM does, "
                      "one transfer per array"),
             (96 * n, "bits, not bytes: a float32 is 4 bytes"),
             (12, "the bytes of one element: multiply by n"),
             (3 * n, "elements, not bytes: a float32 is 4 bytes")],
        )
        n_cases += 1
        case = f"dot_counts({n})"
        got = _pair(name, case, call_learner(name, case, dot_counts, n,
                                             hint="n is a Python int"))
        _compare_counts(
            name, case, got, [2 * n, 2 * n - 1], [8 * n, 8 * n + 4],
            [(n, "a multiply and an add per element: 2 flops")],
            [(12 * n, "the result is one number, not an array: only x and y "
                      "stream from DRAM"),
             (4 * n, "two arrays are read: x and y"),
             (2 * n, "elements, not bytes: a float32 is 4 bytes")],
        )
        n_cases += 1
    for n in (256, 1, 1000):
        case = f"matmul_counts({n})"
        got = _pair(name, case, call_learner(name, case, matmul_counts, n,
                                             hint="n is a Python int"))
        _compare_counts(
            name, case, got, [2 * n**3, 2 * n**3 - n * n], [12 * n * n],
            [(n**3, "n multiply-adds per output, each 2 flops: 2 n^3"),
             (2 * n * n, "each of the n^2 outputs is a sum of n products")],
            [(8 * n * n, "three matrices move: a and b are read, c is written"),
             (16 * n * n, "c is counted twice: it is accumulated in the cache and "
                          "written to DRAM once"),
             (8 * n**3, "every load counted: the roofline counts DRAM traffic, and "
                        "the cache serves the reuse (each matrix crosses the bus "
                        "once)"),
             (3 * n * n, "elements, not bytes: a float32 is 4 bytes")],
        )
        n_cases += 1
    passed(name, n_cases)
