"""The building blocks of every check cell.

A check runs the learner's code on named cases and compares the result with a reference.
When something is wrong it raises :class:`CheckFailed` whose message says

* which case failed and on which input,
* what was expected and what came back (type, shape, dtype, values, max error, the first
  mismatching index),
* a hint,

and never shows the reference implementation. In Jupyter the error is rendered as that
message alone (no traceback through the helper package); the learner's own line that
raised is quoted when their code throws.

The machinery is total, so that a check never crashes whatever the learner returns:

* :func:`describe` describes any object in one line (arrays, tensors, modules, data
  loaders, optimisers, generators, containers, objects whose ``repr`` raises);
* :func:`call_learner` turns any exception into one message, and reports an input that
  the learner's function changed in place, naming the argument (unless the exercise
  says it updates that argument: ``inplace_ok``);
* :func:`assert_array_close` and :func:`assert_type` state the type a result must
  have (``expect_type=np.ndarray``, ``dtype="integer"``) and reject others, so a list
  or a tensor where an array is asked for fails here, not three cells later.
"""

from __future__ import annotations

import inspect
import linecache
import math
import re
import sys
import traceback
from typing import Any, Callable, Sequence

import numpy as np

from ..pages import PAGE_WIDTH, fold  # messages fit a book page's width

__all__ = [
    "CheckFailed",
    "call_learner",
    "describe",
    "assert_array_close",
    "assert_equal",
    "assert_true",
    "assert_type",
    "assert_dtype",
    "assert_not_none",
    "matches",
    "hint_from_evidence",
    "assert_unchanged",
    "type_name",
    "passed",
]


class CheckFailed(AssertionError):
    """A check found a problem in the learner's code.

    The message is the whole story; in IPython it is shown without a traceback.
    """

    def __init__(
        self, check: str, case: str | None, problem: str, hint: str | None = None
    ):
        self.check, self.case, self.problem, self.hint = check, case, problem, hint
        lines = [f"{check} failed" + (f" on case {case!r}" if case else "") + ":"]
        lines += ["  " + line for line in problem.splitlines()]
        if hint:
            lines.append(f"  Hint: {hint}")
        super().__init__("\n".join(lines))

    def wrapped(self, width: int = PAGE_WIDTH) -> str:
        """The message with every line folded to ``width`` characters (a book
        page's output block shows about 76); ``str(self)`` stays unfolded."""
        return fold(str(self), width)

    def _render_traceback_(
        self,
    ) -> list[str]:  # IPython: show the message, not the stack
        text = fold(f"CheckFailed: {self}")
        return ["\x1b[31mCheckFailed\x1b[0m" + text[len("CheckFailed"):]]


# ---------------------------------------------------------------------------
# describing values
# ---------------------------------------------------------------------------


def _torch_tensor_type():
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None) if torch is not None else None


def _is_torch_tensor(x: Any) -> bool:
    tensor = _torch_tensor_type()
    return tensor is not None and isinstance(x, tensor)


def _is_device_array(x: Any) -> bool:
    """A Numba CUDA device array (real GPU or simulator)."""
    return hasattr(x, "copy_to_host") and hasattr(x, "shape")


def _is_tvm_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("tvm") and callable(getattr(x, "numpy", None))


def _to_numpy(x: Any) -> Any:
    """Torch tensors, TVM tensors and CUDA device arrays become NumPy arrays; anything
    else is returned as it is."""
    if _is_torch_tensor(x):
        return x.detach().cpu().numpy()
    if _is_device_array(x):
        return x.copy_to_host()
    if _is_tvm_tensor(x):
        return x.numpy()
    return x


