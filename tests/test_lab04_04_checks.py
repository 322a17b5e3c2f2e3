"""Lab 04_04's checks reject the typical mistakes of a graph interpreter and of
constant folding, CSE, dead-code elimination and element-wise fusion, and accept
other correct solutions (recursion instead of a loop, renamed constants and fused
nodes, pairwise CSE, iterative DCE, union-find fusion)."""

import dataclasses

import numpy as np
import pytest
from check_helpers import boom, raises_cleanly, rejects

from model2metal import graphs
from model2metal.checks import lab04_04 as checks

replace = dataclasses.replace


# --- 1. the interpreter, written as a learner would ----------------------------------


def run_node(node, values, first_body=False):
    if node.op == graphs.FUSED:
        inner = {name: values[name] for name in node.inputs}
        steps = graphs.body(node)
        for step in steps:
            inner[step.name] = graphs.apply(step, [inner[i] for i in step.inputs])
        return inner[steps[0 if first_body else -1].name]
    return graphs.apply(node, [values[i] for i in node.inputs])


def evaluate(graph, feeds, last_node=False, as_dict=False, first_body=False,
             fill_feeds=False, nodes_only=False):
    values = feeds if fill_feeds else {}
    if not nodes_only:
        values.update(graph.constants)
        values.update(feeds)
    else:
        values.update(feeds)
        values.update(graph.constants)
    results = {}
    for node in graph.nodes:
        values[node.name] = results[node.name] = run_node(node, values, first_body)
    if last_node:
        return [values[graph.nodes[-1].name] if graph.nodes else values[o]
                for o in graph.outputs]
    if nodes_only:
        return [results[o] for o in graph.outputs]
    if as_dict:
        return {o: values[o] for o in graph.outputs}
    return [values[o] for o in graph.outputs]


def evaluate_recursive(graph, feeds):
    """Values on demand from the outputs; fused bodies run in the outer scope."""
    defs = {n.name: n for n in graph.nodes}
    memo = {**graph.constants, **feeds}

    def value(name):
        if name not in memo:
            node = defs[name]
            if node.op == graphs.FUSED:
                local = dict(memo)
                for step in graphs.body(node):
                    local[step.name] = graphs.apply(
                        step, [local[i] if i in local else value(i)
                               for i in step.inputs])
                memo[name] = local[graphs.body(node)[-1].name]
            else:
                memo[name] = graphs.apply(node, [value(i) for i in node.inputs])
        return memo[name]

    return tuple(value(o) for o in graph.outputs)


def evaluate_ignoring_fused(graph, feeds):
    values = {**graph.constants, **feeds}
    for node in graph.nodes:
        values[node.name] = graphs.apply(node, [values[i] for i in node.inputs])
    return [values[o] for o in graph.outputs]


def test_evaluate_accepts_loop_and_recursion():
    checks.check_evaluate(evaluate)
    checks.check_evaluate(evaluate_recursive)


def test_evaluate_rejects_value_of_the_last_node_for_every_output():
    rejects(checks.check_evaluate, lambda g, f: evaluate(g, f, last_node=True),
            expect=r"an output in the middle.*Hint: that is the value of the last "
                   r"node, but output 0 is 'm'")


def test_evaluate_rejects_first_body_value_and_ignored_fused_nodes():
    rejects(checks.check_evaluate, lambda g, f: evaluate(g, f, first_body=True),
            expect=r"a fused node.*Hint: that is the value of the first node of "
                   r"the fused body")
    raises_cleanly(checks.check_evaluate, evaluate_ignoring_fused,
                   expect=r"a fused node: its body.*is fused.*Hint: .*run its "
                          r"body nodes one by one")


def test_evaluate_rejects_dict_result_filled_feeds_and_node_only_lookup():
    rejects(checks.check_evaluate, lambda g, f: evaluate(g, f, as_dict=True),
            expect=r"expected a list or a tuple, got dict")
    rejects(checks.check_evaluate, lambda g, f: evaluate(g, f, fill_feeds=True),
            expect=r"changed the feeds dict.*Hint: the caller's dict")
    raises_cleanly(checks.check_evaluate, lambda g, f: evaluate(g, f, nodes_only=True),
                   expect=r"no nodes: outputs are the graph input.*KeyError")


def test_evaluate_rejects_learner_error_cleanly():
    raises_cleanly(checks.check_evaluate, boom, expect=r"one node: relu")


# --- 2. constant folding ----------------------------------------------------------------


