"""hwkit: the roofline's arithmetic, the assembly helpers on known text, and the
measurements on small problems (their values are the machine's; their bookkeeping is
checked)."""


import matplotlib
import numpy as np
import pytest

from model2metal import hwkit, timing

matplotlib.use("Agg")

x86 = pytest.mark.skipif(
    not hwkit.is_x86(),
    reason="reads x86 assembly",
)


def test_roofline_bounds_and_ridge_point():
    r = hwkit.Roofline(peak_gflops=100.0, bandwidth_gbs=25.0, hardware="test CPU")
    assert r.ridge_point == 4.0
    assert r.attainable(0.5) == 12.5  # memory roof: 25 GB/s x 0.5 flop/byte
    assert r.attainable(4.0) == 100.0 and r.attainable(40.0) == 100.0
    np.testing.assert_allclose(r.attainable(np.array([1.0, 8.0])), [25.0, 100.0])
    assert r.bound(1.0) == "memory" and r.bound(4.0) == "compute"
    assert r.fraction(2.0, 25.0) == 0.5
    assert "ridge point 4.00 flop/byte" in str(r) and "test CPU" in str(r)


@pytest.mark.parametrize("peak, bw", [(0.0, 10.0), (10.0, -1.0)])
def test_roofline_rejects_nonpositive_numbers(peak, bw):
    with pytest.raises(ValueError):
        hwkit.Roofline(peak, bw)


def test_roofline_from_measurements():
    def made(unit, work, seconds):
        t = timing.TimingResult("m", [seconds], number=1, warmup=0, hardware="x")
        return hwkit.Measured("m", unit, work, t)

    r = hwkit.Roofline.measured(made("GFLOP/s", 6e9, 0.1), made("GB/s", 2e9, 0.1))
    assert (r.peak_gflops, r.bandwidth_gbs) == pytest.approx((60.0, 20.0))
    assert r.ridge_point == pytest.approx(3.0)


def test_measured_reports_median_and_quartiles():
    t = timing.TimingResult("copy", [1.0, 2.0, 4.0], number=1, warmup=0)
    m = hwkit.Measured("copy", "GB/s", 8e9, t)
    # quartiles of the times: 1.5 s and 3 s
    assert m.value == 4.0 and m.low == pytest.approx(8 / 3)
    assert m.high == pytest.approx(16 / 3)
    assert str(m).startswith("copy: 4.0 GB/s (IQR 2.7–5.3, 3 samples)")


def test_plot_marks_ridge_and_labels_points():
    r = hwkit.Roofline(200.0, 30.0, "test CPU")
    ax = hwkit.plot_roofline(r, {"saxpy": (1 / 6, 4.5), "matmul": (40.0, 30.0)})
    texts = [t.get_text() for t in ax.texts]
    assert "saxpy" in texts and "matmul" in texts
    assert any(t.startswith("ridge 6.7") for t in texts)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo <= 1 / 6 and hi >= 40.0
    ax2 = hwkit.plot_roofline(r, [("dot", 0.25, 7.0)])
    assert "dot" in [t.get_text() for t in ax2.texts]


def test_dram_elements_scale_with_the_cache(monkeypatch):
    monkeypatch.setattr(hwkit, "last_level_cache_bytes", lambda: 96 << 20)
    assert hwkit.dram_elements() == 2 * (96 << 20) // 4
    monkeypatch.setattr(hwkit, "last_level_cache_bytes", lambda: 1 << 20)
    assert hwkit.dram_elements(itemsize=8) == (64 << 20) // 8  # the minimum
    monkeypatch.setattr(hwkit, "last_level_cache_bytes", lambda: 1 << 30)
    assert hwkit.dram_elements() == (512 << 20) // 4  # the maximum


def test_last_level_cache_is_a_size_or_unknown():
    size = hwkit.last_level_cache_bytes()
    assert size is None or size >= 1 << 15


_ASM = """\
.LBB0_3:                          # vfmaddps in a comment does not count
\tvmovups\t(%rdi,%rax,4), %zmm1
\tvfmadd213ps\t(%rsi,%rax,4), %zmm0, %zmm1
\tvaddps\t%ymm2, %ymm3, %ymm3
\tvaddss\t%xmm1, %xmm0, %xmm0
\tvxorps\t%xmm4, %xmm4, %xmm4
"""


def test_assembly_helpers_on_known_text():
    assert hwkit.packed_float_ops(_ASM) == {"vfmadd213ps", "vaddps"}
    assert hwkit.vector_registers(_ASM) == {"zmm", "ymm"}  # not the scalar xmm
    scalar = "\tvmulss\t%xmm2, %xmm0, %xmm0\n\tvaddss\t(%rsi), %xmm0, %xmm0\n"
    assert hwkit.packed_float_ops(scalar) == set()
    assert hwkit.vector_registers(scalar) == set()


def test_numba_asm_needs_a_compiled_function():
    from numba import njit

    with pytest.raises(ValueError, match="not a Numba"):
        hwkit.numba_asm(len)

    @njit
    def f(x):
        return x + 1

    with pytest.raises(ValueError, match="not compiled yet"):
        hwkit.numba_asm(f)
    f(1.0)
    assert "ret" in hwkit.numba_asm(f)


@x86
def test_vector_lanes_is_a_register_width():
    assert hwkit.vector_lanes() in (4, 8, 16)
    assert hwkit.accumulators() >= max(64, 8 * hwkit.vector_lanes())


def test_copy_bandwidth_bookkeeping():
    m = hwkit.measure_copy_bandwidth(n=1 << 16, repeat=3)
    assert m.unit == "GB/s" and m.work == 8 * (1 << 16)
    assert len(m.result.samples) == 3 and m.result.warmup == 2
    assert 0 < m.low <= m.value <= m.high


def test_copy_call_copies_its_own_arrays():
    call = hwkit.copy_call(1000)
    src, dst = call.args
    assert src.dtype == dst.dtype == np.float32 and src.shape == (1000,)
    src[:] = np.arange(1000)
    assert call() is None and np.array_equal(dst, src)


@pytest.mark.parametrize("threads", [1, 2])
def test_peak_bookkeeping(threads):
    m = hwkit.measure_peak_gflops(threads=threads, iters=2000, repeat=3)
    assert m.unit == "GFLOP/s"
    assert m.work == 2.0 * hwkit.accumulators() * 2000 * threads
    assert m.value > 0 and str(threads if threads > 1 else "1 core") in m.name


@x86
def test_peak_kernel_is_packed_simd():
    ops = hwkit.peak_kernel_ops()
    assert ops and all(op.endswith("ps") for op in ops)
