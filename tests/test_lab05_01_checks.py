"""Lab 05_01's checks reject wrong kernels and kernels whose assembly is scalar (a
dot without fastmath, a loop with an early exit, a blocked matmul whose inner loop
starts at a variable, the naive i-j-k order, a library call), and wrong flop and byte
counts; they accept other correct, vectorised kernels."""


import numpy as np
import pytest
from check_helpers import boom, raises_cleanly, rejects
from numba import njit, prange

from model2metal import hwkit
from model2metal.checks import lab05_01 as checks

x86 = pytest.mark.skipif(
    not hwkit.is_x86(),
    reason="the assembly checks read x86 assembly",
)

TI, TK, TJ = 32, 64, 128


# ---------------------------------------------------------------------------
# saxpy
# ---------------------------------------------------------------------------


@njit
def saxpy_loop(a, x, y, out):
    for i in range(x.shape[0]):
        out[i] = a * x[i] + y[i]


@njit
def saxpy_expr(a, x, y, out):  # correct, written differently: an array expression
    out[:] = a * x + y


@njit(parallel=True)
def saxpy_prange(a, x, y, out):
    for i in prange(x.shape[0]):
        out[i] = a * x[i] + y[i]


@njit
def saxpy_early_exit(a, x, y, out):  # right values, but the break keeps it scalar
    for i in range(x.shape[0]):
        out[i] = a * x[i] + y[i]
        if out[i] > np.float32(3e38):
            break


@njit
def saxpy_float64(a, x, y, out):  # right to float32 rounding, computed in float64
    for i in range(x.shape[0]):
        out[i] = np.float64(a) * np.float64(x[i]) + np.float64(y[i])


@njit
def saxpy_wrong(a, x, y, out):
    for i in range(x.shape[0]):
        out[i] = a * (x[i] + y[i])


