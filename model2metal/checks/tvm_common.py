"""What the TVM labs' checks share: reading a learner's module, compiling and running
it on NaN-filled outputs, and reading x86 assembly.

Scaffolding for the checks only; every TVM name comes through :mod:`model2metal.tvmkit`.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
    assert_unchanged,
    call_learner,
    describe,
)

# ---------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------


def buffers(mod) -> list[tuple[tuple[int, ...], str]] | None:
    """(shape, dtype) of each buffer parameter of the module's "main"; None if the
    function cannot be read that way (symbolic shapes)."""
    try:
        return [
            (tuple(int(d) for d in param.shape), str(param.dtype))
            for param in mod["main"].params
        ]
    except Exception:  # noqa: BLE001 - left to the compiled call to report
        return None


def has_block(mod, block: str) -> bool:
    from .. import tvmkit

    return block in tvmkit.block_names(mod)


def as_module(name: str, case: str, mod):
    """The learner's module as an IRModule (a bare PrimFunc is wrapped as "main")."""
    from .. import tvmkit

    if isinstance(mod, tvmkit.tvm.tirx.PrimFunc):
        mod = tvmkit.tvm.IRModule({"main": mod})
    assert_true(
        isinstance(mod, tvmkit.tvm.IRModule)
        and "main" in [gv.name_hint for gv in mod.get_global_vars()],
        name,
        case,
        f"expected an IRModule with a function 'main', got {describe(mod)}",
        "wrap the prim_func in an IRModule under the name 'main' (or return the "
        "prim_func itself)",
    )
    return mod


def expect_buffers(
    name: str, case: str, mod, expected: Sequence[tuple[str, tuple[int, ...]]],
    other_size_hint: str = "the module is built for other sizes: use the sizes "
    "you were given",
) -> None:
    """main's parameters are float32 buffers of the expected shapes, in order."""
    got = buffers(mod)
    want = [(shape, "float32") for _, shape in expected]
    if got is None or got == want:
        return
    same_dtype = len(got) == len(want) and all(d == "float32" for _, d in got)
    raise CheckFailed(
        name,
        case,
        "main's buffers: expected "
        + ", ".join(f"{label} {shape}" for label, shape in expected)
        + " (float32), got "
        + (", ".join(f"{shape} {dtype}" for shape, dtype in got) or "none"),
        other_size_hint
        if same_dtype
        else "main takes " + ", ".join(label for label, _ in expected)
        + " in that order, all float32",
    )


def compile_and_run(
    name: str,
    case: str,
    mod,
    inputs: Sequence[tuple[str, np.ndarray]],
    output_shape: tuple[int, ...],
    target=None,
) -> np.ndarray:
    """Build ``mod`` (host target unless given), call main(*inputs, out) with ``out``
    filled with NaN (so an element nobody writes shows), check that the inputs were
    only read, and return ``out``."""
    from .. import tvmkit

    ex = call_learner(
        name,
        case,
        tvmkit.build,
        mod,
        target,
        label="tvmkit.build(mod)",
        hint="the module should compile: its TensorIR is printed by "
        "tvmkit.tir_text(mod)",
    )
    tensors = [tvmkit.tensor(a) for _, a in inputs]
    out = tvmkit.tensor(np.full(output_shape, np.nan, dtype=np.float32))
    call_learner(
        name,
        case,
        lambda: ex["main"](*tensors, out),
        label="compiled main",
        hint="main is called with "
        + ", ".join(label for label, _ in inputs)
        + " and the output buffer, all float32",
    )
    for (label, before), tensor in zip(inputs, tensors):
        assert_unchanged(
            before, tensor.numpy(), name, case, f"its input buffer `{label}`",
            "inputs are only read: the blocks write the output buffer",
        )
    return out.numpy()


def check_result(
    name: str, case: str, got: np.ndarray, expected: np.ndarray, what: str,
    rtol: float = 1e-5, atol: float = 1e-5, hint: str | None = None,
) -> None:
    if np.isnan(got).any() and not np.isnan(expected).any():
        first = tuple(int(v) for v in np.argwhere(np.isnan(got))[0])
        raise CheckFailed(
            name,
            case,
            f"{what}: {int(np.isnan(got).sum())} of {got.size} elements were never "
            f"written (still NaN), the first at index {first}",
            hint or "every output element must be written: check the loop extents "
            "and, after a split, that the loops still cover the whole range",
        )
    assert_array_close(got, expected, name, case, rtol=rtol, atol=atol, what=what,
                       hint=hint)


