"""Device report and CUDA backend choice, on whatever machine the tests run."""

import os
import subprocess
import sys

from model2metal import device


def test_cpu_info_is_consistent():
    cpu = device.cpu_info()
    assert cpu.model and cpu.arch
    assert 1 <= cpu.usable_cores <= cpu.logical_cores
    assert cpu.floats_per_vector == cpu.widest_vector_bits // 32
    if cpu.arch == "x86_64":
        assert "SSE2" in cpu.simd and cpu.widest_vector_bits >= 128
        assert cpu.widest_simd in cpu.simd


def test_widest_simd_names_the_register_width(monkeypatch):
    flags = "fpu sse2 sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni"
    monkeypatch.setattr(
        device, "_proc_cpuinfo", lambda: {"model name": "Test CPU", "flags": flags}
    )
    monkeypatch.setattr(device.platform, "machine", lambda: "x86_64")
    cpu = device.cpu_info()
    assert cpu.widest_simd == "AVX-512" and cpu.widest_vector_bits == 512
    assert cpu.floats_per_vector == 16
    monkeypatch.setattr(
        device,
        "_proc_cpuinfo",
        lambda: {"model name": "Test CPU", "flags": "sse2 avx avx2 fma"},
    )
    assert device.cpu_info().widest_simd == "AVX2"
    assert device.hardware_string().endswith("AVX2)")


def test_arm_neon_is_recognised(monkeypatch):
    monkeypatch.setattr(
        device,
        "_proc_cpuinfo",
        lambda: {"CPU part": "0xd0c", "Features": "fp asimd asimddp sve"},
    )
    monkeypatch.setattr(device.platform, "machine", lambda: "aarch64")
    cpu = device.cpu_info()
    assert cpu.simd[:2] == ["NEON", "NEON dot product"] and cpu.widest_simd == "NEON"


def test_report_names_every_line():
    text = device.report()
    for label in ("CPU", "cores", "SIMD features", "widest vector", "CUDA backend"):
        assert label in text


def test_backend_matches_the_driver():
    backend = device.select_cuda_backend()
    if device.cuda_driver_gpu_count() == 0 and "M2M_CUDA" not in os.environ:
        assert backend == "simulator"
    assert device.cuda_size(simulator=1, gpu=2) == (1 if backend == "simulator" else 2)


def run_fresh(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ
    )


def test_choice_is_made_before_numba_and_forced_by_env():
    code = (
        "from model2metal import device; b = device.select_cuda_backend(); "
        "from numba.core import config; print(b, config.ENABLE_CUDASIM)"
    )
    out = run_fresh(code, M2M_CUDA="simulator")
    assert out.stdout.split() == ["simulator", "1"], out.stderr


def test_importing_numba_first_is_explained():
    code = "import numba; from model2metal import device; device.select_cuda_backend()"
    out = run_fresh(code, M2M_CUDA="simulator")
    assert out.returncode != 0
    assert "restart the kernel and run the set-up cell first" in out.stderr


def test_report_lines_fit_the_page_and_keep_features_whole():
    from model2metal.device import _wrap_items

    features = ["SSE2", "SSE4.2", "AVX", "AVX2", "FMA", "AVX-512", "AVX-512BW",
                "AVX-512 VNNI", "AVX-512 BF16", "AMX-TILE", "AMX-INT8"]
    text = "SIMD features  : " + _wrap_items(features, 75 - 17, 17)
    lines = text.splitlines()
    assert len(lines) > 1 and all(len(line) <= 75 for line in lines)
    joined = " ".join(line[17:] for line in lines)
    assert joined.split(", ") == features  # no feature split across lines
