"""A tiny graph IR for lab 04.04 "A graph compiler of your own".

A **graph** is what a deep-learning compiler's front end makes of a model: values
and the operators that compute them, with nothing about loops or memory yet. This
module holds the scaffolding of the lab — the data structures, the operator table,
a printer, a validator and an importer for ``torch.export`` programs. The passes
that transform graphs, and the interpreter that runs them, are the lab's exercises.

The IR
======

* A :class:`Node` computes one value: ``Node(name, op, inputs, attrs)``. ``name``
  is the value's name; ``op`` a key of :data:`OPS` (or ``"fused"``, below);
  ``inputs`` the names of the values it reads, in order; ``attrs`` the operator's
  parameters (a padding, an axis, a slope) as a tuple of ``(key, value)`` pairs
  sorted by key. Nodes are frozen and hashable, and two nodes with the same op,
  inputs and attributes compute the same value — which is what a
  common-subexpression pass needs to know. ``node.attr("alpha")`` reads one
  attribute.
* A :class:`Graph` has ``inputs`` (names of the values fed at run time),
  ``constants`` (name -> float32 NumPy array, known at compile time: weights,
  statistics, folded results), ``nodes`` (a tuple, in topological order: every
  node comes after the nodes whose values it reads) and ``outputs`` (names of the
  values the graph returns, in order; an output may be a node, a constant or a
  graph input, and the same value may be returned twice). A graph is frozen too:
  a pass builds a new one, e.g. with ``dataclasses.replace(graph, nodes=...)``.
* A **fused node** is a small graph inside one node, the unit a fusion pass emits:
  ``op == "fused"``, ``attrs == (("body", body),)`` where ``body`` is a tuple of
  ordinary element-wise nodes in topological order. The fused node's ``inputs``
  are the values the body reads from outside; its value is the value of the
  *last* body node. Body nodes read the outside values by their names in the
  enclosing graph. :func:`fused` builds one from a list of body nodes;
  :func:`body` returns the body of a fused node.

Helpers: :func:`apply` runs one ordinary node on NumPy arrays, :func:`consumers`
lists who reads each value, :func:`problems` / :func:`validate` check that a graph
is well formed, :func:`show` prints a graph (``print(graph)`` does the same),
:func:`counts` counts its parts, and :func:`from_torch_export` imports a
``torch.export`` program.

Why the importer does not call ``run_decompositions()``: the exported program of
the course model, as ``torch.export.export`` returns it, has one operator per layer
(``conv2d``, ``batch_norm``, ``relu``, ``max_pool2d``, ``flatten``, ``linear``),
which keeps the imported graph readable. Core ATen, after decomposition, returns
tuples (batch norm's output with its statistics, max-pool's values with their
positions) that this IR has no type for. The importer decomposes the two layers
that matter itself, the way TVM's importer and its ``DecomposeOpsForInference``
pass do: an inference-mode batch norm becomes its formula
``(x - mean) / sqrt(var + eps) * gamma + beta`` over per-channel constants
reshaped to ``(1, C, 1, 1)``, and ``linear`` becomes ``matmul(x, transpose(W)) +
b``. That leaves the constant folding and the fusion passes real work to do.
"""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "Node",
    "Graph",
    "OpSpec",
    "OPS",
    "FUSED",
    "apply",
    "fused",
    "body",
    "is_elementwise",
    "consumers",
    "problems",
    "validate",
    "show",
    "counts",
    "from_torch_export",
]

#: The op name of a fused node.
FUSED = "fused"


# ---------------------------------------------------------------------------
# nodes and graphs
# ---------------------------------------------------------------------------


