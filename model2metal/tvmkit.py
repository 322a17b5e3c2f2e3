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
* **CPU pipeline.** ``tvm.compile``'s default Relax pipeline for a CPU target
  legalises but does not fuse (``relax/vm_build.py``): run the fusion passes
  first (:func:`relax_stages`, :func:`apply_passes`).
* **Tuning records.** MetaSchedule's database does not check the target (records
  for another CPU are applied silently), and ``relax_integration.compile_relax``
  built the course model with its records found but ran the untuned kernels:
  :func:`compile_relax_tuned` checks ``target.json`` and applies the records
  itself.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

if "TVM_NUM_THREADS" not in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    os.environ["TVM_NUM_THREADS"] = str(_cores or os.cpu_count() or 1)

import numpy as np  # noqa: E402
import tvm  # noqa: E402
from tvm.script import tirx as T  # noqa: E402,F401  (re-exported: `from ... import T`)
from tvm.target import Target  # noqa: E402

from .capture import CStderr  # noqa: E402

__all__ = [
    "tvm",
    "T",
    "NOALIAS",
    "version",
    "host_target",
    "target_summary",
    "build",
    "tensor",
    "empty",
    "schedule",
    "tir_text",
    "llvm_ir",
    "assembly",
    "time_function",
    "generic_target",
    "simd_lanes",
    "block_names",
    "block_iter_types",
    "block_has_init",
    "block_loops",
    "allocated_buffers",
    "shared_loops",
    "vector_registers",
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


def target_summary(target: Target) -> str:
    """A target in one short line: kind, then its ``mcpu`` and ``mtriple`` when set
    (``print(target)`` writes TVM's whole JSON, too wide to read)."""
    parts = [target.kind.name]
    for key in ("mcpu", "mtriple"):
        value = target.attrs.get(key, "")
        if value:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def generic_target() -> Target:
    """TVM's plain ``llvm`` target: generic code for the architecture (SSE2 on x86-64),
    what a build gets when nobody says which CPU it is for."""
    return Target("llvm")


def _by_feature(target: Target | None, table, default):
    """The value of the first ``(feature, value)`` entry whose CPU feature LLVM
    reports for ``target`` (the host's when None); ``default`` when none matches."""
    from tvm.target import codegen

    target = target if target is not None else host_target()
    for feature, value in table:
        try:
            if codegen.llvm_cpu_has_features([feature], target):
                return value
        except Exception:  # noqa: BLE001 - a feature name this LLVM target lacks
            continue
    return default


def simd_lanes(target: Target | None = None, bits: int = 32) -> int:
    """How many ``bits``-wide numbers one vector register of ``target`` holds.

    Read from the CPU features LLVM reports for the target (AVX-512, AVX, SSE2 on
    x86; NEON on Arm), so the generic ``llvm`` target answers 4 for float32 on x86-64
    even on an AVX-512 machine.
    """
    width = _by_feature(
        target, (("avx512f", 512), ("avx", 256), ("sse2", 128), ("neon", 128)), bits
    )
    return width // bits


def vector_registers(target: Target | None = None) -> int:
    """How many vector registers the target's instruction set names: 32 with
    AVX-512 (zmm0-31) and on Arm (v0-31), 16 with SSE or AVX (xmm/ymm0-15)."""
    return _by_feature(target, (("avx512f", 32), ("neon", 32), ("sse2", 16)), 16)


def _sch(mod):
    return mod if isinstance(mod, tvm.s_tir.Schedule) else schedule(mod)


def block_names(mod) -> list[str]:
    """The names of every block in ``mod``'s ``main`` (the root block excluded), in
    program order."""
    text = _sch(mod).mod["main"].script()
    return [n for n in re.findall(r'T\.sblock\("([^"]+)"\)', text) if n != "root"]


def block_iter_types(mod, block: str) -> str:
    """The block's iterators as TVM's letters: ``S`` spatial, ``R`` reduction (e.g.
    ``"SSR"`` for a matmul); other kinds print as ``O``."""
    sch = _sch(mod)
    letters = {0: "S", 2: "R"}
    return "".join(
        letters.get(int(iv.iter_type), "O") for iv in sch.get(sch.get_sblock(block)).iter_vars
    )


def block_has_init(mod, block: str) -> bool:
    """Whether the block carries a ``T.init()`` statement (a reduction's start value)."""
    sch = _sch(mod)
    return sch.get(sch.get_sblock(block)).init is not None


def block_loops(mod, block: str) -> list[tuple[str, int | None]]:
    """The loops around ``block``, outermost first, as ``(kind, extent)``: kind is one
    of ``serial``, ``parallel``, ``vectorized``, ``unrolled``, ``thread``; extent is
    None when it is not a constant."""
    sch = _sch(mod)
    kinds = {0: "serial", 1: "parallel", 2: "vectorized", 3: "unrolled", 4: "thread"}
    out = []
    for loop in sch.get_loops(sch.get_sblock(block)):
        node = sch.get(loop)
        extent = node.extent
        out.append((kinds.get(int(node.kind), "other"),
                    int(extent) if hasattr(extent, "value") else None))
    return out


def shared_loops(mod, block_a: str, block_b: str) -> int:
    """How many loops, from the outside in, both blocks sit in (after
    ``compute_at`` / ``reverse_compute_at`` the two share the loops above the
    point where one was moved)."""
    sch = _sch(mod)
    a = sch.get_loops(sch.get_sblock(block_a))
    b = sch.get_loops(sch.get_sblock(block_b))
    count = 0
    for la, lb in zip(a, b):
        if not sch.get(la).same_as(sch.get(lb)):
            break
        count += 1
    return count


def allocated_buffers(mod) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every buffer that ``main`` allocates inside its blocks (the root block
    included), by name: ``(shape, scope)``, e.g. a cache-write buffer
    ``((64, 64), "local")`` or a packed copy of an input ``((4, 64, 16), "global")``.
    A dimension that is not a constant shows as -1."""
    sch = _sch(mod)
    body = sch.mod["main"].body
    blocks = [body.block] if hasattr(body, "block") else []
    blocks += [sch.get(sch.get_sblock(name)) for name in block_names(sch)]
    return {
        buf.name: (tuple(int(d) if hasattr(d, "value") else -1 for d in buf.shape),
                   str(buf.scope()))
        for block in blocks
        for buf in block.alloc_buffers
    }


#: TVM's C++ logger warns on every gather it compiles (``topi/transform.h``:
#: "Fast mode segfaults when there are out-of-bounds indices"); the indices a
#: graph such as a detector's top-k produces are in bounds by construction
_GATHER_WARNING = re.compile(r".*Fast mode segfaults when there are out-of-bounds "
                             r"indices.*\n?")


def build(mod, target: Target | str | None = None):
    """Compile an ``IRModule`` (or a ``PrimFunc``); returns a TVM ``Executable``.

    ``target`` defaults to :func:`host_target`. Call the result as ``ex["main"](...)``.
    What the compiler writes to stderr is passed on, except the gather warning
    above (:data:`_GATHER_WARNING`).
    """
    import sys

    with CStderr() as err:
        ex = tvm.compile(mod, target=target if target is not None else host_target())
    rest = _GATHER_WARNING.sub("", err.text)
    if rest.strip():
        sys.stderr.write(rest)
    return ex


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


# ---- chapter 4 pages: A ----
# Wrappers for "What an AI compiler is" (the course model through torch.export and
# Relax) and "TensorIR in TVMScript" (page-width TVMScript, the noalias evidence).

__all__ += [
    "tir_lines",
    "relax_from_torch",
    "relax_ops",
    "relax_graph",
    "relax_kernels",
    "relax_stages",
    "relax_export",
    "relax_vm",
    "noalias_report",
]


_BREAK_BEFORE = ("= ", "+ ", "- ", "* ", "/ ", "in ", "and ", "or ")


def _break_line(line: str, width: int) -> list[str]:
    """Break one long line of TVMScript at spaces after a comma or before ``=``,
    an arithmetic operator, ``in``, ``and`` or ``or``; prefer the shallowest
    bracket depth, then the rightmost place. Continuations are indented 8 more."""
    indent = " " * (len(line) - len(line.lstrip()) + 8)
    out, rest = [], line
    while len(rest) > width:
        depth, best = 0, None
        for pos, ch in enumerate(rest[:width + 1]):
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif ch == " " and pos > len(indent) and (
                    rest[pos - 1] == ","
                    or any(rest.startswith(w, pos + 1) for w in _BREAK_BEFORE)):
                if best is None or depth <= best[0]:
                    best = (depth, pos)
        if best is None:
            break
        out.append(rest[:best[1]].rstrip())
        rest = indent + rest[best[1]:].lstrip()
    return out + [rest]


def tir_lines(mod, width: int = 76, header: bool = False) -> str:
    """:func:`tir_text` fitted to the page: a line longer than ``width`` is broken
    (see ``_break_line``) and continued, indented, on the next line; the printer's
    ``# from tvm... import`` header is dropped unless ``header`` is true. Accepts
    TVMScript text (any ``.script()``) as well as a module or function."""
    text = mod if isinstance(mod, str) else tir_text(mod)
    out = []
    for line in text.splitlines():
        if not header and line.startswith("# from tvm"):
            continue
        if not out and not line.strip():
            continue
        out.extend(_break_line(line, width) if len(line) > width else [line])
    return "\n".join(out)


def relax_from_torch(model, example_inputs: tuple = ()):
    """The Relax ``IRModule`` of a PyTorch model (or of an ``ExportedProgram``,
    then ``example_inputs`` is not needed): ``torch.export.export`` on
    ``example_inputs``, then TVM's importer
    ``from_exported_program(..., unwrap_unit_return_tuple=True)``. PyTorch's
    deprecation warnings from the export are kept off the page."""
    import warnings

    import torch
    from tvm.relax.frontend.torch import from_exported_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = (model if isinstance(model, torch.export.ExportedProgram)
                   else torch.export.export(model, tuple(example_inputs)))
        return from_exported_program(program, unwrap_unit_return_tuple=True)


def _relax_bindings(mod, func: str = "main"):
    from tvm import relax

    f = mod[func]
    if not isinstance(f, relax.Function) or not isinstance(f.body, relax.SeqExpr):
        return []
    return [b for block in f.body.blocks for b in block.bindings]


def relax_ops(mod, func: str = "main") -> dict[str, int]:
    """What each binding of the Relax function computes, counted: an operator
    (``"nn.conv2d"``, ``"add"``), ``"call_tir"`` once the graph is lowered, or the
    kind of a plain value (``"Tuple"``, ``"TupleGetItem"``, ``"Var"``)."""
    from collections import Counter

    from tvm import relax

    counts = Counter()
    for binding in _relax_bindings(mod, func):
        value = binding.value
        if isinstance(value, relax.Call) and hasattr(value.op, "name"):
            counts[value.op.name.removeprefix("relax.")] += 1
        else:
            counts[type(value).__name__.removeprefix("Dataflow")] += 1
    return dict(counts.most_common())


def _relax_shape(ty) -> str:
    from tvm import relax

    if isinstance(ty, relax.TensorType) and isinstance(ty.shape, relax.ShapeExpr):
        return "(" + ", ".join(str(int(v)) for v in ty.shape.values) + ")"
    if isinstance(ty, relax.TupleType):
        return f"tuple of {len(ty.fields)}"
    return "?"


class _RelaxNames:
    """Unique printable names for a function's variables (name hints repeat after
    passes; the second ``lv8`` prints as ``lv8_1``, as TVM's printer does)."""

    def __init__(self):
        self.known, self.used = [], set()

    def __call__(self, var) -> str:
        for other, name in self.known:
            if other.same_as(var):
                return name
        base = getattr(var, "name", None) or var.name_hint
        name, n = base, 0
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.known.append((var, name))
        self.used.add(name)
        return name


def _relax_arg(expr, names) -> str:
    from tvm import relax

    if isinstance(expr, relax.GlobalVar):
        return expr.name_hint
    if isinstance(expr, (relax.Var, tvm.ir.expr.Var)):
        return names(expr)
    if isinstance(expr, relax.Tuple):
        return "(" + ", ".join(_relax_arg(f, names) for f in expr.fields) + ")"
    if isinstance(expr, relax.ShapeExpr):
        return "shape(" + ", ".join(str(int(v)) for v in expr.values) + ")"
    if type(expr).__name__ in ("GenericConst", "Constant"):
        return "const" + _relax_shape(expr.ty).replace(", ", "x")
    return type(expr).__name__


def relax_graph(mod, func: str = "main", width: int = 76) -> str:
    """A Relax function one binding per line, ``name = op(args)  -> shape``:
    weights show as ``const(shape)``, a lowered call as the name of the tensor
    program it calls. Lines longer than ``width`` continue, indented."""
    import textwrap

    from tvm import relax

    names = _RelaxNames()
    for param in mod[func].params:
        names(param)
    lines = []
    for binding in _relax_bindings(mod, func):
        value = binding.value
        if isinstance(value, relax.Call) and hasattr(value.op, "name"):
            op, args = value.op.name.removeprefix("relax."), list(value.args)
            if op == "call_tir":
                op, args = args[0].name_hint, list(args[1].fields)
            rhs = f"{op}(" + ", ".join(_relax_arg(a, names) for a in args) + ")"
        elif isinstance(value, relax.TupleGetItem):
            rhs = f"{_relax_arg(value.tuple_value, names)}[{value.index}]"
        else:
            rhs = _relax_arg(value, names)
        line = f"{names(binding.var)} = {rhs}  -> {_relax_shape(binding.var.ty)}"
        lines += textwrap.wrap(line, width, subsequent_indent="    ",
                               break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)


def relax_kernels(mod) -> list[str]:
    """The names of the tensor programs (TensorIR ``PrimFunc``s) in a module,
    sorted: empty before lowering, one per kernel after fusion."""
    return sorted(gv.name_hint for gv, f in mod.functions.items()
                  if isinstance(f, tvm.tirx.PrimFunc))


#: The graph passes :func:`relax_stages` applies, in order, with what each does.
RELAX_STAGES = (
    ("imported", ()),
    ("batch norm as arithmetic", ("DecomposeOpsForInference",)),
    ("constants folded", ("FoldConstant",)),
    ("clean-up", ("CanonicalizeBindings", "DeadCodeElimination")),
    ("lowered to TensorIR", ("LegalizeOps",)),
    ("fused", ("AnnotateTIROpPattern", "FuseOps", "FuseTIR")),
)


def relax_stages(mod, skip: tuple[str, ...] = ()) -> list[tuple[str, str, object]]:
    """Run a short graph-level pipeline on a Relax module one stage at a time.

    Returns ``(stage, passes, module)`` for each entry of :data:`RELAX_STAGES`
    (``passes`` is the TVM pass names joined by ``+``). Stages named in ``skip``
    are left out, to show what each contributes. A teaching pipeline, close to
    TVM's ``"zero"`` pipeline. ``tvm.compile``'s default pipeline for a CPU
    target legalises but does not fuse: run these stages first.
    """
    from tvm import relax

    out = []
    for stage, names in RELAX_STAGES:
        if stage in skip:
            continue
        for name in names:
            mod = getattr(relax.transform, name)()(mod)
        out.append((stage, " + ".join(names) or "-", mod))
    return out


def relax_export(executable, path) -> int:
    """Write a compiled Relax module to a shared library (``.so``) at ``path``;
    returns its size in bytes. Needs a C++ compiler on the ``PATH`` (``g++`` or
    ``c++``), which TVM calls to link the file."""
    path = os.fspath(path)
    with CStderr():
        executable.export_library(path)
    return os.path.getsize(path)


def relax_vm(executable_or_path, device=None):
    """A Relax virtual machine, TVM's runtime for compiled graphs, over an
    ``Executable`` or a library file written by :func:`relax_export`. Call it as
    ``vm["main"](tensor(x))``."""
    from tvm import relax

    source = executable_or_path
    if isinstance(source, (str, os.PathLike)):
        with CStderr():
            source = tvm.runtime.load_module(os.fspath(source))
    with CStderr():
        return relax.VirtualMachine(source, device or tvm.cpu())


def noalias_report(executable) -> dict[str, object]:
    """What LLVM was told about overlapping buffers in a compiled TensorIR kernel.

    ``noalias params``: how many buffer pointers of the compiled functions carry
    LLVM's ``noalias`` (the promise made by :data:`NOALIAS`);
    ``overlap check``: whether LLVM's loop vectoriser had to insert a run-time test
    that the buffers do not overlap (``diff.check`` / ``found.conflict``), with a
    scalar fallback loop, because nobody promised it.
    """
    ir = llvm_ir(executable)
    params = set()
    for line in ir.splitlines():
        if line.startswith("define"):
            params.update(re.findall(r"ptr noalias[^,%]*%([A-Za-z_]\w*)", line))
    params -= {"self_handle", "args", "result"}   # TVM's calling convention
    return {"noalias params": len(params),
            "overlap check": "diff.check" in ir or "found.conflict" in ir}


# ---- end A ----


# ---- chapter 4 pages: B ----
# Wrappers for "Schedules" (the TensorIR after the first lowering steps, schedule
# errors) and "Reading the output" (LLVM options on a target; one kernel's LLVM IR
# and assembly, without TVM's argument-checking wrapper around it).

__all__ += [
    "ScheduleError",
    "schedule_error_message",
    "lower_blocks",
    "with_llvm_options",
    "kernel_llvm_ir",
    "kernel_assembly",
]

#: What a schedule primitive raises when a transformation would change the result
#: (or is not supported): ``try: sch.parallel(k) except tvmkit.ScheduleError``.
ScheduleError = tvm.s_tir.schedule.ScheduleError


def schedule_error_message(error: Exception) -> str:
    """The reason part of a TVM error: the text after its last ``Error message:``
    (schedule errors first print the whole IR with the offending part marked), or
    the last line of the message when there is no such part."""
    text = str(error)
    if "Error message:" in text:
        return text.rsplit("Error message:", 1)[1].strip()
    return text.strip().splitlines()[-1]


def lower_blocks(mod):
    """The module after TVM's first lowering passes (``tvm.s_tir.transform``:
    ``LowerInitBlock``, ``PlanAndUpdateBufferAllocationLocation``,
    ``ConvertBlocksToOpaque``, ``CompactBufferAllocation``, ``LowerOpaqueBlock``):
    blocks become plain loop bodies and each ``T.init`` becomes an ``if`` on the
    reduction variables. Print it with :func:`tir_lines`. Accepts a schedule."""
    if isinstance(mod, tvm.s_tir.Schedule):
        mod = mod.mod
    if isinstance(mod, tvm.tirx.PrimFunc):
        mod = tvm.IRModule({"main": mod})
    t = tvm.s_tir.transform
    passes = [t.LowerInitBlock(), t.PlanAndUpdateBufferAllocationLocation(),
              t.ConvertBlocksToOpaque(), t.CompactBufferAllocation(),
              t.LowerOpaqueBlock()]
    return tvm.transform.Sequential(passes)(mod)


def with_llvm_options(target: Target | str | None = None, **options) -> Target:
    """A copy of ``target`` (default :func:`host_target`) with more attributes of
    TVM's ``llvm`` target kind, spelled with underscores:

    * ``opt_level=0``: LLVM's ``-O0`` pipeline instead of the default ``-O3``
      (TVM's ``CodeGenLLVM::Optimize`` picks it from the target), so that
      ``inspect_source("ll")`` shows the IR as TVM's code generator emitted it;
    * ``fast_math_reassoc=True``: lets LLVM reorder floating-point additions
      (needed to vectorise a sum; changes the rounding), likewise ``fast_math``.

    An unknown option raises ``ValueError`` listing the known ones.
    """
    if target is None:
        target = host_target()
    elif isinstance(target, str):
        target = Target(target)
    attrs = dict(target.export())
    attrs.update({key.replace("_", "-"): value for key, value in options.items()})
    return Target(attrs)


def _kernel_symbol(name: str) -> str:
    # TVM compiles a PrimFunc `name` into `name_compute_` (the loops) and a wrapper
    # `__tvm_ffi_name` that checks the arguments and calls it.
    return f"{name}_compute_"


_LLVM_ATTACHMENT = re.compile(r",\s*!(?:dbg|tbaa|prof|llvm\.loop|alias\.scope|noalias)"
                              r"\s+!\d+")


def kernel_llvm_ir(executable, name: str, metadata: bool = False) -> str:
    """The LLVM IR of one compiled kernel: the ``define`` of ``<name>_compute_``
    (TVM's wrapper ``__tvm_ffi_<name>``, which unpacks and checks the arguments,
    is left out). Debug records and metadata attachments (``!dbg``, ``!tbaa``, …)
    and the padding before ``; preds`` comments are dropped unless ``metadata``
    is true."""
    ir = llvm_ir(executable)
    symbol = _kernel_symbol(name)
    match = re.search(rf"^define[^\n]*@{symbol}\(", ir, re.M)
    if match is None:
        raise KeyError(f"no function {symbol} in the LLVM IR")
    start = match.start()
    end = ir.find("\n}", start) + 2
    lines = ir[start:end].splitlines()
    if not metadata:
        lines = [re.sub(r"\s*!dbg !\d+", "", _LLVM_ATTACHMENT.sub("", line))
                 for line in lines if not line.lstrip().startswith("#dbg_")]
        lines = [re.sub(r"\s+#\d+( !dbg !\d+)?\s*\{$", " {", line)
                 if line.startswith("define") else re.sub(r"\s{2,};", "  ;", line)
                 for line in lines]
    return "\n".join(lines)


def kernel_assembly(executable, name: str, directives: bool = False) -> str:
    """The assembly of one compiled kernel, ``<name>_compute_``, from its label to
    the end of the function. Unless ``directives`` is true, assembler directives
    (``.loc``, ``.cfi_*``, ``.p2align``) and debug labels (``.Ltmp*``) are dropped,
    tabs become spaces, and what is left is instructions and jump labels."""
    asm = assembly(executable)
    symbol = _kernel_symbol(name)
    match = re.search(rf"^{symbol}:\n(.*?)^\.Lfunc_end", asm, re.S | re.M)
    if match is None:
        raise KeyError(f"no function {symbol} in the assembly")
    lines = match.group(1).splitlines()
    if not directives:
        kept = []
        for line in lines:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("."):
                if re.match(r"\.LBB\w+:", stripped):
                    kept.append(stripped.split()[0])
                continue
            kept.append("    " + re.sub(r"\s+", " ", stripped, count=1))
        lines = kept
    return "\n".join(lines)


# ---- end B ----


# ---- chapter 4 pages: C ----
# Wrappers for "GEMM step by step": the hot loop of a compiled kernel, wherever
# LLVM put it (TVM moves the body of a parallel loop into a function of its own),
# and how many vector stores it does per iteration.

__all__ += ["hot_loop", "vector_stores"]

_JUMPS_AARCH64 = ("b", "cbz", "cbnz", "tbz", "tbnz")


def hot_loop(executable, pattern: str = r"fmadd|fmla|mulp[sd]|fmul") -> list[str]:
    """The shortest loop in a compiled module's assembly whose body holds an
    instruction matching ``pattern`` (by default a multiply or fused
    multiply-add): a label, the instructions after it, and the jump back to it.

    Unlike :func:`kernel_assembly` it searches every function of the module,
    so it also finds the loop inside the body of a ``parallel`` loop, which TVM
    compiles into a separate function (``__tvm_parallel_lambda``). Lines are
    printed as :func:`kernel_assembly` prints them; an empty list means that no
    such loop was found."""
    seen, loops, lines = {}, [], []
    for raw in assembly(executable).splitlines():
        # comments: "# ..." in x86 (AT&T) output, "// ..." in AArch64 output,
        # where "#4" (no space after "#") is an immediate operand instead
        text = re.sub(r"(^|\s)#(\s.*)?$", "", raw.split("//")[0]).strip()
        if not text:
            continue
        if text.startswith(".Lfunc_end"):
            seen = {}
            continue
        if text.startswith(".Ltmp"):             # debug-line labels
            continue
        if text.endswith(":"):
            seen[text[:-1]] = len(lines)
            lines.append(text)
            continue
        if text.startswith("."):
            continue
        parts = text.split()
        lines.append("    " + re.sub(r"\s+", " ", text, count=1))
        op, target = parts[0], parts[-1]
        jumps = op.startswith("j") or op.startswith("b.") or op in _JUMPS_AARCH64
        if jumps and target in seen:
            body = lines[seen[target]:]
            if any(re.search(pattern, line) for line in body[1:]):
                loops.append(body)
    return min(loops, key=len) if loops else []


def vector_stores(lines: list[str]) -> int:
    """How many instructions in ``lines`` store a vector register to memory:
    on x86 (AT&T syntax) a ``vmov…``/``mov…`` whose last operand is an address,
    on AArch64 an ``str``/``stp``/``st1`` of a ``q``/``v`` register."""
    count = 0
    for line in lines:
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        op, operands = parts
        # AT&T order is "source, destination": a register, then an address
        if re.match(r"v?mov", op) and re.match(r"%[xyz]mm\d+,\s*[^%\s]*\(",
                                                operands):
            count += 1
        elif re.match(r"st(r|p|1)", op) and re.match(r"[qv]\d", operands):
            count += 1
    return count


# ---- end C ----


# ---- chapter 4: G ----
# Lab 04_03 "Compile the course model": Relax passes by name, the signature of a
# Relax function, and one call of a compiled graph on NumPy data.

__all__ += ["relax_pass_names", "apply_passes", "relax_signature", "relax_run",
            "fresh_process_call", "FreshResult", "RUNTIME_ONLY_BLOCKED",
            "RUNTIME_ONLY_RUNNER"]


def relax_pass_names() -> list[str]:
    """The names of the module-level Relax passes ``apply_passes`` accepts
    (``FoldConstant``, ``LegalizeOps``, ``FuseOps``, ...), sorted."""
    from tvm import relax

    return sorted(name for name in dir(relax.transform)
                  if name[:1].isupper() and callable(getattr(relax.transform, name))
                  and not name.endswith(("Pass", "Info", "Context")))


def apply_passes(mod, names) -> object:
    """Run Relax passes on ``mod`` in the order given, by name (see
    :func:`relax_pass_names`); each pass is created with its default options.
    Returns the new module; ``mod`` itself is not changed."""
    from tvm import relax

    for name in names:
        factory = getattr(relax.transform, str(name), None)
        if factory is None or not callable(factory):
            raise ValueError(f"no Relax pass named {name!r}; see "
                             "tvmkit.relax_pass_names()")
        mod = factory()(mod)
    return mod


def relax_signature(mod, func: str = "main") -> list[tuple[tuple, str]]:
    """``(shape, dtype)`` of each tensor parameter of a Relax function; a
    symbolic dimension appears as its name (``"n"``)."""
    out = []
    for param in mod[func].params:
        ty = param.ty                     # e.g. R.Tensor((1, 1, 8, 8), "float32")
        dims = getattr(ty, "shape", None)
        dims = getattr(dims, "values", dims) or ()
        shape = tuple(int(d) if hasattr(d, "value") else str(d) for d in dims)
        out.append((shape, str(getattr(ty, "dtype", "?"))))
    return out


def relax_run(vm, array: np.ndarray) -> np.ndarray:
    """One call of a compiled graph's ``main`` on a NumPy array, as NumPy."""
    return vm["main"](tensor(array)).numpy()


#: What a process that only runs a compiled model may not import: the product
#: ships the library and TVM's runtime, not the training framework or the course.
RUNTIME_ONLY_BLOCKED = ("torch", "model2metal", "onnx", "onnxruntime")

_FRESH_PRELUDE = """import sys
for _name in {blocked!r}:
    sys.modules[_name] = None  # impossible to import in this process
"""

_FRESH_HARNESS = """
import json as _json
import numpy as _np
_out = {function}(sys.argv[1], _np.load(sys.argv[2]))
if isinstance(_out, _np.ndarray):
    _np.save(sys.argv[3], _out)
else:
    with open(sys.argv[3] + ".type", "w") as _f:
        _f.write(type(_out).__module__ + "." + type(_out).__qualname__)
print(_json.dumps(sorted({{_m.split(".")[0] for _m, _v in sys.modules.items()
                          if _v is not None}})))
"""


class FreshResult(NamedTuple):
    """What :func:`fresh_process_call` saw: the NumPy result (or None), the
    type name of a non-array result, the process's error (last lines, with
    the line of the source that raised), the top-level modules it imported."""
    output: np.ndarray | None
    returned_type: str | None
    error: str | None
    modules: list


def _fresh_error(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "(no error output)"
    where = [i for i, ln in enumerate(lines) if "deploy.py" in ln]
    out = [lines[-1][:300]]
    if where and where[-1] + 1 < len(lines) - 1:
        out.append(f"at: {lines[where[-1] + 1].strip()}")
    return "\n".join(out)


def fresh_process_call(source: str, function: str, library, array: np.ndarray,
                       blocked: tuple = RUNTIME_ONLY_BLOCKED,
                       timeout: float = 120.0,
                       python: str | None = None) -> FreshResult:
    """Run ``function(library_path, array)`` defined in ``source`` (Python
    text, saved as ``deploy.py``) in a new Python process in which the
    modules ``blocked`` cannot be imported: the test that deployment code and
    its library need only TVM's runtime. Never raises for the code's errors:
    they come back in ``error``."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="m2m_fresh_") as folder:
        script = os.path.join(folder, "deploy.py")
        with open(script, "w") as f:
            f.write(_FRESH_PRELUDE.format(blocked=tuple(blocked)) + source
                    + _FRESH_HARNESS.format(function=function))
        x_path, out = (os.path.join(folder, n) for n in ("x.npy", "out.npy"))
        np.save(x_path, np.ascontiguousarray(array))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            done = subprocess.run(
                [python or sys.executable, script,
                 os.path.abspath(os.fspath(library)), x_path, out],
                capture_output=True, text=True, timeout=timeout, cwd=folder,
                env=env, check=False)
        except subprocess.TimeoutExpired:
            return FreshResult(None, None, f"the process did not finish "
                               f"within {timeout:.0f} s", [])
        if done.returncode != 0:
            return FreshResult(None, None, _fresh_error(done.stderr), [])
        lines = done.stdout.strip().splitlines()
        modules = json.loads(lines[-1]) if lines else []
        if os.path.exists(out):
            return FreshResult(np.load(out), None, None, modules)
        type_file = out + ".type"
        kind = open(type_file).read() if os.path.exists(type_file) else "nothing"
        return FreshResult(None, kind, None, modules)


# ---- end G ----


# ---- chapter 4: F ----
# Wrappers for "Graph level with Relax": printing one Relax function or a
# TensorIR outline at page width, the op pattern of each kernel, TVM's own
# build pipelines pass by pass with the memory plan, kernels compiled and
# timed one at a time, and a compiled library run in a fresh process.

__all__ += [
    "relax_script",
    "tir_outline",
    "OP_PATTERNS",
    "op_patterns",
    "relax_from_onnx",
    "DEFAULT_BUILD_PASSES",
    "relax_lower",
    "relax_memory",
    "kernel_calls",
    "build_kernel",
    "time_kernels",
    "run_library_fresh",
    "cpu_has",
]

_META = re.compile(r'metadata\["(?:ir|relax)\.[A-Za-z]*Const[A-Za-z]*"\]\[(\d+)\]')


def relax_script(mod, func: str = "main", width: int = 76,
                 keep: tuple[str, ...] = ()) -> str:
    """One function of a module as TVMScript, shortened for the page.

    Three abbreviations: a weight ``metadata["ir.GenericConst"][i]`` prints as
    ``meta[i]``, ``dtype="float32"`` is left out (every tensor of the course
    model is float32) and ``T.int64(8)`` prints as ``8``. Printer comments and
    the ``# from tvm...`` header are dropped. With ``keep``, only lines that
    contain one of its strings are kept (before breaking). Lines longer than
    ``width`` are broken as :func:`tir_lines` breaks them."""
    text = mod[func].script() if hasattr(mod, "functions") else mod.script()
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if keep and not any(k in line for k in keep):
            continue
        line = _META.sub(r"meta[\1]", line)
        line = re.sub(r',\s*dtype="float32"', "", line)
        line = re.sub(r'R\.Tensor\(\((.*?)\)\)', r"R.Tensor((\1))", line)
        line = re.sub(r"T\.int64\((\d+)\)", r"\1", line)
        line = line.replace(', "float32")', ")")
        out.extend(_break_line(line, width) if len(line) > width else [line])
    return "\n".join(out)


_OUTLINE = ("for ", "with T.sblock(", "alloc_buffer", "def ")


def tir_outline(func, width: int = 76) -> str:
    """The skeleton of a TensorIR function: its loops, its blocks and the
    buffers it allocates, without ``T.reads``/``T.writes``/``T.axis`` lines
    or the statements themselves; shortened like :func:`relax_script`. The
    root block (``# with T.sblock("root")``) is left out."""
    text = relax_script(func, width=10_000, keep=_OUTLINE)
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith("def "):
            name = line.split("def ", 1)[1].split("(", 1)[0]
            line = line[:len(line) - len(line.lstrip())] + f"def {name}(...):"
        lines.extend(_break_line(line, width) if len(line) > width else [line])
    return "\n".join(lines)


#: TVM's operator pattern kinds (C++ ``enum OpPatternKind`` in
#: ``include/tvm/relax/op_attr_types.h``), the ``op_pattern`` attribute that
#: ``AnnotateTIROpPattern`` writes on each TensorIR function and ``FuseOps``
#: reads: a kernel may absorb element-wise and broadcast work after it when its
#: kind is at most ``out-EWise-fusable``; ``opaque`` fuses with nothing.
OP_PATTERNS = {0: "elementwise", 1: "broadcast", 2: "injective",
               3: "reduction", 4: "out-EWise-fusable", 7: "tuple",
               8: "opaque"}


def op_patterns(mod) -> dict[str, str]:
    """Each TensorIR function's ``op_pattern`` as a word of :data:`OP_PATTERNS`
    (``"-"`` where the attribute is absent, e.g. after ``FuseTIR``)."""
    out = {}
    for name in relax_kernels(mod):
        attrs = mod[name].attrs
        value = attrs["op_pattern"] if attrs is not None and "op_pattern" in attrs \
            else None
        out[name] = "-" if value is None else OP_PATTERNS.get(int(value),
                                                              str(int(value)))
    return out


def relax_from_onnx(model, shapes: dict | None = None):
    """The Relax ``IRModule`` of an ONNX model (a path or a ``ModelProto``),
    through TVM's importer ``tvm.relax.frontend.onnx.from_onnx``. ``shapes``
    (input name -> shape) fixes symbolic input dimensions, e.g.
    ``{"images": (1, 1, 8, 8)}``; without it a named dimension such as
    ``batch`` stays symbolic."""
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(os.fspath(model))
    shape_dict = {k: list(v) for k, v in shapes.items()} if shapes else None
    return from_onnx(model, shape_dict=shape_dict)


#: The passes of ``tvm.compile``'s default Relax pipeline for a CPU target,
#: in order: ``relax_pipeline="default"`` resolves to
#: ``tvm.relax.pipeline.default_build_pipeline`` for every target without the
#: ``gpu`` key (``tvm/relax/vm_build.py``, ``build``; the pass list is in
#: ``tvm/relax/pipeline.py``). It legalises but does not fuse.
DEFAULT_BUILD_PASSES = (
    "backend.DispatchSampling", "backend.DispatchSortScan",
    "LegalizeOps", "RewriteDataflowReshape", "ToNonDataflow",
    "RemovePurityChecking", "CallTIRRewrite", "StaticPlanBlockMemory",
    "RewriteCUDAGraph", "LowerAllocTensor", "KillAfterLastUse",
    "LowerRuntimeBuiltin", "ComputePrimValue", "VMShapeLower",
    "AttachGlobalSymbol",
)


def relax_lower(mod, target: Target | None = None, skip: tuple[str, ...] = (),
                upto: str | None = None):
    """``mod`` after the passes of :data:`DEFAULT_BUILD_PASSES` (what
    ``tvm.compile`` runs before it generates the VM's code), under ``target``
    (default :func:`host_target`). Passes named in ``skip`` are left out;
    with ``upto``, the passes stop after that one."""
    target = target if target is not None else host_target()
    with target:
        for name in DEFAULT_BUILD_PASSES:
            if name.split(".")[-1] in skip:
                continue
            if name.startswith("backend."):
                from tvm import relax

                mod = getattr(relax.backend, name.split(".", 1)[1])()(mod)
            else:
                mod = apply_passes(mod, [name])
            if upto is not None and name.split(".")[-1] == upto:
                break
    return mod


def _calls(mod, func: str = "main"):
    from tvm import relax

    found = []

    def visit(expr):
        if isinstance(expr, relax.Call) and hasattr(expr.op, "name"):
            found.append(expr)

    relax.analysis.post_order_visit(mod[func].body, visit)
    return found


def _int_dims(expr) -> list[int] | None:
    values = getattr(expr, "values", None)
    if values is None:
        return None
    try:
        return [int(v) for v in values]
    except TypeError:                      # a symbolic dimension
        return None


def relax_memory(mod, func: str = "main") -> dict[str, int]:
    """The memory plan of a lowered Relax function (after ``LowerAllocTensor``;
    see :func:`relax_lower`): ``storages``, the blocks of memory the VM
    allocates per call (``memory.alloc_storage``); ``tensors``, the tensors
    placed in them (``memory.alloc_tensor``); ``storage bytes``, the sum of
    the storages' sizes where they are constants."""
    storages = tensors = size = 0
    for call in _calls(mod, func):
        name = call.op.name
        if name in ("relax.memory.alloc_storage", "relax.vm.alloc_storage"):
            storages += 1
            dims = _int_dims(call.args[0])
            size += dims[0] if dims else 0
        elif name in ("relax.memory.alloc_tensor", "relax.vm.alloc_tensor",
                      "relax.builtin.alloc_tensor"):
            tensors += 1
    return {"storages": storages, "tensors": tensors, "storage bytes": size}


def kernel_calls(mod, func: str = "main") -> dict[str, list[tuple]]:
    """How ``func`` calls each TensorIR kernel (after ``LegalizeOps``, before
    ``CallTIRRewrite``): kernel name -> the shapes of its arguments, the
    outputs' last (a kernel with a tuple result has several). The first call
    counts if a kernel is called twice."""
    from tvm import relax

    out = {}
    for binding in _relax_bindings(mod, func):
        value = binding.value
        if (isinstance(value, relax.Call) and hasattr(value.op, "name")
                and value.op.name == "relax.call_tir"):
            outs = binding.var.ty
            outs = list(outs.fields) if hasattr(outs, "fields") else [outs]
            shapes = [tuple(_int_dims(t.ty.shape) or ())
                      for t in value.args[1].fields]
            shapes += [tuple(_int_dims(t.shape) or ()) for t in outs]
            out.setdefault(value.args[0].name_hint, shapes)
    return out


def build_kernel(mod, name, target: Target | None = None):
    """TensorIR functions of a module compiled on their own, without the graph
    (the same TIR pipeline ``tvm.compile`` uses inside a model): ``name`` is
    one kernel's name or a list of them. Call one as ``ex[name](*tensors)``
    and read it with :func:`kernel_assembly`."""
    names = [name] if isinstance(name, str) else list(name)
    return build(tvm.IRModule({n: mod[n].with_attr("global_symbol", n)
                               for n in names}), target)


def time_kernels(mod, target: Target | None = None, seed: int = 0,
                 **timing) -> dict[str, object]:
    """Every kernel of a lowered Relax module, compiled for ``target`` (in
    one build, without the graph) and timed with :func:`time_function` on
    random float32 inputs of the shapes the graph calls it with
    (:func:`kernel_calls`): kernel name -> ``TimingResult``. ``timing`` goes
    to :func:`time_function`."""
    rng = np.random.default_rng(seed)
    calls = kernel_calls(mod)
    ex = build_kernel(mod, list(calls), target)
    out = {}
    for name, shapes in calls.items():
        args = [tensor(rng.standard_normal(s).astype("float32"))
                for s in shapes]
        out[name] = time_function(ex, *args, name=name, func=name, **timing)
    return out


#: Deployment code that needs only TVM's runtime and NumPy: ``run(path, array)``
#: loads a library written by :func:`relax_export` and calls its ``main``
#: (the source :func:`fresh_process_call` runs for :func:`run_library_fresh`).
RUNTIME_ONLY_RUNNER = r"""
import numpy as np
import tvm
from tvm import relax


def run(path, array):
    vm = relax.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(array, device=tvm.cpu())).numpy()
"""


def run_library_fresh(path, array: np.ndarray, python: str | None = None) -> dict:
    """Run a library written by :func:`relax_export` in a new Python process
    that imports only NumPy and TVM, with PyTorch and ``model2metal`` made
    impossible to import (``apache-tvm-ffi`` imports PyTorch whenever it can,
    so merely not importing it would prove nothing): ``{"output": its result
    for array, "modules": the top-level packages that process had imported at
    the end}``. Raises ``RuntimeError`` with the process's error when it
    fails. ``python`` defaults to this interpreter."""
    result = fresh_process_call(RUNTIME_ONLY_RUNNER, "run", path, array,
                                python=python)
    if result.error is not None:
        raise RuntimeError(f"fresh process failed:\n{result.error}")
    return {"output": result.output, "modules": result.modules}


def cpu_has(feature: str, target: Target | str | None = None) -> bool:
    """Whether LLVM reports the CPU feature (``"fma"``, ``"avx512f"``, ...)
    for ``target``; None means the machine this runs on, whatever
    ``M2M_TVM_TARGET`` says (so it tells whether code that uses the feature
    can run here). A feature name this architecture lacks answers False."""
    if target is None:
        target = Target.from_device(tvm.cpu())
    elif isinstance(target, str):
        target = Target(target)
    return _by_feature(target, ((feature, True),), False)


# ---- end F ----


# ---- chapter 4: E ----
# Wrappers for "Auto-tuning with MetaSchedule": the tuning target, quiet tuning
# of a TensorIR function or a Relax graph, design spaces, committed databases
# (a folder with MetaSchedule's two JSON files and target.json) and applying
# them, with a fallback when they were made for another CPU.

__all__ += [
    "tuning_target",
    "quiet_tuning",
    "matmul_module",
    "design_spaces",
    "tune_tir",
    "tune_relax",
    "open_database",
    "prune_database",
    "write_target_info",
    "read_target_info",
    "tuning_target_matches",
    "apply_tuning",
    "database_record",
    "TunedBuild",
    "compile_relax_tuned",
    "TUNING_DIR",
]

#: Where the committed tuning databases live, one folder per workload
#: (``gemm1024/``, ``course_model/``, ...), written by
#: ``benchmarks/metaschedule.py``.
TUNING_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "assets", "tuning")

#: The fields of a target that decide which machine code it makes; records
#: made for a target that differs in one of them are not applied.
TARGET_FIELDS = ("kind", "mtriple", "mcpu", "mattr")



def tuning_target(target: Target | str | None = None) -> Target:
    """``target`` (default :func:`host_target`) with ``"num-cores"`` set, as
    MetaSchedule requires: the cores TVM may use here (``TVM_NUM_THREADS``)."""
    if target is None:
        target = host_target()
    elif isinstance(target, str):
        target = Target(target)
    attrs = dict(target.export())
    if "num-cores" not in attrs:
        attrs["num-cores"] = int(os.environ.get("TVM_NUM_THREADS", "1"))
    return Target(attrs)


#: the tensor-intrinsic module of each CPU architecture (platform.machine())
_CPU_INTRINSICS = {"x86_64": "x86", "amd64": "x86", "aarch64": "arm_cpu",
                   "arm64": "arm_cpu"}


def register_cpu_intrinsics() -> str | None:
    """Register this CPU's tensor intrinsics without the other targets' ones.

    MetaSchedule's ``TuneContext`` (``tune_context.py``) imports
    ``tvm.s_tir.tensor_intrin``, whose ``__init__`` parses the TVMScript of
    every target's intrinsics: about 37 s on a 2-core AMD EPYC, two thirds of
    them CUDA's, paid again by every process that tunes. Here the package is
    entered in ``sys.modules`` without running its ``__init__`` and only this
    architecture's module is imported (half a second); a later import of any other
    submodule (``tvm.s_tir.tensor_intrin.cuda``) still works. Returns the
    module's name, or None where the package was imported already or the
    machine is neither x86 nor Arm (TVM's own import then runs unchanged)."""
    import importlib
    import importlib.util
    import platform
    import sys

    import tvm.s_tir

    package = "tvm.s_tir.tensor_intrin"
    arch = _CPU_INTRINSICS.get(platform.machine().lower())
    if package in sys.modules or arch is None:
        return None
    module = importlib.util.module_from_spec(importlib.util.find_spec(package))
    sys.modules[package] = module
    tvm.s_tir.tensor_intrin = module
    importlib.import_module(f"{package}.{arch}")
    return arch


class quiet_tuning:  # noqa: N801 - used as a context manager, like open()
    """Keep MetaSchedule's timestamped log lines off the page while the block
    runs: its logger ``tvm.s_tir.meta_schedule`` is set to ERROR (tuning then
    creates its console handler at that level, ``create_loggers`` in
    ``tvm/s_tir/meta_schedule/logging.py``); the full logs still go to
    ``<work_dir>/logs``. Errors are still printed. Entering it also registers
    this CPU's tensor intrinsics the quick way (:func:`register_cpu_intrinsics`),
    before MetaSchedule imports all of them."""

    def __enter__(self):
        import logging

        register_cpu_intrinsics()

        self._logger = logging.getLogger("tvm.s_tir.meta_schedule")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        # a second tuning in one process rebuilds the logging config from the
        # names of this logger's handlers; an unnamed one (pytest adds some)
        # makes that fail, so they are set aside while the block runs
        self._unnamed = [h for h in self._logger.handlers if not h.get_name()]
        for handler in self._unnamed:
            self._logger.removeHandler(handler)
        # in Jupyter the task scheduler prints an interactive pandas table
        # (``print_interactive_table`` in meta_schedule/utils.py) instead of
        # logging it; tell it that this is not a notebook
        _set_using_ipython(lambda: False)
        return self

    def __exit__(self, *exc):
        from tvm.s_tir.meta_schedule import utils

        _set_using_ipython(utils._using_ipython)
        self._logger.setLevel(self._level)
        for handler in self._unnamed:
            self._logger.addHandler(handler)
        return False


def _set_using_ipython(function) -> None:
    import tvm_ffi

    tvm_ffi.register_global_func("s_tir.meta_schedule.using_ipython", function,
                                 override=True)


def matmul_module(m: int, n: int, k: int, batch: int | None = None):
    """The float32 matrix product ``C = A @ B`` (``A`` m×k, ``B`` k×n) as a
    TensorIR module with one block ``"C"``; with ``batch``, ``batch`` products
    at once (``A`` batch×m×k). The same function everywhere in the chapter,
    so a committed tuning record matches it."""
    if batch is None:
        @T.prim_func(s_tir=True)
        def main(A: T.Buffer((m, k), "float32"), B: T.Buffer((k, n), "float32"),
                 C: T.Buffer((m, n), "float32")):
            T.func_attr(NOALIAS)
            for i, j, r in T.grid(m, n, k):
                with T.sblock("C"):
                    vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                    with T.init():
                        C[vi, vj] = T.float32(0)
                    C[vi, vj] = C[vi, vj] + A[vi, vr] * B[vr, vj]
    else:
        @T.prim_func(s_tir=True)
        def main(A: T.Buffer((batch, m, k), "float32"),
                 B: T.Buffer((batch, k, n), "float32"),
                 C: T.Buffer((batch, m, n), "float32")):
            T.func_attr(NOALIAS)
            for b, i, j, r in T.grid(batch, m, n, k):
                with T.sblock("C"):
                    vb, vi, vj, vr = T.axis.remap("SSSR", [b, i, j, r])
                    with T.init():
                        C[vb, vi, vj] = T.float32(0)
                    C[vb, vi, vj] = C[vb, vi, vj] + A[vb, vi, vr] * B[vb, vr, vj]
    return tvm.IRModule({"main": main})


def design_spaces(mod, target: Target | str | None = None) -> list[str]:
    """The design spaces MetaSchedule's schedule rules generate for ``mod``
    (``TuneContext.generate_design_space`` with the ``post-order-apply``
    space generator): one trace per space, as Python text, its random
    decisions drawn once."""
    from tvm.s_tir import meta_schedule as ms

    if isinstance(mod, tvm.tirx.PrimFunc):
        mod = tvm.IRModule({"main": mod})
    with quiet_tuning():
        context = ms.TuneContext(mod=mod, target=tuning_target(target),
                                 space_generator="post-order-apply",
                                 search_strategy="evolutionary")
        return [str(sch.trace) for sch in context.generate_design_space()]


def _in_process_builder():
    """A MetaSchedule builder that compiles the candidates in this process.

    TVM's ``LocalBuilder`` starts fresh worker processes for every batch, and
    each first imports ``tvm.s_tir.tensor_intrin``, which parses hundreds of
    TVMScript intrinsics (15-30 s on two busy cores): builds then hit its
    30-second timeout and fail. Here that import was paid once already (by
    ``TuneContext``), and each build takes a fraction of a second.
    (``derived_object``: ``tvm/ir/utils.py``.)"""
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.meta_schedule.builder.local_builder import (default_build,
                                                               default_export)
    from tvm.ir.utils import derived_object

    @derived_object
    class InProcessBuilder(PyBuilder):
        def build(self, build_inputs):
            results = []
            import warnings

            for item in build_inputs:
                try:
                    with warnings.catch_warnings():   # TVM's own tvm.build
                        warnings.simplefilter("ignore", DeprecationWarning)
                        rt_mod = default_build(item.mod, item.target, None)
                    path = default_export(rt_mod)
                    results.append(BuilderResult(path, None))
                except Exception as error:  # noqa: BLE001 - a failed candidate
                    results.append(BuilderResult(None, f"build: {error}"))
            return results

    return InProcessBuilder()


def _tuning_options(trials: int, per_iter: int | None, seed: int):
    from tvm.s_tir import meta_schedule as ms

    runner = ms.runner.LocalRunner(
        evaluator_config=ms.runner.EvaluatorConfig(number=3, repeat=1,
                                                   min_repeat_ms=20))
    return {"num_trials_per_iter": per_iter or min(64, trials), "seed": seed,
            "runner": runner, "builder": _in_process_builder()}


def tune_tir(mod, trials: int, work_dir, target: Target | str | None = None,
             per_iter: int | None = None, seed: int = 0):
    """Tune a TensorIR module with MetaSchedule (``tvm.s_tir.meta_schedule
    .tune_tir``: evolutionary search guided by an XGBoost cost model, each
    candidate built and timed here) for ``trials`` measured candidates, in
    batches of ``per_iter`` (default up to 64). Records go to ``work_dir``
    (``database_workload.json``, ``database_tuning_record.json``, ``logs/``),
    with :func:`write_target_info`. Returns the database."""
    from tvm.s_tir import meta_schedule as ms

    target = tuning_target(target)
    work_dir = os.fspath(work_dir)
    with quiet_tuning():
        database = ms.tune_tir(mod, target, work_dir, max_trials_global=trials,
                               **_tuning_options(trials, per_iter, seed))
    write_target_info(work_dir, target)
    return database


def _prepare_relax(mod):
    """The graph passes run before tuning and before compiling with records
    (both must see the same kernels): batch norm as arithmetic, then the
    passes ``compile_relax`` starts with (``LegalizeOps``,
    ``AnnotateTIROpPattern``, ``FoldConstant``, ``FuseOps``, ``FuseTIR``),
    because ``extract_tasks`` finds kernels only in a lowered module."""
    from tvm import relax

    t = relax.transform
    passes = [t.DecomposeOpsForInference(), t.LegalizeOps(),
              t.AnnotateTIROpPattern(), t.FoldConstant(), t.FuseOps(),
              t.FuseTIR()]
    return tvm.transform.Sequential(passes)(mod)


def tune_relax(relax_mod, trials: int, work_dir,
               target: Target | str | None = None, per_iter: int | None = None,
               seed: int = 0):
    """Tune every fused kernel of a Relax module (``tvm.s_tir.meta_schedule
    .relax_integration.tune_relax``; its task scheduler shares ``trials``
    among the kernels by their expected gain). Records and target.json go to
    ``work_dir``; returns the database."""
    from tvm.s_tir.meta_schedule import relax_integration

    target = tuning_target(target)
    work_dir = os.fspath(work_dir)
    with quiet_tuning():
        database = relax_integration.tune_relax(
            _prepare_relax(relax_mod), {}, target, work_dir,
            max_trials_global=trials, **_tuning_options(trials, per_iter, seed))
    write_target_info(work_dir, target)
    return database


def open_database(database_dir):
    """The MetaSchedule database in a folder (its two JSON files)."""
    from tvm.s_tir import meta_schedule as ms

    return ms.database.JSONDatabase(work_dir=os.fspath(database_dir),
                                    allow_missing=False)


def prune_database(source_dir, destination_dir) -> int:
    """Copy only the best record of each workload from one database folder to
    another (``Database.dump_pruned``), with its target.json; returns the size
    in bytes of the written folder."""
    import shutil

    from tvm.s_tir import meta_schedule as ms

    destination_dir = os.fspath(destination_dir)
    os.makedirs(destination_dir, exist_ok=True)
    for name in ("database_workload.json", "database_tuning_record.json"):
        path = os.path.join(destination_dir, name)
        if os.path.exists(path):
            os.remove(path)
    destination = ms.database.JSONDatabase(work_dir=destination_dir)
    open_database(source_dir).dump_pruned(destination)
    shutil.copy(os.path.join(os.fspath(source_dir), "target.json"),
                os.path.join(destination_dir, "target.json"))
    return sum(os.path.getsize(os.path.join(destination_dir, f))
               for f in os.listdir(destination_dir))


def _plain_fields(target: Target) -> dict:
    """A target's attributes as JSON values (sequences as lists of strings)."""
    out = {}
    for key, value in dict(target.export()).items():
        if isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif hasattr(value, "__iter__"):
            out[key] = [str(v) for v in value]
    return out


def write_target_info(database_dir, target: Target, **extra) -> dict:
    """Write ``target.json`` beside a database: the target it was tuned for
    (string and fields), the TVM version, the date and the machine
    (:func:`model2metal.device.hardware_string`), plus ``extra``."""
    import datetime
    import json

    from .device import hardware_string

    info = {"target": str(target),
            "fields": _plain_fields(target),
            "tvm": version(), "date": datetime.date.today().isoformat(),
            "hardware": hardware_string(), **extra}
    with open(os.path.join(os.fspath(database_dir), "target.json"), "w",
              encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return info


def read_target_info(database_dir) -> dict:
    """The contents of a database folder's ``target.json``."""
    import json

    with open(os.path.join(os.fspath(database_dir), "target.json"),
              encoding="utf-8") as f:
        return json.load(f)


def tuning_target_matches(database_dir, target: Target | str | None = None
                          ) -> bool:
    """Whether the records in ``database_dir`` were made for the machine code
    that ``target`` (default :func:`host_target`) makes: equal
    :data:`TARGET_FIELDS` (kind, triple, CPU, attributes). ``num-cores`` may
    differ (the code is correct either way; the tuning was for other cores).

    MetaSchedule itself does not check: its ``query_schedule`` returns a
    record whatever target it is asked for."""
    try:
        fields = read_target_info(database_dir)["fields"]
    except (OSError, KeyError, ValueError):
        return False
    here = _plain_fields(tuning_target(target))
    return all(fields.get(k) == here.get(k) for k in TARGET_FIELDS)


def apply_tuning(mod, database_dir, target: Target | str | None = None,
                 force: bool = False):
    """``mod`` scheduled by the best record for it in ``database_dir``
    (``tir_integration.compile_tir``), ready for :func:`build`; None when the
    folder has no record for this workload or, unless ``force``, when its
    records were made for another target (:func:`tuning_target_matches`)."""
    from tvm.s_tir.meta_schedule.tir_integration import compile_tir

    if not force and not tuning_target_matches(database_dir, target):
        return None
    if isinstance(mod, tvm.tirx.PrimFunc):
        mod = tvm.IRModule({"main": mod})
    with quiet_tuning():
        sch = compile_tir(open_database(database_dir), mod,
                          tuning_target(target))
    return None if sch is None else sch.mod


def database_record(database_dir, index: int = 0, width: int = 76) -> str:
    """One line of a database's ``database_tuning_record.json`` (the best
    record of the first workload by default), cut to ``width`` characters per
    field: the workload's index, the trace as JSON, the measured run times in
    seconds, the target, and the arguments' shapes."""
    import json

    path = os.path.join(os.fspath(database_dir), "database_tuning_record.json")
    with open(path, encoding="utf-8") as f:
        workload, record = json.loads(f.read().splitlines()[index])
    names = ("trace", "run_secs", "target", "args_info")
    lines = [f"workload: {workload} (line {workload + 1} of "
             "database_workload.json)"]
    for name, value in zip(names, record):
        text = json.dumps(value, separators=(",", ":"))
        cut = width - len(name) - 2
        lines.append(f"{name}: " + (text if len(text) <= cut
                                    else text[:cut - 3] + "..."))
    return "\n".join(lines)


class TunedBuild(NamedTuple):
    """What :func:`compile_relax_tuned` returns."""

    executable: object   # a TVM Executable: relax_vm(build.executable)
    n_tuned: int         # fused kernels that found a record
    n_kernels: int       # fused kernels in the graph
    applied: bool        # False: the untuned fallback was compiled
    reason: str          # one line saying which happened and why


def compile_relax_tuned(relax_mod, database_dir,
                        target: Target | str | None = None,
                        force: bool = False) -> TunedBuild:
    """Compile a Relax module with the committed tuning records in
    ``database_dir`` (the prepared, fused module, the records applied with
    ``MetaScheduleApplyDatabase``, then ``tvm.compile``) when they were made
    for this target
    (:func:`tuning_target_matches`, or ``force``); otherwise compile the same
    prepared module untuned with ``tvm.compile`` — the fallback, with
    ``applied`` False and the ``reason``. ``n_tuned`` counts the fused kernels
    that found a record, ``n_kernels`` all of them. Run it as
    ``relax_vm(result.executable)``."""
    from tvm.s_tir.meta_schedule import relax_integration

    target = tuning_target(target)
    mod = _prepare_relax(relax_mod)
    with quiet_tuning():
        tasks = relax_integration.extract_tasks(mod, target)
    n_kernels = len(tasks)
    if not os.path.exists(os.path.join(os.fspath(database_dir),
                                       "target.json")):
        reason = f"no tuning records in {os.fspath(database_dir)}"
    elif not force and not tuning_target_matches(database_dir, target):
        made_for = read_target_info(database_dir)["fields"].get("mcpu",
                                                               "generic")
        here = dict(target.export()).get("mcpu", "generic")
        reason = (f"records made for {made_for}, this target is {here}: "
                  "compiled untuned")
    else:
        database = open_database(database_dir)
        n_tuned = sum(bool(database.has_workload(t.dispatched[0]))
                      for t in tasks)
        # relax_integration.compile_relax(database, mod, target, None)
        # builds with the records found but, measured here (TVM 0.27), runs
        # the untuned kernels (0.34 ms for the course model against 0.02 ms
        # with the records applied as below): apply them to the prepared
        # module, then compile that.
        from tvm import relax

        with target, database, tvm.transform.PassContext(opt_level=3):
            mod = relax.transform.MetaScheduleApplyDatabase()(mod)
        with quiet_tuning(), CStderr():
            ex = tvm.compile(mod, target=target)
        return TunedBuild(ex, n_tuned, n_kernels, True,
                          f"{n_tuned} of {n_kernels} kernels from the records")
    with CStderr():
        ex = tvm.compile(mod, target=target)
    return TunedBuild(ex, 0, n_kernels, False, reason)


# ---- end E ----
