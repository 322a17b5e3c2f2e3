"""Checks for lab 01_01 "Backprop from scratch (NumPy)".

Every backward rule the learner writes is compared with PyTorch's autograd in float64 on
the same inputs: a second, independent route to the same gradient. The numerical
gradient is compared with closed-form derivatives. Cases include broadcasting, batch 1,
square matrices (where a missing transpose keeps the shape but not the values) and
logits near ±1000 (where a softmax without the max-subtraction overflows).
"""

from __future__ import annotations

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
    call_learner,
    describe,
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
    "check_test_accuracy",
]

RTOL, ATOL = 1e-10, 1e-12


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


def _pair(name: str, case: str, got, hint: str):
    """The learner's backward must return a pair (grad_a, grad_b)."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(
            name,
            case,
            f"expected a pair (grad_a, grad_b), got {describe(got)}",
            hint,
        )
    return got


def _assert_grads(name: str, case: str, got, expected, hint: str) -> None:
    """Compare the learner's (grad_a, grad_b) with the reference pair."""
    for label, g, e in zip(("grad_a", "grad_b"), got, expected):
        assert_array_close(
            g, e, name, case, rtol=RTOL, atol=ATOL, what=label, hint=hint
        )


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


def check_unbroadcast(fn) -> None:
    """``fn(grad, shape)`` sums ``grad`` down to ``shape``: undoes broadcasting."""
    torch = _torch()
    name = "check_unbroadcast"
    rng = np.random.default_rng(10)
    for case, (big, small) in _UNBROADCAST_CASES.items():
        grad = rng.normal(size=big)
        x = _leaf(np.zeros(small))
        (x + torch.zeros(big, dtype=torch.float64)).backward(torch.tensor(grad))
        got = call_learner(name, case, fn, grad.copy(), small)
        assert_array_close(
            got,
            x.grad,
            name,
            case,
            rtol=RTOL,
            atol=ATOL,
            what="gradient",
            hint="sum over the leading axes that broadcasting added, then over "
            "the axes where shape has size 1, with keepdims=True",
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
        got = call_learner(name, case, fn, grad_out.copy(), sa, sb)
        got = _pair(name, case, got, "return grad_a, grad_b")
        _assert_grads(
            name,
            case,
            got,
            expected,
            "d(a+b)/da is 1, so grad_a is grad_out summed back to a's "
            "shape: unbroadcast(grad_out, a_shape)",
        )
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
            name, case, fn, grad_out.copy(), a.copy(), b.copy(),
            inplace_hint=KEEP_INPUTS_HINT,
        )
        got = _pair(name, case, got, "return grad_a, grad_b")
        _assert_grads(
            name,
            case,
            got,
            expected,
            "d(a*b)/da = b: grad_a = unbroadcast(grad_out * b, a.shape), "
            "and the other way round for grad_b",
        )
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
        got = call_learner(name, case, fn, grad_out.copy(), a.copy(), b.copy())
        got = _pair(name, case, got, "return grad_a, grad_b")
        _assert_grads(
            name,
            case,
            got,
            expected,
            "for C = A @ B: dA = dC @ B.T (shape of A) and "
            "dB = A.T @ dC (shape of B); let the shapes guide the transposes",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# ReLU and sum
# ---------------------------------------------------------------------------


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
    }
    for case, x in cases.items():
        out = call_learner(
            name, case, forward, x.copy(), label="relu_forward()",
            inplace_hint=KEEP_INPUTS_HINT,
        )
        assert_array_close(
            out,
            np.maximum(x, 0),
            name,
            case,
            rtol=0,
            atol=0,
            what="relu_forward",
            hint="np.maximum(x, 0)",
        )
        grad_out = rng.normal(size=x.shape)
        t = _leaf(x)
        torch.relu(t).backward(torch.tensor(grad_out))
        got = call_learner(
            name, case, backward, grad_out.copy(), x.copy(), label="relu_backward()"
        )
        assert_array_close(
            got,
            t.grad,
            name,
            case,
            rtol=RTOL,
            atol=ATOL,
            what="relu_backward",
            hint="the gradient flows where x > 0 and is 0 elsewhere (also at x == 0, "
            "PyTorch's convention): grad_out * (x > 0)",
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
        grad_out = rng.normal(size=out_shape)
        (expected,) = _torch_grads(
            lambda t: t.sum() if axis is None else t.sum(dim=axis), [x], grad_out
        )
        got = call_learner(name, case, fn, grad_out.copy(), shape, axis)
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=RTOL,
            atol=ATOL,
            what="gradient",
            hint="every input element gets the gradient of the sum it went into: "
            "put the summed axis back with np.expand_dims(grad_out, axis), "
            "then np.broadcast_to(..., shape)",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# softmax cross-entropy
# ---------------------------------------------------------------------------


def _ce_cases(rng):
    big = rng.normal(size=(4, 5)) * 3 + 1000.0
    tiny = rng.normal(size=(3, 4)) * 3 - 1000.0
    return {
        "batch 5, 10 classes": (rng.normal(size=(5, 10)), rng.integers(0, 10, 5), 1.0),
        "batch 1, 3 classes": (rng.normal(size=(1, 3)), np.array([2]), 1.0),
        "logits near +1000": (big, np.array([0, 4, 2, 2]), 1.0),
        "logits near -1000": (tiny, np.array([3, 0, 1]), 1.0),
        "2 classes, grad_out = 2.5": (
            rng.normal(size=(6, 2)) * 4,
            np.array([0, 1, 1, 0, 1, 1]),
            2.5,
        ),
    }


def check_softmax_cross_entropy(forward, backward) -> None:
    """``forward(logits, labels)`` -> mean loss; ``backward(grad_out, logits, labels)``
    -> gradient w.r.t. the logits."""
    torch = _torch()
    name = "check_softmax_cross_entropy"
    rng = np.random.default_rng(16)
    cases = _ce_cases(rng)
    for case, (logits, labels, g) in cases.items():
        labels = labels.astype(np.int64)
        t = _leaf(logits)
        loss = torch.nn.functional.cross_entropy(t, torch.tensor(labels))
        loss.backward(torch.tensor(g, dtype=torch.float64))
        with np.errstate(all="ignore"):
            got = call_learner(
                name,
                case,
                forward,
                logits.copy(),
                labels.copy(),
                label="softmax_cross_entropy_forward()",
            )
        got_arr = np.asarray(got, dtype=np.float64) if got is not None else None
        assert_array_close(
            got_arr,
            loss.detach(),
            name,
            case,
            rtol=1e-10,
            atol=1e-10,
            what="loss",
            hint="one number, the MEAN over the batch of logsumexp(z) - z[label]; "
            "compute logsumexp(z) as m + log(sum(exp(z - m))) with m = max(z) "
            "per row, so that exp never overflows",
        )
        with np.errstate(all="ignore"):
            got = call_learner(
                name,
                case,
                backward,
                np.float64(g),
                logits.copy(),
                labels.copy(),
                label="softmax_cross_entropy_backward()",
            )
        assert_array_close(
            got,
            t.grad,
            name,
            case,
            rtol=1e-9,
            atol=1e-12,
            what="gradient",
            hint="grad = grad_out * (softmax(z) - one_hot(labels)) / batch_size, "
            "with the softmax computed from z - max(z) per row",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# the graph: Tensor.backward
# ---------------------------------------------------------------------------


def _graph_cases(rng):
    """(case, build(T, leaves, labels), leaf arrays): T is Tensor or a torch wrapper."""
    x, w = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    b = rng.normal(size=(2,))
    z = rng.normal(size=(5,))
    labels = np.array([1, 0, 1])
    return [
        (
            "a leaf used twice: (x * x + x).sum()",
            lambda v: (v[0] * v[0] + v[0]).sum(),
            [z],
        ),
        (
            "a shared inner node: h = x * x; (h * h + h).sum()",
            lambda v: (lambda h: (h * h + h).sum())(v[0] * v[0]),
            [z],
        ),
        (
            "a layer: relu(x @ w + b).mean()",
            lambda v: (v[0] @ v[1] + v[2]).relu().mean(),
            [x, w, b],
        ),
        (
            "a layer and cross-entropy",
            lambda v: (v[0] @ v[1] + v[2]).cross_entropy(labels),
            [x, w, b],
        ),
        (
            "sum over an axis, batch 1",
            lambda v: ((v[0] * v[1]).sum(axis=1) * v[2]).sum(),
            [rng.normal(size=(1, 3)), rng.normal(size=(3,)), rng.normal(size=(1,))],
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


def check_backward(Tensor) -> None:
    """``Tensor`` is the lab's class; its ``backward()`` must fill every leaf's grad."""
    name = "check_backward"
    rng = np.random.default_rng(17)
    cases = _graph_cases(rng)
    for case, build, arrays in cases:
        ref_leaves = [_TorchValue(_leaf(a)) for a in arrays]
        build(ref_leaves).t.backward()
        leaves = [
            call_learner(name, case, Tensor, a.copy(), label="Tensor()")
            for a in arrays
        ]
        out = call_learner(
            name, case, lambda: build(leaves), label="the forward pass"
        )
        call_learner(name, case, out.backward, label="Tensor.backward()")
        for i, (leaf, ref) in enumerate(zip(leaves, ref_leaves)):
            assert_array_close(
                leaf.grad,
                ref.t.grad,
                name,
                case,
                rtol=1e-9,
                atol=1e-12,
                what=f"grad of leaf {i}",
                hint="seed the output's grad with ones, sort the graph topologically "
                "(every node after all the nodes that use it) and call each node's "
                "_backward() exactly once, in that reverse order",
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# numerical gradient
# ---------------------------------------------------------------------------


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
        got = call_learner(
            name, case, fn, f, x.copy(),
            inplace_hint="restore x[i] to its original value after the two "
            "evaluations (or perturb a copy)",
        )
        assert_array_close(
            got,
            grad(x),
            name,
            case,
            rtol=1e-7,
            atol=1e-7,
            what="numerical gradient",
            hint="use the CENTRAL difference (f(x + h e_i) - f(x - h e_i)) / (2h): "
            "its error shrinks like h², a one-sided difference's only like h",
        )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# the MLP
# ---------------------------------------------------------------------------


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
        params = {key: Tensor(a.copy()) for key, a in arrays.items()}
        logits = call_learner(name, case, fn, params, Tensor(X.copy()))
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
            logits_ref.detach(),
            name,
            case,
            rtol=1e-10,
            atol=1e-12,
            what="logits",
            hint="relu(X @ W1 + b1) @ W2 + b2 — no ReLU after the last layer",
        )
        logits.cross_entropy(y).backward()
        for key in arrays:
            assert_array_close(
                params[key].grad,
                ref[key].grad,
                name,
                case,
                rtol=1e-9,
                atol=1e-12,
                what=f"gradient of {key}",
                hint="use the params' Tensors themselves (not their .data) in the "
                "forward pass",
            )
    passed(name, len(cases))


class _Param:
    def __init__(self, data, grad):
        self.data, self.grad = data, grad


def check_sgd_step(fn) -> None:
    """``fn(params, lr)`` updates ``p.data -= lr * p.grad`` and zeroes ``p.grad``."""
    name = "check_sgd_step"
    rng = np.random.default_rng(20)
    cases = {
        "two parameters, lr=0.1": ([(3, 2), (2,)], 0.1),
        "one parameter (1, 1), lr=0.5": ([(1, 1)], 0.5),
    }
    for case, (shapes, lr) in cases.items():
        data = [rng.normal(size=s) for s in shapes]
        grads = [rng.normal(size=s) for s in shapes]
        params = {
            f"p{i}": _Param(d.copy(), g.copy())
            for i, (d, g) in enumerate(zip(data, grads))
        }
        call_learner(name, case, fn, params, lr)
        for i, (d, g) in enumerate(zip(data, grads)):
            p = params[f"p{i}"]
            assert_array_close(
                p.data,
                d - lr * g,
                name,
                case,
                rtol=1e-12,
                atol=1e-12,
                what=f"p{i}.data after the step",
                hint="step against the gradient: p.data -= lr * p.grad",
            )
            assert_array_close(
                p.grad,
                np.zeros(shapes[i]),
                name,
                case,
                rtol=0,
                atol=0,
                what=f"p{i}.grad after the step",
                hint="leaves accumulate gradients (grad +=), like PyTorch's: reset "
                "every p.grad to zeros after the update, or the next backward adds "
                "to the old gradient",
            )
    passed(name, len(cases))


def check_test_accuracy(predict, X_test, y_test, at_least: float = 0.95) -> None:
    """``predict(X)`` -> labels; the test accuracy must reach ``at_least``."""
    name = "check_test_accuracy"
    pred = np.asarray(call_learner(name, "test set", predict, X_test))
    assert_true(
        pred.shape == y_test.shape,
        name,
        "test set",
        f"expected {y_test.shape[0]} labels, got {describe(pred)}",
        "return logits.argmax(axis=1)",
    )
    acc = float(np.mean(pred == y_test))
    assert_true(
        acc >= at_least,
        name,
        "test set",
        f"test accuracy {acc:.3f} is below {at_least:.2f}",
        "check the learning rate and the number of epochs; the loss curve should "
        "still be going down if you stopped too early",
    )
    passed(name, extra=f": test accuracy ≥ {at_least:.2f}")