def type_name(x: Any) -> str:
    """The name a learner knows a type by: ``numpy.ndarray``, ``torch.Tensor``,
    ``list``, ``int``, ``numpy.float32``."""
    if isinstance(x, type):
        cls = x
    else:
        cls = type(x)
    if cls is np.ndarray:
        return "numpy.ndarray"
    if issubclass(cls, np.generic):
        return f"numpy.{cls.__name__}"
    tensor = _torch_tensor_type()
    if tensor is not None and issubclass(cls, tensor):
        return "torch.Tensor"
    if cls.__module__.startswith("numpy.random"):
        return f"numpy.random.{cls.__name__}"
    for public in ("torch.nn", "torch.utils.data", "torch.optim"):
        if cls.__module__.startswith(public + "."):
            return f"{public}.{cls.__name__}"
    module = cls.__module__.split(".")[0]
    if module in ("builtins", "__main__", "__nb__"):
        return cls.__name__
    return f"{module}.{cls.__name__}"


def _describe_array(x_np: np.ndarray, kind: str, max_items: int) -> str:
    head = f"{kind} shape {tuple(x_np.shape)} dtype {x_np.dtype}"
    if x_np.size == 0:
        return head + " (empty)"
    flat = x_np.ravel()
    try:
        shown = np.array2string(
            flat[:max_items], precision=4, separator=", ", suppress_small=True
        )
    except Exception:  # noqa: BLE001 - exotic dtypes
        return head
    more = ", ..." if flat.size > max_items else ""
    return f"{head} values {shown[:-1]}{more}]"


def _describe_torch_object(x: Any) -> str | None:
    """Modules, data loaders, optimisers and generators of PyTorch, or None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    name = type(x).__name__
    if isinstance(x, torch.nn.Module):
        mode = "training mode" if x.training else "eval mode"
        others = [m for m in x.modules() if m.training != x.training]
        if others:
            mode += f", but {len(others)} of its submodules in the other mode"
        n = sum(p.numel() for p in x.parameters())
        return f"nn.Module {name} ({n:,} parameters, {mode})"
    data = getattr(torch.utils, "data", None)
    if data is not None and isinstance(x, data.DataLoader):
        try:
            batches = f"{len(x)} batches"
        except TypeError:
            batches = "batches"
        return f"DataLoader of {batches} (batch_size {x.batch_size})"
    if isinstance(x, torch.optim.Optimizer):
        lr = x.param_groups[0].get("lr") if x.param_groups else None
        return f"optimizer {name}" + (f" (lr {lr:g})" if lr is not None else "")
    if isinstance(x, torch.Generator):
        return "torch.Generator"
    return None


def describe(x: Any, max_items: int = 6) -> str:
    """A one-line description of any value: type, shape, dtype and a few numbers.

    Never raises: an object it cannot look into is named by its type.
    """
    try:
        return _describe(x, max_items)
    except Exception:  # noqa: BLE001 - describing must never be the error
        return f"a {type_name(x)} object"


def _describe(x: Any, max_items: int) -> str:
    if x is None:
        return "None"
    if isinstance(x, np.ndarray):
        return _describe_array(x, "ndarray", max_items)
    if _is_torch_tensor(x) or _is_device_array(x) or _is_tvm_tensor(x):
        kind = (
            "torch.Tensor"
            if _is_torch_tensor(x)
            else "CUDA device array"
            if _is_device_array(x)
            else "TVM tensor"
        )
        return _describe_array(np.asarray(_to_numpy(x)), kind, max_items)
    if isinstance(x, np.generic):
        return f"{type_name(x)} {x.item()!r}"
    if isinstance(x, bool):
        return repr(x)
    if isinstance(x, (int, float)):
        return f"{type(x).__name__} {x!r}"
    if type(x).__module__.startswith("tvm") and hasattr(x, "get_global_vars"):
        names = sorted(gv.name_hint for gv in x.get_global_vars())
        return f"an IRModule with function(s) {', '.join(names)}"
    special = _describe_torch_object(x)
    if special is not None:
        return special
    if isinstance(x, (set, frozenset)):
        items = sorted(map(repr, x))
        return (
            "{" + ", ".join(items[:8]) + (", ..." if len(items) > 8 else "") + "}"
            if items
            else "set()"
        )
    if isinstance(x, dict):
        keys = [repr(k) for k in list(x)[:8]]
        more = ", ..." if len(x) > 8 else ""
        return f"dict with keys [{', '.join(keys)}{more}]" if x else "dict (empty)"
    if isinstance(x, (list, tuple)):
        if all(isinstance(v, (int, float, str, bool, np.number)) for v in x):
            text = repr([v.item() if isinstance(v, np.generic) else v for v in x])
            if len(text) <= 80:
                return text if isinstance(x, list) else f"tuple {text}"
        inner = ", ".join(describe(v, max_items=3) for v in list(x)[:4])
        more = ", ..." if len(x) > 4 else ""
        return f"{type(x).__name__} of {len(x)} [{inner}{more}]"
    if isinstance(x, str):
        return repr(x if len(x) <= 60 else x[:57] + "...")
    if inspect.isgenerator(x):
        return "a generator (from a function with `yield`)"
    if isinstance(x, type):
        return f"class {x.__name__}"
    if callable(x) and hasattr(x, "__name__"):
        return f"function {x.__name__}"
    text = repr(x)
    if " at 0x" in text or text.startswith("<"):  # the default repr: no information
        return f"a {type_name(x)} object"
    if "\n" in text:  # e.g. an IRModule: its first line names it
        text = text.strip().splitlines()[0] + " ..."
    return f"{type_name(x)} {text if len(text) <= 60 else text[:57] + '...'}"


# ---------------------------------------------------------------------------
# running learner code
# ---------------------------------------------------------------------------


def _learner_frame(tb) -> tuple[str, int, str] | None:
    """The last traceback frame that comes from a notebook cell or a learner file."""
    here = __name__.rsplit(".", 2)[0]  # "model2metal"
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        module = frame.f_globals.get("__name__", "")
        if module.startswith(here) or _is_library(filename, module):
            continue
        line = linecache.getline(filename, lineno).strip()
        if not line:  # compiled code (Cython .pyx) or a file that is gone
            continue
        found = (frame.f_code.co_name, lineno, line)
    return found


def _is_library(filename: str, module: str) -> bool:
    """True for frames of installed packages, including their compiled parts.

    Cython frames name a relative ``.pyx`` file, so the path alone does not tell;
    the package the frame's module belongs to does.
    """
    if "site-packages" in filename or filename.endswith((".pyx", ".pxd")):
        return True
    package = sys.modules.get(module.partition(".")[0])
    return "site-packages" in (getattr(package, "__file__", None) or "")


def _snapshot(value: Any) -> Any:
    """A copy of an array-like input (or of a list or tuple holding arrays, nested) to
    compare with after the call; None for anything else."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if _is_torch_tensor(value):
        return value.detach().clone()
    if isinstance(value, (list, tuple)) and value:
        parts = [_snapshot(v) for v in value]
        if any(p is not None for p in parts):
            return parts
    return None


