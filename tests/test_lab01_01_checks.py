"""Lab 01_01's checks reject typical backprop mistakes and accept other correct code.

Each wrong implementation is a mistake learners really make; every test also asserts
that the message names the case and points at the problem.
"""


import numpy as np
import pytest

from model2metal.checks import lab01_01 as checks

from check_helpers import rejects


# --- reference pieces in a different style from the lab's solution --------------------


def unbroadcast(grad, shape):
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def add_backward(g, sa, sb):
    return unbroadcast(g, sa), unbroadcast(g, sb)


def mul_backward(g, a, b):
    return unbroadcast(g * b, np.shape(a)), unbroadcast(g * a, np.shape(b))


def matmul_backward(g, a, b):
    return np.einsum("nm,km->nk", g, b), np.einsum("nk,nm->km", a, g)


def relu_forward(x):
    return np.where(x > 0, x, 0.0)


def relu_backward(g, x):
    return np.where(x > 0, g, 0.0)


def sum_backward(g, shape, axis):
    if axis is None:
        return np.full(shape, float(g))
    return np.repeat(np.expand_dims(g, axis), shape[axis], axis=axis)


def ce_forward(z, y):
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float((lse - z[np.arange(len(y)), y]).mean())


def ce_backward(g, z, y):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(z.shape[1])[y]
    return g * (p - onehot) / len(y)


def make_tensor(backward_style="topo", ops=None):
    """A compact Tensor with the lab's interface; backward in the chosen style."""
    ops = dict(
        add=add_backward,
        mul=mul_backward,
        matmul=matmul_backward,
        relu=relu_backward,
        ce=ce_backward,
    ) | (ops or {})

    class Tensor:
        def __init__(self, data, parents=()):
            self.data = np.asarray(data, dtype=np.float64)
            self.grad = np.zeros_like(self.data)
            self.parents = parents
            self._backward = lambda: None

        def _wrap(self, other):
            return other if isinstance(other, Tensor) else Tensor(other)

        def _make(self, data, parents, rule):
            out = Tensor(data, parents)

            def _backward():
                grads = rule(out.grad)
                for p, g in zip(parents, grads):
                    p.grad += g

            out._backward = _backward
            return out

        def __add__(self, o):
            o = self._wrap(o)
            return self._make(
                self.data + o.data,
                (self, o),
                lambda g: ops["add"](g, self.data.shape, o.data.shape),
            )

        def __mul__(self, o):
            o = self._wrap(o)
            return self._make(
                self.data * o.data,
                (self, o),
                lambda g: ops["mul"](g, self.data, o.data),
            )

        def __matmul__(self, o):
            return self._make(
                self.data @ o.data,
                (self, o),
                lambda g: ops["matmul"](g, self.data, o.data),
            )

        def relu(self):
            return self._make(
                relu_forward(self.data), (self,), lambda g: (ops["relu"](g, self.data),)
            )

        def sum(self, axis=None):
            return self._make(
                self.data.sum(axis=axis),
                (self,),
                lambda g: (sum_backward(g, self.data.shape, axis),),
            )

        def mean(self):
            return self.sum() * (1.0 / self.data.size)

        def cross_entropy(self, y):
            return self._make(
                ce_forward(self.data, y),
                (self,),
                lambda g: (ops["ce"](g, self.data, y),),
            )

        def backward(self):
            if backward_style == "topo":  # iterative DFS with an explicit stack
                order, seen, stack = [], set(), [(self, False)]
                while stack:
                    node, done = stack.pop()
                    if done:
                        order.append(node)
                    elif id(node) not in seen:
                        seen.add(id(node))
                        stack.append((node, True))
                        stack.extend((p, False) for p in node.parents)
                self.grad = np.ones_like(self.data)
                for node in reversed(order):
                    node._backward()
            elif backward_style == "recursive":  # no topological order
                self.grad = np.ones_like(self.data)

                def rec(node):
                    node._backward()
                    for p in node.parents:
                        rec(p)

                rec(self)
            elif backward_style == "no seed":
                order, seen = [], set()

                def visit(node):
                    if id(node) not in seen:
                        seen.add(id(node))
                        for p in node.parents:
                            visit(p)
                        order.append(node)

                visit(self)
                for node in reversed(order):
                    node._backward()

    return Tensor


