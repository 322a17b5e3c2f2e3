"""cudakit: PTX without a GPU, and the simulator's memory tracer (counts,
coalescing, bank conflicts, races, barrier divergence) on kernels whose answers are
known by hand."""

import numpy as np
import pytest

from model2metal import cudakit, device

if device.select_cuda_backend() != "simulator":  # pragma: no cover - GPU machines
    pytest.skip("the tracer runs in the simulator", allow_module_level=True)

from numba import cuda, float32  # noqa: E402  (after the backend is chosen)

TILE = 4


@cuda.jit
def add(x, y, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[i] + y[i]


@cuda.jit
def gather(x, out, stride):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[(i * stride) % x.size]


@cuda.jit
def shift_left(x, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[i - 1]  # wraps around at i = 0


@cuda.jit
def hist_plain(x, h):
    i = cuda.grid(1)
    if i < x.size:
        h[x[i]] += 1


@cuda.jit
def hist_atomic(x, h):
    i = cuda.grid(1)
    if i < x.size:
        cuda.atomic.add(h, x[i], 1)


def tiled(sync_after: bool, sync_before: bool = True):
    @cuda.jit
    def kernel(a, b, c):
        sa = cuda.shared.array((TILE, TILE), float32)
        sb = cuda.shared.array((TILE, TILE), float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        acc = float32(0.0)
        for t in range(a.shape[1] // TILE):
            sa[ty, tx] = a[row, t * TILE + tx]
            sb[ty, tx] = b[t * TILE + ty, col]
            if sync_before:
                cuda.syncthreads()
            for k in range(TILE):
                acc += sa[ty, k] * sb[k, tx]
            if sync_after:
                cuda.syncthreads()
        c[row, col] = acc
    return kernel


@cuda.jit
def divergent_barrier(x):
    sx = cuda.shared.array(32, float32)
    i = cuda.threadIdx.x
    sx[i] = x[i]
    if i < 16:
        cuda.syncthreads()
    x[i] = sx[31 - i]


@cuda.jit
def column_read(s_out, stride):
    buf = cuda.shared.array(1024, float32)
    i = cuda.threadIdx.x
    buf[i * stride] = i
    s_out[i] = buf[i * stride]


def test_counts_and_coalescing_of_a_vector_add():
    n = 100
    x, y = np.arange(n, dtype=np.float32), np.ones(n, np.float32)
    out = np.zeros(n, np.float32)
    tr = cudakit.trace(add, 4, 32, x, y, out)
    np.testing.assert_array_equal(out, x + 1)  # results land in the caller's array
    assert (tr.global_reads, tr.global_writes) == (2 * n, n)
    assert tr.count(array="x") == n and tr.count(kind="w", array="x") == 0
    # 3 full warps of 32 floats = 4 sectors each; the last warp reads 4 floats = 1
    assert tr.sectors_per_request("x") == pytest.approx((3 * 4 + 1) / 4)
    assert tr.hazards() == [] and tr.barrier_divergence() == []
    assert "global reads" in tr.table(outputs=n) and "2.00" in tr.table(outputs=n)


@pytest.mark.parametrize("stride, sectors", [(1, 4), (2, 8), (8, 32), (32, 32)])
def test_strided_reads_touch_more_sectors(stride, sectors):
    x = np.zeros(32 * 64, np.float32)
    out = np.zeros(32, np.float32)
    tr = cudakit.trace(gather, 1, 32, x, out, stride)
    assert tr.sectors_per_request("x") == sectors
    assert tr.efficiency("x") == pytest.approx(4 / sectors)


def test_negative_indices_are_counted_because_numba_wraps_them():
    x = np.arange(8, dtype=np.float32)
    out = np.zeros(8, np.float32)
    tr = cudakit.trace(shift_left, 1, 8, x, out)
    assert out[0] == 7 and tr.negative_indices == 1


@cuda.jit
def no_guard(x, out):
    i = cuda.grid(1)
    out[i] = x[i]


def test_out_of_bounds_raises_like_the_simulator():
    x = np.ones(40, np.float32)
    out = np.zeros(40, np.float32)
    with pytest.raises(IndexError, match="tid="):
        cudakit.trace(no_guard, 2, 32, x, out)


def test_a_histogram_without_atomics_is_a_race_with_them_none():
    x = (np.arange(96) % 5).astype(np.int32)
    for kernel, racy in ((hist_plain, True), (hist_atomic, False)):
        h = np.zeros(5, np.int32)
        tr = cudakit.trace(kernel, 3, 32, x, h)
        assert bool(tr.hazards()) == racy
    np.testing.assert_array_equal(h, np.bincount(x, minlength=5))
    assert tr.atomics == 96
    text = str(cudakit.trace(hist_plain, 3, 32, x, np.zeros(5, np.int32))
               .hazards()[0])
    assert text.startswith("global h[") and "wrote it, thread" in text


@pytest.mark.parametrize("after, before, racy", [
    (True, True, False), (False, True, True), (True, False, True)])
def test_tiled_matmul_races_without_either_barrier(after, before, racy):
    n = 8
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    c = np.zeros((n, n), np.float32)
    tr = cudakit.trace(tiled(after, before), (2, 2), (TILE, TILE), a, b, c)
    assert bool(tr.hazards()) == racy
    assert all(h.space == "shared" for h in tr.hazards())
    # tiling: each output reads 2*n/TILE global values instead of 2*n
    assert tr.global_reads == 2 * n * n * n // TILE
    assert tr.shared_reads == 2 * n * n * n
    if not racy:
        np.testing.assert_allclose(c, a @ b, rtol=1e-5)


def test_barrier_in_a_divergent_branch_is_reported():
    x = np.arange(32, dtype=np.float32)
    tr = cudakit.trace(divergent_barrier, 1, 32, x)
    (msg,) = tr.barrier_divergence()
    assert "passed 0 barrier(s)" in msg and "passed 1" in msg


@pytest.mark.parametrize("stride, passes", [(1, 1), (2, 2), (32, 32), (33, 1)])
def test_bank_conflicts(stride, passes):
    out = np.zeros(32, np.float32)
    tr = cudakit.trace(column_read, 1, 32, out, stride)
    assert tr.bank_conflicts() == passes


def test_ptx_of_a_kernel_without_a_gpu():
    text = cudakit.ptx(add, "void(float32[:], float32[:], float32[:])")
    assert text.cc == (8, 0) and ".target sm_80" in text.text
    assert text.find(r"^setp\.") and text.find(r"^@%p\d+ bra")
    assert text.find(r"^add\.f32") and text.find(r"^st\.")
    assert "_ZN" not in text.text  # mangled names shortened
    assert max(map(len, text.body().splitlines())) <= 80


def test_ptx_carries_constants_and_device_functions():
    @cuda.jit(device=True)
    def twice(v):
        return 2 * v

    @cuda.jit
    def use(x):
        i = cuda.grid(1)
        if i < x.size:
            x[i] = twice(x[i]) + TILE

    text = cudakit.ptx(use, "void(float32[:])")
    assert text.find(r"^(add|fma|mul)\.")


TABLE = np.zeros(3)


@cuda.jit
def uses_array(x):
    x[0] = TABLE[0]


@cuda.jit
def mistyped(x):
    x[0] = undefined_name  # noqa: F821


def test_ptx_refuses_globals_it_cannot_carry_and_explains_failures():
    with pytest.raises(cudakit.PtxError, match="global 'TABLE'"):
        cudakit.ptx(uses_array, "void(float32[:])")
    with pytest.raises(cudakit.PtxError, match="undefined_name"):
        cudakit.ptx(mistyped, "void(float32[:])")


@cuda.jit
def partial_sums(x, out):
    s = cuda.shared.array(32, float32)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    if i < x.size:  # the last block leaves its tail slots unwritten
        s[t] = x[i]
    cuda.syncthreads()
    if t == 0:
        acc = float32(0.0)
        for k in range(32):
            acc += s[k]
        out[cuda.blockIdx.x] = acc


def test_reads_of_unwritten_shared_memory_are_reported_and_poisoned():
    x = np.ones(40, np.float32)
    out = np.zeros(2, np.float32)
    tr = cudakit.trace(partial_sums, 2, 32, x, out)
    assert out[0] == 32 and np.isnan(out[1])
    msgs = tr.uninitialised_reads()
    assert msgs and "block 1 before any thread wrote it" in msgs[0]
    assert len(tr.uninitialised) == 32 - 8


def test_tracing_in_a_separate_simulator_process_gives_the_same_trace():
    """The path a machine with a GPU takes: the kernel's source is traced in a
    fresh process that uses the simulator."""
    x = (np.arange(96) % 5).astype(np.int32)
    here = cudakit.trace(hist_plain, 3, 32, x, np.zeros(5, np.int32))
    h = np.zeros(5, np.int32)
    there = cudakit._trace_in_simulator_process(hist_plain, 3, 32, (x, h))
    np.testing.assert_array_equal(h, np.bincount(x, minlength=5))
    assert (there.global_reads, there.global_writes) == (
        here.global_reads, here.global_writes)
    assert bool(there.hazards()) and there.kernel == "hist_plain"
    with pytest.raises(IndexError, match="tid="):
        cudakit._trace_in_simulator_process(
            no_guard, 2, 8, (np.ones(8, np.float32), np.ones(8, np.float32)))


@cuda.jit
def stub(x):
    raise NotImplementedError("lab05_03: write the kernel")


def test_a_stub_keeps_its_message_so_checks_let_it_through():
    for run in (cudakit.trace, cudakit.launch):
        with pytest.raises(NotImplementedError, match="^lab05_03: write"):
            run(stub, 1, 4, np.zeros(4, np.float32))


def test_without_barrier_removes_one_syncthreads():
    n = 8
    a = np.ones((n, n), np.float32)
    full = tiled(True, True)
    for which, racy in ((0, True), (-1, True)):
        copy = cudakit.without_barrier(full, which)
        tr = cudakit.trace(copy, (2, 2), (TILE, TILE), a, a,
                           np.zeros((n, n), np.float32))
        assert bool(tr.hazards()) == racy
        assert {h.array for h in tr.hazards(limit=1000)} == {"sa", "sb"}
    assert cudakit.without_barrier(add) is add
    # a machine with a GPU traces the copy from its source, in a simulator process
    copy = cudakit.without_barrier(full, -1)
    there = cudakit._trace_in_simulator_process(
        copy, (2, 2), (TILE, TILE), (a, a, np.zeros((n, n), np.float32)))
    assert {h.array for h in there.hazards(limit=1000)} == {"sa", "sb"}