def _first_change(before: Any, after: Any, path: str = "") -> tuple[str, str] | None:
    """None if ``after`` equals the snapshot ``before``; otherwise (where, what): the
    index path inside the argument (``[1][0]``, empty for the argument itself) and
    what changed."""
    if isinstance(before, list):
        if not isinstance(after, (list, tuple)) or len(after) != len(before):
            return path, "its length or type changed"
        for k, (b, a) in enumerate(zip(before, after)):
            change = None if b is None else _first_change(b, a, f"{path}[{k}]")
            if change:
                return change
        return None
    b, a = np.asarray(_to_numpy(before)), np.asarray(_to_numpy(after))
    if a.shape != b.shape:
        return path, f"its shape went from {b.shape} to {a.shape}"
    if a.dtype != b.dtype:
        return path, f"its dtype went from {b.dtype} to {a.dtype}"
    equal_nan = b.dtype.kind in "fc"
    if np.array_equal(a, b, equal_nan=equal_nan):
        return None
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)) if equal_nan else (a == b))
    idx = tuple(int(i) for i in np.argwhere(differ)[0])
    return path, (
        f"{int(differ.sum())} of {differ.size} values differ, the first at index "
        f"{idx}: was {b[idx].item()!r}, now {a[idx].item()!r}"
    )


#: The message of a lab's stub, as tools/make_labs.py writes it: "lab03_01: ...".
_STUB = re.compile(r"^lab\d\d_\d\d: ")


