"""Lab 02_01's checks reject typical mistakes and accept other correct solutions.

Each wrong implementation below is a mistake learners make when they first write a
convolution; the tests also assert that the message names the case and points at the
problem, not only that the check fails. Wrong implementations marked "passed before"
were accepted by the checks before issue 9 (verified by running them against the
previous version of ``model2metal/checks/lab02_01.py``).
"""

import math

import numpy as np
import pytest
import torch
from check_helpers import raises_cleanly, rejects
from numpy.lib.stride_tricks import sliding_window_view

from model2metal.checks import lab02_01 as checks




# --- building blocks (correct unless a flag says otherwise) ---------------------------


def out_size(h, w, kh, kw, stride, padding, dilation=1):
    return (
        (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1,
        (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1,
    )


def pad(x, p, before=None, after=None):
    before = p if before is None else before
    after = p if after is None else after
    return np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)))


def direct(x, w, b=None, stride=1, padding=0, *, size=out_size, flip=False,
           pads=None, bias_axis="channel"):
    n, _, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    oh, ow = size(h, wd, kh, kw, stride, padding)
    xp = pad(x, padding, *(pads or (None, None)))
    k = w[:, :, ::-1, ::-1] if flip else w
    out = np.empty((n, c_out, oh, ow), dtype=np.result_type(x, w))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, k, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        out = out + (b[None, :, None, None] if bias_axis == "channel" else b)
    return out


def im2col_positions(x, kh, kw, stride=1, padding=0, *, order="c,a,b",
                     columns="row-major"):
    """im2col by looping over output positions (the other route from the solution)."""
    n, c, h, w = x.shape
    oh, ow = out_size(h, w, kh, kw, stride, padding)
    xp = pad(x, padding)
    cols = np.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            if order == "a,b,c":
                patch = patch.transpose(0, 2, 3, 1)
            col = i * ow + j if columns == "row-major" else j * oh + i
            cols[:, :, col] = patch.reshape(n, -1)
    return cols


def im2col_windows(x, kh, kw, stride=1, padding=0):
    """im2col with sliding_window_view: another correct route."""
    n, c = x.shape[:2]
    win = sliding_window_view(pad(x, padding), (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]  # (n, c, oh, ow, kh, kw)
    oh, ow = win.shape[2:4]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)


def gemm_conv(x, w, b=None, stride=1, padding=0, *, cols_fn=im2col_windows,
              weight_order="c,a,b"):
    n, _, h, wd = x.shape
    c_out, c_in, kh, kw = w.shape
    oh, ow = out_size(h, wd, kh, kw, stride, padding)
    cols = cols_fn(x, kh, kw, stride, padding)
    wm = w if weight_order == "c,a,b" else w.transpose(0, 2, 3, 1)
    out = (wm.reshape(c_out, -1) @ cols).reshape(n, c_out, oh, ow)
    return out if b is None else out + b[:, None, None]


# --- output size ----------------------------------------------------------------------


