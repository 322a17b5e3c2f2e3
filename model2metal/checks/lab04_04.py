"""Checks for lab 04_04 "A graph compiler of your own".

Conventions the lab states and these checks hold it to (the IR is
``model2metal.graphs``):

* ``evaluate(graph, feeds)`` returns a list (or tuple) of NumPy arrays, one per
  entry of ``graph.outputs`` in that order; ``feeds`` maps every graph input to an
  array and is not changed. Fused nodes run their body.
* Every pass takes a graph and returns a new, valid ``graphs.Graph`` that computes
  the same outputs (position by position) from the same inputs, and leaves the
  graph it was given as it was.
* ``fold_constants``: no node whose inputs are all constants is left; every other
  node stays, under its name, with its op and attributes.
* ``eliminate_common_subexpressions``: no two nodes with the same op, inputs and
  attributes are left; a node is only ever replaced by one that computes the same
  value (same op and attributes, the same inputs after the earlier replacements;
  ``add`` and ``mul`` may take them in either order).
* ``eliminate_dead_code``: exactly the nodes and constants that a graph output
  depends on are kept, unchanged, in their order; inputs and outputs stay as they
  were.
* ``fuse_elementwise``: every original node appears once, as a node of its own or
  in the body of one fused node, under its name; a fused body holds only
  element-wise nodes, and only its last node may be read outside the body or be a
  graph output; an element-wise node that is not a graph output and whose only
  reader is element-wise is in that reader's fused node.

The expected values come from an interpreter of this module's own (values by
recursion from the outputs), on named hand-made graphs and on random graphs with
fixed seeds.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import graphs as G
from .core import (
    CheckFailed,
    assert_array_close,
    assert_type,
    call_learner,
    describe,
    matches,
    passed,
)

__all__ = [
    "check_evaluate",
    "check_fold_constants",
    "check_eliminate_common_subexpressions",
    "check_eliminate_dead_code",
    "check_fuse_elementwise",
]

RTOL, ATOL = 1e-4, 1e-5  # float32 values of order 1 after a few dozen operations
COMMUTATIVE = {"add", "mul"}


# ---------------------------------------------------------------------------
# building cases
# ---------------------------------------------------------------------------


def _values(seed: int, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(scale=0.8, size=s).astype(np.float32)
            for k, s in shapes.items()}


def _graph(inputs, constants, nodes, outputs) -> G.Graph:
    """inputs: name -> shape; constants: name -> shape or array;
    nodes: (name, op, inputs[, attrs]) tuples."""
    consts = {}
    for k, (name, value) in enumerate(constants.items()):
        consts[name] = (np.asarray(value, dtype=np.float32)
                        if isinstance(value, (np.ndarray, float, int, list))
                        else _values(100 + k, {name: value})[name])
    made = tuple(spec if isinstance(spec, G.Node)
                 else G.Node(spec[0], spec[1], tuple(spec[2]),
                             spec[3] if len(spec) > 3 else ())
                 for spec in nodes)
    return G.Graph(tuple(inputs), consts, made, tuple(outputs))


class _Case:
    def __init__(self, name: str, graph: G.Graph, shapes: dict, seed: int = 0):
        self.name, self.graph = name, graph
        self.feeds = _values(seed + 7, shapes)

    def fresh_feeds(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.feeds.items()}


S = (4, 4)


def _random_case(seed: int, n_nodes: int = 16) -> _Case:
    """A random DAG: element-wise chains with branch points, shared
    subexpressions, constant-only nodes, dead nodes, outputs in the middle."""
    rng = np.random.default_rng(1000 + seed)
    consts = {"c0": S, "c1": S, "c2": (4,), "c3": ()}
    shapes = {"x": S, "y": (4,), **consts}
    nodes: list[G.Node] = []
    unary = ["relu", "neg", "tanh", "leaky_relu"]
    binary = ["add", "sub", "mul"]

    def pick(pool, recent=True):
        if recent and rng.random() < 0.6 and len(pool) > 3:
            return pool[-1 - int(rng.integers(0, 3))]
        return pool[int(rng.integers(0, len(pool)))]

    for k in range(n_nodes):
        name = f"n{k}"
        runtime = ["x", "y"] + [n.name for n in nodes]   # not constants
        roll = rng.random()
        if nodes and roll < 0.12:                       # a shared subexpression
            twin = nodes[int(rng.integers(0, len(nodes)))]
            node = G.Node(name, twin.op, twin.inputs, twin.attrs)
        elif roll < 0.24:                               # constants only
            a, b = (list(consts)[int(i)] for i in rng.integers(0, 4, size=2))
            node = (G.Node(name, "mul", (a, b)) if rng.random() < 0.5
                    else G.Node(name, "tanh", (a,)))
        elif roll < 0.36:                               # not element-wise
            src = pick([n for n in runtime if shapes[n] == S])
            kind = int(rng.integers(0, 3))
            if kind == 0:
                node = G.Node(name, "matmul", (src, "c1"))
            elif kind == 1:
                node = G.Node(name, "transpose", (src,), {"perm": (1, 0)})
            else:
                node = G.Node(name, "sum", (src,), {"axis": int(rng.integers(0, 2)),
                                                    "keepdims": True})
        elif roll < 0.7:
            op = unary[int(rng.integers(0, len(unary)))]
            attrs = {"alpha": float(rng.choice([0.1, 0.3]))} \
                if op == "leaky_relu" else {}
            node = G.Node(name, op, (pick(runtime),), attrs)
        else:
            op = binary[int(rng.integers(0, len(binary)))]
            node = G.Node(name, op, (pick(runtime), pick(list(shapes),
                                                         recent=False)))
        nodes.append(node)
        shapes[name] = _shape_of(node, shapes)
    node_names = [n.name for n in nodes]
    outputs = [node_names[-1]]
    outputs += [str(n) for n in rng.choice(node_names[4:-1], size=3,
                                           replace=False)]
    if seed % 2:
        outputs.append(["x", "c2"][seed % 4 == 3])
    graph = _graph(["x", "y"], {k: v for k, v in consts.items()}, nodes, outputs)
    return _Case(f"random graph, seed {seed}", graph, {"x": S, "y": (4,)},
                 seed=seed)


def _shape_of(node: G.Node, shapes: dict) -> tuple[int, ...]:
    dummy = [np.zeros(shapes[i], np.float32) for i in node.inputs]
    return np.shape(G.OPS[node.op].fn(*dummy, **dict(node.attrs)))


# ---------------------------------------------------------------------------
# the reference interpreter
# ---------------------------------------------------------------------------


def _value(name: str, defs: dict, memo: dict) -> np.ndarray:
    if name in memo:
        return memo[name]
    node = defs[name]
    args = [_value(i, defs, memo) for i in node.inputs]
    if node.op == G.FUSED:
        steps = G.body(node)
        inner = dict(zip(node.inputs, args))
        result = _value(steps[-1].name, {s.name: s for s in steps}, inner)
    else:
        result = G.OPS[node.op].fn(*args, **dict(node.attrs))
    memo[name] = np.asarray(result, dtype=np.float32)
    return memo[name]


def _reference(graph: G.Graph, feeds: dict) -> list[np.ndarray]:
    memo = {k: np.asarray(v, np.float32) for k, v in graph.constants.items()}
    memo.update({k: np.asarray(v, np.float32) for k, v in feeds.items()})
    defs = {n.name: n for n in graph.nodes}
    return [_value(out, defs, memo) for out in graph.outputs]


def _readers(graph: G.Graph) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for n in graph.nodes:
        for i in n.inputs:
            if n.name not in found.setdefault(i, []):
                found[i].append(n.name)
    return found


def _line(node: G.Node) -> str:
    attrs = ", ".join(f"{k}={v!r}" for k, v in node.attrs)
    return f"{node.op}({', '.join(node.inputs)}{'; ' + attrs if attrs else ''})"


def _names(items) -> str:
    return ", ".join(repr(x) for x in items)


# ---------------------------------------------------------------------------
# running a learner's pass
# ---------------------------------------------------------------------------


def _snapshot(graph: G.Graph):
    return (graph.inputs, graph.nodes, graph.outputs,
            {k: np.array(v, copy=True) for k, v in graph.constants.items()})


def _change(graph: G.Graph, snap) -> str | None:
    inputs, nodes, outputs, consts = snap
    if graph.inputs != inputs or graph.outputs != outputs:
        return "its inputs or outputs changed"
    if graph.nodes != nodes:
        return "its nodes changed"
    gained = [k for k in graph.constants if k not in consts]
    lost = [k for k in consts if k not in graph.constants]
    if gained or lost:
        return ("its constants " + (f"gained {_names(gained)}" if gained else "")
                + (" and " if gained and lost else "")
                + (f"lost {_names(lost)}" if lost else ""))
    for k, before in consts.items():
        now = graph.constants[k]
        if not (isinstance(now, np.ndarray) and now.shape == before.shape
                and np.array_equal(now, before, equal_nan=True)):
            return f"constant {k!r} was changed in place"
    return None


def _run_pass(check: str, case: _Case, fn: Callable) -> G.Graph:
    graph = case.graph
    snap = _snapshot(graph)
    new = call_learner(check, case.name, fn, graph,
                       hint="the argument is a graphs.Graph; return a new one")
    change = _change(graph, snap)
    if change:
        raise CheckFailed(
            check, case.name,
            f"your {fn.__name__}() changed the graph it was given: {change}",
            "a pass returns a new graph and leaves its argument alone (the "
            "caller may still run it): build new containers for the new graph "
            "instead of writing into graph.constants")
    if not isinstance(new, G.Graph):
        raise CheckFailed(check, case.name,
                          f"result: expected a graphs.Graph, got {describe(new)}",
                          ("did you forget a `return` statement?" if new is None
                           else "return a graphs.Graph, e.g. dataclasses.replace("
                           "graph, nodes=...) with the fields that change"))
    if new.inputs != graph.inputs:
        raise CheckFailed(check, case.name,
                          f"graph inputs changed from {graph.inputs} to "
                          f"{new.inputs}",
                          "the caller feeds the same inputs to the compiled "
                          "graph: keep them, even those nothing reads")
    if len(new.outputs) != len(graph.outputs):
        raise CheckFailed(check, case.name,
                          f"the graph had {len(graph.outputs)} outputs "
                          f"{graph.outputs}, yours has {len(new.outputs)} "
                          f"{new.outputs}",
                          "every output stays, in its position (one value may "
                          "be returned twice)")
    return new


def _valid(check: str, case: _Case, new: G.Graph,
           explain: Callable[[str], str | None] = lambda p: None) -> None:
    found = G.problems(new)
    if found:
        more = f"\n(and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
        raise CheckFailed(check, case.name,
                          f"the graph you returned is not valid: {found[0]}{more}",
                          explain(found[0]))


def _same_results(check: str, case: _Case, new: G.Graph,
                  hint: str | None = None) -> None:
    expected = _reference(case.graph, case.feeds)
    got = _reference(new, case.feeds)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert_array_close(g, e, check, case.name, rtol=RTOL, atol=ATOL,
                           what=f"output {k} ({new.outputs[k]!r}) of your graph",
                           hint=hint)


def _undefined(problem: str) -> str | None:
    """The name a 'reads X, which is not defined' / 'output X' problem is about."""
    import re

    match = re.search(r"reads '([^']+)', which is not defined", problem) or \
        re.search(r"output '([^']+)' is not defined", problem)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------
# 1. the interpreter
# ---------------------------------------------------------------------------


def _evaluate_cases() -> list[_Case]:
    x44 = {"x": S}
    cases = [
        _Case("one node: relu of the input",
              _graph(["x"], {}, [("r", "relu", ["x"])], ["r"]), x44),
        _Case("no nodes: outputs are the graph input and a constant",
              _graph(["x"], {"w": (4,)}, [], ["x", "w"]), x44),
        _Case("an output in the middle, also read by a later node",
              _graph(["x"], {"w": S},
                     [("m", "matmul", ["x", "w"]), ("t", "tanh", ["m"]),
                      ("s", "sub", ["t", "m"])], ["m", "s"]), x44),
        _Case("the same node returned twice, a constant returned too",
              _graph(["x", "y"], {"b": (4,)},
                     [("a", "add", ["x", "b"]), ("p", "mul", ["a", "y"])],
                     ["p", "b", "p"]), {"x": S, "y": (4,)}),
        _Case("attributes: leaky_relu, sum over axis 1, transpose",
              _graph(["x"], {},
                     [("l", "leaky_relu", ["x"], {"alpha": 0.25}),
                      ("s", "sum", ["l"], {"axis": 1, "keepdims": True}),
                      ("t", "transpose", ["l"], {"perm": (1, 0)}),
                      ("o", "add", ["t", "s"])], ["o"]), x44),
        _Case("a small CNN: conv2d, relu, max-pool, flatten, matmul",
              _graph(["img"], {"k": (3, 2, 3, 3), "w": (12, 5)},
                     [("c", "conv2d", ["img", "k"], {"stride": 1, "padding": 1}),
                      ("r", "relu", ["c"]),
                      ("p", "max_pool2d", ["r"], {"kernel": 2, "stride": 2}),
                      ("f", "flatten", ["p"], {"start_dim": 1}),
                      ("o", "matmul", ["f", "w"])], ["o"]),
              {"img": (2, 2, 4, 4)}),
    ]
    body = (G.Node("d", "sub", ("v", "u")), G.Node("e", "mul", ("d", "u")),
            G.Node("f", "leaky_relu", ("e",), {"alpha": 0.5}))
    cases.append(_Case(
        "a fused node: its body reads its inputs in another order",
        _graph(["u", "v"], {}, [G.fused(body)], ["f"]), {"u": S, "v": S}))
    body2 = (G.Node("a", "add", ("m", "c")), G.Node("t", "tanh", ("a",)),
             G.Node("q", "mul", ("t", "t")))
    cases.append(_Case(
        "a fused node between ordinary nodes, read by a node after it",
        _graph(["x"], {"w": S, "c": (4,)},
               [("m", "matmul", ["x", "w"]), G.fused(body2, name="k"),
                ("o", "sub", ["k", "m"])], ["o", "k"]), x44))
    return cases + [_random_case(seed) for seed in range(3)]


def _first_body_values(graph: G.Graph, feeds: dict) -> list[np.ndarray]:
    """The outputs when a fused node gives its first body value (a mistake)."""
    nodes = [G.fused(G.body(n)[:1], name=n.name) if n.op == G.FUSED else n
             for n in graph.nodes]
    return _reference(G.Graph(graph.inputs, graph.constants, nodes, graph.outputs),
                      feeds)


def _evaluate_hint(graph: G.Graph, feeds: dict, k: int, got: Any) -> str | None:
    """A hint when output ``k`` equals what a known mistake gives."""
    if any(n.op == G.FUSED for n in graph.nodes) and matches(
            got, _first_body_values(graph, feeds)[k], RTOL, ATOL):
        return ("that is the value of the first node of the fused body: a "
                "fused node's value is that of its last body node")
    if graph.nodes and graph.outputs[k] != graph.nodes[-1].name:
        last = _reference(G.Graph(graph.inputs, graph.constants, graph.nodes,
                                  (graph.nodes[-1].name,)), feeds)[0]
        if matches(got, last, RTOL, ATOL):
            return (f"that is the value of the last node, but output {k} is "
                    f"{graph.outputs[k]!r}: look each output up by its name")
    return None


def check_evaluate(evaluate) -> None:
    name = "check_evaluate"
    cases = _evaluate_cases()
    for case in cases:
        graph, feeds = case.graph, case.fresh_feeds()
        keys = set(feeds)
        expected = _reference(graph, case.feeds)
        got = call_learner(
            name, case.name, evaluate, graph, feeds,
            hint="evaluate(graph, feeds): feeds maps each graph input to an array",
            evidence=[(r"is fused: run the nodes",
                       "graphs.apply runs one ordinary node; a fused node is a "
                       "small graph: run its body nodes one by one and give the "
                       "value of the last one")])
        if set(feeds) != keys:
            raise CheckFailed(name, case.name,
                              f"your evaluate() changed the feeds dict: its keys "
                              f"went from {sorted(keys)} to {sorted(feeds)}",
                              "the caller's dict is not yours to fill: keep the "
                              "values in a dict of your own")
        changed = [k for k in keys if not np.array_equal(feeds[k], case.feeds[k])]
        if changed:
            raise CheckFailed(name, case.name,
                              f"your evaluate() wrote into the input array(s) "
                              f"{_names(changed)} of feeds",
                              "graphs.apply returns new arrays: keep the inputs "
                              "as the caller gave them")
        assert_type(got, (list, tuple), name, case.name, what="result",
                    hint="return a list with one array per graph output, in "
                         "the order of graph.outputs")
        if len(got) != len(graph.outputs):
            raise CheckFailed(name, case.name,
                              f"the graph has {len(graph.outputs)} outputs "
                              f"{graph.outputs}; you returned {len(got)} values",
                              "one value per entry of graph.outputs, repeats "
                              "included")
        for k, (g, e) in enumerate(zip(got, expected)):
            hint = None
            if not matches(g, e, RTOL, ATOL):
                hint = _evaluate_hint(graph, case.feeds, k, g)
            assert_array_close(g, e, name, case.name, rtol=RTOL, atol=ATOL,
                               expect_type=np.ndarray,
                               what=f"output {k} ({graph.outputs[k]!r})", hint=hint)
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 2. constant folding
# ---------------------------------------------------------------------------


def _fold_cases() -> list[_Case]:
    x44 = {"x": S}
    return [
        _Case("no nodes: the output is the input",
              _graph(["x"], {}, [], ["x"]), x44),
        _Case("batch-norm statistics: reshape, add eps, sqrt, then the input",
              _graph(["x"], {"var": np.array([0.5, 1.0, 2.0, 0.25]),
                             "eps": np.full((), 1e-5),
                             "mean": (4,)},
                     [("v", "reshape", ["var"], {"shape": (1, 4)}),
                      ("ve", "add", ["v", "eps"]),
                      ("ve2", "mul", ["ve", "ve"]),
                      ("sd", "sqrt", ["ve2"]),
                      ("c", "sub", ["x", "mean"]),
                      ("o", "div", ["c", "sd"])], ["o"]), x44),
        _Case("x * (c1 + c2): one operand is a graph input",
              _graph(["x"], {"c1": S, "c2": S},
                     [("s", "add", ["c1", "c2"]), ("p", "mul", ["x", "s"]),
                      ("q", "add", ["p", "c1"]), ("r", "relu", ["q"])], ["r"]),
              x44),
        _Case("a folded node is a graph output, and read by another node",
              _graph(["x"], {"w": S},
                     [("t", "transpose", ["w"], {"perm": (1, 0)}),
                      ("e", "tanh", ["t"]), ("m", "matmul", ["x", "e"])],
                     ["e", "m"]), x44),
        _Case("nothing to fold: every node depends on the input",
              _graph(["x"], {"w": S},
                     [("m", "matmul", ["x", "w"]), ("n", "neg", ["m"])], ["n"]),
              x44),
    ] + [_random_case(seed) for seed in range(4)]


def _foldable(graph: G.Graph) -> set[str]:
    known, folded = set(graph.constants), set()
    for n in graph.nodes:
        if n.inputs and all(i in known for i in n.inputs):
            folded.add(n.name)
            known.add(n.name)
    return folded


def _runtime_operand(graph: G.Graph, name: str, foldable: set[str]) -> str:
    node = graph.node(name)
    for i in node.inputs:
        if i in graph.inputs:
            return f"it reads {i!r}, a graph input"
        if i not in graph.constants and i not in foldable:
            return f"it reads {i!r}, which depends on a graph input"
    return "it reads a value known only at run time"


def check_fold_constants(fold_constants) -> None:
    name = "check_fold_constants"
    cases = _fold_cases()
    for case in cases:
        graph = case.graph
        foldable = _foldable(graph)
        new = _run_pass(name, case, fold_constants)
        kept = {n.name: n for n in new.nodes if isinstance(n, G.Node)}
        for n in graph.nodes:
            if n.name in foldable or n.name in kept:
                continue
            if n.name in new.constants:
                raise CheckFailed(
                    name, case.name,
                    f"node {n.name!r} = {_line(n)} became a constant, but "
                    f"{_runtime_operand(graph, n.name, foldable)}",
                    "only a node whose every operand is a constant (or was "
                    "folded already) has a value before the graph runs; a "
                    "graph input gets its value only then")
            raise CheckFailed(
                name, case.name,
                f"node {n.name!r} = {_line(n)} is gone, but it cannot be "
                f"folded: {_runtime_operand(graph, n.name, foldable)}",
                "folding removes only nodes it turns into constants; keep "
                "the other nodes, under their names")
        _valid(name, case, new, lambda p: _fold_explain(p, graph, foldable))
        for n in new.nodes:
            original = graph.node(n.name)
            if original is None:
                raise CheckFailed(name, case.name,
                                  f"node {n.name!r} = {_line(n)} is new",
                                  "folding adds constants, not nodes")
            if n.inputs and all(i in new.constants for i in n.inputs):
                was_fed = [i for i in original.inputs if i in foldable]
                raise CheckFailed(
                    name, case.name,
                    f"node {n.name!r} = {_line(n)} reads only constants and "
                    "was not folded",
                    f"it reads {_names(was_fed)}, folded themselves: a node "
                    "becomes foldable once its inputs are; visit the nodes in "
                    "graph order and fold as you go" if was_fed else
                    "every operand of this node is known at compile time")
            if (n.op, n.attrs) != (original.op, original.attrs):
                raise CheckFailed(name, case.name,
                                  f"node {n.name!r} was {_line(original)}, now "
                                  f"{_line(n)}",
                                  "folding leaves the nodes it keeps as they are")
        _same_results(name, case, new)
    passed(name, len(cases))


def _fold_explain(problem: str, graph: G.Graph, foldable: set[str]) -> str:
    missing = _undefined(problem)
    if missing in foldable:
        return (f"{missing!r} was folded into a constant: if that constant has "
                "another name, the nodes and outputs that read "
                f"{missing!r} must read the new name (or give the constant the "
                "node's name)")
    if "float32" in problem:
        return ("a folded value is a constant like the others: a float32 NumPy "
                "array (graphs.apply returns one)")
    return None


# ---------------------------------------------------------------------------
# 3. common-subexpression elimination
# ---------------------------------------------------------------------------


def _cse_cases() -> list[_Case]:
    x44 = {"x": S}
    return [
        _Case("no nodes: the output is a constant",
              _graph(["x"], {"c": (4,)}, [], ["c"]), x44),
        _Case("two identical matmuls feeding an add",
              _graph(["x"], {"w": S},
                     [("m1", "matmul", ["x", "w"]), ("m2", "matmul", ["x", "w"]),
                      ("s", "add", ["m1", "m2"])], ["s"]), x44),
        _Case("same op, other inputs: tanh(x) and tanh(y); sub(x, y), sub(y, x)",
              _graph(["x", "y"], {},
                     [("tx", "tanh", ["x"]), ("ty", "tanh", ["y"]),
                      ("d1", "sub", ["tx", "ty"]), ("d2", "sub", ["ty", "tx"]),
                      ("o", "mul", ["d1", "d2"])], ["o"]), {"x": S, "y": S}),
        _Case("same op and input, other attribute: sum over axis 0 and 1",
              _graph(["x"], {},
                     [("s0", "sum", ["x"], {"axis": 0, "keepdims": True}),
                      ("s1", "sum", ["x"], {"axis": 1, "keepdims": True}),
                      ("o", "add", ["s0", "s1"])], ["o"]), x44),
        _Case("leaky_relu with alpha 0.1 and 0.3 of the same input",
              _graph(["x"], {},
                     [("a", "leaky_relu", ["x"], {"alpha": 0.1}),
                      ("b", "leaky_relu", ["x"], {"alpha": 0.3}),
                      ("o", "sub", ["a", "b"])], ["o", "a"]), x44),
        _Case("duplicates of duplicates: merging one pair makes the next equal",
              _graph(["x"], {"c": (4,)},
                     [("a1", "add", ["x", "c"]), ("a2", "add", ["x", "c"]),
                      ("r1", "relu", ["a1"]), ("r2", "relu", ["a2"]),
                      ("e1", "neg", ["r1"]), ("e2", "neg", ["r2"]),
                      ("o", "mul", ["e1", "e2"])], ["o"]), x44),
        _Case("a duplicate that is a graph output",
              _graph(["x"], {},
                     [("t1", "tanh", ["x"]), ("t2", "tanh", ["x"]),
                      ("n", "neg", ["t1"])], ["t2", "n"]), x44),
    ] + [_random_case(seed) for seed in range(4)]


def _representatives(graph: G.Graph, new: G.Graph) -> dict[str, str]:
    """Original value name -> the name that stands for it in ``new``, read from
    the inputs of the nodes and the outputs that replaced it."""
    by_name = {n.name: n for n in new.nodes}
    rep = {k: k for k in (*new.inputs, *new.constants, *by_name)}
    for old, now in zip(graph.outputs, new.outputs):
        rep.setdefault(old, now)
    for node in reversed(graph.nodes):
        target = by_name.get(rep.get(node.name))
        if target is not None and len(target.inputs) == len(node.inputs):
            for old, now in zip(node.inputs, target.inputs):
                rep.setdefault(old, now)
    return rep


def _same_inputs(op: str, a: tuple, b: tuple) -> bool:
    return a == b or (op in COMMUTATIVE and sorted(a) == sorted(b))


def check_eliminate_common_subexpressions(eliminate_common_subexpressions) -> None:
    name = "check_eliminate_common_subexpressions"
    cases = _cse_cases()
    for case in cases:
        graph = case.graph
        new = _run_pass(name, case, eliminate_common_subexpressions)
        _valid(name, case, new, lambda p: (
            "a node that was merged away may still be read by a graph output: "
            "outputs go through the replacements too"
            if _undefined(p) in graph.outputs else None))
        rep = _representatives(graph, new)
        by_name = {n.name: n for n in new.nodes}
        for n in graph.nodes:
            r = rep.get(n.name)
            if r is None or r == n.name:
                continue
            target = by_name.get(r)
            if target is None:
                raise CheckFailed(name, case.name,
                                  f"node {n.name!r} = {_line(n)} was replaced "
                                  f"by {r!r}, which is not a node",
                                  "a node is replaced only by an equal node")
            mapped = tuple(rep.get(i, i) for i in n.inputs)
            if target.op != n.op:
                raise CheckFailed(
                    name, case.name,
                    f"node {n.name!r} = {_line(n)} was merged into {r!r} = "
                    f"{_line(target)}: another operator",
                    "two nodes compute the same value only when their op, "
                    "their inputs and their attributes all agree")
            if not _same_inputs(n.op, mapped, target.inputs):
                raise CheckFailed(
                    name, case.name,
                    f"node {n.name!r} = {_line(n)} was merged into {r!r} = "
                    f"{_line(target)}: their inputs differ",
                    "the same op on other inputs (or, for sub and matmul, the "
                    "same inputs in another order) is another value")
            if target.attrs != n.attrs:
                raise CheckFailed(
                    name, case.name,
                    f"node {n.name!r} = {_line(n)} was merged into {r!r} = "
                    f"{_line(target)}: their attributes differ "
                    f"({dict(n.attrs)} vs {dict(target.attrs)})",
                    "attributes are part of what a node computes: a sum over "
                    "axis 0 is not a sum over axis 1")
        seen: dict[tuple, str] = {}
        for n in new.nodes:
            key = (n.op, n.inputs, n.attrs)
            if key in seen:
                first = graph.node(seen[key])
                second = graph.node(n.name)
                renamed = first is not None and second is not None and \
                    first.inputs != second.inputs
                raise CheckFailed(
                    name, case.name,
                    f"nodes {seen[key]!r} and {n.name!r} are both {_line(n)}: "
                    "one of them is left",
                    "in the input graph they read different names that you "
                    "merged: compare a node's inputs after the replacements "
                    "made so far (in graph order)" if renamed else
                    "equal op, inputs and attributes: one node is enough")
            seen[key] = n.name
        _same_results(name, case, new)
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 4. dead-code elimination
# ---------------------------------------------------------------------------


def _dce_cases() -> list[_Case]:
    x44 = {"x": S}
    return [
        _Case("no nodes: the output is the input, a constant unused",
              _graph(["x"], {"w": S}, [], ["x"]), x44),
        _Case("a dead chain of three nodes next to the live one",
              _graph(["x"], {"w": S},
                     [("d1", "matmul", ["x", "w"]), ("d2", "tanh", ["d1"]),
                      ("d3", "neg", ["d2"]), ("o", "relu", ["x"])], ["o"]), x44),
        _Case("a graph output that only a dead node reads",
              _graph(["x"], {"c": (4,)},
                     [("o", "add", ["x", "c"]), ("d", "neg", ["o"]),
                      ("d2", "tanh", ["d"])], ["o"]), x44),
        _Case("outputs: a constant and the input; an unused input stays",
              _graph(["x", "unused"], {"c": (4,), "w": S},
                     [("d", "mul", ["x", "w"])], ["c", "x"]),
              {"x": S, "unused": S}),
        _Case("two outputs, one read by the other; a dead node reads both",
              _graph(["x"], {"w": S, "v": S},
                     [("a", "matmul", ["x", "w"]), ("b", "tanh", ["a"]),
                      ("dead", "add", ["a", "b"]), ("e", "mul", ["dead", "v"])],
                     ["b", "a"]), x44),
    ] + [_random_case(seed) for seed in range(4)]


def _live(graph: G.Graph) -> set[str]:
    defs = {n.name: n for n in graph.nodes}
    live, todo = set(), list(graph.outputs)
    while todo:
        name = todo.pop()
        if name not in live:
            live.add(name)
            todo += defs[name].inputs if name in defs else []
    return live


def check_eliminate_dead_code(eliminate_dead_code) -> None:
    name = "check_eliminate_dead_code"
    cases = _dce_cases()
    for case in cases:
        graph = case.graph
        live = _live(graph)
        readers = _readers(graph)
        new = _run_pass(name, case, eliminate_dead_code)
        if new.outputs != graph.outputs:
            raise CheckFailed(name, case.name,
                              f"outputs changed from {graph.outputs} to "
                              f"{new.outputs}",
                              "dead-code elimination removes values; it does not "
                              "rename or reorder the outputs")
        kept = {n.name for n in new.nodes if isinstance(n, G.Node)}
        for what, names, now in (
                ("node", [n.name for n in graph.nodes], kept),
                ("constant", list(graph.constants), set(new.constants))):
            for value in names:
                if value in live and value not in now:
                    live_readers = [r for r in readers.get(value, [])
                                    if r in live]
                    if value in graph.outputs:
                        dead = [r for r in readers.get(value, []) if r not in live]
                        why = "it is a graph output"
                        hint = ("a graph output is live whether or not a node "
                                "reads it" + (f" (here only the dead "
                                              f"{_names(dead)} read it)"
                                              if dead else ""))
                    else:
                        why = f"live node(s) {_names(live_readers)} read it"
                        hint = ("a value is live when a graph output depends on "
                                "it, directly or through other nodes")
                    raise CheckFailed(name, case.name,
                                      f"{what} {value!r} was removed, but {why}",
                                      hint)
        dead_kept = [n.name for n in graph.nodes
                     if n.name in kept and n.name not in live]
        if dead_kept:
            removed = [n.name for n in graph.nodes if n.name not in kept]
            if not removed:
                hint = "nothing was removed: start from what the outputs need"
            elif any(r in removed for d in dead_kept for r in readers.get(d, [])):
                hint = ("its readers were dead and you removed them, which made "
                        "it dead too: one sweep that drops nodes without readers "
                        "is not enough (or walk from the outputs backwards)")
            else:
                hint = "no graph output depends on it, directly or indirectly"
            raise CheckFailed(
                name, case.name,
                f"dead node(s) {_names(dead_kept)} are still in the graph "
                f"(removed: {_names(removed) or 'none'})", hint)
        dead_consts = [k for k in new.constants if k not in live]
        if dead_consts:
            raise CheckFailed(
                name, case.name,
                f"constant(s) {_names(dead_consts)} are still in the graph, but "
                "no live node and no output reads them",
                "constants that nothing live reads are dead code too (their "
                "memory is the model file's size)")
        _valid(name, case, new)
        for n in new.nodes:
            if n != graph.node(n.name):
                raise CheckFailed(name, case.name,
                                  f"node {n.name!r} changed: was "
                                  f"{describe(graph.node(n.name))}, now "
                                  f"{describe(n)}",
                                  "keep the live nodes as they are")
        _same_results(name, case, new)
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 5. fusion of element-wise chains
# ---------------------------------------------------------------------------


def _fusion_cases() -> list[_Case]:
    x44 = {"x": S}
    return [
        _Case("no nodes: the output is the input",
              _graph(["x"], {}, [], ["x"]), x44),
        _Case("a chain of four element-wise nodes after a matmul",
              _graph(["x"], {"w": S, "b": (4,)},
                     [("m", "matmul", ["x", "w"]), ("a", "add", ["m", "b"]),
                      ("t", "tanh", ["a"]), ("n", "neg", ["t"]),
                      ("r", "relu", ["n"])], ["r"]), x44),
        _Case("a branch point: tanh read by a relu chain and by a matmul",
              _graph(["x"], {"w": S},
                     [("e", "tanh", ["x"]), ("r", "relu", ["e"]),
                      ("n", "neg", ["r"]), ("m", "matmul", ["e", "w"]),
                      ("o", "add", ["n", "m"])], ["o"]), x44),
        _Case("a diamond: tanh read by two chains that meet again",
              _graph(["x"], {"c": (4,)},
                     [("e", "tanh", ["x"]), ("r", "relu", ["e"]),
                      ("n", "neg", ["e"]), ("s", "mul", ["n", "c"]),
                      ("o", "add", ["r", "s"])], ["o"]), x44),
        _Case("a graph output in the middle of a chain",
              _graph(["x"], {"c": (4,)},
                     [("a", "add", ["x", "c"]), ("b", "tanh", ["a"]),
                      ("d", "neg", ["b"]), ("e", "relu", ["d"])], ["e", "b"]),
              x44),
        _Case("a chain cut by a matmul and a sum",
              _graph(["x"], {"w": S},
                     [("a", "relu", ["x"]), ("b", "neg", ["a"]),
                      ("m", "matmul", ["b", "w"]), ("t", "tanh", ["m"]),
                      ("s", "sum", ["t"], {"axis": 1, "keepdims": True}),
                      ("u", "mul", ["s", "t"])], ["u"]), x44),
        _Case("a tree: two single-use chains meet in a sub; t*t reads t twice",
              _graph(["x", "y"], {},
                     [("p", "relu", ["x"]), ("q", "leaky_relu", ["p"],
                                             {"alpha": 0.2}),
                      ("t", "tanh", ["y"]), ("sq", "mul", ["t", "t"]),
                      ("o", "sub", ["sq", "q"])], ["o"]), {"x": S, "y": S}),
        _Case("nothing to fuse: one element-wise node between two matmuls",
              _graph(["x"], {"w": S},
                     [("m1", "matmul", ["x", "w"]), ("r", "relu", ["m1"]),
                      ("m2", "matmul", ["r", "w"])], ["m2"]), x44),
    ] + [_random_case(seed) for seed in range(4)]


def _joins(graph: G.Graph) -> list[tuple[str, str]]:
    """(producer, reader) pairs that must share a fused node."""
    outputs, readers = set(graph.outputs), _readers(graph)
    defs = {n.name: n for n in graph.nodes}
    pairs = []
    for n in graph.nodes:
        users = readers.get(n.name, [])
        if (G.is_elementwise(n.op) and n.name not in outputs and len(users) == 1
                and G.is_elementwise(defs[users[0]].op)):
            pairs.append((n.name, users[0]))
    return pairs


def _fusion_explain(problem: str, graph: G.Graph, new: G.Graph) -> str | None:
    missing = _undefined(problem)
    if missing is None:
        return None
    for n in new.nodes:
        names = [b.name for b in G.body(n)]
        if missing in names:
            if missing == names[-1]:
                return (f"{missing!r} is the last node of the fused node "
                        f"{n.name!r}: the rest of the graph must read the fused "
                        "node's name (graphs.fused names it after its last body "
                        "node unless told otherwise)")
            users = _readers(graph).get(missing, [])
            if missing in graph.outputs:
                return (f"{missing!r} is a graph output, fused into the middle "
                        f"of {n.name!r}: its value never leaves that kernel; a "
                        "graph output ends its group")
            return (f"{missing!r} has {len(users)} readers ({_names(users)}) and "
                    f"you fused it into {n.name!r}: a value that is also read "
                    "outside a group must end that group")
    return None


def check_fuse_elementwise(fuse_elementwise) -> None:
    name = "check_fuse_elementwise"
    cases = _fusion_cases()
    for case in cases:
        graph = case.graph
        defs = {n.name: n for n in graph.nodes}
        readers = _readers(graph)
        new = _run_pass(name, case, fuse_elementwise)
        _valid(name, case, new, lambda p: _fusion_explain(p, graph, new))
        group_of: dict[str, str] = {}
        for n in new.nodes:
            members = [b.name for b in G.body(n)] if n.op == G.FUSED else [n.name]
            for m in members:
                if m in group_of:
                    raise CheckFailed(
                        name, case.name,
                        f"node {m!r} appears twice: in {group_of[m]!r} and in "
                        f"{n.name!r}",
                        f"{m!r} has {len(readers.get(m, []))} readers: fusing "
                        "it into each of them computes it twice; it stays a "
                        "node of its own (or ends one group)")
                group_of[m] = n.name
            for b in G.body(n):
                original = defs.get(b.name)
                if original is None:
                    raise CheckFailed(name, case.name,
                                      f"fused node {n.name!r} holds {b.name!r}, "
                                      "which is not a node of the input graph",
                                      "keep the original nodes' names in the "
                                      "body")
                if not G.is_elementwise(b.op):
                    raise CheckFailed(
                        name, case.name,
                        f"fused node {n.name!r} holds {b.name!r} = {_line(b)}, "
                        "which is not element-wise",
                        f"{b.op} reads more than the element at the same "
                        "position (a row, a window, the whole tensor), so it "
                        "cannot run inside one element-wise loop "
                        "(graphs.is_elementwise says which ops can)")
                if (b.op, b.attrs) != (original.op, original.attrs):
                    raise CheckFailed(name, case.name,
                                      f"body node {b.name!r} is {_line(b)}, was "
                                      f"{_line(original)}",
                                      "fusion moves nodes; it does not change "
                                      "them")
        for m in defs:
            if m not in group_of:
                raise CheckFailed(name, case.name,
                                  f"node {m!r} = {_line(defs[m])} is gone",
                                  "fusion keeps every node, as a node of its "
                                  "own or inside a fused node (dead code is "
                                  "another pass's job)")
        for n in new.nodes:
            members = [b.name for b in G.body(n)]
            for m in members[:-1]:
                outside = [r for r in readers.get(m, [])
                           if group_of.get(r) != n.name]
                if m in graph.outputs or outside:
                    why = ("it is a graph output" if m in graph.outputs else
                           f"{_names(outside)} outside the group read it")
                    raise CheckFailed(
                        name, case.name,
                        f"{m!r} is inside fused node {n.name!r}, not at its "
                        f"end, but {why}",
                        "only the last node of a group may be read outside it "
                        "or be a graph output: its value is the only one the "
                        "fused kernel writes to memory")
        for p, r in _joins(graph):
            if group_of[p] != group_of[r]:
                reads = defs[r].inputs
                if reads.count(p) > 1:
                    hint = (f"{r!r} reads {p!r} twice, but it is still its "
                            "only reader")
                elif reads.index(p) > 0:
                    hint = ("a group grows along every input of an element-"
                            "wise node, not only the first")
                else:
                    hint = ("an element-wise node that is read by exactly one "
                            "element-wise node, and is not a graph output, can "
                            "run inside its reader's loop")
                raise CheckFailed(
                    name, case.name,
                    f"{p!r} = {_line(defs[p])} is read only by {r!r} = "
                    f"{_line(defs[r])}, both element-wise, and {p!r} is not a "
                    "graph output, but they are not in one fused node", hint)
        _same_results(name, case, new)
    passed(name, len(cases))
