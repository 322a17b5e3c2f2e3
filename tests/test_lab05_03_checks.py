"""Lab 05_03's checks reject the classic mistakes of shared-memory kernels (a
missing or divergent syncthreads, a reduction right only for multiples of the
block, a histogram without atomics, a "tiled" matmul that still reads global
memory in its inner loop) and accept other correct kernels (early-exit-free
guards written differently, a grid-stride histogram, a shared-memory privatised
histogram, a reduction with sequential addressing or with interleaved pairs)."""

import numpy as np
import pytest
from check_helpers import raises_cleanly, rejects

from model2metal import device
from model2metal.checks import lab05_03 as checks

if device.select_cuda_backend() != "simulator":  # pragma: no cover
    pytest.skip("these tests feed kernels to the simulator", allow_module_level=True)

from numba import cuda, float32, int32  # noqa: E402

T = 4  # a small tile keeps the simulator fast
B = 16


def make_tiled(first_sync=True, second_sync=True, zero_pad=True,
               global_inner=False, early_return=False, sync_in_branch=False,
               swap=False):
    @cuda.jit
    def kernel(A, B_, C):
        sa = cuda.shared.array((T, T), float32)
        sb = cuda.shared.array((T, T), float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row = cuda.blockIdx.y * T + ty
        col = cuda.blockIdx.x * T + tx
        if swap:
            row, col = cuda.blockIdx.x * T + tx, cuda.blockIdx.y * T + ty
        if early_return and (row >= C.shape[0] or col >= C.shape[1]):
            return
        acc = float32(0.0)
        for t in range((A.shape[1] + T - 1) // T):
            k = t * T
            if row < A.shape[0] and k + tx < A.shape[1]:
                sa[ty, tx] = A[row, k + tx]
            elif zero_pad:
                sa[ty, tx] = 0.0
            if k + ty < B_.shape[0] and col < B_.shape[1]:
                sb[ty, tx] = B_[k + ty, col]
            elif zero_pad:
                sb[ty, tx] = 0.0
            if first_sync and not sync_in_branch:
                cuda.syncthreads()
            if sync_in_branch and row < C.shape[0]:
                cuda.syncthreads()
            for j in range(T):
                if global_inner:
                    if k + j < A.shape[1] and row < A.shape[0] \
                            and col < B_.shape[1]:
                        acc += A[row, k + j] * B_[k + j, col]
                else:
                    acc += sa[ty, j] * sb[j, tx]
            if second_sync:
                cuda.syncthreads()
        if row < C.shape[0] and col < C.shape[1]:
            C[row, col] = acc
    return kernel


@cuda.jit
def tiled_flat(A, B_, C):
    """Correct, written differently: 1-D shared arrays, guards as min/where."""
    sa = cuda.shared.array(T * T, float32)
    sb = cuda.shared.array(T * T, float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row, col = cuda.grid(2)[1], cuda.grid(2)[0]
    m, kk, n = A.shape[0], A.shape[1], B_.shape[1]
    acc = float32(0.0)
    t = 0
    while t < kk:
        a = float32(0.0)
        if row < m and t + tx < kk:
            a = A[row, t + tx]
        sa[ty * T + tx] = a
        b = float32(0.0)
        if t + ty < kk and col < n:
            b = B_[t + ty, col]
        sb[ty * T + tx] = b
        cuda.syncthreads()
        for j in range(T):
            acc += sa[ty * T + j] * sb[j * T + tx]
        cuda.syncthreads()
        t += T
    if row < m and col < n:
        C[row, col] = acc


def test_matmul_accepts_correct_kernels():
    checks.check_matmul_tiled(make_tiled(), T)
    checks.check_matmul_tiled(tiled_flat, T)


@pytest.mark.parametrize("kwargs, expect", [
    (dict(first_sync=False), r"data race.*shared s[ab]\[.*after every thread "
                             r"has stored"),
    (dict(second_sync=False), r"data race.*shared s[ab]\["),
    (dict(early_return=True), r"not every thread reached the same barriers"
                              r".*not around the barrier"),
    (dict(sync_in_branch=True), r"not every thread reached the same barriers"),
    (dict(zero_pad=False), r"not multiples.*C\[\d+, \d+\]: expected .* got .*"
                           r"before any thread wrote it.*fill their tile slot"),
    (dict(global_inner=True), r"read \d+ values from global memory.*at most 2"),
    (dict(swap=True), r"C\[\d+, \d+\]: expected|IndexError"),
])
def test_matmul_rejects(kwargs, expect):
    rejects(checks.check_matmul_tiled, make_tiled(**kwargs), T, expect=expect)


def test_matmul_rejects_writing_c_in_the_loop_and_bad_arguments():
    @cuda.jit
    def accumulate_in_c(A, B_, C):
        row = cuda.blockIdx.y * T + cuda.threadIdx.y
        col = cuda.blockIdx.x * T + cuda.threadIdx.x
        if row < C.shape[0] and col < C.shape[1]:
            C[row, col] = 0.0
            for k in range(A.shape[1]):
                C[row, col] += A[row, k] * B_[k, col]

    rejects(checks.check_matmul_tiled, accumulate_in_c, T,
            expect=r"C was written \d+ times")
    rejects(checks.check_matmul_tiled, lambda a, b, c: None, T,
            expect="expected a @cuda.jit kernel")
    rejects(checks.check_matmul_tiled, make_tiled(), "4", expect="int in 1..32")


def test_matmul_reports_a_kernel_that_raises():
    @cuda.jit
    def broken(A, B_, C):
        C[0, 0] = A[0, 0] + undefined  # noqa: F821

    raises_cleanly(checks.check_matmul_tiled, broken, T, expect="NameError")


def make_sum(fill=True, sync_in_branch=False, no_sync=False, thread0=False,
             sequential=True):
    @cuda.jit
    def kernel(x, partial):
        s = cuda.shared.array(B, float32)
        t = cuda.threadIdx.x
        i = cuda.blockIdx.x * B + t
        if thread0:
            if t == 0:
                acc = float32(0.0)
                for j in range(B):
                    if cuda.blockIdx.x * B + j < x.size:
                        acc += x[cuda.blockIdx.x * B + j]
                partial[cuda.blockIdx.x] = acc
            return
        if i < x.size:
            s[t] = x[i]
        elif fill:
            s[t] = 0.0
        cuda.syncthreads()
        if sequential:
            stride = B // 2
            while stride > 0:
                if t < stride:
                    s[t] += s[t + stride]
                    if sync_in_branch:
                        cuda.syncthreads()
                if not sync_in_branch and not no_sync:
                    cuda.syncthreads()
                stride //= 2
        else:  # interleaved pairs: 2*stride*t
            stride = 1
            while stride < B:
                j = 2 * stride * t
                if j < B:
                    s[j] += s[j + stride]
                cuda.syncthreads()
                stride *= 2
        if t == 0:
            partial[cuda.blockIdx.x] = s[0]
    return kernel


def test_block_sum_accepts_both_addressings():
    checks.check_block_sum(make_sum(), B)
    checks.check_block_sum(make_sum(sequential=False), B)


@pytest.mark.parametrize("kwargs, expect", [
    (dict(fill=False), r"partial\[\d\]: expected .* got nan.*"
                       r"before any thread wrote it.*neutral value 0"),
    (dict(sync_in_branch=True), r"not every thread reached the same barriers"),
    (dict(no_sync=True), r"data race on|data race: shared s\["),
    (dict(thread0=True), r"used no shared memory|one thread read \d+ values"),
])
def test_block_sum_rejects(kwargs, expect):
    rejects(checks.check_block_sum, make_sum(**kwargs), B, expect=expect)


def test_block_sum_rejects_a_block_that_is_not_a_power_of_two():
    rejects(checks.check_block_sum, make_sum(), 12, expect="power of two")


@cuda.jit
def hist_atomic(values, counts):
    i = cuda.grid(1)
    if i < values.size:
        cuda.atomic.add(counts, values[i], 1)


@cuda.jit
def hist_plain(values, counts):
    i = cuda.grid(1)
    if i < values.size:
        counts[values[i]] += 1


@cuda.jit
def hist_grid_stride(values, counts):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, values.size, step):
        cuda.atomic.add(counts, values[i], 1)


@cuda.jit
def hist_private(values, counts):
    local = cuda.shared.array(64, int32)
    t = cuda.threadIdx.x
    j = t
    while j < counts.size:
        local[j] = 0
        j += cuda.blockDim.x
    cuda.syncthreads()
    i = cuda.grid(1)
    if i < values.size:
        cuda.atomic.add(local, values[i], 1)
    cuda.syncthreads()
    j = t
    while j < counts.size:
        cuda.atomic.add(counts, j, local[j])
        j += cuda.blockDim.x


def test_histogram_accepts_correct_kernels():
    for kernel in (hist_atomic, hist_grid_stride, hist_private):
        checks.check_histogram(kernel, B)


def test_histogram_rejects_a_race_and_a_missing_guard():
    rejects(checks.check_histogram, hist_plain, B,
            expect=r"data race: global counts\[\d\].*atomic add")

    @cuda.jit
    def no_guard(values, counts):
        cuda.atomic.add(counts, values[cuda.grid(1)], 1)

    rejects(checks.check_histogram, no_guard, B,
            expect=r"IndexError.*guard every global load")

    @cuda.jit
    def off_by_one(values, counts):
        i = cuda.grid(1)
        if i < values.size - 1:
            cuda.atomic.add(counts, values[i], 1)

    rejects(checks.check_histogram, off_by_one, B, expect=r"counts\[\d\]: expected")


def test_a_stub_passes_through():
    @cuda.jit
    def stub(values, counts):
        raise NotImplementedError("lab05_03: write histogram")

    with pytest.raises(NotImplementedError, match="^lab05_03"):
        checks.check_histogram(stub, B)