def test_output_size_accepts_floor_and_counting():
    def by_floor(h, w, kh, kw, stride, padding, dilation=1):
        return tuple(
            int(math.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride)) + 1
            for n, k in ((h, kh), (w, kw))
        )

    def by_counting(h, w, kh, kw, stride, padding, dilation=1):
        def count(n, k):
            span = dilation * (k - 1) + 1
            return len(range(0, n + 2 * padding - span + 1, stride))

        return count(h, kh), count(w, kw)

    def by_numpy(h, w, kh, kw, stride, padding, dilation=1):
        sizes = np.floor_divide(
            np.array([h, w]) + 2 * padding - dilation * (np.array([kh, kw]) - 1) - 1,
            stride,
        ) + 1
        return tuple(int(v) for v in sizes)

    checks.check_conv2d_output_size(by_floor)
    checks.check_conv2d_output_size(by_counting)
    checks.check_conv2d_output_size(by_numpy)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda h, w, kh, kw, s, p, d=1: (
                (h + 2 * p - kh) // s,
                (w + 2 * p - kw) // s,
            ),
            r"case 'H=8, W=8, kernel 3×3, stride 1, padding 1.*forgot the \+ 1",
        ),
        (
            lambda h, w, kh, kw, s, p, d=1: (
                math.ceil((h + 2 * p - d * (kh - 1) - 1) / s) + 1,
                math.ceil((w + 2 * p - d * (kw - 1) - 1) / s) + 1,
            ),
            r"H=8, W=6, kernel 3×3, stride 2.*expected \(oh, ow\) = \(3, 2\), got "
            r"\(4, 3\).*floor division",
        ),
        (
            lambda h, w, kh, kw, s, p, d=1: (
                (h + p - kh) // s + 1,
                (w + p - kw) // s + 1,
            ),
            r"padding 1.*counted once.*2·P",
        ),
        (
            lambda h, w, kh, kw, s, p, d=1: (
                (h + 2 * p - kh) / s + 1,
                (w + 2 * p - kw) / s + 1,
            ),
            r"oh: expected an int, got float 8.0.*floor division",
        ),
        (  # passed before: the list printed as [8, 8] in the lab's next cell
            lambda h, w, kh, kw, s, p, dilation=1: [
                (h + 2 * p - dilation * (kh - 1) - 1) // s + 1,
                (w + 2 * p - dilation * (kw - 1) - 1) // s + 1,
            ],
            r"result: expected a tuple, got a list: \[8, 8\]",
        ),
        (  # passed before: NumPy ints print as np.int64(8) in the lab's next cell
            lambda h, w, kh, kw, s, p, dilation=1: tuple(
                (np.array([h, w]) + 2 * p - dilation * (np.array([kh, kw]) - 1) - 1)
                // s + 1
            ),
            r"oh: expected an int, got numpy.int64 8.*int\(…\) converts",
        ),
        (  # rejected before, but told "you forgot the + 1"
            lambda h, w, kh, kw, s, p, dilation=1: (
                (w + 2 * p - dilation * (kw - 1) - 1) // s + 1,
                (h + 2 * p - dilation * (kh - 1) - 1) // s + 1,
            ),
            r"H=8, W=6.*expected \(oh, ow\) = \(3, 2\), got \(2, 3\).*those of the "
            r"other axis",
        ),
        (
            lambda h, w, kh, kw, s, p, dilation=1: (
                (h + 2 * p - kh) // s + 1,
                (w + 2 * p - kw) // s + 1,
            ),
            r"dilation 2.*D·\(K − 1\) \+ 1",
        ),
        (
            lambda h, w, kh, kw, s, p: (
                (h + 2 * p - kh) // s + 1,
                (w + 2 * p - kw) // s + 1,
            ),
            r"dilation 2.*raised TypeError.*unexpected keyword",
        ),
    ],
)
def test_output_size_rejects(wrong, expect):
    msg = rejects(checks.check_conv2d_output_size, wrong, expect=expect)
    if "other axis" in expect:
        assert "+ 1" not in msg


# --- direct convolution ---------------------------------------------------------------


def test_direct_accepts_reference_style_and_scalar_loops():
    checks.check_conv2d_direct(direct)

    def seven_loops(x, w, b=None, stride=1, padding=0):  # slow, but correct
        n, c_in, h, wd = x.shape
        c_out, _, kh, kw = w.shape
        oh, ow = out_size(h, wd, kh, kw, stride, padding)
        xp = pad(x, padding)
        out = np.zeros((n, c_out, oh, ow), dtype=x.dtype)
        for a in range(n):
            for co in range(c_out):
                for i in range(oh):
                    for j in range(ow):
                        acc = 0.0 if b is None else b[co]
                        for ci in range(c_in):
                            for u in range(kh):
                                for v in range(kw):
                                    acc += (
                                        xp[a, ci, i * stride + u, j * stride + v]
                                        * w[co, ci, u, v]
                                    )
                        out[a, co, i, j] = acc
        return out

    checks.check_conv2d_direct(seven_loops)


def no_plus_one(h, w, kh, kw, s, p, d=1):
    return (h + 2 * p - kh) // s, (w + 2 * p - kw) // s


