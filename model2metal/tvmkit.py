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
import re

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


def tir_lines(mod, width: int = 78, header: bool = False) -> str:
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


def relax_graph(mod, func: str = "main", width: int = 78) -> str:
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
    TVM's ``"zero"`` pipeline; ``tvm.compile`` runs a longer one of its own.
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


class _QuietFd2:
    """Send what C++ code writes to file descriptor 2 (TVM's ``Scope Saving`` /
    ``Scope Loaded`` log lines) to a temporary file while the block runs."""

    def __enter__(self):
        import sys
        import tempfile

        sys.stderr.flush()
        self._sink = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._sink.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._sink.close()
        return False


def relax_export(executable, path) -> int:
    """Write a compiled Relax module to a shared library (``.so``) at ``path``;
    returns its size in bytes. Needs a C++ compiler on the ``PATH`` (``g++`` or
    ``c++``), which TVM calls to link the file."""
    path = os.fspath(path)
    with _QuietFd2():
        executable.export_library(path)
    return os.path.getsize(path)


def relax_vm(executable_or_path, device=None):
    """A Relax virtual machine, TVM's runtime for compiled graphs, over an
    ``Executable`` or a library file written by :func:`relax_export`. Call it as
    ``vm["main"](tensor(x))``."""
    from tvm import relax

    source = executable_or_path
    if isinstance(source, (str, os.PathLike)):
        with _QuietFd2():
            source = tvm.runtime.load_module(os.fspath(source))
    with _QuietFd2():
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