# --- unbroadcast ----------------------------------------------------------------------


def test_unbroadcast_accepts_loop_version():
    checks.check_unbroadcast(unbroadcast)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda g, s: g, r"\(3, 4\) back to \(4,\).*expected shape \(4,\).*keepdims"),
        (  # only the leading axes, forgets axes of size 1
            lambda g, s: g.sum(axis=tuple(range(g.ndim - len(s)))),
            r"back to \(3, 1\).*expected shape \(3, 1\)",
        ),
        (  # sums size-1 axes without keepdims
            lambda g, s: g.sum(
                axis=tuple(range(g.ndim - len(s)))
                + tuple(g.ndim - len(s) + i for i, n in enumerate(s) if n == 1)
            ),
            r"back to \(3, 1\).*expected shape \(3, 1\), got shape \(3,\)",
        ),
    ],
)
def test_unbroadcast_rejects(wrong, expect):
    rejects(checks.check_unbroadcast, wrong, expect=expect)


# --- add and mul ----------------------------------------------------------------------


def test_add_and_mul_accept_alternatives():
    checks.check_add_backward(add_backward)
    checks.check_mul_backward(mul_backward)


def test_add_rejects_missing_unbroadcast():
    rejects(
        checks.check_add_backward,
        lambda g, sa, sb: (g, g),
        expect=r"\(3, 4\) with \(4,\).*grad_b: expected shape \(4,\).*unbroadcast",
    )


def test_mul_rejects_missing_unbroadcast_and_wrong_operand():
    rejects(
        checks.check_mul_backward,
        lambda g, a, b: (g * b, g * a),
        expect=r"\(3, 4\) with \(4,\).*grad_b: expected shape \(4,\)",
    )
    rejects(
        checks.check_mul_backward,
        lambda g, a, b: (unbroadcast(g * a, a.shape), unbroadcast(g * b, b.shape)),
        expect=r"grad_a: .*values differ.*d\(a\*b\)/da = b",
    )


def test_mul_rejects_in_place_update_of_input():
    def in_place(g, a, b):
        grad_a = unbroadcast(g * b, a.shape)
        ga = np.multiply(g, a, out=a) if a.shape == g.shape else g * a  # a is gone
        grad_b = unbroadcast(ga, b.shape)
        return grad_a, grad_b

    rejects(checks.check_mul_backward, in_place, expect=r"changed its input `a` in place.*original values")


# --- matmul ---------------------------------------------------------------------------


def test_matmul_accepts_einsum():
    checks.check_matmul_backward(matmul_backward)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (  # missing transpose in grad_b, caught by the square case
            lambda g, a, b: (g @ b.T, a @ g if a.shape[0] == a.shape[1] else a.T @ g),
            r"square \(4, 4\).*grad_b: .*values differ.*A.T @ dC",
        ),
        (  # missing transpose, non-square shapes
            lambda g, a, b: (g @ b, a.T @ g),
            r"\(3, 4\) @ \(4, 5\).*raised ValueError.*matmul",
        ),
        (  # swapped order
            lambda g, a, b: (b.T @ g.T, g.T @ a),
            r"raised ValueError|grad_a: expected shape",
        ),
    ],
)
def test_matmul_rejects(wrong, expect):
    rejects(checks.check_matmul_backward, wrong, expect=expect)


# --- relu -----------------------------------------------------------------------------


def test_relu_accepts_alternatives():
    checks.check_relu(lambda x: x * (x > 0), lambda g, x: g * np.heaviside(x, 0.0))