def ceil_size(h, w, kh, kw, s, p, d=1):
    return -(-(h + 2 * p - kh) // s) + 1, -(-(w + 2 * p - kw) // s) + 1


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda *a, **k: direct(*a, **k, size=no_plus_one),
            r"3×3, padding 1, batch 2.*expected shape \(2, 4, 6, 4\), got shape "
            r"\(2, 4, 5, 3\).*forgot the \+ 1",
        ),
        (
            lambda *a, **k: direct(*a, **k, size=ceil_size),
            r"stride 2 on 8×6.*raised ValueError.*\n.*input: .*\n.*line.*tensordot.*"
            r"compare the shapes.*sizes of exercise 1",
        ),
        (
            lambda *a, **k: direct(*a, **k, flip=True),
            r"case '3×3, padding 1, batch 2.*values differ.*kernel is flipped.*"
            r"cross-correlation",
        ),
        (
            lambda *a, **k: direct(*a, **k, pads=(0, 2 * k.get("padding", 0))),
            r"padding 1.*values differ.*padding went to the bottom/right.*EACH side",
        ),
        (
            lambda *a, **k: direct(*a, **k, pads=(k.get("padding", 0), 0)),
            r"padding 1.*raised ValueError.*padded on both sides",
        ),
        (
            lambda *a, **k: direct(*a, **k, bias_axis="last"),
            r"3→4 channels, bias.*values differ.*last axis.*axis 1 of",
        ),
        (
            lambda x, w, b=None, stride=1, padding=0: direct(
                x, w, None, stride, padding
            ),
            r"bias.*bias is missing",
        ),
        (
            lambda x, w, b=None, stride=1, padding=0: direct(
                x, w, None, stride, padding
            ) + (0 if b is None else b.sum()),
            r"every bias value was added to every channel",
        ),
        (
            lambda x, w, b=None, stride=1, padding=0: direct(
                x.astype(np.float64), w.astype(np.float64), b, stride, padding
            ),
            r"float32.*expected dtype float32, got dtype float64",
        ),
        (
            lambda x, w, b=None, stride=1, padding=0: direct(
                x, w, b, stride, padding
            ).transpose(0, 2, 3, 1),
            r"expected shape \(2, 4, 6, 4\), got shape \(2, 6, 4, 4\).*"
            r"\(N, C_out, OH, OW\)",
        ),
    ],
)
def test_direct_rejects(wrong, expect):
    rejects(checks.check_conv2d_direct, wrong, expect=expect)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (  # passed before: converted by the check; the lab's next cell then fails
            lambda x, w, b=None, stride=1, padding=0: torch.from_numpy(
                direct(x, w, b, stride, padding)
            ),
            r"result: expected a numpy.ndarray, got torch.Tensor.*NumPy array",
        ),
        (  # passed before: a list of per-image arrays
            lambda x, w, b=None, stride=1, padding=0: list(
                direct(x, w, b, stride, padding)
            ),
            r"result: expected a numpy.ndarray, got list of 2 \[ndarray.*np.stack",
        ),
        (  # float64 in, float64 out, but computed in float32
            lambda x, w, b=None, stride=1, padding=0: direct(
                x.astype(np.float32), w.astype(np.float32),
                None if b is None else b.astype(np.float32), stride, padding,
            ).astype(x.dtype),
            r"3×3, padding 1.*values differ.*within float32 rounding.*ran in float32",
        ),
    ],
)
def test_direct_rejects_wrong_types_and_precision(wrong, expect):
    rejects(checks.check_conv2d_direct, wrong, expect=expect)


def test_direct_rejects_changing_the_input():
    def in_place(x, w, b=None, stride=1, padding=0):
        out = direct(x, w, b, stride, padding)
        x[...] = 0
        return out

    rejects(checks.check_conv2d_direct, in_place,
            expect=r"changed its input `x` in place.*new arrays")


def test_direct_rejects_missing_return():
    rejects(
        checks.check_conv2d_direct,
        lambda x, w, b=None, stride=1, padding=0: None,
        expect=r"got None.*return",
    )


# --- im2col ---------------------------------------------------------------------------


