"""Checks for lab 01_01 "Backprop from scratch (NumPy)".

Every backward rule the learner writes is compared with PyTorch's autograd in float64 on
the same inputs: a second, independent route to the same gradient. The numerical
gradient is compared with closed-form derivatives. Cases include broadcasting, batch 1,
square matrices (where a missing transpose keeps the shape but not the values), logits
near ±1000 (where a softmax without the max-subtraction overflows) and a batch that
mixes both (where one maximum for the whole batch underflows), a graph node reached
along paths of different lengths, and a training run with a zero learning rate (whose
epoch losses are known exactly).

Hints name a cause only when the check has computed that mistake and the learner's
result matches it; otherwise they state what was observed.
"""

from __future__ import annotations

import functools

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
    assert_type,
    call_learner,
    describe,
    hint_from_evidence,
    matches,
    passed,
)

__all__ = [
    "check_unbroadcast",
    "check_add_backward",
    "check_mul_backward",
    "check_matmul_backward",
    "check_relu",
    "check_sum_backward",
    "check_softmax_cross_entropy",
    "check_backward",
    "check_numerical_gradient",
    "check_mlp_forward",
    "check_sgd_step",
    "check_train_mlp",
    "check_test_accuracy",
]

RTOL, ATOL = 1e-10, 1e-12

#: A gradient is a float64 NumPy array; for a scalar operand (shape ()) a NumPy float
#: such as ``grad.sum()`` returns is accepted as well.
GRAD_TYPES = (np.ndarray, np.float64)


def _torch():
    import torch

    return torch


def _leaf(x: np.ndarray):
    torch = _torch()
    return torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def _torch_grads(f, arrays, grad_out):
    """Gradients of f(*tensors) w.r.t. each array, for the output gradient grad_out."""
    torch = _torch()
    leaves = [_leaf(a) for a in arrays]
    out = f(*leaves)
    grads = torch.autograd.grad(out, leaves, grad_outputs=torch.tensor(grad_out))
    return [g.numpy() for g in grads]


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The check's own unbroadcast, to compute candidate mistakes (not a reference)."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad.reshape(shape)


def _shape(x) -> tuple[int, ...] | None:
    """The shape of an array-like, or None (never raises)."""
    try:
        return tuple(np.shape(x))
    except Exception:  # noqa: BLE001 - any object may come back
        return None






def _nonfinite(got) -> bool:
    try:
        return not bool(np.all(np.isfinite(np.asarray(got, dtype=np.float64))))
    except (TypeError, ValueError):
        return False


def _pair(name: str, case: str, got):
    """The learner's backward must return a tuple (grad_a, grad_b)."""
    if not isinstance(got, tuple) or len(got) != 2:
        raise CheckFailed(
            name,
            case,
            f"expected a tuple (grad_a, grad_b), got {describe(got)}",
            "return both gradients, grad_a first: return grad_a, grad_b",
        )
    return got


def _shape_hint(label: str, got, want: tuple, grad_out_shape: tuple) -> str | None:
    """A hint for a gradient of the wrong shape, from the shape that came back."""
    got_shape = _shape(got)
    if got_shape is None or got_shape == want:
        return None
    operand = label.removeprefix("grad_")
    if got_shape == grad_out_shape:
        return (
            f"{label} has grad_out's shape {grad_out_shape}, not the shape {want} of "
            f"{operand}: {operand} was broadcast, so its gradient is summed back to "
            "its shape (your unbroadcast)"
        )
    return f"{label} has the shape of {operand}: {want}"


def _assert_grad(name, case, label, got, expected, hint) -> None:
    assert_array_close(
        got,
        expected,
        name,
        case,
        rtol=RTOL,
        atol=ATOL,
        dtype=np.float64,
        expect_type=GRAD_TYPES,
        what=label,
        hint=hint,
    )


#: Backprop results are float64 and exact up to rounding: a candidate mistake counts
#: as evidence only when it matches that tightly.
_matches = functools.partial(matches, rtol=1e-9, atol=1e-12)
_first_match = functools.partial(hint_from_evidence, rtol=1e-9, atol=1e-12)


#: For a function that wrote into an input it was given (see call_learner).
KEEP_INPUTS_HINT = (
    "the backward pass needs the original values: compute new arrays instead of "
    "writing into the input (an in-place operator or a slice assignment writes)"
)


# ---------------------------------------------------------------------------
# broadcasting
# ---------------------------------------------------------------------------

_UNBROADCAST_CASES = {
    "(3, 4) back to (4,)": ((3, 4), (4,)),
    "(3, 4) back to (3, 1)": ((3, 4), (3, 1)),
    "(3, 4) back to (1, 4)": ((3, 4), (1, 4)),
    "(2, 3, 4) back to (3, 1)": ((2, 3, 4), (3, 1)),
    "(3, 4) back to a scalar ()": ((3, 4), ()),
    "(2, 3) unchanged": ((2, 3), (2, 3)),
    "batch 1: (1, 5) back to (5,)": ((1, 5), (5,)),
}


def _unbroadcast_hint(got, grad: np.ndarray, shape: tuple, expected) -> str | None:
    got_shape = _shape(got)
    if got_shape is None:
        return None
    if got_shape != tuple(shape):
        if got_shape == grad.shape:
            return "nothing was summed: grad came back with the broadcast shape"
        kept = tuple(n for n in shape if n != 1)
        if got_shape == kept and kept != tuple(shape):
            return (
                f"the axes where shape has size 1 were summed away: they stay, with "
                f"size 1, so that the result has shape {tuple(shape)} (keepdims)"
            )
        if len(got_shape) > len(shape):
            return "the leading axes that broadcasting added are still there"
        return f"the result has the shape it was asked for: {tuple(shape)}"
    counts = grad.size / max(int(np.prod(shape)), 1)
    return _first_match(
        got, [("averaged instead of summed", np.asarray(expected) / counts)]
    ) if counts > 1 else None


def check_unbroadcast(fn) -> None:
    """``fn(grad, shape)`` sums ``grad`` down to ``shape``: undoes broadcasting."""
    torch = _torch()
    name = "check_unbroadcast"
    rng = np.random.default_rng(10)
    for case, (big, small) in _UNBROADCAST_CASES.items():
        grad = rng.normal(size=big)
        x = _leaf(np.zeros(small))
        (x + torch.zeros(big, dtype=torch.float64)).backward(torch.tensor(grad))
        expected = x.grad.numpy()
        got = call_learner(
            name,
            case,
            fn,
            grad,
            small,
            hint="grad is a float64 array, shape a tuple (possibly () for a scalar)",
        )
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=RTOL,
            atol=ATOL,
            dtype=np.float64,
            expect_type=GRAD_TYPES,
            what="gradient",
            hint=_unbroadcast_hint(got, grad, small, expected),
        )
    passed(name, len(_UNBROADCAST_CASES))