def _frozen(value: Any) -> Any:
    """Lists (and NumPy arrays) of attribute values become tuples, NumPy numbers
    Python numbers, so that attributes compare and hash by value."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Node:
    """One operator application: ``name = op(*inputs; **attrs)``.

    ``attrs`` may be given as a dict or as pairs; it is stored as a tuple of
    ``(key, value)`` pairs sorted by key (lists become tuples), so equal attributes
    compare equal and a node can be a dict key.
    """

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    attrs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        pairs = self.attrs.items() if isinstance(self.attrs, Mapping) else self.attrs
        attrs = tuple(sorted((str(k), _frozen(v)) for k, v in pairs))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "attrs", attrs)

    def attr(self, key: str, default: Any = None) -> Any:
        """The value of attribute ``key`` (``default`` when the node has none)."""
        return dict(self.attrs).get(key, default)

    def __str__(self) -> str:
        return _node_line(self)


@dataclass(frozen=True, repr=False)
class Graph:
    """Inputs, constants, nodes in topological order, and outputs.

    ``print(graph)`` shows it (:func:`show`); ``repr(graph)`` is a one-line summary.
    ``inputs``, ``nodes`` and ``outputs`` are stored as tuples, ``constants`` as a
    new dict (the arrays are not copied: treat them as read-only).
    """

    inputs: tuple[str, ...] = ()
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: tuple[Node, ...] = ()
    outputs: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("inputs", "nodes", "outputs"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "constants", dict(self.constants))

    def __str__(self) -> str:
        return show(self)

    def __repr__(self) -> str:
        c = counts(self)
        return (f"Graph({len(self.inputs)} input(s), {c['constants']} constants, "
                f"{c['nodes']} nodes, {len(self.outputs)} output(s))")

    def node(self, name: str) -> Node | None:
        """The node named ``name``, or None (constants and inputs are not nodes)."""
        return next((n for n in self.nodes if n.name == name), None)


# ---------------------------------------------------------------------------
# the operator table
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OpSpec:
    """An operator: its NumPy implementation ``fn(*arrays, **attrs)``, how many
    inputs it takes, and whether it is **element-wise** — each output element
    depends only on the input elements at the same position (after NumPy
    broadcasting), so a chain of such operators can run as one loop."""

    fn: Callable[..., np.ndarray]
    arity: int
    elementwise: bool
    doc: str


def _conv2d(x, w, stride=1, padding=0):
    """NCHW input, OIHW weight, no bias, the same stride and padding on both axes."""
    p = padding
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    kh, kw = w.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]          # (N, C, H', W', kh, kw)
    return np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)


def _max_pool2d(x, kernel=2, stride=2):
    windows = np.lib.stride_tricks.sliding_window_view(
        x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.max(axis=(-2, -1))


OPS: dict[str, OpSpec] = {
    # element-wise, one input
    "relu": OpSpec(lambda x: np.maximum(x, 0), 1, True, "max(x, 0)"),
    "neg": OpSpec(lambda x: -x, 1, True, "-x"),
    "exp": OpSpec(np.exp, 1, True, "e to the x"),
    "sqrt": OpSpec(np.sqrt, 1, True, "square root"),
    "tanh": OpSpec(np.tanh, 1, True, "hyperbolic tangent"),
    "leaky_relu": OpSpec(lambda x, alpha: np.where(x > 0, x, x * np.float32(alpha)),
                         1, True, "x if x > 0 else alpha * x"),
    # element-wise, two inputs (NumPy broadcasting)
    "add": OpSpec(np.add, 2, True, "a + b"),
    "sub": OpSpec(np.subtract, 2, True, "a - b"),
    "mul": OpSpec(np.multiply, 2, True, "a * b"),
    "div": OpSpec(np.divide, 2, True, "a / b"),
    # not element-wise
    "matmul": OpSpec(np.matmul, 2, False, "matrix product a @ b"),
    "transpose": OpSpec(lambda x, perm: np.transpose(x, perm), 1, False,
                        "axes permuted (attr perm)"),
    "reshape": OpSpec(lambda x, shape: np.reshape(x, shape), 1, False,
                      "new shape, -1 inferred (attr shape)"),
    "flatten": OpSpec(lambda x, start_dim=1: x.reshape(x.shape[:start_dim] + (-1,)),
                      1, False, "axes from start_dim on merged"),
    "sum": OpSpec(lambda x, axis, keepdims=False: np.sum(x, axis=axis,
                                                         keepdims=keepdims),
                  1, False, "sums one axis (attrs axis, keepdims)"),
    "conv2d": OpSpec(_conv2d, 2, False,
                     "NCHW by OIHW (attrs stride, padding)"),
    "max_pool2d": OpSpec(_max_pool2d, 1, False,
                         "window max (attrs kernel, stride)"),
}


def is_elementwise(op: str) -> bool:
    """True for an element-wise operator of :data:`OPS` (False for others and for
    ``"fused"``)."""
    spec = OPS.get(op)
    return spec is not None and spec.elementwise


def apply(node: Node, args: Sequence[np.ndarray]) -> np.ndarray:
    """Run one ordinary node (not a fused one) on the arrays of its inputs, in the
    order of ``node.inputs``; returns a new float32 array."""
    if node.op == FUSED:
        raise ValueError(f"node {node.name!r} is fused: run the nodes of its body "
                         "one by one (graphs.body(node))")
    spec = OPS.get(node.op)
    if spec is None:
        raise ValueError(f"node {node.name!r}: unknown op {node.op!r}")
    if len(args) != spec.arity:
        raise ValueError(f"node {node.name!r}: {node.op} takes {spec.arity} "
                         f"input(s), got {len(args)}")
    arrays = [np.asarray(a, dtype=np.float32) for a in args]
    out = spec.fn(*arrays, **dict(node.attrs))
    return np.array(out, dtype=np.float32)   # always a new array


def fused(nodes: Iterable[Node], name: str | None = None) -> Node:
    """A fused node whose body is ``nodes`` (in topological order).

    Its inputs are the names the body reads but does not define, in the order of
    first use; its name is ``name``, by default that of the last body node (then
    the consumers of that node and the graph outputs need no change).
    """
    nodes = tuple(nodes)
    if not nodes:
        raise ValueError("a fused node needs at least one body node")
    defined, outside = set(), []
    for n in nodes:
        for i in n.inputs:
            if i not in defined and i not in outside:
                outside.append(i)
        defined.add(n.name)
    return Node(name or nodes[-1].name, FUSED, tuple(outside), (("body", nodes),))


def body(node: Node) -> tuple[Node, ...]:
    """The body nodes of a fused node (an empty tuple for any other node)."""
    return tuple(node.attr("body", ())) if node.op == FUSED else ()


def consumers(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Value name -> names of the nodes that read it, each node once, in graph
    order. Every input, constant and node of the graph has an entry (an empty
    tuple when nothing reads it). Graph outputs are not counted as readers."""
    readers: dict[str, list[str]] = {
        name: [] for name in (*graph.inputs, *graph.constants,
                              *(n.name for n in graph.nodes))}
    for n in graph.nodes:
        for i in dict.fromkeys(n.inputs):
            readers.setdefault(i, []).append(n.name)
    return {name: tuple(r) for name, r in readers.items()}


