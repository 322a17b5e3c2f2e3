"""Every Apache TVM name the course uses, in one place.

TVM renamed much of its Python API in 2025–26 (``tvm.build`` → ``tvm.compile``,
``tvm.nd.array`` → ``tvm.runtime.tensor``, ``tvm.script.tir`` → ``tvm.script.tirx``,
``T.block`` → ``T.sblock``, ``tvm.tir.Schedule`` → ``tvm.s_tir.Schedule``). Labs and
chapters call these wrappers, so the next rename is a one-file change. Checked against
apache-tvm 0.27.0.post1 (with apache-tvm-ffi 0.1.14.post1), the version pinned in
requirements.txt, by running it.

Traps this module handles for you:

* **Target.** Plain ``"llvm"`` means generic x86-64 (SSE only): :func:`host_target` asks
  TVM for this CPU (e.g. ``znver3``) instead. Never hard-code ``-mcpu``: AVX-512 code
  crashes CPUs without it.
* **Threads.** TVM uses half the cores by default and pins the calling thread, which
  slows PyTorch in the same process; importing this module sets ``TVM_NUM_THREADS`` to
  the usable core count first (unless already set).
* **noalias.** The attribute is ``"tirx.noalias"``; the old ``"tir.noalias"`` is
  silently ignored and costs 2–3× on GEMM. TensorIR in the course writes
  :data:`NOALIAS`.
"""

from __future__ import annotations

import os

if "TVM_NUM_THREADS" not in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    os.environ["TVM_NUM_THREADS"] = str(_cores or os.cpu_count() or 1)

import numpy as np  # noqa: E402
import tvm  # noqa: E402
from tvm.script import tirx as T  # noqa: E402,F401  (re-exported: `from ... import T`)
from tvm.target import Target  # noqa: E402

__all__ = [
    "tvm",
    "T",
    "NOALIAS",
    "version",
    "host_target",
    "build",
    "tensor",
    "empty",
    "schedule",
    "tir_text",
    "llvm_ir",
    "assembly",
    "time_function",
]

#: The function attribute that promises TVM the buffers do not overlap.
NOALIAS = {"tirx.noalias": True}


def version() -> str:
    """The installed TVM version, printed at the top of chapter 4."""
    return tvm.__version__


def host_target() -> Target:
    """An LLVM target for the CPU this code runs on (its real ``-mcpu``).

    ``M2M_TVM_TARGET`` in the environment overrides it (``make test``'s foreign-CPU
    phase sets ``llvm``, TVM's generic x86-64 or AArch64 target, to compile as for
    another CPU).
    """
    forced = os.environ.get("M2M_TVM_TARGET", "").strip()
    if forced:
        return Target(forced)
    return Target.from_device(tvm.cpu())


def build(mod, target: Target | str | None = None):
    """Compile an ``IRModule`` (or a ``PrimFunc``); returns a TVM ``Executable``.

    ``target`` defaults to :func:`host_target`. Call the result as ``ex["main"](...)``.
    """
    return tvm.compile(mod, target=target if target is not None else host_target())


def tensor(array: np.ndarray, device=None):
    """Copy a NumPy array into a TVM tensor (on the CPU unless ``device`` is given)."""
    return tvm.runtime.tensor(np.ascontiguousarray(array), device=device or tvm.cpu())


def empty(shape, dtype: str = "float32", device=None):
    """An uninitialised TVM tensor."""
    return tvm.runtime.empty(tuple(shape), dtype, device=device or tvm.cpu())


def schedule(mod):
    """A TensorIR schedule over ``mod``: ``sch.get_sblock``, ``get_loops``, ``split``,
    ``reorder``, ``vectorize``, ``parallel``, …; the result is ``sch.mod``."""
    if isinstance(mod, tvm.tirx.PrimFunc):
        mod = tvm.IRModule({"main": mod})
    return tvm.s_tir.Schedule(mod)


def tir_text(mod) -> str:
    """TVMScript source of a module, function or schedule (``print`` it)."""
    if isinstance(mod, tvm.s_tir.Schedule):
        mod = mod.mod
    return mod.script()


def llvm_ir(executable) -> str:
    """The LLVM IR of a compiled module, *after* LLVM's optimiser has run."""
    return executable.mod.inspect_source("ll")


def assembly(executable) -> str:
    """The machine code of a compiled module, as assembly text."""
    return executable.mod.inspect_source("asm")


def time_function(
    executable,
    *args,
    name: str = "tvm",
    func: str = "main",
    number: int = 0,
    repeat: int = 15,
    min_repeat_ms: int = 2,
    warmup: int = 3,
):
    """Time ``executable[func](*args)`` with TVM's own C++ timer.

    Returns a :class:`model2metal.timing.TimingResult` (median, IQR, hardware) like
    every other timing in the course. ``number=0`` lets TVM grow the inner loop until
    one sample lasts ``min_repeat_ms``.
    """
    from .device import hardware_string
    from .timing import TimingResult

    evaluator = executable.mod.time_evaluator(
        func,
        tvm.cpu(),
        number=max(number, 1),
        repeat=repeat,
        min_repeat_ms=min_repeat_ms if number == 0 else 0,
        cooldown_interval_ms=0,
    )
    for _ in range(warmup):
        executable[func](*args)
    result = evaluator(*args)
    return TimingResult(
        name=name,
        samples=[float(t) for t in result.results],
        number=number or 0,
        warmup=warmup,
        hardware=hardware_string(),
    )
