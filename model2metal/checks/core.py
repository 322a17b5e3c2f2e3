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
"""

from __future__ import annotations

import linecache
import math
import sys
import traceback
from typing import Any, Callable

import numpy as np

__all__ = [
    "CheckFailed",
    "call_learner",
    "describe",
    "assert_array_close",
    "assert_equal",
    "assert_true",
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

    def _render_traceback_(
        self,
    ) -> list[str]:  # IPython: show the message, not the stack
        return [f"\x1b[31mCheckFailed\x1b[0m: {self}"]


# ---------------------------------------------------------------------------
# describing values
# ---------------------------------------------------------------------------


def _to_numpy(x: Any) -> Any:
    """Torch tensors, TVM tensors and CUDA device arrays become NumPy arrays."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        return x.detach().cpu().numpy()
    if hasattr(x, "copy_to_host"):  # numba device array
        return x.copy_to_host()
    if mod.startswith("tvm") and hasattr(x, "numpy"):
        return x.numpy()
    return x


def describe(x: Any, max_items: int = 6) -> str:
    """A one-line description of a value: type, shape, dtype and a few numbers."""
    if x is None:
        return "None"
    x_np = _to_numpy(x)
    if isinstance(x_np, np.ndarray):
        kind = type(x).__name__ if x_np is not x else "ndarray"
        head = f"{kind} shape {tuple(x_np.shape)} dtype {x_np.dtype}"
        if x_np.size == 0:
            return head + " (empty)"
        flat = x_np.ravel()
        shown = np.array2string(
            flat[:max_items], precision=4, separator=", ", suppress_small=True
        )
        more = ", ..." if flat.size > max_items else ""
        return f"{head} values {shown[:-1]}{more}]"
    if isinstance(x, (set, frozenset)):
        items = sorted(map(repr, x))
        return (
            "{" + ", ".join(items[:8]) + (", ..." if len(items) > 8 else "") + "}"
            if items
            else "set()"
        )
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
    if callable(x) and hasattr(x, "__name__"):
        return f"function {x.__name__}"
    text = repr(x)
    return f"{type(x).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


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


def call_learner(
    check: str,
    case: str,
    fn: Callable,
    *args: Any,
    hint: str | None = None,
    label: str | None = None,
    **kwargs: Any,
) -> Any:
    """Call the learner's ``fn`` and turn any exception into a readable CheckFailed.

    ``label`` names the code in the message (default: ``fn``'s name + "()").
    ``NotImplementedError`` passes through unchanged: it means "not started yet" and the
    lab's own stub message says what to implement.
    """
    if not callable(fn):
        raise CheckFailed(
            check,
            case,
            f"expected a function, got {describe(fn)}",
            "pass the function itself, without calling it: check_x(my_fn)",
        )
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except CheckFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - every learner error becomes feedback
        name = label or getattr(fn, "__name__", type(fn).__name__) + "()"
        inputs = ", ".join(describe(a) for a in args)
        if kwargs:
            inputs += (", " if inputs else "") + ", ".join(
                f"{k}={describe(v)}" for k, v in kwargs.items()
            )
        lines = [f"your {name} raised {type(exc).__name__}: {exc}"]
        if inputs:
            lines.append(f"input: {inputs}")
        where = _learner_frame(exc.__traceback__)
        if where:
            func, lineno, text = where
            lines.append(f"in {func}(), line {lineno}: {text}")
        raise CheckFailed(check, case, "\n".join(lines), hint) from None


# ---------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------


def assert_true(
    condition: bool, check: str, case: str, problem: str, hint: str | None = None
) -> None:
    if not condition:
        raise CheckFailed(check, case, problem, hint)


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
    what: str = "result",
    hint: str | None = None,
) -> None:
    """Compare an array-like result with the expected array.

    Reports, in this order: ``None``; a value that is not array-like; a wrong shape; a
    wrong dtype (only when ``dtype`` is given: ``"same"`` means "that of expected");
    NaN or inf where the expected values are finite; values outside
    ``|actual - expected| <= atol + rtol * |expected|`` with the max absolute and
    relative error and the first mismatching index.
    """
    fail = lambda problem, h=hint: CheckFailed(check, case, problem, h)  # noqa: E731
    expected = np.asarray(_to_numpy(expected))
    if actual is None:
        raise fail(
            f"{what}: expected {describe(expected)}, got None",
            hint or "did you forget a `return` statement?",
        )
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
        want = (
            expected.dtype
            if isinstance(dtype, str) and dtype == "same"
            else np.dtype(dtype)
        )
        if actual_arr.dtype != want:
            raise fail(
                f"{what}: expected dtype {want}, got dtype {actual_arr.dtype}",
                hint or "a float64 constant or np.zeros default can change the dtype",
            )
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
            raise fail(
                f"{what}: expected {float(e):.6g}, got {float(a):.6g} "
                f"(abs error {abs(float(a) - float(e)):.3g})"
            )
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
        raise fail(
            f"{what}: {int(bad.sum())} of {bad.size} values differ "
            f"(max abs error {max_abs:.3g}, max rel error {rel}, "
            f"tolerance atol={atol:g} rtol={rtol:g})\n"
            f"first mismatch at index {idx}: got {a[idx]:.6g}, expected {e[idx]:.6g}"
        )


def passed(check: str, n_cases: int | None = None, extra: str = "") -> None:
    """Print the one success line of a check."""
    cases = f" ({n_cases} cases)" if n_cases else ""
    print(f"✔ {check} passed{cases}{extra}")
    sys.stdout.flush()