@pytest.mark.parametrize(
    "forward, backward, expect",
    [
        (relu_forward, lambda g, x: g, r"exact zeros.*relu_backward.*where x > 0"),
        (relu_forward, lambda g, x: g * (x >= 0), r"exact zeros.*x == 0"),
        (relu_forward, lambda g, x: g * relu_forward(x), r"relu_backward.*differ"),
        (relu_forward, lambda g, x: (x > 0) * 1.0, r"relu_backward.*differ"),
    ],
)
def test_relu_rejects(forward, backward, expect):
    rejects(checks.check_relu, forward, backward, expect=expect)


def test_relu_rejects_in_place_forward():
    def in_place(x):
        x[x < 0] = 0
        return x

    rejects(
        checks.check_relu,
        in_place,
        relu_backward,
        expect=r"exact zeros.*changed its input `x` in place",
    )


# --- sum ------------------------------------------------------------------------------


def test_sum_accepts_repeat():
    checks.check_sum_backward(sum_backward)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda g, s, a: g, r"axis=None.*expected shape \(3, 4\).*expand_dims"),
        (  # broadcast without putting the axis back: fails or silently transposes
            lambda g, s, a: np.broadcast_to(g, s).copy(),
            r"axis=1.*raised ValueError.*broadcast",
        ),
        (lambda g, s, a: np.ones(s), r"values differ"),
    ],
)
def test_sum_rejects(wrong, expect):
    rejects(checks.check_sum_backward, wrong, expect=expect)


def test_sum_square_case_catches_silent_transpose():
    def transposed_on_square(g, s, a):
        if a == 1 and s[0] == s[1]:
            return np.broadcast_to(g, s).copy()  # row i gets g[j]: wrong, no error
        return sum_backward(g, s, a)

    rejects(
        checks.check_sum_backward,
        transposed_on_square,
        expect=r"square \(4, 4\), axis=1.*values differ",
    )


# --- softmax cross-entropy ------------------------------------------------------------


def test_ce_accepts_alternatives():
    def via_logsumexp(z, y):
        from scipy.special import logsumexp

        return np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y])

    checks.check_softmax_cross_entropy(via_logsumexp, ce_backward)


def naive_forward(z, y):
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return float(np.mean(-np.log(p[np.arange(len(y)), y])))


def naive_backward(g, z, y):
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return g * p / len(y)


@pytest.mark.parametrize(
    "forward, backward, expect",
    [
        (naive_forward, ce_backward, r"near \+1000.*loss: .*NaN/inf.*max\(z\)"),
        (ce_forward, naive_backward, r"near \+1000.*gradient: .*NaN/inf"),
        (
            lambda z, y: ce_forward(z, y) * len(y),
            ce_backward,
            r"batch 5.*loss.*MEAN over the batch",
        ),
        (
            ce_forward,
            lambda g, z, y: ce_backward(g, z, y) * len(y),
            r"batch 5.*gradient.*batch_size",
        ),
        (ce_forward, lambda g, z, y: ce_backward(1.0, z, y), r"grad_out = 2.5"),
    ],
)
def test_ce_rejects(forward, backward, expect):
    rejects(checks.check_softmax_cross_entropy, forward, backward, expect=expect)


# --- Tensor.backward ------------------------------------------------------------------


def test_backward_accepts_iterative_topological_sort():
    checks.check_backward(make_tensor("topo"))


def test_backward_rejects_recursion_without_topological_order():
    rejects(
        checks.check_backward,
        make_tensor("recursive"),
        expect=r"shared inner node.*grad of leaf 0.*values differ.*exactly once",
    )


def test_backward_rejects_missing_seed():
    rejects(
        checks.check_backward,
        make_tensor("no seed"),
        expect=r"leaf used twice.*values differ.*seed the output's grad with ones",
    )