def fold(graph, any_constant=False, rename=False, repoint=True, single_pass=False,
         in_place=False, float64=False):
    constants = graph.constants if in_place else dict(graph.constants)
    originally = set(graph.constants)
    new_name, kept = {}, []
    for node in graph.nodes:
        inputs = tuple(new_name.get(i, i) if repoint else i for i in node.inputs)
        known = originally if single_pass else constants
        test = any if any_constant else all
        if test(i in known for i in inputs):
            args = [constants.get(i, np.zeros((), np.float32)) for i in inputs]
            if float64:
                args = [a.astype(np.float64) for a in args]
                value = graphs.OPS[node.op].fn(*args, **dict(node.attrs))
                value = np.asarray(value)
            else:
                value = graphs.apply(node, args)
            name = f"folded_{node.name}" if rename else node.name
            constants[name] = value
            new_name[node.name] = name
        else:
            kept.append(replace(node, inputs=inputs))
    outputs = tuple(new_name.get(o, o) if repoint else o for o in graph.outputs)
    return graphs.Graph(graph.inputs, constants, kept, outputs)


def test_fold_accepts_reference_and_renamed_constants():
    checks.check_fold_constants(fold)
    checks.check_fold_constants(lambda g: fold(g, rename=True))


def test_fold_rejects_folding_a_node_with_a_graph_input_operand():
    rejects(checks.check_fold_constants, lambda g: fold(g, any_constant=True),
            expect=r"node 'c' = sub\(x, mean\) became a constant, but it reads "
                   r"'x', a graph input.*Hint: only a node whose every operand")


def test_fold_rejects_renamed_constants_that_nobody_reads():
    rejects(checks.check_fold_constants,
            lambda g: fold(g, rename=True, repoint=False),
            expect=r"not valid: node 've' reads 'v', which is not defined.*Hint: "
                   r"'v' was folded into a constant")


def test_fold_rejects_one_pass_over_the_original_constants():
    rejects(checks.check_fold_constants, lambda g: fold(g, single_pass=True),
            expect=r"node 've' = add\(v, eps\) reads only constants and was not "
                   r"folded.*Hint: it reads 'v', folded themselves")


def test_fold_rejects_writing_into_the_input_graph_and_float64_constants():
    rejects(checks.check_fold_constants, lambda g: fold(g, in_place=True),
            expect=r"changed the graph it was given: its constants gained 'v'")
    rejects(checks.check_fold_constants, lambda g: fold(g, float64=True),
            expect=r"not a float32 NumPy array \(dtype float64\).*Hint: a folded "
                   r"value is a constant")


def test_fold_rejects_learner_error_and_a_non_graph_cleanly():
    raises_cleanly(checks.check_fold_constants, boom, expect=r"no nodes")
    rejects(checks.check_fold_constants, lambda g: g.nodes,
            expect=r"expected a graphs.Graph, got tuple")


# --- 3. common-subexpression elimination -------------------------------------------------


def cse(graph, key="full", transitive=True, outputs=True):
    first, renamed, kept = {}, {}, []
    for node in graph.nodes:
        inputs = tuple(renamed.get(i, i) for i in node.inputs)
        seen_inputs = inputs if transitive else node.inputs
        k = {"full": (node.op, seen_inputs, node.attrs),
             "no_attrs": (node.op, seen_inputs),
             "op_only": node.op}[key]
        if k in first:
            renamed[node.name] = first[k]
        else:
            first[k] = node.name
            kept.append(replace(node, inputs=inputs))
    outs = tuple(renamed.get(o, o) for o in graph.outputs) if outputs \
        else graph.outputs
    return replace(graph, nodes=tuple(kept), outputs=outs)


def cse_pairwise(graph):
    """Compares each node with every kept one; add and mul in either order."""
    kept, renamed = [], {}
    for node in graph.nodes:
        node = replace(node, inputs=tuple(renamed.get(i, i) for i in node.inputs))
        twin = next((k for k in kept if k.op == node.op and k.attrs == node.attrs
                     and (k.inputs == node.inputs
                          or (node.op in ("add", "mul")
                              and sorted(k.inputs) == sorted(node.inputs)))),
                    None)
        if twin is None:
            kept.append(node)
        else:
            renamed[node.name] = twin.name
    return graphs.Graph(graph.inputs, graph.constants, kept,
                        [renamed.get(o, o) for o in graph.outputs])


def test_cse_accepts_hashing_and_pairwise_comparison():
    checks.check_eliminate_common_subexpressions(cse)
    checks.check_eliminate_common_subexpressions(cse_pairwise)