def _is_stub(exc: NotImplementedError) -> bool:
    """True for the NotImplementedError of an unfinished exercise (it passes through
    the checks unchanged); False for one raised by a library."""
    return bool(_STUB.match(str(exc)))


def _first_lines(exc: BaseException, n: int = 3) -> str:
    """The first ``n`` non-empty lines of an exception's message (library errors such
    as an exporter's can run to pages), without terminal colour codes; for a TVM
    schedule error, its first line and the reason after the printed IR."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    reason = next((k for k, line in enumerate(lines) if line.startswith("Error message:")),
                  None)
    if reason is not None:  # TVM's ScheduleError: the reason comes after the whole IR
        lines = lines[:1] + lines[reason:]
    shown = "\n".join(lines[:n])
    return shown + (" …" if len(lines) > n else "")


def _yours(name: str) -> str:
    """``your f()`` for a function name; a label that has its own article stays."""
    return name if name.startswith(("your ", "the ")) else f"your {name}"


def _raised(name: str, exc: Exception, args: tuple, kwargs: dict) -> str:
    """The message for learner code that raised: the error, the inputs it was given,
    and the learner's own line."""
    inputs = ", ".join(
        [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    )
    lines = [f"{_yours(name)} raised {type(exc).__name__}: {_first_lines(exc)}"]
    if inputs:
        lines.append(f"input: {inputs}")
    where = _learner_frame(exc.__traceback__)
    if where:
        func, lineno, text = where
        lines.append(f"in {func}(), line {lineno}: {text}")
    return "\n".join(lines)


def _argument_names(fn: Callable, n_args: int, kwargs: dict) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for k in range(n_args):
        if k < len(params) and params[k].kind in (
            params[k].POSITIONAL_ONLY,
            params[k].POSITIONAL_OR_KEYWORD,
        ):
            names.append(params[k].name)
        else:
            names.append(f"argument {k + 1}")
    return names + list(kwargs)


def call_learner(
    check: str,
    case: str,
    fn: Callable,
    *args: Any,
    hint: str | None = None,
    label: str | None = None,
    inplace_ok: bool | Sequence[str | int] = (),
    inplace_hint: str | None = None,
    evidence: Sequence[tuple[str, str]] = (),
    **kwargs: Any,
) -> Any:
    """Call the learner's ``fn`` and turn any exception into a readable CheckFailed.

    ``label`` names the code in the message (default: ``fn``'s name + "()").
    The ``NotImplementedError`` of a stub ("labNN_MM: ...") passes through unchanged:
    it means "not started yet" and the stub's message says what to implement; one
    raised inside a library the learner called is reported like any other error.

    Array inputs (NumPy arrays, torch tensors, lists of them) are copied before the call
    and compared after it: a function that changed one in place fails with the name of
    that argument. ``inplace_ok`` lists the arguments the exercise asks the learner to
    update, by position (0, 1, ...) or name (``True``: all of them; e.g. an SGD step).
    ``inplace_hint`` replaces the generic hint of that failure where the check knows
    more (e.g. "restore x[i] after perturbing it"). ``evidence`` is a list of
    ``(regex, hint)`` pairs: when the learner's exception matches a regex, that hint
    replaces ``hint`` (the error message is the evidence for the cause it names).
    """
    if not callable(fn):
        raise CheckFailed(
            check,
            case,
            f"expected a function, got {describe(fn)}",
            "pass the function itself, without calling it: check_x(my_fn)",
        )
    name = label or getattr(fn, "__name__", type(fn).__name__) + "()"
    values = list(args) + list(kwargs.values())
    names = _argument_names(fn, len(args), kwargs)
    exempt = set() if inplace_ok is True else set(inplace_ok)
    watched = [] if inplace_ok is True else [
        (n, v, before)
        for k, (n, v) in enumerate(zip(names, values))
        if n not in exempt and k not in exempt and (before := _snapshot(v)) is not None
    ]
    try:
        result = fn(*args, **kwargs)
    except CheckFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - every learner error becomes feedback
        if isinstance(exc, NotImplementedError) and _is_stub(exc):
            raise
        problem = _raised(name, exc, args, kwargs)
        hint = next(
            (specific for pattern, specific in evidence
             if re.search(pattern, problem, re.S)),
            hint,
        )
        raise CheckFailed(check, case, problem, hint) from None
    for arg_name, value, before in watched:
        change = _first_change(before, value)
        if change:
            where, what = change
            raise CheckFailed(
                check,
                case,
                f"{_yours(name)} changed its input `{arg_name}{where}` in place ({what})",
                inplace_hint
                or "the caller still needs its input: compute into a new array "
                "(x.copy(), np.empty_like(x), an expression that allocates) instead "
                "of writing into the argument",
            )
    return result


# ---------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------


def matches(got: Any, candidate: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """True when ``got`` is a finite array-like equal to ``candidate`` within tolerance:
    the evidence a hint needs before it names a mistake."""
    try:
        g = np.asarray(_to_numpy(got), dtype=np.float64)
        c = np.asarray(_to_numpy(candidate), dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return (
        g.shape == c.shape
        and bool(np.all(np.isfinite(g)))
        and bool(np.all(np.isfinite(c)))
        and bool(np.allclose(g, c, rtol=rtol, atol=atol))
    )


def hint_from_evidence(
    got: Any,
    candidates: Sequence[tuple[str, Any]],
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> str | None:
    """The hint of the ``(hint, value)`` candidate mistake that ``got`` equals, if
    exactly one does (two candidates that coincide on a case are no evidence for
    either); None otherwise. Compute each candidate with the reference and the
    mistake put in, e.g. the formula with the axes swapped."""
    found = [hint for hint, value in candidates if matches(got, value, rtol, atol)]
    return found[0] if len(found) == 1 else None


def assert_not_none(got: Any, check: str, case: str, what: str = "result") -> None:
    """A function that printed its result or forgot ``return`` gives None."""
    if got is None:
        raise CheckFailed(
            check, case, f"{what}: got None", "did you forget a `return` statement?"
        )


def assert_true(
    condition: bool, check: str, case: str, problem: str, hint: str | None = None
) -> None:
    if not condition:
        raise CheckFailed(check, case, problem, hint)


def assert_type(
    value: Any,
    types: type | tuple[type, ...],
    check: str,
    case: str,
    what: str = "result",
    hint: str | None = None,
) -> None:
    """``value`` must be an instance of ``types`` (a ``bool`` is not an ``int``)."""
    wanted = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, wanted) and not (
        isinstance(value, (bool, np.bool_)) and bool not in wanted
        and np.bool_ not in wanted
    )
    if not ok:
        names = " or ".join(_article(type_name(t)) for t in wanted)
        raise CheckFailed(
            check,
            case,
            f"{what}: expected {names}, got {_typed(value)}",
            hint or _conversion_hint(wanted, value),
        )


def _typed(value: Any) -> str:
    """``describe(value)``, with the type named where the description does not."""
    got = describe(value)
    if got[:1] in "[({'\"0123456789-" or got in ("True", "False"):
        got = f"{_article(type_name(value))}: {got}"
    return got


def _article(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def assert_dtype(
    value: Any, dtype: Any, check: str, case: str, what: str = "result"
) -> None:
    """An array's dtype, for results not compared by value (index sets, masks):
    a dtype, ``"integer"`` (32 bits or more) or ``"float"``; the array must have a
    ``dtype`` (check its type first)."""
    got = getattr(value, "dtype", None)
    if got is None:
        raise CheckFailed(
            check, case, f"{what}: expected an array, got {_typed(value)}"
        )
    _check_dtype(np.dtype(got), dtype, np.dtype(got), check, case, what)


def _conversion_hint(wanted: tuple[type, ...], value: Any) -> str:
    if np.ndarray in wanted:
        if _is_torch_tensor(value):
            return "return a NumPy array: tensor.detach().numpy(), or compute in NumPy"
        return "return a NumPy array (np.asarray, np.stack, np.array), not a " + (
            type_name(value)
        )
    if int in wanted:
        return "return a Python int: int(x) converts a NumPy or torch number"
    if float in wanted:
        return "return a Python float: float(x), or tensor.item()"
    return f"return a {' or '.join(type_name(t) for t in wanted)}"


def assert_unchanged(
    before: Any, after: Any, check: str, case: str, what: str, hint: str | None = None
) -> None:
    """The learner's function must not write into an input (``what`` names it)."""
    if not np.array_equal(np.asarray(before), np.asarray(after)):
        raise CheckFailed(check, case, f"your function changed {what} in place", hint)


def assert_equal(
    actual: Any,
    expected: Any,
    check: str,
    case: str,
    what: str = "result",
    hint: str | None = None,
) -> None:
    """Exact equality for small Python values (ints, strings, tuples, booleans)."""
    if actual != expected:
        raise CheckFailed(
            check,
            case,
            f"{what}: expected {describe(expected)}, got {describe(actual)}",
            hint,
        )


def assert_array_close(
    actual: Any,
    expected: Any,
    check: str,
    case: str,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    dtype: Any = None,
    expect_type: type | tuple[type, ...] | None = None,
    what: str = "result",
    hint: str | None = None,
) -> None:
    """Compare an array-like result with the expected array.

    Reports, in this order: ``None``; a container other than ``expect_type`` (when
    given, e.g. ``np.ndarray``: a list or a tensor is then rejected); a value that is
    not array-like; a wrong shape; a wrong dtype (only when ``dtype`` is given: a dtype,
    ``"same"`` for that of expected, ``"integer"`` for any integer dtype of 32 bits or
    more, ``"float"`` for any floating dtype); NaN or inf where the expected values are
    finite; values outside ``|actual - expected| <= atol + rtol * |expected|`` with the
    max absolute and relative error and the first mismatching index, printed with
    enough digits to tell them apart (and named as float32 rounding when it is that).
    ``hint`` is given with a wrong shape or wrong values.
    """
    fail = lambda problem, h=hint: CheckFailed(check, case, problem, h)  # noqa: E731
    expected = np.asarray(_to_numpy(expected))
    if actual is None:
        raise fail(
            f"{what}: expected {describe(expected)}, got None",
            hint or "did you forget a `return` statement?",
        )
    if expect_type is not None:
        assert_type(actual, expect_type, check, case, what)
    actual_np = _to_numpy(actual)
    try:
        actual_arr = np.asarray(actual_np)
    except Exception:  # noqa: BLE001
        raise fail(f"{what}: expected an array, got {describe(actual)}") from None
    if actual_arr.dtype == object:
        raise fail(f"{what}: expected a numeric array, got {describe(actual)}")
    if actual_arr.shape != expected.shape:
        raise fail(
            f"{what}: expected shape {expected.shape}, got shape {actual_arr.shape} "
            f"({describe(actual)})",
            hint or "check the axis you reduce over and any transposes",
        )
    if dtype is not None:
        _check_dtype(actual_arr.dtype, dtype, expected.dtype, check, case, what)
    if actual_arr.size == 0:
        return
    if not np.issubdtype(actual_arr.dtype, np.number) and actual_arr.dtype != bool:
        raise fail(f"{what}: expected numbers, got dtype {actual_arr.dtype}")
    a = actual_arr.astype(np.float64) if actual_arr.dtype != bool else actual_arr
    e = expected.astype(np.float64) if expected.dtype != bool else expected
    bad_nonfinite = ~np.isfinite(a) & np.isfinite(e)
    if np.any(bad_nonfinite):
        idx = tuple(int(i) for i in np.argwhere(bad_nonfinite)[0])
        count = int(bad_nonfinite.sum())
        raise fail(
            f"{what}: {count} NaN/inf value(s) where finite values were expected; "
            f"first at index {idx}: got {a[idx]}, expected {e[idx]:.6g}",
            hint
            or "an element never written (checks fill outputs with NaN), "
            "overflow (exp of a large number), 0/0 or log(0)",
        )
    if a.ndim == 0:
        if not abs(a - e) <= atol + rtol * abs(e):
            got_text, want_text = _distinct(float(a), float(e))
            problem = (
                f"{what}: expected {want_text}, got {got_text} "
                f"(abs error {abs(float(a) - float(e)):.3g})"
            )
            diff = np.abs(np.atleast_1d(a) - np.atleast_1d(e))
            if _is_low_precision(actual_arr, diff, np.atleast_1d(e), diff >= 0):
                raise fail(problem + f"\nthe difference is {actual_arr.dtype} "
                           "rounding: a precision problem, not a wrong formula",
                           "compute in float64: an intermediate value is in "
                           f"{actual_arr.dtype}")
            raise fail(problem)
        return
    with np.errstate(invalid="ignore"):  # inf - inf: handled on the next lines
        diff = np.abs(a - e)
    diff = np.where(np.isnan(a) & np.isnan(e), 0.0, diff)
    diff = np.where(np.isinf(a) & (a == e), 0.0, diff)
    bad = diff > atol + rtol * np.abs(e)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        finite = np.isfinite(diff)
        max_abs = float(diff[finite].max()) if finite.any() else math.inf
        # relative error only where it is defined: expected values that are not zero
        has_rel = finite & (e != 0)
        rel = f"{float((diff[has_rel] / np.abs(e[has_rel])).max()):.3g}" \
            if has_rel.any() else "n/a"
        got_text, want_text = _distinct(a[idx], e[idx])
        problem = (
            f"{what}: {int(bad.sum())} of {bad.size} values differ "
            f"(max abs error {max_abs:.3g}, max rel error {rel}, "
            f"tolerance atol={atol:g} rtol={rtol:g})\n"
            f"first mismatch at index {idx}: got {got_text}, expected {want_text}"
        )
        if _is_low_precision(actual_arr, diff, e, bad):
            problem += (
                f"\nthe differences are at the level of {actual_arr.dtype} rounding "
                "(relative 1e-7 to 1e-3): a precision problem, not a wrong formula"
            )
            raise fail(problem, "compute in float64 (or keep the dtype of the "
                       "inputs): an intermediate array or constant is in "
                       f"{actual_arr.dtype}")
        raise fail(problem)


def _check_dtype(got: np.dtype, want: Any, same: np.dtype, check, case, what) -> None:
    if isinstance(want, str) and want == "integer":
        ok = got.kind in "iu" and got.itemsize >= 4
        wanted = "an integer dtype (int32 or int64)"
        hint = ("counts are integers: np.zeros(..., dtype=np.int64); int8 or int16 "
                "overflow, floats are not counts")
    elif isinstance(want, str) and want == "float":
        ok, wanted = got.kind == "f", "a floating-point dtype"
        hint = "an integer array cannot hold fractions: convert with .astype(float)"
    else:
        target = same if isinstance(want, str) and want == "same" else np.dtype(want)
        ok, wanted = got == target, f"dtype {target}"
        hint = "a float64 constant or an np.zeros default can change the dtype"
    if not ok:
        raise CheckFailed(
            check, case, f"{what}: expected {wanted}, got dtype {got}", hint
        )


def _distinct(got: float, want: float) -> tuple[str, str]:
    """The two numbers with enough digits to differ on the page."""
    for digits in (6, 9, 12, 17):
        a, b = f"{got:.{digits}g}", f"{want:.{digits}g}"
        if a != b:
            return a, b
    return repr(float(got)), repr(float(want))


def _is_low_precision(
    actual: np.ndarray, diff: np.ndarray, e: np.ndarray, bad: np.ndarray
) -> bool:
    """True when a float16/float32 result misses a tight tolerance by rounding only:
    every mismatch is finite, against a non-zero expected value, and tiny relative to
    it."""
    if actual.dtype not in (np.float16, np.float32):
        return False
    d, x = diff[bad], e[bad]
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(x)) and np.all(x != 0)):
        return False
    rel = float((d / np.abs(x)).max())
    return rel <= (1e-3 if actual.dtype == np.float16 else 1e-5)


def passed(check: str, n_cases: int | None = None, extra: str = "") -> None:
    """Print the one success line of a check."""
    cases = f" ({n_cases} cases)" if n_cases else ""
    print(fold(f"✔ {check} passed{cases}{extra}"))
    sys.stdout.flush()