# ---------------------------------------------------------------------------
# elementwise ops
# ---------------------------------------------------------------------------

_BINARY_CASES = {
    "(3, 4) with (4,)": ((3, 4), (4,)),
    "(3, 1) with (1, 4)": ((3, 1), (1, 4)),
    "same shape (2, 3)": ((2, 3), (2, 3)),
    "batch 1: (1, 5) with (5,)": ((1, 5), (5,)),
    "scalar () with (2, 3)": ((), (2, 3)),
}


def check_add_backward(fn) -> None:
    """``fn(grad_out, a_shape, b_shape)`` -> (grad_a, grad_b) of ``a + b``."""
    name = "check_add_backward"
    rng = np.random.default_rng(11)
    for case, (sa, sb) in _BINARY_CASES.items():
        a, b = rng.normal(size=sa), rng.normal(size=sb)
        grad_out = rng.normal(size=np.broadcast_shapes(sa, sb))
        expected = _torch_grads(lambda x, y: x + y, [a, b], grad_out)
        got = call_learner(
            name,
            case,
            fn,
            grad_out,
            sa,
            sb,
            hint="a_shape and b_shape are tuples; grad_out has the broadcast shape",
        )
        got = _pair(name, case, got)
        for label, g, e, s in zip(("grad_a", "grad_b"), got, expected, (sa, sb)):
            hint = _shape_hint(label, g, s, grad_out.shape) or (
                "d(a+b)/da is 1: each element of an operand receives the gradient "
                "of every output element it went into"
            )
            _assert_grad(name, case, label, g, e, hint)
    passed(name, len(_BINARY_CASES))


def check_mul_backward(fn) -> None:
    """``fn(grad_out, a, b)`` -> (grad_a, grad_b) of ``a * b``."""
    name = "check_mul_backward"
    rng = np.random.default_rng(12)
    for case, (sa, sb) in _BINARY_CASES.items():
        a, b = rng.normal(size=sa), rng.normal(size=sb)
        grad_out = rng.normal(size=np.broadcast_shapes(sa, sb))
        expected = _torch_grads(lambda x, y: x * y, [a, b], grad_out)
        got = call_learner(
            name,
            case,
            fn,
            grad_out,
            a,
            b,
            hint="a and b are the forward inputs; grad_out has the broadcast shape",
            inplace_hint=KEEP_INPUTS_HINT,
        )
        got = _pair(name, case, got)
        operands = {"grad_a": (a, b, "a", "b"), "grad_b": (b, a, "b", "a")}
        for label, g, e in zip(("grad_a", "grad_b"), got, expected):
            own, other, x, y = operands[label]
            hint = _shape_hint(label, g, own.shape, grad_out.shape) or _first_match(
                g,
                [
                    (
                        f"{label} matches grad_out times {x} itself: the derivative of "
                        f"a*b with respect to {x} is the other operand, {y}",
                        _unbroadcast(grad_out * own, own.shape),
                    ),
                    (
                        f"{label} is grad_out summed back, without the factor: "
                        f"d(a*b)/d{x} = {y}",
                        _unbroadcast(grad_out, own.shape),
                    ),
                ],
            )
            _assert_grad(name, case, label, g, e, hint)
    passed(name, len(_BINARY_CASES))


def check_matmul_backward(fn) -> None:
    """``fn(grad_out, a, b)`` -> (grad_a, grad_b) of ``a @ b`` for 2-D a and b."""
    name = "check_matmul_backward"
    rng = np.random.default_rng(13)
    cases = {
        "(3, 4) @ (4, 5)": ((3, 4), (4, 5)),
        "batch 1: (1, 4) @ (4, 5)": ((1, 4), (4, 5)),
        "square (4, 4) @ (4, 4)": ((4, 4), (4, 4)),
        "outer product (5, 1) @ (1, 3)": ((5, 1), (1, 3)),
        "(2, 7) @ (7, 1)": ((2, 7), (7, 1)),
    }
    for case, (sa, sb) in cases.items():
        a, b = rng.normal(size=sa), rng.normal(size=sb)
        grad_out = rng.normal(size=(sa[0], sb[1]))
        expected = _torch_grads(lambda x, y: x @ y, [a, b], grad_out)
        got = call_learner(
            name,
            case,
            fn,
            grad_out,
            a,
            b,
            hint=f"grad_a has a's shape {sa} and grad_b b's shape {sb}: the shapes "
            "of grad_out and the other operand tell you which product gives it",
            inplace_hint=KEEP_INPUTS_HINT,
        )
        got = _pair(name, case, got)
        no_transpose = {  # the products without a transpose, where they exist
            "grad_a": grad_out @ b if sb[0] == sb[1] else None,
            "grad_b": a @ grad_out if sa[0] == sa[1] else None,
        }
        swapped = {"grad_a": expected[1], "grad_b": expected[0]}
        for label, g, e, s in zip(("grad_a", "grad_b"), got, expected, (sa, sb)):
            if _shape(g) not in (None, s):
                hint = (
                    f"{label} has the shape of {label[-1]}, {s}: which product of "
                    f"grad_out {grad_out.shape} and the other operand has that shape?"
                )
            else:
                candidates = [
                    (
                        f"{label} holds the other operand's gradient: return "
                        "(grad_a, grad_b) in that order",
                        swapped[label],
                    )
                ]
                if no_transpose[label] is not None:
                    candidates.append(
                        (
                            f"{label} is the product without a transpose: with square "
                            "matrices every product has the right shape, so the "
                            "shapes cannot guide you here; which index of the "
                            "operand is summed over?",
                            no_transpose[label],
                        )
                    )
                hint = _first_match(g, candidates)
            _assert_grad(name, case, label, g, e, hint)
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# ReLU and sum
# ---------------------------------------------------------------------------


def _relu_forward_hint(got, x: np.ndarray) -> str | None:
    if _nonfinite(got) and np.all(np.isfinite(x)):
        return (
            "inf or NaN from finite inputs: an intermediate went past the largest "
            "float64 (about 1.8e308); taking the larger of x and 0 needs no "
            "arithmetic on x"
        )
    return _first_match(
        got,
        [
            ("negative values must become 0", x),
            ("this is |x|: negative values become 0, not positive", np.abs(x)),
            ("this is the mask (x > 0), not the values", (x > 0).astype(float)),
        ],
        rtol=0,
        atol=0,
    )