@njit
def saxpy_short(a, x, y, out):  # misses the tail
    for i in range(x.shape[0] // 8 * 8):
        out[i] = a * x[i] + y[i]


@njit
def saxpy_returns(a, x, y, out):
    return a * x + y


def saxpy_python(a, x, y, out):
    for i in range(x.shape[0]):
        out[i] = a * x[i] + y[i]


@pytest.mark.parametrize("fn", [saxpy_loop, saxpy_expr, saxpy_prange])
def test_saxpy_accepts_vectorised_kernels(fn, capsys):
    checks.check_saxpy(fn)
    assert "check_saxpy passed (7 cases)" in capsys.readouterr().out


def test_saxpy_rejects_wrong_values():
    rejects(checks.check_saxpy, saxpy_wrong, expect=r"a \* \(x \+ y\)")
    rejects(checks.check_saxpy, saxpy_short, expect=r"n=1,.*only NaN.*every element")
    rejects(checks.check_saxpy, saxpy_returns, expect=r"returned a value instead")


def test_saxpy_needs_numba():
    rejects(checks.check_saxpy, saxpy_python,
            expect=r"expected a Numba-compiled function.*@njit")


@njit
def saxpy_raises(a, x, y, out):
    raise ValueError("a learner's bug")


def test_saxpy_learner_error_is_reported():
    rejects(checks.check_saxpy, saxpy_raises,
            expect=r"n=0.*raised ValueError: a learner's bug")


@x86
def test_saxpy_rejects_scalar_assembly():
    msg = rejects(checks.check_saxpy, saxpy_early_exit,
                  expect=r"no packed float32 arithmetic.*scalar: .*vmulss|mulss")
    assert "early exit" in msg


@x86
def test_saxpy_rejects_float64_arithmetic():
    rejects(checks.check_saxpy, saxpy_float64,
            expect=r"packed float64 arithmetic \(.*pd.*float64")


# ---------------------------------------------------------------------------
# dot
# ---------------------------------------------------------------------------


def dot_py(x, y):
    acc = np.float32(0.0)
    for i in range(x.shape[0]):
        acc += x[i] * y[i]
    return acc


dot_fast = njit(fastmath=True)(dot_py)
dot_reassoc = njit(fastmath={"reassoc", "contract"})(dot_py)
dot_strict = njit(dot_py)


@njit(fastmath=True)
def dot_two_accumulators(x, y):  # correct, written differently
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    n = x.shape[0]
    for i in range(n // 2):
        s0 += x[2 * i] * y[2 * i]
        s1 += x[2 * i + 1] * y[2 * i + 1]
    if n % 2:
        s0 += x[n - 1] * y[n - 1]
    return s0 + s1


@njit(fastmath=True)
def dot_short(x, y):
    acc = np.float32(0.0)
    for i in range(x.shape[0] - 1):
        acc += x[i] * y[i]
    return acc


@njit(fastmath=True)
def dot_array(x, y):
    return x * y


@njit
def dot_library(x, y):
    return np.dot(x, y)


@pytest.mark.parametrize("fn", [dot_fast, dot_reassoc, dot_two_accumulators])
def test_dot_accepts_vectorised_reductions(fn, capsys):
    checks.check_dot(fn)
    assert "check_dot passed (7 cases)" in capsys.readouterr().out


def test_dot_rejects_wrong_values():
    rejects(checks.check_dot, dot_short,
            expect=r"n=1, .*got float 0.0.*no iteration for n = 1")
    rejects(checks.check_dot, dot_array,
            expect=r"expected a float or a numpy.floating, got .*ndarray")


@x86
def test_dot_without_fastmath_is_rejected_naming_the_scalar_code():
    msg = rejects(checks.check_dot, dot_strict,
                  expect=r"no packed float32 arithmetic.*scalar: .*addss")
    assert "fastmath=True" in msg


@x86
def test_dot_library_call_is_rejected():
    rejects(checks.check_dot, dot_library,
            expect=r"no float arithmetic instructions at all.*np.dot")


# ---------------------------------------------------------------------------
# blocked matmul
# ---------------------------------------------------------------------------


@njit
def matmul_blocked_views(a, b, c):
    m, kk = a.shape
    n = b.shape[1]
    c[:] = 0.0
    for i0 in range(0, m, TI):
        for k0 in range(0, kk, TK):
            for j0 in range(0, n, TJ):
                j1 = min(j0 + TJ, n)
                for i in range(i0, min(i0 + TI, m)):
                    ci = c[i, j0:j1]
                    for k in range(k0, min(k0 + TK, kk)):
                        aik = a[i, k]
                        bk = b[k, j0:j1]
                        for j in range(ci.shape[0]):
                            ci[j] += aik * bk[j]


@njit
def matmul_rows_blocked(a, b, c):  # correct, differently: tiles over i and k only
    m, kk = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            c[i, j] = 0.0
    for k0 in range(0, kk, TK):
        for i in range(m):
            for k in range(k0, min(k0 + TK, kk)):
                aik = a[i, k]
                for j in range(n):
                    c[i, j] += aik * b[k, j]


@njit
def matmul_variable_start(a, b, c):  # right values, scalar inner loop
    m, kk = a.shape
    n = b.shape[1]
    c[:] = 0.0
    for i0 in range(0, m, TI):
        for k0 in range(0, kk, TK):
            for j0 in range(0, n, TJ):
                for i in range(i0, min(i0 + TI, m)):
                    for k in range(k0, min(k0 + TK, kk)):
                        aik = a[i, k]
                        for j in range(j0, min(j0 + TJ, n)):
                            c[i, j] += aik * b[k, j]


@njit
def matmul_ijk(a, b, c):  # the naive order: a reduction over k, scalar
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = np.float32(0.0)
            for k in range(a.shape[1]):
                acc += a[i, k] * b[k, j]
            c[i, j] = acc


@njit
def matmul_no_zero(a, b, c):  # adds into whatever c held
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            aik = a[i, k]
            for j in range(b.shape[1]):
                c[i, j] += aik * b[k, j]


@njit
def matmul_drops_edges(a, b, c):  # only whole tiles of 2 rows (unless m < 2)
    m = a.shape[0]
    for i in range(m // 2 * 2 if m >= 2 else m):
        c[i, :] = 0.0
        for k in range(a.shape[1]):
            aik = a[i, k]
            for j in range(b.shape[1]):
                c[i, j] += aik * b[k, j]


@njit
def matmul_drops_k_tail(a, b, c):  # only whole tiles of 32 along k
    c[:] = 0.0
    kk = a.shape[1]
    for i in range(a.shape[0]):
        for k in range(kk // 32 * 32 if kk >= 32 else kk):
            aik = a[i, k]
            for j in range(b.shape[1]):
                c[i, j] += aik * b[k, j]


@pytest.mark.parametrize("fn", [matmul_blocked_views, matmul_rows_blocked])
def test_matmul_accepts_correct_vectorised_kernels(fn, capsys):
    checks.check_matmul_blocked(fn)
    assert "check_matmul_blocked passed (5 cases)" in capsys.readouterr().out


def test_matmul_rejects_wrong_values():
    rejects(checks.check_matmul_blocked, matmul_no_zero,
            expect=r"1x1.*every element is NaN.*setting it to zero")
    rejects(checks.check_matmul_blocked, matmul_drops_edges,
            expect=r"3x5 @ b 5x2.*never written.*partial")
    rejects(checks.check_matmul_blocked, matmul_drops_k_tail,
            expect=r"70x33 @ b 33x129.*first 32 values of k.*partial tile")


@x86
def test_matmul_rejects_scalar_inner_loops():
    msg = rejects(checks.check_matmul_blocked, matmul_variable_start,
                  expect=r"no packed float32 arithmetic.*scalar: ")
    assert "wraparound" in msg
    rejects(checks.check_matmul_blocked, matmul_ijk,
            expect=r"no packed float32 arithmetic.*scalar: ")


# ---------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------


def saxpy_counts(n):
    return 2 * n, 12 * n


def dot_counts(n):
    return 2 * n, 8 * n


def matmul_counts(n):
    return 2 * n**3, 12 * n**2


def test_counts_accept_the_conventions_and_exact_variants(capsys):
    checks.check_counts(saxpy_counts, dot_counts, matmul_counts)
    checks.check_counts(saxpy_counts, lambda n: (2 * n - 1, 8.0 * n),
                        lambda n: (n * n * (2 * n - 1), 3 * 4 * n * n))
    assert capsys.readouterr().out.count("check_counts passed (9 cases)") == 2


@pytest.mark.parametrize("wrong, expect", [
    ((lambda n: (2 * n, 8 * n), dot_counts, matmul_counts),
     r"saxpy_counts\(1000\).*expected 12,000, got 8,000.*out is written"),
    ((lambda n: (n, 12 * n), dot_counts, matmul_counts),
     r"flops: expected 2,000, got 1,000.*2 flops"),
    ((lambda n: (2 * n, 16 * n), dot_counts, matmul_counts),
     r"write-allocate"),
    ((lambda n: (12 * n, 2 * n), dot_counts, matmul_counts),
     r"swapped"),
    ((saxpy_counts, lambda n: (2 * n, 12 * n), matmul_counts),
     r"dot_counts\(1000\).*result is one number"),
    ((saxpy_counts, dot_counts, lambda n: (n**3, 12 * n**2)),
     r"matmul_counts\(256\).*2 n\^3"),
    ((saxpy_counts, dot_counts, lambda n: (2 * n**3, 8 * n**3)),
     r"matmul_counts\(256\).*every load counted"),
    ((saxpy_counts, dot_counts, lambda n: (2 * n**3, 16 * n**2)),
     r"c is counted twice"),
    ((lambda n: 2 * n / (12 * n), dot_counts, matmul_counts),
     r"expected a tuple \(flops, bytes\)"),
    ((lambda n: (2 * n, None), dot_counts, matmul_counts),
     r"bytes: expected a number, got None"),
])
def test_counts_reject_miscounts(wrong, expect):
    rejects(checks.check_counts, *wrong, expect=expect)


def test_counts_learner_error_is_reported():
    raises_cleanly(checks.check_counts, boom, dot_counts, matmul_counts,
                   expect=r"bug")