# ---------------------------------------------------------------------------
# validity
# ---------------------------------------------------------------------------


def _body_problems(node: Node, known: set[str]) -> list[str]:
    nodes = body(node)
    if not nodes or not all(isinstance(n, Node) for n in nodes):
        return [f"fused node {node.name!r}: its body must be a non-empty tuple of "
                "Node objects"]
    found, inner = [], set()
    for n in nodes:
        if n.op == FUSED:
            found.append(f"fused node {node.name!r}: body node {n.name!r} is "
                         "itself fused (fused nodes do not nest)")
        elif n.op not in OPS:
            found.append(f"fused node {node.name!r}: body node {n.name!r} has "
                         f"unknown op {n.op!r}")
        for i in n.inputs:
            if i not in inner and i not in node.inputs:
                found.append(f"fused node {node.name!r}: body node {n.name!r} "
                             f"reads {i!r}, which is neither an earlier body node "
                             "nor an input of the fused node")
        if n.name in inner:
            found.append(f"fused node {node.name!r}: body name {n.name!r} twice")
        inner.add(n.name)
    return found


def problems(graph: Any) -> list[str]:
    """What is wrong with ``graph``, one sentence each; empty when it is valid.

    Valid means: a :class:`Graph` whose names are unique strings across inputs,
    constants and nodes; constants are float32 NumPy arrays; every node is a
    :class:`Node` with a known op and the right number of inputs, each input
    defined *before* the node (an input, a constant or an earlier node); fused
    nodes are well formed; every output is defined.
    """
    if not isinstance(graph, Graph):
        return [f"not a graphs.Graph but a {type(graph).__name__}"]
    found: list[str] = []
    known: set[str] = set()

    def define(name: Any, what: str) -> None:
        if not isinstance(name, str):
            found.append(f"{what} name {name!r} is not a string")
        elif name in known:
            found.append(f"name {name!r} is defined twice")
        known.add(name)

    for name in graph.inputs:
        define(name, "input")
    for name, value in graph.constants.items():
        define(name, "constant")
        if not isinstance(value, np.ndarray) or value.dtype != np.float32:
            kind = (f"dtype {value.dtype}" if isinstance(value, np.ndarray)
                    else type(value).__name__)
            found.append(f"constant {name!r} is not a float32 NumPy array "
                         f"({kind})")
    for k, n in enumerate(graph.nodes):
        if not isinstance(n, Node):
            found.append(f"nodes[{k}] is a {type(n).__name__}, not a Node")
            continue
        for i in n.inputs:
            if i not in known:
                later = any(isinstance(m, Node) and m.name == i
                            for m in graph.nodes[k + 1:])
                found.append(f"node {n.name!r} reads {i!r}, which is "
                             + ("defined only later (the nodes are not in "
                                "topological order)" if later else "not defined"))
        if n.op == FUSED:
            found += _body_problems(n, known)
        elif n.op not in OPS:
            found.append(f"node {n.name!r} has unknown op {n.op!r}")
        elif len(n.inputs) != OPS[n.op].arity:
            found.append(f"node {n.name!r}: {n.op} takes {OPS[n.op].arity} "
                         f"input(s), has {len(n.inputs)}")
        define(n.name, "node")
    for name in graph.outputs:
        if name not in known:
            found.append(f"output {name!r} is not defined")
    return found