def _relu_backward_hint(got, grad_out: np.ndarray, x: np.ndarray) -> str | None:
    return _first_match(
        got,
        [
            (
                "the gradient passed everywhere: it must stop where the forward "
                "input was not positive",
                grad_out,
            ),
            (
                "the gradient flowed where x == 0: this lab, like PyTorch, uses the "
                "subgradient 0 there, so it flows only where x > 0",
                grad_out * (x >= 0),
            ),
            (
                "grad_out was multiplied by the ReLU's output: the derivative is 1 "
                "or 0, not the value",
                grad_out * np.maximum(x, 0),
            ),
            (
                "this is the 0/1 mask alone: the chain rule multiplies it by grad_out",
                (x > 0).astype(float),
            ),
        ],
        rtol=0,
        atol=0,
    )


def check_relu(forward, backward) -> None:
    """``forward(x)`` = max(x, 0); ``backward(grad_out, x)`` -> grad_x, 0 at x = 0."""
    torch = _torch()
    name = "check_relu"
    rng = np.random.default_rng(14)
    with_zeros = rng.normal(size=(3, 4))
    with_zeros[0, :2] = 0.0
    with_zeros[2, 3] = -0.0
    cases = {
        "(3, 4) with exact zeros": with_zeros,
        "all negative (5,)": -rng.uniform(0.1, 2, size=5),
        "all positive (2, 3)": rng.uniform(0.1, 2, size=(2, 3)),
        "batch 1: (1, 6)": rng.normal(size=(1, 6)),
        # (x + |x|) / 2 overflows at 1.5e308 although max(x, 0) is finite
        "huge and tiny magnitudes (8,)": np.array(
            [1.5e308, -1.5e308, 1e-300, -1e-300, 5e-324, -5e-324, 1.0, -1.0]
        ),
    }
    for case, x in cases.items():
        expected = np.maximum(x, 0)
        out = call_learner(
            name,
            case,
            forward,
            x,
            label="relu_forward()",
            hint="x is a float64 array",
            inplace_hint=KEEP_INPUTS_HINT,
        )
        with np.errstate(all="ignore"):
            hint = _relu_forward_hint(out, x)
        assert_array_close(
            out,
            expected,
            name,
            case,
            rtol=0,
            atol=0,
            dtype=np.float64,
            expect_type=np.ndarray,
            what="relu_forward",
            hint=hint,
        )
        grad_out = rng.normal(size=x.shape)
        t = _leaf(x)
        torch.relu(t).backward(torch.tensor(grad_out))
        expected = t.grad.numpy()
        got = call_learner(
            name,
            case,
            backward,
            grad_out,
            x,
            label="relu_backward()",
            hint="grad_out and x (the forward input) are float64 arrays of one shape",
            inplace_hint=KEEP_INPUTS_HINT,
        )
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=RTOL,
            atol=ATOL,
            dtype=np.float64,
            expect_type=np.ndarray,
            what="relu_backward",
            hint=_relu_backward_hint(got, grad_out, x),
        )
    passed(name, len(cases))


def check_sum_backward(fn) -> None:
    """``fn(grad_out, shape, axis)``: gradient of ``x.sum(axis)`` for x of ``shape``."""
    name = "check_sum_backward"
    rng = np.random.default_rng(15)
    cases = {
        "(3, 4), axis=None": ((3, 4), None),
        "(3, 4), axis=0": ((3, 4), 0),
        "(3, 4), axis=1": ((3, 4), 1),
        "square (4, 4), axis=1": ((4, 4), 1),
        "(2, 3, 4), axis=1": ((2, 3, 4), 1),
        "(3, 5), axis=-1": ((3, 5), -1),
        "batch 1: (1, 5), axis=0": ((1, 5), 0),
    }
    for case, (shape, axis) in cases.items():
        x = rng.normal(size=shape)
        out_shape = np.sum(x, axis=axis).shape
        grad_out = np.asarray(rng.normal(size=out_shape))  # 0-d for axis=None
        (expected,) = _torch_grads(
            lambda t: t.sum() if axis is None else t.sum(dim=axis), [x], grad_out
        )
        got = call_learner(
            name,
            case,
            fn,
            grad_out,
            shape,
            axis,
            hint="grad_out has the shape of the sum: the summed axis is gone from it",
        )
        got_shape = _shape(got)
        if got_shape not in (None, shape):
            hint = (
                "grad_out came back as it was: "
                if got_shape == grad_out.shape
                else ""
            ) + f"the gradient has the shape of the input x, {shape}"
        else:
            n = shape[axis] if axis is not None else x.size
            try:  # grad_out stretched without its axis put back (square shapes)
                transposed = np.broadcast_to(grad_out, shape)
            except ValueError:
                transposed = None
            if transposed is not None and _matches(transposed, expected):
                transposed = None  # here that is the right answer
            hint = _first_match(
                got,
                [
                    (
                        "every element got 1: it gets the gradient of the sum it "
                        "went into",
                        np.ones(shape),
                    ),
                    (
                        f"divided by {n}: that is the gradient of a mean, not of a "
                        "sum",
                        expected / n,
                    ),
                ]
                + (
                    [
                        (
                            "each element got the gradient of another position's sum "
                            "(the result is transposed): the summed axis has to come "
                            "back where it was before grad_out is stretched",
                            transposed,
                        )
                    ]
                    if transposed is not None
                    else []
                ),
            )
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=RTOL,
            atol=ATOL,
            dtype=np.float64,
            expect_type=np.ndarray,
            what="gradient",
            hint=hint,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# softmax cross-entropy
# ---------------------------------------------------------------------------

_MIXED = "rows near +1000 and rows near -1000 in one batch"


def _ce_cases(rng):
    big = rng.normal(size=(4, 5)) * 3 + 1000.0
    tiny = rng.normal(size=(3, 4)) * 3 - 1000.0
    mixed = np.concatenate(
        [rng.normal(size=(2, 4)) * 3 + 1000.0, rng.normal(size=(2, 4)) * 3 - 1000.0]
    )
    return {
        "batch 5, 10 classes": (rng.normal(size=(5, 10)), rng.integers(0, 10, 5), 1.0),
        "batch 1, 3 classes": (rng.normal(size=(1, 3)), np.array([2]), 1.0),
        "logits near +1000": (big, np.array([0, 4, 2, 2]), 1.0),
        "logits near -1000": (tiny, np.array([3, 0, 1]), 1.0),
        # one maximum for the whole batch: exp underflows to 0 in the low rows
        _MIXED: (mixed, np.array([1, 3, 0, 2]), 1.0),
        "2 classes, grad_out = 2.5": (
            rng.normal(size=(6, 2)) * 4,
            np.array([0, 1, 1, 0, 1, 1]),
            2.5,
        ),
    }


