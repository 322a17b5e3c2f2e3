"""Checks for lab 02_01 "Convolution two ways": direct loops, then im2col + GEMM.

Every reference comes from PyTorch (``torch.nn.functional.conv2d`` and ``unfold`` in
float64), never from the lab's own route. When a result is wrong the check also tries
the usual wrong answers (kernel flipped, bias missing or on the wrong axis, im2col rows
in (kh, kw, c) order, ceil instead of floor, ...) and, when one matches, names it in the
hint. Results must be NumPy arrays (a list, a list of per-image arrays or a torch
tensor is rejected where the exercise asks for an array) and output sizes a tuple of
two Python ints. Every call into learner code goes through :func:`call_learner`, which
also reports an input written in place by the name of the argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
    assert_type,
    call_learner,
    describe,
    passed,
)

__all__ = [
    "check_conv2d_output_size",
    "check_conv2d_direct",
    "check_im2col",
    "check_conv2d_im2col",
    "check_conv2d_grouped_dilated",
]

SIZE_HINT = (
    "count the window positions along each axis (section 1): the window must fit "
    "inside the input padded on both sides, the + 1 counts the first position, the "
    "floor drops a last window that would stick out; with dilation D the kernel "
    "spans D·(K − 1) + 1 pixels"
)


# ---------------------------------------------------------------------------
# references (PyTorch, float64)
# ---------------------------------------------------------------------------


def _torch_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    import torch
    import torch.nn.functional as F

    def t(a):
        return None if a is None else torch.from_numpy(np.asarray(a, np.float64))

    with torch.no_grad():
        out = F.conv2d(
            t(x), t(w), t(b), stride=stride, padding=padding,
            dilation=dilation, groups=groups,
        )
    return out.numpy()


def _torch_out_size(h, w, kh, kw, stride, padding, dilation):
    import torch
    import torch.nn.functional as F

    x = torch.zeros(1, 1, h, w, device="meta")
    k = torch.zeros(1, 1, kh, kw, device="meta")
    out = F.conv2d(x, k, stride=stride, padding=padding, dilation=dilation)
    return tuple(int(s) for s in out.shape[2:])


def _torch_unfold(x, kh, kw, stride, padding):
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        cols = F.unfold(
            torch.from_numpy(np.asarray(x, np.float64)),
            (kh, kw),
            stride=stride,
            padding=padding,
        )
    return cols.numpy()


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvCase:
    name: str
    n: int
    c_in: int
    c_out: int
    h: int
    w: int
    kh: int
    kw: int
    stride: int = 1
    padding: int = 0
    bias: bool = True
    dtype: str = "float64"
    dilation: int = 1
    groups: int = 1

    def arrays(self, seed: int):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(self.n, self.c_in, self.h, self.w)).astype(self.dtype)
        w = rng.normal(
            size=(self.c_out, self.c_in // self.groups, self.kh, self.kw)
        ).astype(self.dtype)
        b = rng.normal(size=self.c_out).astype(self.dtype) if self.bias else None
        return x, w, b

    def tol(self) -> float:
        return 1e-4 if self.dtype == "float32" else 1e-9


CONV_CASES = [
    ConvCase("3×3, padding 1, batch 2, 3→4 channels, bias", 2, 3, 4, 6, 4, 3, 3, 1, 1),
    ConvCase("1×1 kernel, no bias", 2, 5, 3, 4, 6, 1, 1, bias=False),
    ConvCase("odd 7×5 input, 3×3, no padding", 1, 2, 3, 7, 5, 3, 3),
    ConvCase("non-square 2×3 kernel on 6×7, padding 1", 2, 2, 3, 6, 7, 2, 3, 1, 1),
    ConvCase("stride 2 on odd 7×9, padding 1", 2, 3, 2, 7, 9, 3, 3, 2, 1),
    ConvCase("stride 2 on 8×6, no padding (floor matters)", 1, 2, 4, 8, 6, 3, 3, 2, 0),
    ConvCase("5×5 kernel, padding 2, batch 1", 1, 1, 2, 5, 6, 5, 5, 1, 2),
    ConvCase("batch 1, one channel in and out, no bias", 1, 1, 1, 5, 5, 3, 3, 1, 1,
             bias=False),
    ConvCase("2→5 channels, stride 3, padding 2", 3, 2, 5, 10, 8, 3, 3, 3, 2),
    ConvCase("kernel as large as the input", 2, 3, 2, 3, 3, 3, 3),
    ConvCase("even 4×4 kernel, padding 1, 4→6 channels", 3, 4, 6, 9, 9, 4, 4, 1, 1),
    ConvCase("float32, the course model's conv1 shape", 4, 1, 16, 8, 8, 3, 3, 1, 1,
             bias=False, dtype="float32"),
    ConvCase("float32, 16→8 channels, stride 2, padding 1", 2, 16, 8, 8, 8, 3, 3, 2, 1,
             dtype="float32"),
]

STRETCH_CASES = [
    ConvCase("dilation 2, padding 2", 2, 3, 4, 9, 8, 3, 3, 1, 2, dilation=2),
    ConvCase("dilation 3, stride 2, no bias", 1, 2, 2, 15, 13, 3, 3, 2, 0, bias=False,
             dilation=3),
    ConvCase("groups 2", 2, 4, 6, 6, 6, 3, 3, 1, 1, groups=2),
    ConvCase("depthwise: groups = channels = 5", 2, 5, 5, 7, 6, 3, 3, 1, 1, groups=5),
    ConvCase("depthwise multiplier 2 (5→10, groups 5), stride 2", 1, 5, 10, 7, 7, 3, 3,
             2, 1, groups=5),
    ConvCase("groups 3 and dilation 2 together", 2, 6, 3, 9, 10, 3, 2, 1, 2,
             dilation=2, groups=3),
    ConvCase("1×1 grouped, 8→4, groups 4", 2, 8, 4, 3, 5, 1, 1, groups=4),
    ConvCase("plain: dilation 1, groups 1", 2, 3, 4, 6, 7, 3, 3, 2, 1),
    ConvCase("float32, groups 4, dilation 2", 2, 8, 8, 8, 8, 3, 3, 1, 2,
             dtype="float32", dilation=2, groups=4),
]


def _case_text(c: ConvCase) -> str:
    return (
        f"x (N={c.n}, C_in={c.c_in}, H={c.h}, W={c.w}), "
        f"w (C_out={c.c_out}, {c.c_in // c.groups}, {c.kh}, {c.kw}), "
        f"bias {'yes' if c.bias else 'None'}, stride {c.stride}, padding {c.padding}"
        + (f", dilation {c.dilation}" if c.dilation != 1 else "")
        + (f", groups {c.groups}" if c.groups != 1 else "")
        + f", {c.dtype}"
    )


# ---------------------------------------------------------------------------
# diagnosing wrong results
# ---------------------------------------------------------------------------


def _close(a, e, tol) -> bool:
    return a.shape == e.shape and bool(np.allclose(a, e, rtol=tol, atol=tol))


def _conv_diagnosis(got: np.ndarray, c: ConvCase, x, w, b) -> str | None:
    """Name the usual mistake whose result matches ``got``, if one does."""
    kw_ = dict(stride=c.stride, padding=c.padding, dilation=c.dilation, groups=c.groups)
    no_bias = _torch_conv(x, w, None, **kw_)
    candidates = [
        (
            _torch_conv(x, w[:, :, ::-1, ::-1].copy(), b, **kw_),
            "your result is a true convolution: the kernel is flipped. conv2d in deep "
            "learning is cross-correlation: out[i, j] = Σ x[i·S + u, j·S + v] · "
            "w[u, v], without flipping w",
        ),
    ]
    if b is not None:
        candidates.append(
            (no_bias, "the bias is missing: add b[co] to every output of channel co")
        )
        if got.shape[-1] == c.c_out:  # b broadcast against the width
            candidates.append(
                (
                    no_bias + b,
                    "the bias was added along the last axis (width). It belongs to "
                    "the output channel, axis 1 of (N, C_out, OH, OW)",
                )
            )
        candidates.append(
            (
                no_bias + b.sum(),
                "every bias value was added to every channel: add only b[co] to "
                "channel co",
            )
        )
    if c.padding:
        for before, after, side in ((0, 2, "bottom/right"), (2, 0, "top/left")):
            edge = (before * c.padding, after * c.padding)
            one_sided = np.pad(x, ((0, 0), (0, 0), edge, edge))
            candidates.append(
                (
                    _torch_conv(one_sided, w, b, stride=c.stride, dilation=c.dilation,
                                groups=c.groups),
                    f"all the padding went to the {side}: put P zeros on EACH side "
                    "of the height and the width (np.pad takes a (before, after) "
                    "pair per axis)",
                )
            )
    if c.groups == 1 and c.c_in > 1 and c.kh * c.kw > 1:
        # a GEMM whose weight matrix and im2col rows flatten in different orders
        # computes a convolution with shuffled weights
        c_out, c_in, kh, kw = w.shape
        mixed = "your weight matrix and your im2col rows are flattened in different "
        same = (
            "orders. w.reshape(C_out, -1) is ordered (channel, kernel row, kernel "
            "column): im2col's rows must follow the same order"
        )
        for w_eff in (
            w.transpose(0, 2, 3, 1).reshape(c_out, c_in, kh, kw),
            w.reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2),
        ):
            candidates.append((_torch_conv(x, w_eff.copy(), b, **kw_), mixed + same))
    for expected, why in candidates:
        if _close(got, expected, c.tol()):
            return why
    if c.dtype == "float64":
        exact = _torch_conv(x, w, b, **kw_)
        if _close(got, exact, 1e-5):
            return (
                "your result is within float32 rounding of the right one, not within "
                "float64's: part of the computation ran in float32 (a float32 "
                "buffer or constant)"
            )
    return None


def _wrong_size(n, k, s, p, d, mistake) -> int:
    """The output size along one axis with one of the usual mistakes."""
    span = d * (k - 1) + 1
    if mistake == "no + 1":
        return (n + 2 * p - span) // s
    if mistake == "ceil":
        return -(-(n + 2 * p - span) // s) + 1
    if mistake == "padding once":
        return (n + p - span) // s + 1
    if mistake == "span K":
        return (n + 2 * p - k) // s + 1
    raise ValueError(mistake)


_SIZE_MISTAKES = {
    "no + 1": "you forgot the + 1: a kernel that fits exactly once still gives one "
    "output",
    "ceil": "use floor division: a last window that would run past the padded input "
    "is dropped, not counted",
    "padding once": "the padding was counted once: it is added on both sides, 2·P",
    "span K": "a dilated kernel spans D·(K − 1) + 1 pixels, not K",
}


def _size_hint(got: tuple, expected: tuple, sizes, kernel, s, p, d) -> str | None:
    """Explain a wrong (oh, ow) by the usual mistakes whose whole result it equals."""
    (h, w), (kh, kw) = sizes, kernel
    found = []
    for mistake, text in _SIZE_MISTAKES.items():
        if mistake == "span K" and d == 1:
            continue
        if tuple(got) == (
            _wrong_size(h, kh, s, p, d, mistake),
            _wrong_size(w, kw, s, p, d, mistake),
        ):
            found.append(text)
    if tuple(got) == expected[::-1] and expected[0] != expected[1]:
        found.append(
            "your values are those of the other axis: the first is along the height "
            "(H with KH), the second along the width (W with KW)"
        )
    if kh != kw and tuple(got) == _torch_out_size(h, w, kw, kh, s, p, d):
        found.append("KH and KW were swapped: the kernel's height goes with H")
    if h != w and tuple(got) == _torch_out_size(w, h, kh, kw, s, p, d):
        found.append("H and W were swapped: the input's height goes with KH")
    found = list(dict.fromkeys(found))
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    return "more than one mistake gives this result: " + "; or ".join(found)


CONV_HINT = (
    "out[n, co, i, j] = b[co] + Σ over ci, u, v of "
    "x_padded[n, ci, i·S + u, j·S + v] · w[co, ci, u, v]"
)
GROUPS_HINT = (
    "dilation D: kernel tap u reads row i·S + u·D; groups G: split the input channels "
    "and the filters into G consecutive blocks and convolve block g with block g only"
)


def _expected_conv(c: ConvCase, x, w, b) -> np.ndarray:
    return _torch_conv(
        x, w, b, stride=c.stride, padding=c.padding, dilation=c.dilation,
        groups=c.groups,
    ).astype(c.dtype)


def _check_conv_result(
    name: str, got, expected, c: ConvCase, x, w, b, generic_hint: str = CONV_HINT
) -> None:
    case = c.name
    if got is None:
        raise CheckFailed(
            name, case, "got None instead of an array", "did you forget to return?"
        )
    assert_type(
        got,
        np.ndarray,
        name,
        case,
        what="result",
        hint="return one NumPy array of shape (N, C_out, OH, OW): np.stack joins a "
        "list of arrays"
        if isinstance(got, (list, tuple))
        else None,
    )
    got_np = got
    if got_np.shape != expected.shape:
        hint = (
            "the output is (N, C_out, OH, OW); " + SIZE_HINT
            if got_np.ndim == 4 and got_np.shape[:2] == expected.shape[:2]
            else "the output is (N, C_out, OH, OW), in that order"
        )
        if got_np.ndim == 4 and got_np.shape[:2] == expected.shape[:2]:
            hint = (
                _size_hint(
                    got_np.shape[2:],
                    expected.shape[2:],
                    (c.h, c.w),
                    (c.kh, c.kw),
                    c.stride,
                    c.padding,
                    c.dilation,
                )
                or hint
            )
        raise CheckFailed(
            name,
            case,
            f"input: {_case_text(c)}\n"
            f"expected shape {expected.shape}, got shape {got_np.shape}",
            hint,
        )
    assert_true(
        got_np.dtype == expected.dtype,
        name,
        case,
        f"input: {_case_text(c)}\nexpected dtype {expected.dtype}, got dtype "
        f"{got_np.dtype}",
        "the output keeps the input's dtype; np.zeros and np.empty make float64 "
        "unless they are told the dtype",
    )
    hint = None
    if not _close(
        got_np.astype(np.float64), expected.astype(np.float64), c.tol()
    ):
        hint = _conv_diagnosis(got_np.astype(np.float64), c, x, w, b)
    assert_array_close(
        got_np,
        expected,
        name,
        f"{case}; {_case_text(c)}",
        rtol=c.tol(),
        atol=c.tol(),
        dtype="same",
        hint=hint or generic_hint,
    )


def _run_conv_cases(name, fn, cases, seed, stretch=False) -> None:
    for index, c in enumerate(cases):
        x, w, b = c.arrays(seed + index)
        expected = _expected_conv(c, x, w, b)  # before the learner sees the inputs
        args = (x, w, b)
        kwargs = dict(stride=c.stride, padding=c.padding)
        if stretch:
            kwargs.update(dilation=c.dilation, groups=c.groups)
        got = call_learner(
            name,
            c.name,
            fn,
            *args,
            hint=(GROUPS_HINT + "; w has shape (C_out, C_in / G, KH, KW)")
            if stretch
            else "compare the shapes: x padded on both sides of H and W, each window "
            "(N, C_in, KH, KW), the output (N, C_out, OH, OW) with the sizes of "
            "exercise 1",
            inplace_hint="work on new arrays (np.pad returns one); an in-place "
            "operator on an argument writes into the caller's array",
            **kwargs,
        )
        _check_conv_result(
            name, got, expected, c, x, w, b, GROUPS_HINT if stretch else CONV_HINT
        )


# ---------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------

SIZE_CASES = [
    # h, w, kh, kw, stride, padding, dilation
    (8, 8, 3, 3, 1, 1, 1),
    (8, 8, 3, 3, 1, 0, 1),
    (8, 6, 3, 3, 2, 0, 1),
    (7, 9, 3, 3, 2, 1, 1),
    (224, 224, 7, 7, 2, 3, 1),
    (28, 28, 5, 5, 1, 2, 1),
    (1, 1, 1, 1, 1, 0, 1),
    (5, 9, 1, 3, 1, 0, 1),
    (10, 7, 3, 2, 3, 1, 1),
    (3, 3, 3, 3, 1, 0, 1),
    (9, 9, 3, 3, 1, 2, 2),
    (15, 13, 3, 3, 2, 0, 3),
]


def _int_hint(value) -> str | None:
    if isinstance(value, (float, np.floating)):
        return (
            "a size is a count: / gives a float, floor division of two ints gives "
            "an int"
        )
    if isinstance(value, np.integer):
        return (
            "a NumPy integer prints as np.int64(…) and is not a Python int: int(…) "
            "converts it"
        )
    return None


def check_conv2d_output_size(fn) -> None:
    """``fn(h, w, kh, kw, stride, padding, dilation=1)`` returns the tuple ``(oh, ow)``
    of Python ints."""
    name = "check_conv2d_output_size"
    for h, w, kh, kw, s, p, d in SIZE_CASES:
        case = f"H={h}, W={w}, kernel {kh}×{kw}, stride {s}, padding {p}, dilation {d}"
        if d == 1:
            got = call_learner(name, case, fn, h, w, kh, kw, s, p, hint=SIZE_HINT)
        else:
            got = call_learner(
                name, case, fn, h, w, kh, kw, s, p, dilation=d, hint=SIZE_HINT
            )
        assert_type(
            got,
            tuple,
            name,
            case,
            what="result",
            hint="return the two sizes as a tuple (oh, ow)",
        )
        assert_true(
            len(got) == 2,
            name,
            case,
            f"expected a tuple of two ints (oh, ow), got {describe(got)}",
            "return the two sizes as a tuple (oh, ow)",
        )
        for value, what in zip(got, ("oh", "ow")):
            assert_type(value, int, name, case, what=what, hint=_int_hint(value))
        expected = _torch_out_size(h, w, kh, kw, s, p, d)
        if got != expected:
            hint = _size_hint(got, expected, (h, w), (kh, kw), s, p, d) or SIZE_HINT
            raise CheckFailed(
                name, case, f"expected (oh, ow) = {expected}, got {got}", hint
            )
    passed(name, len(SIZE_CASES))


def check_conv2d_direct(fn) -> None:
    """``fn(x, w, b=None, stride=1, padding=0)`` equals PyTorch's conv2d."""
    name = "check_conv2d_direct"
    _run_conv_cases(name, fn, CONV_CASES, seed=10)
    passed(name, len(CONV_CASES))