def test_im2col_accepts_position_loop_and_windows():
    checks.check_im2col(im2col_positions)
    checks.check_im2col(im2col_windows)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda *a: im2col_positions(*a, order="a,b,c"),
            r"3×3, padding 1, 2 channels.*values differ.*\(kernel row, kernel column, "
            r"channel\).*c·KH·KW \+ u·KW \+ v",
        ),
        (
            lambda *a: im2col_positions(*a, columns="column-major"),
            r"3×3, padding 1, 2 channels.*columns run down.*i·OW \+ j",
        ),
        (
            lambda *a: im2col_windows(*a).transpose(0, 2, 1),
            r"expected shape \(2, 18, 20\), got shape \(2, 20, 18\).*"
            r"\(N, C·KH·KW, OH·OW\)",
        ),
        (
            lambda x, kh, kw, s=1, p=0: im2col_windows(
                x.astype(np.float64), kh, kw, s, p
            ),
            r"float32.*expected dtype float32",
        ),
        (
            lambda x, kh, kw, s=1, p=0: im2col_windows(x, kh, kw, s, 0),
            r"3×3, padding 1.*expected shape.*\(N, C·KH·KW, OH·OW\)",
        ),
    ],
)
def test_im2col_rejects(wrong, expect):
    rejects(checks.check_im2col, wrong, expect=expect)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (  # passed before: np.asarray in the check turned it into an array
            lambda x, kh, kw, s=1, p=0: list(im2col_windows(x, kh, kw, s, p)),
            r"columns: expected a numpy.ndarray, got list of 2.*np.stack",
        ),
        (  # passed before
            lambda x, kh, kw, s=1, p=0: torch.from_numpy(
                im2col_windows(x, kh, kw, s, p)
            ),
            r"columns: expected a numpy.ndarray, got torch.Tensor",
        ),
    ],
)
def test_im2col_rejects_other_containers(wrong, expect):
    rejects(checks.check_im2col, wrong, expect=expect)


# --- im2col + GEMM --------------------------------------------------------------------


def test_conv_im2col_accepts_one_big_gemm_and_einsum():
    def one_gemm(x, w, b=None, stride=1, padding=0):  # (K, N·L) layout, one matmul
        n = x.shape[0]
        c_out, _, kh, kw = w.shape
        oh, ow = out_size(x.shape[2], x.shape[3], kh, kw, stride, padding)
        cols = im2col_windows(x, kh, kw, stride, padding)  # (n, K, L)
        big = cols.transpose(1, 0, 2).reshape(cols.shape[1], -1)  # (K, n·L)
        out = (w.reshape(c_out, -1) @ big).reshape(c_out, n, oh, ow)
        out = out.transpose(1, 0, 2, 3)
        return out if b is None else out + b.reshape(1, -1, 1, 1)

    def by_einsum(x, w, b=None, stride=1, padding=0):
        c_out, _, kh, kw = w.shape
        oh, ow = out_size(x.shape[2], x.shape[3], kh, kw, stride, padding)
        cols = im2col_positions(x, kh, kw, stride, padding)
        out = np.einsum("ok,nkl->nol", w.reshape(c_out, -1), cols)
        out = out.reshape(x.shape[0], c_out, oh, ow)
        return out if b is None else out + b[:, None, None]

    checks.check_conv2d_im2col(gemm_conv)
    checks.check_conv2d_im2col(one_gemm)
    checks.check_conv2d_im2col(by_einsum)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda *a, **k: gemm_conv(*a, **k, weight_order="a,b,c"),
            r"3×3, padding 1, batch 2.*values differ.*weight matrix and your im2col "
            r"rows are flattened in different orders",
        ),
        (
            lambda *a, **k: gemm_conv(
                *a, **k, cols_fn=lambda *c: im2col_positions(*c, order="a,b,c")
            ),
            r"flattened in different orders",
        ),
        (
            lambda x, w, b=None, stride=1, padding=0: gemm_conv(
                x, w[:, :, ::-1, ::-1], b, stride, padding
            ),
            r"kernel is flipped",
        ),
        (
            lambda x, w, b=None, stride=1, padding=0: gemm_conv(
                x, w, None, stride, padding
            )
            + (0 if b is None else b),
            r"3→4 channels, bias.*last axis",
        ),
    ],
)
def test_conv_im2col_rejects(wrong, expect):
    rejects(checks.check_conv2d_im2col, wrong, expect=expect)


def test_conv_im2col_rejects_reshaping_the_callers_weights():
    def reshape_in_place(x, w, b=None, stride=1, padding=0):
        c_out, _, kh, kw = w.shape
        oh, ow = out_size(x.shape[2], x.shape[3], kh, kw, stride, padding)
        cols = im2col_windows(x, kh, kw, stride, padding)
        w.shape = (c_out, -1)  # changes the caller's array
        out = (w @ cols).reshape(x.shape[0], c_out, oh, ow)
        return out if b is None else out + b[:, None, None]

    rejects(checks.check_conv2d_im2col, reshape_in_place,
            expect=r"changed its input `w` in place \(its shape went from "
            r"\(4, 3, 3, 3\) to \(4, 27\)\)")