def _overflow_hint(case: str) -> str:
    if case == _MIXED:
        return (
            "this batch has rows near +1000 and rows near -1000: a maximum over the "
            "whole batch leaves exp(z - max) = 0 in the low rows; subtract each "
            "row's own maximum"
        )
    return (
        "exp overflowed or underflowed: exp(1000) is inf in float64; subtract each "
        "row's maximum before exp"
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_softmax_cross_entropy(forward, backward) -> None:
    """``forward(logits, labels)`` -> mean loss (a float); ``backward(grad_out, logits,
    labels)`` -> gradient w.r.t. the logits (an array shaped like logits)."""
    torch = _torch()
    name = "check_softmax_cross_entropy"
    rng = np.random.default_rng(16)
    cases = _ce_cases(rng)
    for case, (logits, labels, g) in cases.items():
        labels = labels.astype(np.int64)
        n = len(labels)
        t = _leaf(logits)
        loss = torch.nn.functional.cross_entropy(t, torch.tensor(labels))
        loss.backward(torch.tensor(g, dtype=torch.float64))
        expected_loss, expected_grad = float(loss.detach()), t.grad.numpy()
        with np.errstate(all="ignore"):
            got = call_learner(
                name,
                case,
                forward,
                logits,
                labels,
                label="softmax_cross_entropy_forward()",
                hint="logits has shape (N, K), labels shape (N,) with int64 classes",
                inplace_hint=KEEP_INPUTS_HINT,
            )
        per_sample = isinstance(got, np.ndarray) and got.shape == (n,) and n > 1
        assert_type(
            got,
            (float, np.floating),
            name,
            case,
            what="loss",
            hint="one loss per sample came back: the forward returns their mean, "
            "one number"
            if per_sample
            else "the forward returns one number, a float",
        )
        if _nonfinite(got):
            hint = _overflow_hint(case)
        else:
            hint = _first_match(
                got,
                [
                    ("the sum over the batch: the loss is the mean",
                     expected_loss * n),
                    ("the sign is flipped: the loss is -log of a probability, >= 0",
                     -expected_loss),
                ],
            ) if n > 1 else None
        # as 1-element arrays: the message then prints enough digits to tell the
        # numbers apart and names float32 rounding as such
        assert_array_close(
            np.atleast_1d(np.asarray(got)),
            np.atleast_1d(expected_loss),
            name,
            case,
            rtol=1e-10,
            atol=1e-10,
            what="loss",
            hint=hint,
        )
        with np.errstate(all="ignore"):
            got = call_learner(
                name,
                case,
                backward,
                np.asarray(g),  # 0-d, as out.grad of the loss in the Tensor class
                logits,
                labels,
                label="softmax_cross_entropy_backward()",
                hint="grad_out is a 0-d array (the loss's gradient), logits (N, K), "
                "labels (N,)",
                inplace_hint=KEEP_INPUTS_HINT,
            )
        if _nonfinite(got):
            hint = _overflow_hint(case)
        else:
            with np.errstate(all="ignore"):
                probs = _softmax(logits)
            candidates = [
                (f"{n} times too large: the mean's 1/N is missing", expected_grad * n),
                ("the softmax came back without the one-hot label subtracted",
                 g * probs / n),
            ]
            if g != 1:
                candidates.append(
                    ("grad_out was not multiplied in", expected_grad / g)
                )
            hint = _first_match(got, candidates)
        assert_array_close(
            got,
            expected_grad,
            name,
            case,
            rtol=1e-9,
            atol=1e-12,
            dtype=np.float64,
            expect_type=np.ndarray,
            what="gradient",
            hint=hint,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# the graph: Tensor.backward
# ---------------------------------------------------------------------------


def _graph_cases(rng):
    """(case, build(leaves), leaf arrays, gradients the leaves hold before)."""
    x, w = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    b = rng.normal(size=(2,))
    z = rng.normal(size=(5,))
    labels = np.array([1, 0, 1])
    return [
        (
            "a leaf used twice: (x * x + x).sum()",
            lambda v: (v[0] * v[0] + v[0]).sum(),
            [z],
            None,
        ),
        (
            "a shared inner node: h = x * x; (h * h + h).sum()",
            lambda v: (lambda h: (h * h + h).sum())(v[0] * v[0]),
            [z],
            None,
        ),
        (
            # h is reached directly (one step) and through h * h (two steps), the
            # short path listed first: breadth-first and pre-order visits run h's
            # _backward() before h * h has added to h.grad
            "paths of different lengths to one node: h = x * x; (h + h * h).sum()",
            lambda v: (lambda h: (h + h * h).sum())(v[0] * v[0]),
            [z],
            None,
        ),
        (
            "a layer: relu(x @ w + b).mean()",
            lambda v: (v[0] @ v[1] + v[2]).relu().mean(),
            [x, w, b],
            None,
        ),
        (
            "a layer and cross-entropy",
            lambda v: (v[0] @ v[1] + v[2]).cross_entropy(labels),
            [x, w, b],
            None,
        ),
        (
            "sum over an axis, batch 1",
            lambda v: ((v[0] * v[1]).sum(axis=1) * v[2]).sum(),
            [rng.normal(size=(1, 3)), rng.normal(size=(3,)), rng.normal(size=(1,))],
            None,
        ),
        (
            # leaves accumulate across backward() calls, like PyTorch's .grad
            "leaves that already hold a gradient: (x @ w + b).sum()",
            lambda v: (v[0] @ v[1] + v[2]).sum(),
            [x, w, b],
            [rng.normal(size=x.shape), rng.normal(size=w.shape), rng.normal(size=2)],
        ),
    ]


class _TorchValue:
    """Wraps a torch tensor with the Tensor interface of the lab (the reference)."""

    def __init__(self, t):
        self.t = t

    def __add__(self, other):
        return _TorchValue(self.t + other.t)

    def __mul__(self, other):
        return _TorchValue(self.t * other.t)

    def __matmul__(self, other):
        return _TorchValue(self.t @ other.t)

    def relu(self):
        return _TorchValue(self.t.relu())

    def sum(self, axis=None):
        return _TorchValue(self.t.sum() if axis is None else self.t.sum(dim=axis))

    def mean(self):
        return _TorchValue(self.t.mean())

    def cross_entropy(self, labels):
        torch = _torch()
        return _TorchValue(
            torch.nn.functional.cross_entropy(self.t, torch.tensor(labels))
        )


class _Node:
    """A NumPy graph with the lab's interface, to replay traversal mistakes: the
    candidates a hint of check_backward compares with (the reference is PyTorch)."""

    def __init__(self, data, parents=(), rule=None):
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)
        self.parents, self.rule = parents, rule

    def _backward(self):
        if self.rule is not None:
            for parent, g in zip(self.parents, self.rule(self.grad)):
                parent.grad = parent.grad + g

    def __add__(self, o):
        return _Node(
            self.data + o.data,
            (self, o),
            lambda g: (
                _unbroadcast(g, self.data.shape),
                _unbroadcast(g, o.data.shape),
            ),
        )

    def __mul__(self, o):
        o = o if isinstance(o, _Node) else _Node(o)
        return _Node(
            self.data * o.data,
            (self, o),
            lambda g: (
                _unbroadcast(g * o.data, self.data.shape),
                _unbroadcast(g * self.data, o.data.shape),
            ),
        )

    def __matmul__(self, o):
        return _Node(
            self.data @ o.data, (self, o), lambda g: (g @ o.data.T, self.data.T @ g)
        )

    def relu(self):
        return _Node(
            np.maximum(self.data, 0), (self,), lambda g: (g * (self.data > 0),)
        )

    def sum(self, axis=None):
        shape = self.data.shape

        def rule(g):
            g = g if axis is None else np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape),)

        return _Node(self.data.sum(axis=axis), (self,), rule)

    def mean(self):
        return self.sum() * (1.0 / self.data.size)

    def cross_entropy(self, labels):
        p = _softmax(self.data)
        n = len(labels)
        loss = -np.log(p[np.arange(n), labels]).mean()
        onehot = np.eye(self.data.shape[1])[labels]
        return _Node(loss, (self,), lambda g: (g * (p - onehot) / n,))