IM2COL_CASES = [
    # name, (n, c, h, w), kh, kw, stride, padding, dtype
    ("3×3, padding 1, 2 channels", (2, 2, 4, 5), 3, 3, 1, 1, "float64"),
    ("non-square 2×3 kernel, 3 channels", (1, 3, 5, 6), 2, 3, 1, 0, "float64"),
    ("1×1 kernel: a reshape", (2, 4, 3, 5), 1, 1, 1, 0, "float64"),
    ("stride 2 on odd 7×9, padding 1", (2, 2, 7, 9), 3, 3, 2, 1, "float64"),
    ("batch 1, one channel, padding 2", (1, 1, 4, 4), 3, 3, 1, 2, "float64"),
    ("non-square output 3×2 (column order matters)", (1, 2, 5, 4), 3, 3, 1, 0,
     "float64"),
    ("float32, the course model's conv2 input", (3, 16, 8, 8), 3, 3, 1, 1, "float32"),
]


def _im2col_diagnosis(got, x, kh, kw, stride, padding) -> str | None:
    n, c = x.shape[:2]
    ref = _torch_unfold(x, kh, kw, stride, padding)  # (n, c*kh*kw, L)
    length = ref.shape[-1]
    by_position = (
        ref.reshape(n, c, kh * kw, length).transpose(0, 2, 1, 3).reshape(ref.shape)
    )
    oh, ow = _torch_out_size(x.shape[2], x.shape[3], kh, kw, stride, padding, 1)
    col_major = (
        ref.reshape(n, -1, oh, ow).transpose(0, 1, 3, 2).reshape(ref.shape)
    )
    if _close(got, by_position, 1e-6):
        return (
            "your rows are ordered (kernel row, kernel column, channel); they must be "
            "(channel, kernel row, kernel column) — row c·KH·KW + u·KW + v — the "
            "order of w.reshape(C_out, -1) for w of shape (C_out, C_in, KH, KW)"
        )
    if _close(got, col_major, 1e-6):
        return (
            "your columns run down the output columns first; column index must be "
            "i·OW + j for output position (i, j) (row-major, like reshape)"
        )
    return None


