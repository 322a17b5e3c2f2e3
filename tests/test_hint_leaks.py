"""No hint or message of any check hands over a solution line.

A hint points at the idea and the place, never the code (CONTRIBUTING.md). This test
collects every string a check module can print (string literals and the literal parts
of f-strings) and every non-trivial line between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` of every solution notebook, with the right-hand side of each
assignment and ``return`` as well, and fails when a string contains one of them.
Whitespace is ignored in the comparison. A line is non-trivial when it has at least
``MIN_CHARS`` characters without whitespace and computes something (a call, an index,
an operator): a bare tuple of names such as ``return grad_a, grad_b`` is the
interface the exercise states, not its solution.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHECKS = sorted((ROOT / "model2metal" / "checks").glob("*.py"))
SOLUTIONS = sorted((ROOT / "solutions").rglob("*.ipynb"))
MIN_CHARS = 12
#: Fragments that are vocabulary rather than a solution (an API name the exercise text
#: itself tells the learner to use).
ALLOWED = {
    "model.eval()",
    "model.train()",
    "optimizer.zero_grad()",
    "optimizer.step()",
    "loss.backward()",
    "torch.no_grad()",
    "scheduler.step()",
    "cuda.grid(1)",
    "cuda.syncthreads()",
    "withtorch.no_grad():",
}


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_fragments(path: Path) -> set[str]:
    """Non-trivial lines of the solution regions of a notebook, and their RHS."""
    nb = nbformat.read(path, as_version=4)
    found: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("### BEGIN SOLUTION"):
                inside = True
                continue
            if stripped.startswith("### END SOLUTION"):
                inside = False
                continue
            if not inside or not stripped or stripped.startswith("#"):
                continue
            code = stripped.split("  #")[0]
            candidates = {code}
            match = re.match(r"^(?:return|yield)\s+(.*)$", code) or re.match(
                r"^[\w\[\], .]+?\s*(?:[-+*/@]?=)\s*(.*)$", code
            )
            if match:
                candidates.add(match.group(1))
            for candidate in candidates:
                s = squeeze(candidate)
                bare = re.sub(r"^(return|yield)", "", s)
                if (
                    len(s) >= MIN_CHARS
                    and re.search(r"[(\[+\-*/@<>=%]", bare)
                    and s not in ALLOWED
                ):
                    found.add(s)
    return found


def check_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal of a module, f-string parts joined."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    strings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value if isinstance(v, ast.Constant) else "{}" for v in node.values
            )
            strings.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append((node.lineno, node.value))
    return strings


def _leaks() -> list[str]:
    fragments = {
        fragment: path.relative_to(ROOT)
        for path in SOLUTIONS
        for fragment in solution_fragments(path)
    }
    leaks = []
    for module in CHECKS:
        for lineno, text in check_strings(module):
            if '"""' in text or text.count("\n") > 3:  # docstrings: not printed
                continue
            squeezed = squeeze(text)
            for fragment, source in fragments.items():
                if fragment in squeezed:
                    leaks.append(
                        f"{module.relative_to(ROOT)}:{lineno} contains "
                        f"{fragment!r} from {source}"
                    )
    return leaks


def test_solutions_have_fragments_to_compare():
    assert SOLUTIONS and all(solution_fragments(path) for path in SOLUTIONS)


def test_fragment_extraction_finds_the_expression_of_a_return(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(
        "def f(x):\n    ### BEGIN SOLUTION\n    y = np.maximum(x, 0)\n"
        "    return y * 2 + x\n    ### END SOLUTION\n"
    )])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    found = solution_fragments(path)
    assert "np.maximum(x,0)" in found and "y=np.maximum(x,0)" in found
    assert "returny*2+x" not in found  # 11 characters once squeezed: trivial
    assert all(len(f) >= MIN_CHARS for f in found)
    nb.cells[0].source = (
        "def g(a, b):\n    ### BEGIN SOLUTION\n    grad_a, grad_b = b, a\n"
        "    return grad_a, grad_b\n    ### END SOLUTION\n"
    )
    nbformat.write(nb, path)
    assert "returngrad_a,grad_b" not in solution_fragments(path)


def test_no_check_message_contains_solution_code():
    leaks = _leaks()
    assert not leaks, "hints that hand over solution code:\n" + "\n".join(leaks)