def test_cse_rejects_merging_nodes_with_other_attributes():
    rejects(checks.check_eliminate_common_subexpressions,
            lambda g: cse(g, key="no_attrs"),
            expect=r"sum over axis 0 and 1.*'s1' = sum\(x; axis=1, keepdims=True\) "
                   r"was merged into 's0'.*attributes differ.*Hint: attributes")


def test_cse_rejects_comparing_op_names_only():
    rejects(checks.check_eliminate_common_subexpressions,
            lambda g: cse(g, key="op_only"),
            expect=r"same op, other inputs.*node 'ty' = tanh\(y\) was merged "
                   r"into 'tx'.*their inputs differ.*Hint: the same op on other")


def test_cse_rejects_keys_without_the_earlier_replacements():
    rejects(checks.check_eliminate_common_subexpressions,
            lambda g: cse(g, transitive=False),
            expect=r"duplicates of duplicates.*nodes 'r1' and 'r2' are both "
                   r"relu\(a1\).*Hint: in the input graph they read different")


def test_cse_rejects_outputs_left_on_a_removed_node():
    rejects(checks.check_eliminate_common_subexpressions,
            lambda g: cse(g, outputs=False),
            expect=r"a duplicate that is a graph output.*output 't2' is not "
                   r"defined.*Hint: .*outputs go through the replacements")


def test_cse_rejects_learner_error_cleanly():
    raises_cleanly(checks.check_eliminate_common_subexpressions, boom,
                   expect=r"no nodes")


# --- 4. dead-code elimination --------------------------------------------------------------


def dce(graph):
    live, kept = set(graph.outputs), []
    for node in reversed(graph.nodes):
        if node.name in live:
            kept.insert(0, node)
            live.update(node.inputs)
    return replace(graph, nodes=tuple(kept),
                   constants={k: v for k, v in graph.constants.items() if k in live})


def dce_iterative(graph):
    """Drop nodes that nothing reads and that are not outputs, until none is left."""
    nodes = list(graph.nodes)
    while True:
        read = {i for n in nodes for i in n.inputs} | set(graph.outputs)
        alive = [n for n in nodes if n.name in read]
        if len(alive) == len(nodes):
            break
        nodes = alive
    read = {i for n in nodes for i in n.inputs} | set(graph.outputs)
    return graphs.Graph(graph.inputs, {k: v for k, v in graph.constants.items()
                                       if k in read}, nodes, graph.outputs)


def dce_no_readers_is_dead(graph, mind_outputs=False, second_branch=True):
    """Marks nodes dead backwards: no readers (forgets outputs unless told), or
    every reader dead (forgets outputs there when ``second_branch``)."""
    readers = graphs.consumers(graph)
    dead = set()
    for node in reversed(graph.nodes):
        users = readers[node.name]
        protected = mind_outputs and node.name in graph.outputs
        if not users and not protected:
            dead.add(node.name)
        elif users and all(u in dead for u in users) and (
                second_branch or node.name not in graph.outputs):
            dead.add(node.name)
    nodes = [n for n in graph.nodes if n.name not in dead]
    read = {i for n in nodes for i in n.inputs} | set(graph.outputs)
    return replace(graph, nodes=tuple(nodes),
                   constants={k: v for k, v in graph.constants.items() if k in read})


def dce_one_sweep(graph):
    read = {i for n in graph.nodes for i in n.inputs} | set(graph.outputs)
    nodes = [n for n in graph.nodes if n.name in read]
    read = {i for n in nodes for i in n.inputs} | set(graph.outputs)
    return replace(graph, nodes=tuple(nodes),
                   constants={k: v for k, v in graph.constants.items() if k in read})


def dce_constants_from_nodes_only(graph):
    new = dce(graph)
    read = {i for n in new.nodes for i in n.inputs}
    return replace(new, constants={k: v for k, v in new.constants.items()
                                   if k in read})


def test_dce_accepts_reverse_sweep_and_iteration():
    checks.check_eliminate_dead_code(dce)
    checks.check_eliminate_dead_code(dce_iterative)


def test_dce_rejects_deleting_outputs_that_nothing_reads():
    rejects(checks.check_eliminate_dead_code, dce_no_readers_is_dead,
            expect=r"node 'o' was removed, but it is a graph output.*Hint: a graph "
                   r"output is live")


def test_dce_rejects_deleting_an_output_read_only_by_a_dead_node():
    rejects(checks.check_eliminate_dead_code,
            lambda g: dce_no_readers_is_dead(g, mind_outputs=True),
            expect=r"a graph output that only a dead node reads.*node 'o' was "
                   r"removed, but it is a graph output.*here only the dead 'd'")


