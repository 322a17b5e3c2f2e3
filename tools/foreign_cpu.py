"""Make this machine compute floats the way another learner's CPU would.

The ``foreign`` phase of ``make test`` re-executes every solution with nbval under the
settings of :func:`foreign_env` and must pass with the outputs stored from a native run.
What nbval compares must therefore not depend on the CPU, the BLAS code path or the
thread count (CURRICULUM §4, CONTRIBUTING.md).

What each library of the pinned versions honours, checked by running it on an AMD EPYC
(Zen 4, AVX-512) and reported again by :func:`report` on every run:

=============================  ===================================================
setting                        effect
=============================  ===================================================
``ATEN_CPU_CAPABILITY``        torch's own vectorised kernels (elementwise,
``=default``                   reductions, BatchNorm, optimisers) use their scalar
                               build instead of AVX2 / AVX-512; honoured.
``ONEDNN_MAX_CPU_ISA=SSE41``   torch's convolutions (oneDNN) use SSE4.1 kernels;
                               honoured on x86, ignored on ARM.
``MKL_ENABLE_INSTRUCTIONS``    torch's float matmul (MKL). Honoured on Intel CPUs;
``=SSE4_2``                    on AMD CPUs MKL ignores it (same bits), so
``MKL_CBWR=COMPATIBLE``        the conditional-reproducibility branch, which every
                               CPU honours, is set as well.
``OPENBLAS_CORETYPE``          NumPy's matmul (its bundled OpenBLAS) runs the kernels
                               of an old core (``Prescott`` on x86, ``ARMV8`` on ARM).
``NPY_DISABLE_CPU_FEATURES``   NumPy's SIMD dispatch (exp, tanh, sorting, ...) falls
                               back to its compiled baseline; the list is the
                               dispatch targets this NumPy build has.
``NUMBA_CPU_NAME=generic``     Numba compiles for a generic CPU of the architecture
                               (SSE2 on x86-64) instead of this one.
``M2M_TVM_TARGET=llvm``        ``model2metal.tvmkit.host_target`` returns TVM's
                               generic LLVM target instead of this CPU's.
thread counts                  ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
                               ``OPENBLAS_NUM_THREADS``, ``NUMBA_NUM_THREADS`` and
                               ``TVM_NUM_THREADS`` are set to a count other than the
                               native one (1, or 2 on a one-core machine); a notebook
                               that calls ``torch.set_num_threads`` keeps its own.
=============================  ===================================================

Not perturbed: ONNX Runtime's MLAS kernels choose their ISA from CPUID and have no
setting for it, so ONNX Runtime results are only as portable as the tolerance they are
compared with; XGBoost (MetaSchedule's cost model) likewise.

    python tools/foreign_cpu.py          # the settings and what they change here
    python tools/foreign_cpu.py --nbval  # that report, then nbval under the settings
    eval "$(python tools/foreign_cpu.py --env)"  # this shell becomes "another CPU"
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from run_tests import THREAD_VARIABLES, nbval_command

ROOT = Path(__file__).resolve().parents[1]

#: Every variable :func:`foreign_env` may set (the native run removes them all).
FOREIGN_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "OPENBLAS_CORETYPE",
    "NPY_DISABLE_CPU_FEATURES",
    "NUMBA_CPU_NAME",
    "M2M_TVM_TARGET",
    *THREAD_VARIABLES,
)


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.cache
def numpy_dispatch_targets(python: str = sys.executable) -> tuple[str, ...]:
    """The SIMD targets this NumPy build dispatches to at run time (beyond baseline);
    asked once per process (it starts a Python)."""
    code = (
        "from numpy._core._multiarray_umath import __cpu_dispatch__ as d;"
        "print(' '.join(d))"
    )
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=native_env()
    )
    return tuple(out.stdout.split())


def foreign_env(python: str = sys.executable) -> dict[str, str]:
    """The settings of the foreign phase (only these; merge them into an env)."""
    arm = platform.machine().lower() in ("aarch64", "arm64")
    threads = "2" if usable_cores() == 1 else "1"
    env = {
        "ATEN_CPU_CAPABILITY": "default",
        "OPENBLAS_CORETYPE": "ARMV8" if arm else "Prescott",
        "NPY_DISABLE_CPU_FEATURES": " ".join(numpy_dispatch_targets(python)),
        "NUMBA_CPU_NAME": "generic",
        "M2M_TVM_TARGET": "llvm",
    }
    if not arm:
        env |= {
            "ONEDNN_MAX_CPU_ISA": "SSE41",
            "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
            "MKL_CBWR": "COMPATIBLE",
        }
    for name in FOREIGN_VARIABLES:
        if name.endswith("_NUM_THREADS"):
            env[name] = threads
    return env


def native_env() -> dict[str, str]:
    """``os.environ`` without any of the foreign settings: this machine as it is."""
    return {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}


# A small program that reports the active code paths and fingerprints the float
# results of each library; run once natively and once under foreign_env().
_PROBE = r"""
import hashlib, json, os
import numpy as np
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

def digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:12]

rng = np.random.default_rng(0)
a = rng.standard_normal((192, 192)).astype(np.float32)
out = {"paths": {}, "results": {}}

import torch
torch.manual_seed(0)
out["paths"]["torch kernels (ATen)"] = torch.backends.cpu.get_cpu_capability()
out["paths"]["torch threads"] = str(torch.get_num_threads())
t = torch.from_numpy(a)
out["results"]["torch matmul (MKL)"] = digest((t @ t).numpy())
x = torch.from_numpy(rng.standard_normal((4, 3, 12, 12)).astype(np.float32))
w = torch.from_numpy(rng.standard_normal((8, 3, 3, 3)).astype(np.float32))
conv = torch.nn.functional.conv2d(x, w).numpy()
out["results"]["torch conv2d (oneDNN)"] = digest(conv)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
                          torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(800, 4))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
labels = torch.arange(4)
for _ in range(10):
    loss = torch.nn.functional.cross_entropy(net(x), labels)
    opt.zero_grad(); loss.backward(); opt.step()
out["results"]["torch training steps (all of torch)"] = digest(
    torch.cat([p.detach().ravel() for p in net.parameters()]).numpy())

from threadpoolctl import threadpool_info
for pool in threadpool_info():
    if pool.get("internal_api") == "openblas":
        out["paths"]["NumPy BLAS (OpenBLAS core)"] = str(pool.get("architecture"))
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
on = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
out["paths"]["NumPy SIMD dispatch"] = " ".join(on) or "baseline only"
out["results"]["NumPy matmul (OpenBLAS)"] = digest(a @ a)
out["results"]["NumPy exp, tanh (NumPy SIMD)"] = digest(np.exp(a)) + digest(np.tanh(a))

import numba
from numba import njit
@njit(fastmath=True)
def total(v):
    s = np.float32(0.0)
    for i in range(v.size):
        s += v[i]
    return s
out["paths"]["Numba CPU"] = numba.config.CPU_NAME or __import__(
    "llvmlite.binding", fromlist=["x"]).get_host_cpu_name()
out["results"]["Numba fastmath sum (LLVM codegen)"] = repr(total(a.ravel()))
print(json.dumps(out))
"""


def _start_probe(env: dict[str, str], python: str) -> subprocess.Popen:
    return subprocess.Popen([python, "-c", _PROBE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _probe_result(started: subprocess.Popen) -> dict:
    stdout, stderr = started.communicate()
    if started.returncode != 0:
        raise RuntimeError(f"the probe failed:\n{stderr[-2000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def report(python: str = sys.executable) -> tuple[str, int]:
    """What the foreign settings change on this machine, and how many results moved."""
    settings = foreign_env(python)
    # both probes at once (one per core; nothing in them is timed)
    started = [_start_probe(env, python) for env in (native_env(), native_env() | settings)]
    native, foreign = (_probe_result(p) for p in started)
    lines = ["foreign-CPU settings:"]
    lines += [f"  {k}={v}" for k, v in settings.items()]
    lines.append("active code paths (native -> foreign):")
    for key, value in native["paths"].items():
        lines.append(f"  {key:32} {value} -> {foreign['paths'].get(key)}")
    lines.append("float results of the same computation (changed or same bits):")
    moved = 0
    for key, value in native["results"].items():
        changed = foreign["results"][key] != value
        moved += changed
        lines.append(f"  {key:38} {'changed' if changed else 'same'}")
    lines.append("ONNX Runtime (MLAS) cannot be perturbed: it picks its ISA from "
                 "CPUID.")
    return "\n".join(lines), moved


def main(argv: list[str]) -> int:
    if "--env" in argv:
        import shlex

        settings = foreign_env().items()
        print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in settings))
        return 0
    text, moved = report()
    print(text, flush=True)
    if not moved:
        print("none of the results moved: this run would not be foreign (no SIMD "
              "beyond the forced baseline?)")
        return 1
    if "--nbval" not in argv:
        return 0
    return subprocess.call(nbval_command(), cwd=ROOT, env=native_env() | foreign_env())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