def _replay(build, arrays, priors, strategy: str) -> list[np.ndarray]:
    """Leaf gradients when backward() visits the graph in the way ``strategy`` says."""
    leaves = [_Node(a) for a in arrays]
    for leaf, prior in zip(leaves, priors or ()):
        leaf.grad = prior.copy()
    out = build(leaves)
    out.grad = np.ones_like(out.data)
    if strategy == "every path":
        def visit(node):
            node._backward()
            for parent in node.parents:
                visit(parent)

        visit(out)
        return [leaf.grad for leaf in leaves]
    order, seen = [], set()
    if strategy == "breadth-first":
        queue = [out]
        while queue:
            node = queue.pop(0)
            if id(node) not in seen:
                seen.add(id(node))
                order.append(node)
                queue.extend(node.parents)
    elif strategy == "pre-order":
        def visit(node):
            if id(node) not in seen:
                seen.add(id(node))
                order.append(node)
                for parent in node.parents:
                    visit(parent)

        visit(out)
    for node in order:
        node._backward()
    return [leaf.grad for leaf in leaves]


def _backward_hint(case, build, arrays, priors, got, expected) -> str | None:
    """What the leaf gradients that came back show, from candidate traversals."""
    if all(_matches(g, np.zeros_like(e)) for g, e in zip(got, expected)):
        return (
            "every leaf gradient is 0: nothing reached the leaves (the output's own "
            "gradient, d(out)/d(out) = 1, is where backward() starts)"
        )
    if priors is not None and all(
        _matches(g, e - p) for g, e, p in zip(got, expected, priors)
    ):
        return (
            "the gradients the leaves held before backward() are gone: leaves "
            "accumulate (+=) across backward() calls, like PyTorch's .grad"
        )
    too_early = (
        "a node's _backward() ran before every node that uses it had added to its "
        "grad: a breadth-first or pre-order visit runs each node once, but it is not "
        "a topological order when paths to a node have different lengths"
    )
    replays = {
        "every path": (
            "a node's _backward() ran once per path that reaches it: its gradient "
            "was passed on more than once"
        ),
        "breadth-first": too_early,
        "pre-order": too_early,
    }
    found = set()
    for strategy, hint in replays.items():
        try:
            with np.errstate(all="ignore"):
                candidate = _replay(build, arrays, priors, strategy)
        except Exception:  # noqa: BLE001 - a candidate that cannot run is no evidence
            continue
        if not all(_matches(c, e) for c, e in zip(candidate, expected)) and all(
            _matches(g, c) for g, c in zip(got, candidate)
        ):
            found.add(hint)
    return found.pop() if len(found) == 1 else None