def test_dce_rejects_deleting_a_constant_output():
    rejects(checks.check_eliminate_dead_code, dce_constants_from_nodes_only,
            expect=r"constant 'c' was removed, but it is a graph output")


def test_dce_rejects_doing_nothing_and_one_sweep():
    rejects(checks.check_eliminate_dead_code, lambda g: g,
            expect=r"no nodes.*constant\(s\) 'w' are still")
    rejects(checks.check_eliminate_dead_code,
            lambda g: replace(g, constants=dce(g).constants),
            expect=r"dead node\(s\) 'd1', 'd2', 'd3' are still.*Hint: nothing was "
                   r"removed")
    rejects(checks.check_eliminate_dead_code, dce_one_sweep,
            expect=r"dead node\(s\) 'd1', 'd2' are still.*removed: 'd3'.*Hint: "
                   r"its readers were dead.*one sweep")


def test_dce_rejects_kept_dead_constants_and_removed_inputs():
    rejects(checks.check_eliminate_dead_code,
            lambda g: replace(dce(g), constants=g.constants),
            expect=r"no nodes.*constant\(s\) 'w' are still in the graph")
    rejects(checks.check_eliminate_dead_code,
            lambda g: replace(dce(g), inputs=tuple(
                i for i in g.inputs
                if i in g.outputs or any(i in n.inputs for n in dce(g).nodes))),
            expect=r"graph inputs changed from \('x', 'unused'\) to \('x',\)")


def test_dce_rejects_deleting_from_the_input_graph_and_learner_error():
    def in_place(graph):
        new = dce(graph)
        for k in [k for k in graph.constants if k not in new.constants]:
            del graph.constants[k]
        return new

    rejects(checks.check_eliminate_dead_code, in_place,
            expect=r"changed the graph it was given: its constants lost 'w'")
    raises_cleanly(checks.check_eliminate_dead_code, boom, expect=r"no nodes")


# --- 5. fusion ------------------------------------------------------------------------------


def fuse(graph, count_readers=True, elementwise_only=True, mind_outputs=True,
         all_inputs=True, readers_with_repeats=False, duplicate=False,
         rename=None):
    readers = graphs.consumers(graph)
    if readers_with_repeats:
        readers = {k: tuple(r for n in graph.nodes for r in [n.name] * n.inputs.count(k))
                   for k in readers}
    ops = {n.name: n.op for n in graph.nodes}
    fusable = graphs.is_elementwise if elementwise_only else (lambda op: True)

    def joins(node):
        users = readers[node.name]
        first_input = all_inputs or (
            users and next(n for n in graph.nodes
                           if n.name == users[0]).inputs[0] == node.name)
        return (fusable(node.op) and users and first_input
                and (len(users) == 1 or not count_readers)
                and (node.name not in graph.outputs or not mind_outputs)
                and fusable(ops[users[0]]))

    open_groups, nodes = {}, []
    for node in graph.nodes:
        group = []
        if fusable(node.op):
            for name in dict.fromkeys(node.inputs):
                if duplicate and name in open_groups:
                    group += open_groups[name]
                else:
                    group += open_groups.pop(name, [])
        group.append(node)
        if joins(node):
            open_groups[node.name] = group
            if duplicate and len(readers[node.name]) > 1:
                nodes.append(node)
        elif len(group) > 1:
            nodes.append(graphs.fused(group))
        else:
            nodes.append(node)
    new = replace(graph, nodes=tuple(nodes))
    if rename is not None:
        new = rename(new)
    return new


def renamed_groups(graph, repoint=True):
    names = {n.name: f"fused_{k}" for k, n in enumerate(graph.nodes)
             if n.op == graphs.FUSED}
    point = (lambda i: names.get(i, i)) if repoint else (lambda i: i)
    nodes = []
    for n in graph.nodes:
        if n.op == graphs.FUSED:
            body = [replace(b, inputs=tuple(point(i) for i in b.inputs))
                    for b in graphs.body(n)]
            nodes.append(graphs.fused(body, name=names[n.name]))
        else:
            nodes.append(replace(n, inputs=tuple(point(i) for i in n.inputs)))
    return replace(graph, nodes=tuple(nodes),
                   outputs=tuple(point(o) for o in graph.outputs))