def validate(graph: Graph) -> Graph:
    """``graph`` itself if it is valid; ValueError with the first problem
    otherwise (see :func:`problems`)."""
    found = problems(graph)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ValueError(found[0] + more)
    return graph


# ---------------------------------------------------------------------------
# printing and counting
# ---------------------------------------------------------------------------


def _value_text(v: Any) -> str:
    return repr(v) if not isinstance(v, float) else f"{v:g}"


def _node_line(n: Node) -> str:
    if n.op == FUSED:
        ops = ", ".join(b.op for b in body(n))
        return f"{n.name} = fused[{ops}]({', '.join(n.inputs)})"
    attrs = ", ".join(f"{k}={_value_text(v)}" for k, v in n.attrs)
    args = ", ".join(n.inputs) + (f"; {attrs}" if attrs else "")
    return f"{n.name} = {n.op}({args})"


def _shape_text(value: Any) -> str:
    """(1, 16, 1, 1) as ``(1,16,1,1)``, (4,) as ``(4,)``, a scalar as ``()``."""
    shape = np.shape(value)
    return "(" + ",".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _wrapped(label: str, items: Sequence[str], width: int) -> list[str]:
    """``label`` and the items, comma-separated, broken only between items."""
    lines, line = [], f"{label:10}"
    for k, item in enumerate(items or ["-"]):
        piece = item + ("," if k < len(items) - 1 else "")
        if len(line) + len(piece) + 1 > width and line.strip() != label:
            lines.append(line.rstrip())
            line = " " * 10
        line += piece + " "
    return lines + [line.rstrip()]