def test_backward_rejects_missing_transpose_in_the_graph():
    wrong = make_tensor("topo", {"matmul": lambda g, a, b: (g @ b, a.T @ g)})
    rejects(
        checks.check_backward,
        wrong,
        expect=r"a layer.*Tensor.backward\(\) raised ValueError.*matmul",
    )


# --- numerical gradient ---------------------------------------------------------------


def test_numerical_gradient_accepts_copy_version():
    def with_copies(f, x, h=1e-5):
        flat = x.reshape(-1)
        out = np.empty(flat.size)
        for i in range(flat.size):
            e = np.zeros(flat.size)
            e[i] = h
            out[i] = (f((flat + e).reshape(x.shape)) - f((flat - e).reshape(x.shape)))
            out[i] /= 2 * h
        return out.reshape(x.shape)

    checks.check_numerical_gradient(with_copies)


def forward_difference(f, x, h=1e-5):
    g = np.zeros_like(x)
    fx = f(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        g[i] = (f(x) - fx) / h
        x[i] = old
    return g


def no_restore(f, x, h=1e-5):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x[i] += h
        fp = f(x)
        x[i] -= 2 * h
        g[i] = (fp - f(x)) / (2 * h)
    return g


def flat_only(f, x, h=1e-5):  # works for 1-D x, breaks on 2-D
    g = np.zeros_like(x)
    for i in range(len(x)):
        old = x[i].copy()
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        g[i] = (fp - f(x)) / (2 * h)
        x[i] = old
    return g


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (forward_difference, r"sum of cubes.*values differ.*CENTRAL difference"),
        (no_restore, r"changed its input `x` in place.*restore x\[i\]"),
        (flat_only, r"shape \(3, 4\).*values differ"),
    ],
)
def test_numerical_gradient_rejects(wrong, expect):
    rejects(checks.check_numerical_gradient, wrong, expect=expect)


# --- MLP, SGD, accuracy ---------------------------------------------------------------


def test_mlp_forward_accepts_reordered_bias():
    Tensor = make_tensor("topo")
    checks.check_mlp_forward(
        lambda p, X: (p["b1"] + X @ p["W1"]).relu() @ p["W2"] + p["b2"], Tensor
    )


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda p, X: ((X @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"]).relu(),
            r"batch 5.*logits.*no ReLU after the last layer",
        ),
        (
            lambda p, X: (X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"],
            r"logits.*values differ",
        ),
        (
            lambda p, X: type(X)((X.data @ p["W1"].data + p["b1"].data).clip(0))
            @ p["W2"] + p["b2"],
            r"gradient of W1.*not their .data",
        ),
    ],
)
def test_mlp_forward_rejects(wrong, expect):
    rejects(checks.check_mlp_forward, wrong, make_tensor("topo"), expect=expect)


def test_sgd_accepts_rebinding():
    def rebinding(params, lr):
        for p in params.values():
            p.data = p.data - lr * p.grad
            p.grad[...] = 0

    checks.check_sgd_step(rebinding)


def test_sgd_rejects_missing_zero_and_ascent():
    def no_zero(params, lr):
        for p in params.values():
            p.data -= lr * p.grad

    rejects(checks.check_sgd_step, no_zero, expect=r"two parameters.*grad after.*zeros")

    def ascent(params, lr):
        for p in params.values():
            p.data += lr * p.grad
            p.grad[:] = 0

    rejects(checks.check_sgd_step, ascent, expect=r"data after the step.*against")


def test_accuracy_check():
    y = np.arange(100) % 10
    checks.check_test_accuracy(lambda X: y.copy(), np.zeros((100, 64)), y)
    rejects(
        checks.check_test_accuracy,
        lambda X: np.where(np.arange(100) < 10, 0, y),
        np.zeros((100, 64)),
        y,
        expect=r"test accuracy 0.910 is below 0.95",
    )
    rejects(
        checks.check_test_accuracy,
        lambda X: np.zeros((100, 10)),
        np.zeros((100, 64)),
        y,
        expect=r"expected 100 labels.*argmax",
    )