def fuse_union_find(graph):
    """Pairs that may merge are joined first; each group is emitted at its last
    node, its body in graph order."""
    readers = graphs.consumers(graph)
    ops = {n.name: n.op for n in graph.nodes}
    parent = {n.name: n.name for n in graph.nodes}

    def root(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for n in graph.nodes:
        users = readers[n.name]
        if (graphs.is_elementwise(n.op) and len(users) == 1
                and n.name not in graph.outputs
                and graphs.is_elementwise(ops[users[0]])):
            parent[root(n.name)] = root(users[0])
    members = {}
    for n in graph.nodes:
        members.setdefault(root(n.name), []).append(n)
    nodes = []
    for n in graph.nodes:
        group = members[root(n.name)]
        if group[-1] is n:
            nodes.append(graphs.fused(group) if len(group) > 1 else n)
    return renamed_groups(replace(graph, nodes=tuple(nodes)))


def test_fusion_accepts_reference_renamed_groups_and_union_find():
    checks.check_fuse_elementwise(fuse)
    checks.check_fuse_elementwise(lambda g: fuse(g, rename=renamed_groups))
    checks.check_fuse_elementwise(fuse_union_find)


def test_fusion_rejects_fusing_across_a_node_with_two_readers():
    rejects(checks.check_fuse_elementwise, lambda g: fuse(g, count_readers=False),
            expect=r"a branch point.*node 'm' reads 'e', which is not defined.*"
                   r"Hint: 'e' has 2 readers \('r', 'm'\)")
    rejects(checks.check_fuse_elementwise,
            lambda g: fuse(g, count_readers=False, duplicate=True),
            expect=r"a branch point.*node 'e' appears twice.*Hint: 'e' has 2 "
                   r"readers")


def test_fusion_rejects_a_non_elementwise_op_in_a_group():
    rejects(checks.check_fuse_elementwise,
            lambda g: fuse(g, elementwise_only=False),
            expect=r"holds 'm' = matmul\(x, w\), which is not element-wise")


def test_fusion_rejects_a_graph_output_in_the_middle_of_a_group():
    rejects(checks.check_fuse_elementwise, lambda g: fuse(g, mind_outputs=False),
            expect=r"output in the middle of a chain.*output 'b' is not defined"
                   r".*Hint: 'b' is a graph output, fused into the middle")


def test_fusion_rejects_groups_that_miss_fusable_nodes():
    rejects(checks.check_fuse_elementwise, lambda g: g,
            expect=r"'a' = add\(m, b\) is read only by 't'.*not in one fused node")
    rejects(checks.check_fuse_elementwise, lambda g: fuse(g, all_inputs=False),
            expect=r"is read only by 'o'.*Hint: a group grows along every "
                   r"input")
    rejects(checks.check_fuse_elementwise,
            lambda g: fuse(g, readers_with_repeats=True),
            expect=r"'t' = tanh\(y\) is read only by 'sq'.*Hint: 'sq' reads 't' "
                   r"twice")


def test_fusion_rejects_renamed_groups_that_nobody_reads():
    rejects(checks.check_fuse_elementwise,
            lambda g: fuse(g, rename=lambda n: renamed_groups(n, repoint=False)),
            expect=r"output 'r' is not defined.*Hint: 'r' is the last node of the "
                   r"fused node 'fused_1'")


def test_fusion_rejects_learner_error_cleanly():
    raises_cleanly(checks.check_fuse_elementwise, boom, expect=r"no nodes")


# --- the IR itself -------------------------------------------------------------------------


def test_attributes_compare_by_value_and_graph_validation():
    a = graphs.Node("a", "sum", ["x"], {"keepdims": True, "axis": [0]})
    b = graphs.Node("b", "sum", ("x",), (("axis", (0,)), ("keepdims", True)))
    assert a.attrs == b.attrs and a.attr("axis") == (0,)
    g = graphs.Graph(["x"], {}, [graphs.Node("r", "relu", ["y"])], ["r", "z"])
    found = graphs.problems(g)
    assert any("reads 'y'" in p for p in found)
    assert any("output 'z'" in p for p in found)
    with pytest.raises(ValueError, match="reads 'y'"):
        graphs.validate(g)


def test_course_model_imports_and_matches_pytorch():
    import torch

    from model2metal.data import load_digits_split
    from model2metal.models import load_course_model, preprocess

    model = load_course_model()
    x = preprocess(load_digits_split()[1][:16])
    graph = graphs.from_torch_export(torch.export.export(model, (x[:1],)))
    assert graphs.counts(graph)["nodes"] == 42
    got = evaluate(graph, {graph.inputs[0]: x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(got - expected).max() < 1e-4