def show(graph: Graph, width: int = 78, max_nodes: int | None = None,
         bodies: bool = True) -> str:
    """The graph in a few readable lines: inputs, constants with their shapes,
    one line per node (``name = op(inputs; attrs)``; a fused node lists its ops,
    then its body indented when ``bodies``), and the outputs. ``max_nodes`` cuts
    the node list (the count of the rest is printed)."""
    lines = _wrapped("inputs", list(graph.inputs), width)
    lines += _wrapped("constants", [
        f"{k} {_shape_text(v)}" for k, v in graph.constants.items()], width)
    shown = graph.nodes if max_nodes is None else graph.nodes[:max_nodes]
    for n in shown:
        lines += textwrap.wrap(_node_line(n), width, initial_indent="  ",
                               subsequent_indent="      ",
                               break_long_words=False)
        if bodies and n.op == FUSED:
            for b in body(n):
                lines += textwrap.wrap(_node_line(b), width,
                                       initial_indent="      | ",
                                       subsequent_indent="      |     ",
                                       break_long_words=False)
    if len(shown) < len(graph.nodes):
        lines.append(f"  ... {len(graph.nodes) - len(shown)} more nodes")
    lines += _wrapped("outputs", list(graph.outputs), width)
    return "\n".join(lines)


def counts(graph: Graph) -> dict[str, int]:
    """``nodes`` (each one kernel launch when the graph runs), ``element-wise``
    (ordinary element-wise nodes), ``fused`` (fused nodes), ``constants`` and
    ``constant values`` (floats held in constants)."""
    return {
        "nodes": len(graph.nodes),
        "element-wise": sum(is_elementwise(n.op) for n in graph.nodes),
        "fused": sum(n.op == FUSED for n in graph.nodes),
        "constants": len(graph.constants),
        "constant values": int(sum(np.size(v) for v in graph.constants.values())),
    }


# ---------------------------------------------------------------------------
# importing a torch.export program
# ---------------------------------------------------------------------------


def _pair(value: Any, what: str) -> int:
    """One int from an int or a list of equal ints (stride [1, 1] -> 1)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(set(values)) != 1:
        raise ValueError(f"{what} {value!r}: only equal values on both axes")
    return int(values[0])


class _Importer:
    """Turns the FX nodes of an ExportedProgram into graph nodes, one by one."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.constants: dict[str, np.ndarray] = {}

    def emit(self, name, op, inputs, **attrs) -> str:
        self.nodes.append(Node(name, op, tuple(inputs), attrs))
        return name

    def constant(self, name, value) -> str:
        self.constants[name] = np.asarray(value, dtype=np.float32)
        return name

    def batch_norm(self, name, x, gamma, beta, mean, var, eps) -> str:
        """Inference batch norm as its formula over reshaped statistics."""
        per_channel = {}
        for part, value in (("mean", mean), ("var", var), ("gamma", gamma),
                            ("beta", beta)):
            per_channel[part] = self.emit(f"{name}_{part}", "reshape", [value],
                                          shape=(1, -1, 1, 1))
        eps_name = self.constant(f"{name}_eps", eps)
        var_eps = self.emit(f"{name}_var_eps", "add", [per_channel["var"], eps_name])
        std = self.emit(f"{name}_std", "sqrt", [var_eps])
        centred = self.emit(f"{name}_centred", "sub", [x, per_channel["mean"]])
        normed = self.emit(f"{name}_normed", "div", [centred, std])
        scaled = self.emit(f"{name}_scaled", "mul", [normed, per_channel["gamma"]])
        return self.emit(name, "add", [scaled, per_channel["beta"]])

    def linear(self, name, x, weight, bias) -> str:
        wt = self.emit(f"{name}_wt", "transpose", [weight], perm=(1, 0))
        if bias is None:
            return self.emit(name, "matmul", [x, wt])
        product = self.emit(f"{name}_mm", "matmul", [x, wt])
        return self.emit(name, "add", [product, bias])


def _aten_name(target: Any) -> str:
    """``torch.ops.aten.conv2d.default`` -> ``"conv2d"``."""
    text = str(target)
    parts = text.split(".")
    return parts[1] if text.startswith("aten.") and len(parts) > 1 else text