def check_im2col(fn) -> None:
    """``fn(x, kh, kw, stride, padding)`` returns (N, C·kh·kw, OH·OW) columns."""
    name = "check_im2col"
    rng = np.random.default_rng(20)
    for case, shape, kh, kw, s, p, dtype in IM2COL_CASES:
        x = rng.normal(size=shape).astype(dtype)
        expected = _torch_unfold(x, kh, kw, s, p).astype(dtype)
        got = call_learner(
            name,
            case,
            fn,
            x,
            kh,
            kw,
            s,
            p,
            hint="pad x once, then for each kernel tap (u, v) copy one strided slice "
            "of the padded input, OH × OW values, into its rows (section 3); compare "
            "the shapes of both sides of the assignment",
            inplace_hint="np.pad returns a new array; write only into the columns "
            "array",
        )
        full = (
            f"{case}; x shape {shape}, kernel {kh}×{kw}, stride {s}, padding {p}, "
            f"{dtype}"
        )
        if got is not None:
            assert_type(
                got,
                np.ndarray,
                name,
                full,
                what="columns",
                hint="return one NumPy array of shape (N, C·KH·KW, OH·OW): np.stack "
                "joins a list of arrays"
                if isinstance(got, (list, tuple))
                else None,
            )
        hint = None
        if got is not None and got.shape != expected.shape:
            hint = (
                "the layout is (N, C·KH·KW, OH·OW): one row per (channel, kernel "
                "row, kernel column), one column per output position"
            )
        elif got is not None and got.dtype != expected.dtype:
            hint = (
                "the columns keep x's dtype; np.zeros and np.empty make float64 "
                "unless they are told the dtype"
            )
        elif got is not None:
            hint = _im2col_diagnosis(got.astype(np.float64), x, kh, kw, s, p)
        assert_array_close(
            got, expected, name, full, rtol=1e-12, atol=1e-12, dtype="same",
            expect_type=np.ndarray,
            hint=hint or "the layout of section 3: cols[n, c·KH·KW + u·KW + v, "
            "i·OW + j] holds x_padded[n, c, i·S + u, j·S + v]",
        )
    passed(name, len(IM2COL_CASES))


def check_conv2d_im2col(fn) -> None:
    """``fn(x, w, b=None, stride=1, padding=0)`` (im2col + GEMM) equals conv2d."""
    name = "check_conv2d_im2col"
    _run_conv_cases(name, fn, CONV_CASES, seed=30)
    passed(name, len(CONV_CASES))


def check_conv2d_grouped_dilated(fn) -> None:
    """Stretch: ``fn(x, w, b=None, stride=1, padding=0, dilation=1, groups=1)``."""
    name = "check_conv2d_grouped_dilated"
    _run_conv_cases(name, fn, STRETCH_CASES, seed=40, stretch=True)
    passed(name, len(STRETCH_CASES))
