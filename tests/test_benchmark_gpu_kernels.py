"""benchmarks/gpu_kernels.py: its kernels are right in the simulator, its check
catches a wrong one, and the register-tiled kernels keep their accumulators in registers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba import cuda, float32

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_kernels.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu_kernels", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cuda.jit
def matmul_drops_last_k(A, B, C):
    col, row = cuda.grid(2)
    if row < C.shape[0] and col < C.shape[1]:
        acc = float32(0.0)
        for k in range(A.shape[1] - 1):
            acc += A[row, k] * B[k, col]
        C[row, col] = acc


def test_every_kernel_matches_numpy_in_the_simulator(bench, capsys):
    assert bench.check_in_simulator() == 0
    out = capsys.readouterr().out
    for name in bench.matmul_kernels():
        assert f"{name:16} 21x37 @ 37x19: matches NumPy" in out
    assert "WRONG" not in out and "no times" in out


def test_the_check_catches_a_wrong_kernel(bench, capsys):
    launch = bench.matmul_kernels()["naive"][1]
    assert bench.check_in_simulator({"wrong": (matmul_drops_last_k, launch)}) == 1
    assert "wrong            21x37 @ 37x19: WRONG" in capsys.readouterr().out


def test_register_tiles_cover_the_block(bench):
    for tm, bk in bench.REGISTER_SHAPES:
        side = bench.THREADS * tm
        # every staged value is loaded by exactly one thread
        assert side * bk % (bench.THREADS ** 2) == 0


def test_register_kernels_keep_accumulators_in_registers():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--ptx"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {line.split("local")[0].strip(): line for line in
             done.stdout.splitlines() if "local-memory" in line}
    for tm, fma in ((4, 16), (8, 64)):
        line = lines[f"register {tm}x{tm}"]
        assert "local-memory instructions   0" in line, line
        # the i-j loops unrolled: at least tm * tm FMAs on registers per k
        assert int(line.split()[-1]) >= fma, line


def test_without_a_gpu_it_says_what_to_run_instead():
    if cuda.is_available() and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        pytest.skip("a GPU is present")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode == 0:
        pytest.skip("a GPU answered")
    assert done.returncode == 2 and "--simulate" in done.stdout


def test_gpu_session_runner_executes_cells_in_order(tmp_path):
    """The GPU session's notebook runner: magics become ``pass``, the cells share
    one namespace, and a kernel's source stays readable (cudakit.ptx needs it)."""
    spec = importlib.util.spec_from_file_location(
        "gpu_session", SCRIPT.parent / "gpu_session.py")
    session = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(session)
    cells = [
        "if False:\n    %pip install nothing\nx = 2",
        "def twice(v):\n    return v * x",
        "import inspect\nprint(twice(21), inspect.getsource(twice).split()[1])",
    ]
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": [
        {"cell_type": "code", "source": c} for c in cells]}))
    done = subprocess.run([sys.executable, "-c", session.RUNNER, str(notebook)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "42 twice(v):" in done.stdout