def from_torch_export(exported_program) -> Graph:
    """The graph of a ``torch.export.ExportedProgram``, its parameters and buffers
    as float32 constants (named as the program's placeholders, e.g.
    ``p_conv1_weight``), its user inputs as graph inputs.

    Supported ATen operators: ``conv2d`` (no bias, groups 1, no dilation, the same
    stride and padding on both axes), ``batch_norm`` in inference mode
    (decomposed, see the module's docstring), ``relu``, ``max_pool2d`` (square
    windows, no padding), ``flatten``, ``linear`` (decomposed), ``add``, ``sub``,
    ``mul`` and ``div`` of two tensors, ``matmul``, ``tanh``, ``exp``,
    ``sqrt`` and ``neg``. Anything else raises ValueError naming the operator:
    extend :data:`OPS` and this importer to handle it.
    """
    import torch

    signature = exported_program.graph_signature
    state = dict(exported_program.state_dict)
    state.update(getattr(exported_program, "constants", {}) or {})
    lifted = {**signature.inputs_to_parameters, **signature.inputs_to_buffers,
              **getattr(signature, "inputs_to_lifted_tensor_constants", {})}
    user_inputs = list(signature.user_inputs)
    imp = _Importer()
    inputs: list[str] = []
    outputs: list[str] = []
    simple = {"relu": "relu", "tanh": "tanh", "exp": "exp", "sqrt": "sqrt",
              "neg": "neg", "add": "add", "sub": "sub", "mul": "mul",
              "div": "div", "matmul": "matmul"}

    for fx in exported_program.graph.nodes:
        if fx.op == "placeholder":
            if fx.name in lifted:
                value = state[lifted[fx.name]]
                imp.constant(fx.name, value.detach().cpu().numpy())
            elif fx.name in user_inputs:
                inputs.append(fx.name)
            continue
        if fx.op == "output":
            results = fx.args[0]
            results = results if isinstance(results, (list, tuple)) else [results]
            outputs = [r.name for r in results]
            continue
        if fx.op != "call_function":
            raise ValueError(f"unsupported FX node {fx.op!r} ({fx.name})")
        op, args = _aten_name(fx.target), list(fx.args)
        names = [a.name if isinstance(a, torch.fx.Node) else a for a in args]
        if op == "conv2d":
            x, w = names[:2]
            bias = names[2] if len(names) > 2 else None
            stride = _pair(args[3] if len(args) > 3 else 1, "stride")
            padding = _pair(args[4] if len(args) > 4 else 0, "padding")
            dilation = _pair(args[5] if len(args) > 5 else 1, "dilation")
            groups = args[6] if len(args) > 6 else 1
            if bias is not None or dilation != 1 or groups != 1:
                raise ValueError(f"{fx.name}: conv2d with a bias, dilation or "
                                 "groups is not supported")
            imp.emit(fx.name, "conv2d", [x, w], stride=stride, padding=padding)
        elif op == "batch_norm":
            x, gamma, beta, mean, var, training = names[:6]
            if training:
                raise ValueError(f"{fx.name}: batch norm in training mode")
            imp.batch_norm(fx.name, x, gamma, beta, mean, var, float(args[7]))
        elif op == "max_pool2d":
            kernel = _pair(args[1], "kernel")
            stride = _pair(args[2] if len(args) > 2 and args[2] else args[1],
                           "stride")
            if any(_pair(a, "padding/dilation") != d
                   for a, d in zip(args[3:5], (0, 1))):
                raise ValueError(f"{fx.name}: max_pool2d with padding or dilation")
            imp.emit(fx.name, "max_pool2d", [names[0]], kernel=kernel,
                     stride=stride)
        elif op == "flatten":
            end = args[2] if len(args) > 2 else -1
            if end != -1:
                raise ValueError(f"{fx.name}: flatten up to axis {end}")
            imp.emit(fx.name, "flatten", [names[0]],
                     start_dim=int(args[1]) if len(args) > 1 else 0)
        elif op == "linear":
            imp.linear(fx.name, names[0], names[1],
                       names[2] if len(names) > 2 else None)
        elif op in simple and all(isinstance(a, torch.fx.Node) for a in args):
            imp.emit(fx.name, simple[op], names)
        else:
            raise ValueError(f"{fx.name}: ATen operator {op!r} is not supported "
                             "by graphs.from_torch_export")
    return validate(Graph(tuple(inputs), imp.constants, tuple(imp.nodes),
                          tuple(outputs)))
