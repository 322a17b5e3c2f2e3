"""Lab 01_01's checks reject typical backprop mistakes and accept other correct code.

Each wrong implementation is a mistake learners really make; every test also asserts
that the message names the case and points at the problem. A wrong implementation that
a case added for issue 9 rejects says in a comment why it passed the cases before.
"""


import numpy as np
import pytest
from check_helpers import boom, raises_cleanly, rejects

from model2metal.checks import lab01_01 as checks




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


def topological_order(root):
    """Iterative depth-first search: every node after its parents."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node.parents)
    return order


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
            if backward_style == "topo":
                self.grad = np.ones_like(self.data)
                for node in reversed(topological_order(self)):
                    node._backward()
            elif backward_style == "kahn":  # a node runs once all its users ran
                users = {}
                for node in topological_order(self):
                    for p in node.parents:
                        users[id(p)] = users.get(id(p), 0) + 1
                self.grad = np.ones_like(self.data)
                ready = [self]
                while ready:
                    node = ready.pop()
                    node._backward()
                    for p in node.parents:
                        users[id(p)] -= 1
                        if users[id(p)] == 0:
                            ready.append(p)
            elif backward_style == "recursive":  # no topological order
                self.grad = np.ones_like(self.data)

                def rec(node):
                    node._backward()
                    for p in node.parents:
                        rec(p)

                rec(self)
            elif backward_style == "breadth-first":  # each node once, by distance
                self.grad = np.ones_like(self.data)
                queue, seen = [self], set()
                while queue:
                    node = queue.pop(0)
                    if id(node) not in seen:
                        seen.add(id(node))
                        node._backward()
                        queue.extend(node.parents)
            elif backward_style == "pre-order":  # each node once, before its parents
                self.grad = np.ones_like(self.data)
                seen = set()

                def visit(node):
                    if id(node) not in seen:
                        seen.add(id(node))
                        node._backward()
                        for p in node.parents:
                            visit(p)

                visit(self)
            elif backward_style == "zero first":  # resets every grad, leaves too
                order = topological_order(self)
                for node in order:
                    node.grad = np.zeros_like(node.data)
                self.grad = np.ones_like(self.data)
                for node in reversed(order):
                    node._backward()
            elif backward_style == "no seed":
                for node in reversed(topological_order(self)):
                    node._backward()
            elif backward_style == "raises":
                raise KeyError("a learner's bug")

    return Tensor


# --- unbroadcast ----------------------------------------------------------------------


def test_unbroadcast_accepts_loop_and_axis_tuple_versions():
    checks.check_unbroadcast(unbroadcast)

    def by_axis_tuple(grad, shape):
        lead = grad.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1
        )
        return grad.sum(axis=axes).reshape(shape)

    checks.check_unbroadcast(by_axis_tuple)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda g, s: g,
            r"\(3, 4\) back to \(4,\).*expected shape \(4,\).*nothing was summed",
        ),
        (  # only the leading axes, forgets axes of size 1
            lambda g, s: g.sum(axis=tuple(range(g.ndim - len(s)))),
            r"back to \(3, 1\).*expected shape \(3, 1\)",
        ),
        (  # sums size-1 axes without keepdims
            lambda g, s: g.sum(
                axis=tuple(range(g.ndim - len(s)))
                + tuple(g.ndim - len(s) + i for i, n in enumerate(s) if n == 1)
            ),
            r"back to \(3, 1\).*expected shape \(3, 1\), got shape \(3,\).*keepdims",
        ),
        (
            lambda g, s: unbroadcast(g, s) / (g.size / max(np.prod(s), 1)),
            r"\(3, 4\) back to \(4,\).*values differ.*averaged instead of summed",
        ),
        (
            lambda g, s: unbroadcast(g, s).tolist(),
            r"expected a numpy.ndarray or a numpy.float64, got list",
        ),
        (
            lambda g, s: unbroadcast(g, s).astype(np.float32),
            r"expected dtype float64, got dtype float32",
        ),
    ],
)
def test_unbroadcast_rejects(wrong, expect):
    rejects(checks.check_unbroadcast, wrong, expect=expect)


def test_unbroadcast_learner_error():
    raises_cleanly(
        checks.check_unbroadcast, boom, expect=r"input: ndarray shape \(3, 4\)"
    )


# --- add and mul ----------------------------------------------------------------------


def test_add_and_mul_accept_alternatives():
    checks.check_add_backward(add_backward)
    checks.check_mul_backward(mul_backward)


def test_add_rejects_missing_unbroadcast_and_a_list():
    rejects(
        checks.check_add_backward,
        lambda g, sa, sb: (g, g),
        expect=r"\(3, 4\) with \(4,\).*grad_b: expected shape \(4,\).*grad_b has "
        r"grad_out's shape \(3, 4\).*unbroadcast",
    )
    rejects(
        checks.check_add_backward,
        lambda g, sa, sb: [unbroadcast(g, sa), unbroadcast(g, sb)],
        expect=r"expected a tuple \(grad_a, grad_b\), got list",
    )


def test_mul_rejects_missing_unbroadcast_wrong_operand_and_missing_factor():
    rejects(
        checks.check_mul_backward,
        lambda g, a, b: (g * b, g * a),
        expect=r"\(3, 4\) with \(4,\).*grad_b: expected shape \(4,\)",
    )
    rejects(
        checks.check_mul_backward,
        lambda g, a, b: (unbroadcast(g * a, a.shape), unbroadcast(g * b, b.shape)),
        expect=r"grad_a: .*values differ.*grad_out times a itself.*other operand, b",
    )
    rejects(
        checks.check_mul_backward,
        lambda g, a, b: (unbroadcast(g, a.shape), unbroadcast(g * a, b.shape)),
        expect=r"grad_a: .*values differ.*without the factor",
    )


def test_mul_rejects_in_place_update_of_input():
    def in_place(g, a, b):
        grad_a = unbroadcast(g * b, a.shape)
        ga = np.multiply(g, a, out=a) if a.shape == g.shape else g * a  # a is gone
        grad_b = unbroadcast(ga, b.shape)
        return grad_a, grad_b

    rejects(
        checks.check_mul_backward,
        in_place,
        expect=r"changed its input `a` in place.*original values",
    )


def test_mul_rejects_in_place_update_of_grad_out():
    def scales_grad_out(grad_out, a, b):
        grad_b = unbroadcast(grad_out * a, np.shape(b))
        grad_out *= b  # the caller's grad_out (out.grad) changes
        return unbroadcast(grad_out, np.shape(a)), grad_b

    rejects(
        checks.check_mul_backward,
        scales_grad_out,
        expect=r"changed its input `grad_out` in place",
    )


def test_add_and_mul_learner_errors():
    raises_cleanly(checks.check_add_backward, boom, expect=r"input: ndarray.*tuple")
    raises_cleanly(checks.check_mul_backward, boom, expect=r"input: ndarray")


# --- matmul ---------------------------------------------------------------------------


def test_matmul_accepts_einsum():
    checks.check_matmul_backward(matmul_backward)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (  # missing transpose in grad_b, caught by the square case
            lambda g, a, b: (g @ b.T, a @ g if a.shape[0] == a.shape[1] else a.T @ g),
            r"square \(4, 4\).*grad_b: .*values differ.*without a transpose.*"
            r"shapes cannot guide",
        ),
        (  # missing transpose, non-square shapes
            lambda g, a, b: (g @ b, a.T @ g),
            r"\(3, 4\) @ \(4, 5\).*raised ValueError.*matmul.*grad_a has a's shape",
        ),
        (  # swapped order
            lambda g, a, b: (b.T @ g.T, g.T @ a),
            r"raised ValueError|grad_a: expected shape",
        ),
        (
            lambda g, a, b: (a.T @ g, g @ b.T),
            r"grad_a: expected shape \(3, 4\), got shape \(4, 5\).*shape of a",
        ),
    ],
)
def test_matmul_rejects(wrong, expect):
    rejects(checks.check_matmul_backward, wrong, expect=expect)


def test_matmul_learner_error():
    raises_cleanly(checks.check_matmul_backward, boom, expect=r"input: ndarray")


# --- relu -----------------------------------------------------------------------------


def test_relu_accepts_alternatives():
    checks.check_relu(lambda x: x * (x > 0), lambda g, x: g * np.heaviside(x, 0.0))
    checks.check_relu(lambda x: np.clip(x, 0, None), lambda g, x: g * (x > 0))


def aliasing_mask(g, x):  # builds its mask in the forward input itself
    mask = x
    mask[mask <= 0] = 0
    mask[mask > 0] = 1
    return g * mask


def masks_grad_out(g, x):
    g[x <= 0] = 0
    return g


@pytest.mark.parametrize(
    "forward, backward, expect",
    [
        (
            relu_forward,
            lambda g, x: g,
            r"exact zeros.*relu_backward.*passed everywhere",
        ),
        (relu_forward, lambda g, x: g * (x >= 0), r"exact zeros.*x == 0.*subgradient"),
        (
            relu_forward,
            lambda g, x: g * relu_forward(x),
            r"relu_backward.*ReLU's output",
        ),
        (relu_forward, lambda g, x: (x > 0) * 1.0, r"relu_backward.*mask alone"),
        (lambda x: x, relu_backward, r"relu_forward.*negative values must become 0"),
        (lambda x: np.abs(x), relu_backward, r"relu_forward.*this is \|x\|"),
        (
            lambda x: relu_forward(x).astype(np.float32),
            relu_backward,
            r"relu_forward: expected dtype float64, got dtype float32",
        ),
        (
            lambda x: relu_forward(x).tolist(),
            relu_backward,
            r"relu_forward: expected a numpy.ndarray, got list",
        ),
        pytest.param(  # passed before: no earlier value was near the largest float64
            lambda x: (x + np.abs(x)) / 2,
            relu_backward,
            r"huge and tiny magnitudes.*relu_forward: 1 NaN/inf.*finite inputs",
            marks=pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning"),
        ),
        (
            relu_forward,
            aliasing_mask,
            r"exact zeros.*relu_backward\(\) changed its input `x` in place",
        ),
        (relu_forward, masks_grad_out, r"changed its input `g` in place"),
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


def test_relu_learner_errors():
    raises_cleanly(checks.check_relu, boom, relu_backward, expect=r"relu_forward\(\)")
    raises_cleanly(checks.check_relu, relu_forward, boom, expect=r"relu_backward\(\)")


# --- sum ------------------------------------------------------------------------------


def test_sum_accepts_repeat_and_a_broadcast_view():
    checks.check_sum_backward(sum_backward)
    checks.check_sum_backward(
        lambda g, s, a: np.broadcast_to(g if a is None else np.expand_dims(g, a), s)
    )


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda g, s, a: g,
            r"axis=None.*expected shape \(3, 4\).*came back as it was",
        ),
        (  # broadcast without putting the axis back: fails or silently transposes
            lambda g, s, a: np.broadcast_to(g, s).copy(),
            r"axis=1.*raised ValueError.*broadcast.*summed axis is gone",
        ),
        (lambda g, s, a: np.ones(s), r"values differ.*every element got 1"),
        (
            lambda g, s, a: sum_backward(g, s, a) / (np.prod(s) if a is None else s[a]),
            r"values differ.*divided by 12.*mean",
        ),
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
        expect=r"square \(4, 4\), axis=1.*values differ.*transposed",
    )


def test_sum_learner_error():
    raises_cleanly(checks.check_sum_backward, boom, expect=r"input: ndarray shape \(\)")


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


def global_max_forward(z, y):  # one maximum for the whole batch
    m = z.max()
    lse = m + np.log(np.exp(z - m).sum(axis=1))
    return float((lse - z[np.arange(len(y)), y]).mean())


def global_max_backward(g, z, y):
    e = np.exp(z - z.max())
    p = e / e.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return g * p / len(y)


def softmax_without_one_hot(g, z, y):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return g * e / e.sum(axis=1, keepdims=True) / len(y)


def shifts_logits_in_place(g, z, y):
    z -= z.max(axis=1, keepdims=True)
    return ce_backward(g, z, y)


@pytest.mark.parametrize(
    "forward, backward, expect",
    [
        (naive_forward, ce_backward, r"near \+1000.*loss: .*NaN/inf.*row's maximum"),
        (ce_forward, naive_backward, r"near \+1000.*gradient: .*NaN/inf.*exp"),
        (
            lambda z, y: ce_forward(z, y) * len(y),
            ce_backward,
            r"batch 5.*loss.*the sum over the batch: the loss is the mean",
        ),
        (
            ce_forward,
            lambda g, z, y: ce_backward(g, z, y) * len(y),
            r"batch 5.*gradient.*5 times too large",
        ),
        (
            ce_forward,
            lambda g, z, y: ce_backward(1.0, z, y),
            r"grad_out = 2.5.*grad_out was not multiplied in",
        ),
        (
            ce_forward,
            softmax_without_one_hot,
            r"batch 5.*gradient.*without the one-hot label subtracted",
        ),
        (  # passed before: every earlier batch had all its rows at one scale
            global_max_forward,
            ce_backward,
            r"rows near \+1000 and rows near -1000.*loss: 1 NaN/inf.*each row's own",
        ),
        (  # passed before, likewise
            ce_forward,
            global_max_backward,
            r"rows near \+1000 and rows near -1000.*gradient: \d+ NaN/inf.*each row's",
        ),
        (
            lambda z, y: np.log(np.exp(z - z.max(1, keepdims=True)).sum(1))
            - (z - z.max(1, keepdims=True))[np.arange(len(y)), y],
            ce_backward,
            r"batch 5.*expected a float or a numpy.floating, got ndarray.*one loss per "
            r"sample",
        ),
        (
            lambda z, y: np.float32(ce_forward(z, y)),
            ce_backward,
            r"batch 5.*loss: 1 of 1 values differ.*float32 rounding",
        ),
        (ce_forward, shifts_logits_in_place, r"changed its input `z` in place"),
    ],
)
def test_ce_rejects(forward, backward, expect):
    rejects(checks.check_softmax_cross_entropy, forward, backward, expect=expect)


def test_ce_learner_errors():
    raises_cleanly(
        checks.check_softmax_cross_entropy,
        boom,
        ce_backward,
        expect=r"softmax_cross_entropy_forward\(\) raised",
    )
    raises_cleanly(
        checks.check_softmax_cross_entropy,
        ce_forward,
        boom,
        expect=r"softmax_cross_entropy_backward\(\) raised",
    )


# --- Tensor.backward ------------------------------------------------------------------


def test_backward_accepts_iterative_topological_sort_and_kahn():
    checks.check_backward(make_tensor("topo"))
    checks.check_backward(make_tensor("kahn"))


def test_backward_rejects_recursion_without_topological_order():
    rejects(
        checks.check_backward,
        make_tensor("recursive"),
        expect=r"shared inner node.*grad of leaf 0.*values differ.*once per path",
    )


@pytest.mark.parametrize(
    "style, expect",
    [
        # passed before: in the only shared-node case, (h * h + h), the longer path
        # comes first, so both visits happen to finish h * h before h
        ("breadth-first", r"paths of different lengths.*values differ.*breadth-first"),
        ("pre-order", r"paths of different lengths.*values differ.*or pre-order"),
        # passed before: every leaf started at zero
        ("zero first", r"already hold a gradient.*are gone.*accumulate"),
    ],
)
def test_backward_rejects_orders_that_are_not_topological(style, expect):
    rejects(checks.check_backward, make_tensor(style), expect=expect)


def test_backward_rejects_missing_seed():
    rejects(
        checks.check_backward,
        make_tensor("no seed"),
        expect=r"leaf used twice.*values differ.*every leaf gradient is 0",
    )


def test_backward_rejects_missing_transpose_in_the_graph():
    wrong = make_tensor("topo", {"matmul": lambda g, a, b: (g @ b, a.T @ g)})
    raises_cleanly(
        checks.check_backward,
        wrong,
        expect=r"a layer.*Tensor.backward\(\) raised ValueError.*matmul",
    )


def test_backward_learner_errors():
    raises_cleanly(
        checks.check_backward,
        make_tensor("raises"),
        expect=r"Tensor.backward\(\) raised KeyError",
    )
    raises_cleanly(
        checks.check_backward,
        make_tensor("topo", {"ce": boom}),
        expect=r"cross-entropy.*Tensor.backward\(\) raised ZeroDivisionError",
    )

    broken_add = make_tensor("topo")

    def add(self, other):
        raise TypeError("a learner's bug")

    broken_add.__add__ = add
    raises_cleanly(
        checks.check_backward, broken_add, expect=r"the forward pass raised TypeError"
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


def restore_by_arithmetic(f, x, h=1e-5):  # x + h - 2h + h is not always x again
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x[i] += h
        fp = f(x)
        x[i] -= 2 * h
        g[i] = (fp - f(x)) / (2 * h)
        x[i] += h
    return g


def divides_by_h(f, x, h=1e-5):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        g[i] = (fp - f(x)) / h
        x[i] = old
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
        (forward_difference, r"sum of cubes.*values differ.*one-sided.*central"),
        (no_restore, r"changed its input `x` in place.*restore x\[i\]"),
        (restore_by_arithmetic, r"changed its input `x` in place.*need not give x"),
        (divides_by_h, r"sum of cubes.*values differ.*twice the gradient.*2h"),
        (flat_only, r"shape \(3, 4\).*values differ"),
        (
            lambda f, x: list(divides_by_h(f, x) / 2),
            r"expected a numpy.ndarray, got list",
        ),
    ],
)
def test_numerical_gradient_rejects(wrong, expect):
    rejects(checks.check_numerical_gradient, wrong, expect=expect)


def test_numerical_gradient_learner_error():
    raises_cleanly(
        checks.check_numerical_gradient, boom, expect=r"input: function <lambda>"
    )


# --- MLP, SGD, accuracy ---------------------------------------------------------------


def test_mlp_forward_accepts_reordered_bias():
    Tensor = make_tensor("topo")
    checks.check_mlp_forward(
        lambda p, X: (p["b1"] + X @ p["W1"]).relu() @ p["W2"] + p["b2"], Tensor
    )


def normalises_in_place(p, X):
    X.data /= 2  # "scale the inputs": the caller's X changes
    return (X @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"]


def replaces_a_parameter(p, X):
    p["W1"] = type(X)(p["W1"].data.copy())
    return (X @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"]


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (
            lambda p, X: ((X @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"]).relu(),
            r"batch 5.*logits.*ReLU after the last layer",
        ),
        (
            lambda p, X: (X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"],
            r"logits.*values differ.*hidden layer's ReLU is missing",
        ),
        (
            lambda p, X: (X @ p["W1"] + p["b1"]).relu() @ p["W2"],
            r"logits.*values differ.*b2 is missing",
        ),
        (
            lambda p, X: type(X)((X.data @ p["W1"].data + p["b1"].data).clip(0))
            @ p["W2"] + p["b2"],
            r"gradient of W1.*no gradient reached W1.*not their .data",
        ),
        (
            lambda p, X: ((X @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"]).data,
            r"expected a Tensor, got ndarray",
        ),
        (normalises_in_place, r"changed X.data in place"),
        (replaces_a_parameter, r"replaced params\['W1'\]"),
    ],
)
def test_mlp_forward_rejects(wrong, expect):
    rejects(checks.check_mlp_forward, wrong, make_tensor("topo"), expect=expect)


def test_mlp_forward_learner_errors():
    raises_cleanly(
        checks.check_mlp_forward, boom, make_tensor("topo"), expect=r"input: dict"
    )
    raises_cleanly(
        checks.check_mlp_forward,
        lambda p, X: (X @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"],
        make_tensor("raises"),
        expect=r"Tensor.backward\(\) raised KeyError",
    )


def sgd_ok(params, lr):
    for p in params.values():
        p.data -= lr * p.grad
        p.grad = np.zeros_like(p.data)


def test_sgd_accepts_rebinding_and_the_lab_solution():
    def rebinding(params, lr):
        for p in params.values():
            p.data = p.data - lr * p.grad
            p.grad[...] = 0

    checks.check_sgd_step(rebinding)
    checks.check_sgd_step(sgd_ok)


def test_sgd_rejects_missing_zero_ascent_and_missing_lr():
    def no_zero(params, lr):
        for p in params.values():
            p.data -= lr * p.grad

    rejects(checks.check_sgd_step, no_zero, expect=r"two parameters.*grad after.*zeros")

    def ascent(params, lr):
        for p in params.values():
            p.data += lr * p.grad
            p.grad[:] = 0

    rejects(checks.check_sgd_step, ascent, expect=r"data after the step.*went up")

    def no_lr(params, lr):
        for p in params.values():
            p.data -= p.grad
            p.grad[:] = 0

    rejects(checks.check_sgd_step, no_lr, expect=r"ignores the learning rate")

    def zero_number(params, lr):
        for p in params.values():
            p.data -= lr * p.grad
            p.grad = 0

    rejects(
        checks.check_sgd_step,
        zero_number,
        expect=r"expected a numpy.ndarray, got int 0",
    )


def test_sgd_rejects_iterating_over_the_keys():
    def over_keys(params, lr):
        for p in params:
            p.data -= lr * p.grad

    raises_cleanly(
        checks.check_sgd_step, over_keys, expect=r"AttributeError.*gives its keys"
    )


def test_sgd_learner_error():
    raises_cleanly(checks.check_sgd_step, boom, expect=r"input: dict with keys")


# --- the training loop ----------------------------------------------------------------


def make_train(variant="ok"):
    """train_mlp as exercise 11 asks for (variant "ok") or with one mistake."""
    Tensor = make_tensor("topo")

    def init_mlp(n_in, n_hidden, n_out, rng):  # the lab's given code
        return {
            "W1": Tensor(rng.normal(size=(n_in, n_hidden)) * np.sqrt(2 / n_in)),
            "b1": Tensor(np.zeros(n_hidden)),
            "W2": Tensor(rng.normal(size=(n_hidden, n_out)) * np.sqrt(2 / n_hidden)),
            "b2": Tensor(np.zeros(n_out)),
        }

    def forward(params, X):
        return (X @ params["W1"] + params["b1"]).relu() @ params["W2"] + params["b2"]

    def accuracy(params, X, y):
        return float(np.mean(forward(params, Tensor(X)).data.argmax(axis=1) == y))

    def train_mlp(X, y, X_test, y_test, n_hidden=64, lr=0.1, num_epochs=60,
                  batch_size=32, seed=0):
        rng = np.random.default_rng(seed)
        params = init_mlp(X.shape[1], n_hidden, 10, rng)
        losses, test_accs = [], []
        order = rng.permutation(len(X)) if variant == "shuffle once" else None
        for epoch in range(num_epochs):
            if variant == "accuracy before":
                test_accs.append(accuracy(params, X_test, y_test))
            if variant == "shuffle with rng.shuffle":
                order = np.arange(len(X))
                rng.shuffle(order)
            elif variant != "shuffle once":
                order = rng.permutation(len(X))
            total, batch_means = 0.0, []
            for start in range(0, len(X), batch_size):
                idx = order[start:start + batch_size]
                loss = forward(params, Tensor(X[idx])).cross_entropy(y[idx])
                loss.backward()
                sgd_ok(params, lr)
                total += float(loss.data) * len(idx)
                batch_means.append(float(loss.data))
            if variant == "mean of batch means":
                losses.append(float(np.mean(batch_means)))
            elif variant == "last batch":
                losses.append(batch_means[-1])
            else:
                losses.append(total / len(X))
            if variant != "accuracy before":
                test_accs.append(accuracy(params, X_test, y_test))
        if variant == "array of losses":
            losses = np.array(losses)
        return params, losses, test_accs

    return train_mlp


@pytest.fixture(scope="module")
def digits():
    from model2metal.data import load_digits_split

    X_train, X_test, y_train, y_test = load_digits_split(test_size=0.2, seed=0)
    return (
        X_train.reshape(len(X_train), -1).astype(np.float64),
        y_train,
        X_test.reshape(len(X_test), -1).astype(np.float64),
        y_test,
    )


def test_train_accepts_the_exercise_and_rng_shuffle(digits):
    checks.check_train_mlp(make_train("ok"), *digits)
    checks.check_train_mlp(make_train("shuffle with rng.shuffle"), *digits)


@pytest.mark.parametrize(
    "variant, expect",
    [
        # all of these passed before: train_mlp's history had no check at all, and
        # check_test_accuracy only looks at the final parameters
        ("mean of batch means", r"lr=0, .*losses\[0\].*mean of the batch means"),
        ("last batch", r"lr=0, .*losses\[0\].*last batch only"),
        ("shuffle once", r"lr=0.1, .*parameters differ.*shuffled once"),
        ("accuracy before", r"lr=0.1, .*test_accs: expected"),
        ("array of losses", r"lr=0, .*losses: expected a list, got ndarray"),
    ],
)
def test_train_rejects(digits, variant, expect):
    rejects(checks.check_train_mlp, make_train(variant), *digits, expect=expect)


def test_train_learner_error(digits):
    raises_cleanly(
        checks.check_train_mlp, boom, *digits, expect=r"lr=0, .*input: ndarray.*lr="
    )


def test_accuracy_check():
    y = np.arange(100) % 10
    checks.check_test_accuracy(lambda X: y.copy(), np.zeros((100, 64)), y)
    rejects(
        checks.check_test_accuracy,
        lambda X: np.where(np.arange(100) < 10, 0, y),
        np.zeros((100, 64)),
        y,
        expect=r"91 of 100 test images right \(accuracy 0.9100\): below 0.95, which "
        r"needs 95",
    )
    rejects(
        checks.check_test_accuracy,
        lambda X: np.zeros((100, 10)),
        np.zeros((100, 64)),
        y,
        expect=r"expected 100 labels.*largest logit",
    )


def test_accuracy_exactly_at_the_threshold_passes():
    y = np.arange(360) % 10
    pred = y.copy()
    pred[:18] = (pred[:18] + 1) % 10  # 342 of 360 right: exactly 0.95
    checks.check_test_accuracy(lambda X: pred.copy(), np.zeros((360, 64)), y)
    pred[18] = (pred[18] + 1) % 10
    rejects(
        checks.check_test_accuracy,
        lambda X: pred.copy(),
        np.zeros((360, 64)),
        y,
        expect=r"341 of 360 test images right \(accuracy 0.9472\).*needs 342",
    )


@pytest.mark.parametrize(
    "predict, expect",
    [
        (
            lambda X: (np.arange(100) % 10).astype(float),
            r"integer class labels.*float64",
        ),
        (lambda X: list(np.arange(100) % 10), r"expected a numpy.ndarray, got list"),
        (lambda X: np.zeros(100, dtype=np.int64), r"every prediction is class 0"),
        (lambda X: (np.arange(100) // 10 + 1) % 10, r"about chance level"),
    ],
)
def test_accuracy_rejects(predict, expect):
    y = np.arange(100) % 10
    rejects(checks.check_test_accuracy, predict, np.zeros((100, 64)), y, expect=expect)


def test_accuracy_learner_error():
    y = np.arange(10)
    raises_cleanly(
        checks.check_test_accuracy, boom, np.zeros((10, 64)), y, expect=r"test set"
    )