def check_backward(Tensor) -> None:
    """``Tensor`` is the lab's class; its ``backward()`` must add d(out)/d(leaf) to
    every leaf's grad."""
    name = "check_backward"
    rng = np.random.default_rng(17)
    cases = _graph_cases(rng)
    for case, build, arrays, priors in cases:
        ref_leaves = [_TorchValue(_leaf(a)) for a in arrays]
        build(ref_leaves).t.backward()
        expected = [
            ref.t.grad.numpy() + (0 if priors is None else priors[i])
            for i, ref in enumerate(ref_leaves)
        ]
        leaves = [
            call_learner(
                name, case, Tensor, a.copy(), label="Tensor()", hint="the given class"
            )
            for a in arrays
        ]
        for leaf, prior in zip(leaves, priors or ()):
            leaf.grad = prior.copy()
        out = call_learner(
            name,
            case,
            lambda: build(leaves),
            label="the forward pass",
            hint="the forward pass calls the backward-rule closures only later: an "
            "error here comes from an operator of the Tensor class",
        )
        call_learner(
            name,
            case,
            lambda: out.backward(),
            label="Tensor.backward()",
            hint="backward() calls the _backward() closure of every node of the "
            "graph, which call your backward rules",
        )
        got = [getattr(leaf, "grad", None) for leaf in leaves]
        hint = _backward_hint(case, build, arrays, priors, got, expected)
        for i, (grad, e) in enumerate(zip(got, expected)):
            assert_array_close(
                grad,
                e,
                name,
                case,
                rtol=1e-9,
                atol=1e-12,
                dtype=np.float64,
                expect_type=np.ndarray,
                what=f"grad of leaf {i}",
                hint=hint,
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# numerical gradient
# ---------------------------------------------------------------------------


def _difference_candidates(f, x: np.ndarray, h: float = 1e-5):
    """(hint, gradient) of the finite-difference mistakes, computed on copies."""
    fx, forward, backward = f(x.copy()), np.zeros(x.shape), np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        step = np.zeros(x.shape)
        step[i] = h
        forward[i] = (f(x + step) - fx) / h
        backward[i] = (fx - f(x - step)) / h
    central = (forward + backward) / 2
    return [
        ("a one-sided difference (f(x + h e_i) - f(x)) / h: its error shrinks only "
         "like h; the central difference's like h²", forward),
        ("a one-sided difference (f(x) - f(x - h e_i)) / h: its error shrinks only "
         "like h; the central difference's like h²", backward),
        ("twice the gradient: the central difference spans 2h", 2 * central),
        ("half the gradient: the central difference divides by 2h, once", central / 2),
    ]


def check_numerical_gradient(fn) -> None:
    """``fn(f, x)`` -> central-difference gradient of the scalar ``f`` at ``x``.

    The tolerance (1e-7 relative) is met by central differences with the default step
    and missed by one-sided differences, whose error is ~h/2 * f''.
    """
    name = "check_numerical_gradient"
    rng = np.random.default_rng(18)
    W = rng.normal(size=(4, 4))
    cases = [
        ("sum of cubes (6,)", lambda x: np.sum(x**3), rng.normal(size=6),
         lambda x: 3 * x**2),
        (
            "sum of sin(x) * exp(x), shape (3, 4)",
            lambda x: np.sum(np.sin(x) * np.exp(x)),
            rng.normal(size=(3, 4)),
            lambda x: np.exp(x) * (np.sin(x) + np.cos(x)),
        ),
        (
            "quadratic form x @ W @ x (4,)",
            lambda x: x @ W @ x,
            rng.normal(size=4),
            lambda x: (W + W.T) @ x,
        ),
        (
            "log-sum-exp (5,)",
            lambda x: np.log(np.sum(np.exp(x))),
            rng.normal(size=5) * 2,
            lambda x: np.exp(x) / np.sum(np.exp(x)),
        ),
        ("one element (1,)", lambda x: float(np.exp(2 * x[0])), np.array([0.7]),
         lambda x: 2 * np.exp(2 * x)),
    ]
    for case, f, x, grad in cases:
        expected = grad(x)
        got = call_learner(
            name,
            case,
            fn,
            f,
            x,
            hint="f takes a float64 array shaped like x and returns a number",
            inplace_hint="restore x[i] to its original value after the two "
            "evaluations (or perturb a copy); x ± h ∓ h need not give x back exactly",
        )
        hint = _first_match(got, _difference_candidates(f, x), rtol=1e-6, atol=1e-9)
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=1e-7,
            atol=1e-7,
            dtype=np.float64,
            expect_type=np.ndarray,
            what="numerical gradient",
            hint=hint,
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# the MLP
# ---------------------------------------------------------------------------


def _mlp_candidates(X, p):
    pre = X @ p["W1"] + p["b1"]
    ref = np.maximum(pre, 0) @ p["W2"] + p["b2"]
    return [
        ("a ReLU after the last layer: the logits are not passed through one",
         np.maximum(ref, 0)),
        ("the hidden layer's ReLU is missing", pre @ p["W2"] + p["b2"]),
        ("b1 is missing", np.maximum(X @ p["W1"], 0) @ p["W2"] + p["b2"]),
        ("b2 is missing", np.maximum(pre, 0) @ p["W2"]),
    ]


def _assert_tensor_unchanged(name, case, label, tensor, array, what_fn) -> None:
    data = getattr(tensor, "data", None)
    if not (isinstance(data, np.ndarray) and np.array_equal(data, array)):
        raise CheckFailed(
            name,
            case,
            f"your {what_fn} changed {label} in place",
            "the forward pass computes new Tensors from the parameters and the "
            "input; it does not write into them",
        )


def check_mlp_forward(fn, Tensor) -> None:
    """``fn(params, X)`` -> logits Tensor of relu(X @ W1 + b1) @ W2 + b2."""
    torch = _torch()
    name = "check_mlp_forward"
    rng = np.random.default_rng(19)
    cases = {
        "batch 5, 64 -> 16 -> 10": (5, 64, 16, 10),
        "batch 1, 3 -> 4 -> 2": (1, 3, 4, 2),
    }
    for case, (n, d, h, k) in cases.items():
        arrays = {
            "W1": rng.normal(size=(d, h)) / np.sqrt(d),
            "b1": rng.normal(size=h) * 0.1,
            "W2": rng.normal(size=(h, k)) / np.sqrt(h),
            "b2": rng.normal(size=k) * 0.1,
        }
        X, y = rng.normal(size=(n, d)), rng.integers(0, k, n)
        ref = {key: _leaf(a) for key, a in arrays.items()}
        hidden_ref = torch.relu(torch.tensor(X) @ ref["W1"] + ref["b1"])
        logits_ref = hidden_ref @ ref["W2"] + ref["b2"]
        torch.nn.functional.cross_entropy(logits_ref, torch.tensor(y)).backward()
        expected = logits_ref.detach().numpy()
        params = {
            key: call_learner(
                name, case, Tensor, a.copy(), label="Tensor()", hint="the given class"
            )
            for key, a in arrays.items()
        }
        tensors = dict(params)
        X_t = call_learner(
            name, case, Tensor, X.copy(), label="Tensor()", hint="the given class"
        )
        logits = call_learner(
            name,
            case,
            fn,
            params,
            X_t,
            hint=f"params maps 'W1', 'b1', 'W2', 'b2' to Tensors; X is a Tensor of "
            f"shape {X.shape}",
        )
        label = getattr(fn, "__name__", "function") + "()"
        for key in arrays:
            if params.get(key) is not tensors[key]:
                raise CheckFailed(
                    name,
                    case,
                    f"your {label} replaced params[{key!r}]",
                    "read the parameters from params; do not assign to it",
                )
            _assert_tensor_unchanged(
                name, case, f"params[{key!r}].data", params[key], arrays[key], label
            )
        _assert_tensor_unchanged(name, case, "X.data", X_t, X, label)
        assert_true(
            isinstance(logits, Tensor),
            name,
            case,
            f"expected a Tensor, got {describe(logits)}",
            "build the output from Tensor operations (@, +, .relu()) so that "
            "backward() can reach the parameters",
        )
        assert_array_close(
            logits.data,
            expected,
            name,
            case,
            rtol=1e-10,
            atol=1e-12,
            dtype=np.float64,
            expect_type=np.ndarray,
            what="logits",
            hint=_first_match(logits.data, _mlp_candidates(X, arrays)),
        )
        loss = call_learner(
            name,
            case,
            lambda: logits.cross_entropy(y),
            label="logits.cross_entropy(y)",
            hint="the logits' cross_entropy (the given method, with your rules)",
        )
        call_learner(
            name,
            case,
            lambda: loss.backward(),
            label="Tensor.backward()",
            hint="your backward() from exercise 7, on the graph of the forward pass",
        )
        for key in arrays:
            grad = params[key].grad
            zero = isinstance(grad, np.ndarray) and not np.any(grad)
            assert_array_close(
                grad,
                ref[key].grad.numpy(),
                name,
                case,
                rtol=1e-9,
                atol=1e-12,
                dtype=np.float64,
                expect_type=np.ndarray,
                what=f"gradient of {key}",
                hint=f"no gradient reached {key}: the forward pass must use the "
                "params' Tensors themselves (not their .data)"
                if zero
                else None,
            )
    passed(name, len(cases))


class _Param:
    def __init__(self, data, grad):
        self.data, self.grad = data, grad


def check_sgd_step(fn) -> None:
    """``fn(params, lr)`` steps every ``p.data`` by ``lr`` against ``p.grad``, then
    zeroes ``p.grad``."""
    name = "check_sgd_step"
    rng = np.random.default_rng(20)
    cases = {
        "two parameters, lr=0.1": ([(3, 2), (2,)], 0.1),
        "one parameter (1, 1), lr=0.5": ([(1, 1)], 0.5),
    }
    for case, (shapes, lr) in cases.items():
        data = [rng.normal(size=s) for s in shapes]
        grads = [rng.normal(size=s) for s in shapes]
        expected = [d - lr * g for d, g in zip(data, grads)]
        params = {
            f"p{i}": _Param(d.copy(), g.copy())
            for i, (d, g) in enumerate(zip(data, grads))
        }
        try:
            call_learner(
                name,
                case,
                fn,
                params,
                lr,
                inplace_ok=True,
                hint="params maps names to objects with .data and .grad arrays",
            )
        except CheckFailed as failed:
            if "'str' object has no attribute" not in failed.problem:
                raise
            raise CheckFailed(
                name,
                case,
                failed.problem,
                "iterating over a dict gives its keys (the names): the parameters "
                "are its values",
            ) from None
        for i, (d, g, e) in enumerate(zip(data, grads, expected)):
            p = params[f"p{i}"]
            hint = _first_match(
                p.data,
                [
                    ("p.data did not change", d),
                    ("the step went up the gradient: descent steps against it",
                     d + lr * g),
                    ("the step ignores the learning rate", d - g),
                ],
            )
            assert_array_close(
                p.data,
                e,
                name,
                case,
                rtol=1e-12,
                atol=1e-12,
                dtype=np.float64,
                expect_type=np.ndarray,
                what=f"p{i}.data after the step",
                hint=hint,
            )
            assert_array_close(
                p.grad,
                np.zeros(shapes[i]),
                name,
                case,
                rtol=0,
                atol=0,
                dtype=np.float64,
                expect_type=np.ndarray,
                what=f"p{i}.grad after the step",
                hint="leaves accumulate gradients (grad +=), like PyTorch's: after "
                "the update every p.grad is an array of zeros of the parameter's "
                "shape, or the next backward adds to the old gradient",
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# the training loop
# ---------------------------------------------------------------------------


def _ce_rows(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return lse - logits[np.arange(len(y)), y]


def _mlp(p, X):
    return np.maximum(X @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]


def _reference_run(X, y, X_test, y_test, n_hidden, lr, epochs, batch, seed, shuffle):
    """The training of exercise 11 in plain NumPy, with the lab's init_mlp draws.

    ``shuffle`` is "every epoch" (the exercise), "once" or "never" (candidates).
    Returns params, the loss of every batch per epoch, the test accuracy per epoch.
    """
    rng = np.random.default_rng(seed)
    d, k = X.shape[1], 10
    p = {
        "W1": rng.normal(size=(d, n_hidden)) * np.sqrt(2 / d),
        "b1": np.zeros(n_hidden),
        "W2": rng.normal(size=(n_hidden, k)) * np.sqrt(2 / n_hidden),
        "b2": np.zeros(k),
    }
    batch_losses, accs, order = [], [], None
    for _ in range(epochs):
        if shuffle == "every epoch" or (shuffle == "once" and order is None):
            order = rng.permutation(len(X))
        elif shuffle == "never":
            order = np.arange(len(X))
        losses = []
        for start in range(0, len(X), batch):
            idx = order[start:start + batch]
            xb, yb = X[idx], y[idx]
            pre = xb @ p["W1"] + p["b1"]
            hid = np.maximum(pre, 0)
            logits = hid @ p["W2"] + p["b2"]
            losses.append((float(_ce_rows(logits, yb).mean()), len(idx)))
            g = _softmax(logits)
            g[np.arange(len(yb)), yb] -= 1
            g /= len(yb)
            grads = {"W2": hid.T @ g, "b2": g.sum(axis=0)}
            g_pre = (g @ p["W2"].T) * (pre > 0)
            grads |= {"W1": xb.T @ g_pre, "b1": g_pre.sum(axis=0)}
            for key in p:
                p[key] = p[key] - lr * grads[key]
        batch_losses.append(losses)
        accs.append(float(np.mean(_mlp(p, X_test).argmax(axis=1) == y_test)))
    return p, batch_losses, accs


def _history(name, case, result, epochs: int):
    """The (params, losses, test_accs) that train_mlp returns, their types checked."""
    assert_type(result, tuple, name, case, what="result",
                hint="train_mlp returns params, losses, test_accs")
    assert_true(
        len(result) == 3,
        name,
        case,
        f"expected (params, losses, test_accs), got a tuple of {len(result)}",
    )
    params, losses, accs = result
    assert_type(params, dict, name, case, what="params")
    keys = ("W1", "b1", "W2", "b2")
    assert_true(
        all(isinstance(getattr(params.get(k), "data", None), np.ndarray) for k in keys),
        name,
        case,
        f"params: expected Tensors under {list(keys)}, got {describe(params)}",
    )
    for what, values in (("losses", losses), ("test_accs", accs)):
        assert_type(values, list, name, case, what=what,
                    hint=f"{what} is a list with one number per epoch")
        assert_true(
            len(values) == epochs,
            name,
            case,
            f"{what}: expected one value per epoch ({epochs}), got {len(values)}",
            "append once per epoch, after its last batch",
        )
        for value in values:
            assert_type(value, float, name, case, what=f"each value of {what}",
                        hint="a Python float: float(loss.data) converts")
    return {k: params[k].data for k in keys}, losses, accs


def check_train_mlp(train_mlp, X, y, X_test, y_test) -> None:
    """``train_mlp(X, y, X_test, y_test, n_hidden, lr, num_epochs, batch_size, seed)``
    -> (params, losses, test_accs), on the first 100 training and 50 test images.

    With lr = 0 the parameters never change, so every epoch's mean training loss is
    the loss of the whole training set and every test accuracy that of the returned
    parameters, exactly. With lr = 0.1 the run is compared with a NumPy reference that
    makes the same random draws as the lab's init_mlp and rng.permutation.
    """
    name = "check_train_mlp"
    X, y = np.asarray(X[:100], dtype=np.float64), np.asarray(y[:100])
    X_test, y_test = np.asarray(X_test[:50], dtype=np.float64), np.asarray(y_test[:50])
    setting = dict(n_hidden=16, batch_size=32, seed=0)  # batches of 32, 32, 32, 4

    case = "lr=0, 2 epochs of 100 images in batches of 32, 32, 32 and 4"
    result = call_learner(
        name, case, train_mlp, X, y, X_test, y_test, lr=0.0, num_epochs=2,
        hint="the arguments are NumPy arrays of images and labels, then the settings",
        **setting,
    )
    params, losses, accs = _history(name, case, result, 2)
    full = float(_ce_rows(_mlp(params, X), y).mean())
    acc = float(np.mean(_mlp(params, X_test).argmax(axis=1) == y_test))
    _, batches, _ = _reference_run(X, y, X_test, y_test, 16, 0.0, 2, 32, 0,
                                   "every epoch")
    for epoch, loss in enumerate(losses):
        hint = _first_match(
            loss,
            [
                ("the mean of the batch means: a batch counts with its size (the "
                 "last one has 4 images)",
                 np.mean([b for b, _ in batches[epoch]])),
                ("the loss of the epoch's last batch only", batches[epoch][-1][0]),
                ("the sum of the batch losses, not their size-weighted mean",
                 sum(b for b, _ in batches[epoch])),
                ("100 times too large: the sum over the images, not the mean",
                 full * len(X)),
            ],
        )
        assert_array_close(
            np.array([loss]),
            np.array([full]),
            name,
            case,
            rtol=1e-9,
            atol=1e-12,
            what=f"losses[{epoch}] (with lr=0: the loss of the whole training set)",
            hint=hint,
        )
        assert_true(
            abs(accs[epoch] - acc) < 0.5 / len(X_test),
            name,
            case,
            f"test_accs[{epoch}]: expected {acc:.4f}, the accuracy of the returned "
            f"parameters on the {len(X_test)} test images, got {accs[epoch]:.4f}",
            "the accuracy on X_test, y_test after the epoch",
        )

    case = "lr=0.1, 3 epochs, against a NumPy run with the same random draws"
    result = call_learner(
        name, case, train_mlp, X, y, X_test, y_test, lr=0.1, num_epochs=3,
        hint="the arguments are NumPy arrays of images and labels, then the settings",
        **setting,
    )
    params, losses, accs = _history(name, case, result, 3)
    ref_p, ref_batches, ref_accs = _reference_run(
        X, y, X_test, y_test, 16, 0.1, 3, 32, 0, "every epoch"
    )
    if not all(_matches(params[k], ref_p[k], rtol=1e-8, atol=1e-10) for k in ref_p):
        hint = None
        for shuffle, text in (
            ("once", "shuffled once, not in every epoch"),
            ("never", "never shuffled: rng.permutation gives each epoch's order"),
        ):
            cand = _reference_run(X, y, X_test, y_test, 16, 0.1, 3, 32, 0, shuffle)[0]
            if all(_matches(params[k], cand[k], rtol=1e-8, atol=1e-10) for k in cand):
                hint = f"the training set was {text}"
        worst = max(
            (float(np.max(np.abs(params[k] - ref_p[k]))), k) for k in ref_p
        ) if all(params[k].shape == ref_p[k].shape for k in ref_p) else None
        raise CheckFailed(
            name,
            case,
            "the trained parameters differ from the reference run"
            + (f" (max abs difference {worst[0]:.3g}, in {worst[1]})" if worst else ""),
            hint
            or "each epoch: one rng.permutation, then for every batch of "
            "batch_size images the forward pass, the loss, backward() and "
            "your sgd_step with lr",
        )
    ref_losses = [
        sum(b * m for b, m in epoch) / len(X) for epoch in ref_batches
    ]
    assert_array_close(
        np.array(losses),
        np.array(ref_losses),
        name,
        case,
        rtol=1e-8,
        atol=1e-10,
        what="losses",
        hint="the parameters are right, the recorded losses are not: each epoch's "
        "loss is the mean over its images of the batch losses, recorded during "
        "the epoch",
    )
    expected_accs = np.array(ref_accs)
    assert_true(
        bool(np.all(np.abs(np.array(accs) - expected_accs) < 0.5 / len(X_test))),
        name,
        case,
        f"test_accs: expected {[round(a, 4) for a in ref_accs]}, got "
        f"{[round(a, 4) for a in accs]}",
        "the accuracy on X_test, y_test with the parameters after each epoch",
    )
    passed(name, 2)


def check_test_accuracy(predict, X_test, y_test, at_least: float = 0.95) -> None:
    """``predict(X)`` -> an integer NumPy array of labels; the test accuracy must reach
    ``at_least``."""
    name = "check_test_accuracy"
    pred = call_learner(
        name, "test set", predict, X_test, hint="X is the test images, (N, 64)"
    )
    assert_type(pred, np.ndarray, name, "test set", what="predictions")
    assert_true(
        pred.shape == y_test.shape,
        name,
        "test set",
        f"expected {y_test.shape[0]} labels, got {describe(pred)}",
        "one label per image: the class with the largest logit"
        if pred.ndim == 2
        else None,
    )
    assert_true(
        pred.dtype.kind in "iu" and pred.dtype.itemsize >= 4,
        name,
        "test set",
        f"expected integer class labels (int32 or int64), got dtype {pred.dtype}",
        "argmax gives integer indices",
    )
    correct, n = int(np.sum(pred == y_test)), len(y_test)
    acc = correct / n
    if acc < at_least:
        classes = np.unique(pred)
        if len(classes) == 1:
            hint = f"every prediction is class {classes[0]}"
        elif acc <= 0.2:
            hint = (
                "about chance level (0.1 for 10 classes): the parameters did not "
                "learn; are they updated, and do their grads reach them?"
            )
        else:
            hint = None
        needed = int(np.ceil(at_least * n - 1e-9))
        raise CheckFailed(
            name,
            "test set",
            f"{correct} of {n} test images right (accuracy {acc:.4f}): below "
            f"{at_least:.2f}, which needs {needed}",
            hint,
        )
    passed(name, extra=f": test accuracy ≥ {at_least:.2f}")