def _raising_size(h, w, kh, kw, stride, padding, dilation=1):
    return (h + 2 * padding - kh) // stride + 1, w.size


def _raising_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    xp = np.pad(x, padding)  # pads N and C too
    return np.tensordot(xp[:, :, :3, :3], w, axes=([1, 2, 3], [1, 2, 3]))


def _raising_im2col(x, kh, kw, stride=1, padding=0):
    return x.reshape(x.shape[0], x.shape[1] * kh * kw, -1)


@pytest.mark.parametrize(
    "check, fn, expect",
    [
        (checks.check_conv2d_output_size, _raising_size,
         r"H=8, W=8.*AttributeError.*input: int 8.*line \d+: .*w.size.*Hint: count"),
        (checks.check_conv2d_direct, _raising_conv,
         r"3×3, padding 1.*ValueError.*input: ndarray shape \(2, 3, 6, 4\).*"
         r"tensordot.*Hint: compare the shapes"),
        (checks.check_conv2d_im2col, _raising_conv, r"ValueError.*Hint: compare"),
        (checks.check_conv2d_grouped_dilated, _raising_conv,
         r"dilation 2.*ValueError.*Hint: dilation D"),
        (checks.check_im2col, _raising_im2col,
         r"3×3, padding 1.*ValueError.*cannot reshape.*Hint: pad x once"),
    ],
)
def test_learner_errors_are_one_message(check, fn, expect):
    raises_cleanly(check, fn, expect=expect)


# --- stretch: dilation and groups -----------------------------------------------------


def grouped_by_loop(x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                    interleaved=False, ignore_dilation=False):
    """Per group, per kernel tap: accumulate shifted, strided views (another route)."""
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    d = 1 if ignore_dilation else dilation
    oh, ow = out_size(h, wd, kh, kw, stride, padding, dilation)
    xp = pad(x, padding)
    out = np.zeros((n, c_out, oh, ow), dtype=np.result_type(x, w))
    og = c_out // groups
    for g in range(groups):
        if interleaved:  # wrong: channels g, g + G, g + 2G, ...
            ins = np.arange(c_in)[g::groups]
        else:
            ins = np.arange(g * cg, (g + 1) * cg)
        for a in range(kh):
            for c in range(kw):
                view = xp[:, ins, a * d : a * d + stride * (oh - 1) + 1 : stride,
                          c * d : c * d + stride * (ow - 1) + 1 : stride]
                out[:, g * og : (g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", view, w[g * og : (g + 1) * og, :, a, c]
                )
    return out if b is None else out + b[:, None, None]


def test_grouped_dilated_accepts_loop_over_groups():
    checks.check_conv2d_grouped_dilated(grouped_by_loop)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda *a, **k: grouped_by_loop(*a, **k, interleaved=True),
            r"groups 2.*values differ.*consecutive blocks",
        ),
        (
            lambda *a, **k: grouped_by_loop(*a, **k, ignore_dilation=True),
            r"dilation 2.*values differ.*u·D",
        ),
        (
            lambda x, w, b=None, stride=1, padding=0, dilation=1, groups=1: gemm_conv(
                x, w, b, stride, padding
            ),
            r"dilation 2.*(raised|expected shape).*",
        ),
        (
            lambda x, w, b=None, stride=1, padding=0, dilation=1, groups=1: (
                grouped_by_loop(x, w, b, stride, padding, dilation, groups)
                if groups == 1
                else gemm_conv(x, w, b, stride, padding)
            ),
            r"groups 2.*raised ValueError.*C_in / G",
        ),
    ],
)
def test_grouped_dilated_rejects(wrong, expect):
    rejects(checks.check_conv2d_grouped_dilated, wrong, expect=expect)


def test_checks_are_fast_enough_for_the_lab():
    import time

    start = time.perf_counter()
    checks.check_conv2d_direct(direct)
    checks.check_im2col(im2col_windows)
    checks.check_conv2d_im2col(gemm_conv)
    checks.check_conv2d_grouped_dilated(grouped_by_loop)
    assert time.perf_counter() - start < 5