def matmul_operands(m: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A (m, k) and B (k, n), float32, seeded by the sizes."""
    rng = np.random.default_rng(m * 10007 + n * 101 + k)
    return (rng.normal(size=(m, k)).astype(np.float32),
            rng.normal(size=(k, n)).astype(np.float32))


def run_matmul(name: str, case: str, mod, m: int, n: int, k: int, relu: bool = False,
               target=None) -> None:
    """``main(A (m, k), B (k, n), C (m, n))`` computes ``C = A @ B`` (with ``relu``:
    ``max(A @ B, 0)``): buffers, result on NaN-filled output, and the hints for a
    missing ReLU and for a sum that did not start from zero."""
    expect_buffers(name, case, mod, [("A", (m, k)), ("B", (k, n)), ("C", (m, n))])
    a, b = matmul_operands(m, n, k)
    product = a.astype(np.float64) @ b
    expected = (np.maximum(product, 0) if relu else product).astype(np.float32)
    got = compile_and_run(name, case, mod, [("A", a), ("B", b)], (m, n), target)
    hint = None
    finite = bool(np.isfinite(got).all())
    if relu and finite and (product < 0).any() and np.allclose(
        got, product, rtol=1e-4, atol=1e-4
    ):
        hint = "that is A @ B without the ReLU: the relu block writes max(Y, 0) into C"
    elif finite and np.allclose(got, 2 * expected, rtol=1e-4, atol=1e-4):
        hint = ("twice the product: the sum started from the previous run's result "
                "(a reduction needs T.init to reset it)")
    check_result(name, case, got, expected, "C", rtol=1e-4, atol=1e-4, hint=hint)


def returned_module(name: str, case: str, new, original_text: str, original):
    """The module a schedule function returned, with the usual mistakes named: the
    given module changed, or returned unchanged."""
    from .. import tvmkit

    new = as_module(name, case, new)
    assert_true(
        tvmkit.tir_text(original) == original_text,
        name,
        case,
        "the module you were given changed",
        "a schedule works on its own copy of the module: transform that one and "
        "return sch.mod",
    )
    return new


def innermost_loop(mod, block: str) -> tuple[str, int | None] | None:
    from .. import tvmkit

    loops = tvmkit.block_loops(mod, block)
    return loops[-1] if loops else None


# ---------------------------------------------------------------------------
# x86 assembly
# ---------------------------------------------------------------------------

#: packed float arithmetic: add/sub/mul/div/min/max/sqrt and the fused forms
PACKED = re.compile(r"^v?(add|sub|mul|div|min|max|sqrt|fn?m(add|sub)\d{3})p[sd]$")


def instruction_lines(asm: str) -> list[tuple[str, str]]:
    """(mnemonic, operands) of every instruction line: comments after # or ;, labels
    and directives removed."""
    found = []
    for line in asm.splitlines():
        code = line.split("#", 1)[0].split(";", 1)[0].strip()
        words = code.split(None, 1)
        if words and not words[0].endswith(":") and not words[0].startswith("."):
            found.append((words[0], words[1] if len(words) > 1 else ""))
    return found


def mnemonics(asm: str) -> set[str]:
    """The first word of every instruction line (comments and labels removed)."""
    found = set()
    for line in asm.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if words and not words[0].endswith(":"):
            found.add(words[0])
    return found


def x86_packed_arith(asm: str) -> set[str]:
    return {word for word in mnemonics(asm) if PACKED.match(word)}


#: scalar float arithmetic: the same operations in their ss/sd (one-element) forms
SCALAR = re.compile(r"^v?(add|sub|mul|div|min|max|sqrt|fn?m(add|sub)\d{3})s[sd]$")


def x86_scalar_arith(asm: str) -> set[str]:
    """The scalar float arithmetic mnemonics (``vaddss``, ``vfmadd231sd``, ...)."""
    return {word for word in mnemonics(asm) if SCALAR.match(word)}
