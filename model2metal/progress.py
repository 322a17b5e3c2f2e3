"""A learner's progress report: run your labs and see which checks pass.

    python -m model2metal.progress [NOTEBOOK_OR_FOLDER ...] [--timeout S]

Each lab notebook (default: every ``lab*.ipynb`` under ``./labs``, else under the
current folder) runs top to bottom in a fresh Jupyter kernel, in its own folder, on a
copy (your file is never written), with errors allowed and at most ``--timeout`` seconds
per cell (300 by default: a cell that runs longer is interrupted and reported). Then,
per lab, every check of the lab is listed once, in the order its check module defines them::

    lab01_01  9/13 checks pass  labs/01_ml_foundations/lab01_01_backprop_numpy.ipynb (14 s)
      ✔ check_unbroadcast
      ✘ check_matmul_backward: failed on case '2x3 @ 3x4': grad_a: expected shape ...
      · check_relu: not implemented yet (lab01_01: implement relu_forward())
      · check_train_mlp: not run (no cell calls it: was its check cell deleted?)
      ! cell 14: the cell ran longer than 300 s and was stopped

Errors of cells that call no check (an answer cell that loops or does not parse; not
the stubs of unfinished exercises) are listed after the checks, five at most. A check passes when every cell that calls it printed its ``✔ check_… passed`` line.
The report survives notebooks that loop, raise, kill their kernel, lost cells or
renamed functions; a file that is not a course lab is named and skipped. Exit status:
0 when every check of every lab passed, 1 otherwise, 2 when no notebook was found.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

LAB_FILE = re.compile(r"^(lab\d{2}_\d{2})_\w+\.ipynb$")
LAB_IMPORT = re.compile(r"from\s+model2metal\.checks\s+import\s+(lab\d{2}_\d{2})\b")
STUB = re.compile(r"lab\d{2}_\d{2}: ")  # the message of a lab's NotImplementedError stub
CHECK_CALL = re.compile(r"\bchecks\.(check_\w+)\s*\(")
PASSED = "✔ {name} passed"


def check_calls(source: str) -> list[str]:
    """The checks a code cell calls as graded checks (``checks.check_x(...)``), in order.

    A call inside a ``try`` block is a demonstration (a lab showing what a check says
    about a wrong version) and is left out. Cells that do not parse as Python (IPython
    magics are read as ``pass``; a learner's syntax error) fall back to every call
    the text contains.
    """
    lines, found = source.split("\n"), []
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith(("%", "!")):  # a magic: its calls, by text
            found += [(number, 0, name) for name in CHECK_CALL.findall(line)]
            lines[number - 1] = line[: len(line) - len(line.lstrip())] + "pass"
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return CHECK_CALL.findall(source)
    shown = {id(node) for block in ast.walk(tree) if isinstance(block, ast.Try)
             for statement in block.body for node in ast.walk(statement)}
    found += [
        (node.lineno, node.col_offset, node.func.attr) for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name) and node.func.value.id == "checks"
        and node.func.attr.startswith("check_") and id(node) not in shown
    ]
    return [name for _, _, name in sorted(found)]
MAX_CELL_ERRORS = 5  # errors of cells without checks that the report lists
MARKS = {"pass": "✔", "fail": "✘"}  # the rest: "·"


@dataclass
class Result:
    check: str
    status: str  # "pass", "fail", "not implemented", "not run"
    detail: str = ""

    def line(self) -> str:
        mark = MARKS.get(self.status, "·")
        if self.status == "pass":
            return f"  {mark} {self.check}"
        return f"  {mark} {self.check}: {self.detail}"


@dataclass
class LabReport:
    path: Path
    lab_id: str | None
    seconds: float = 0.0
    results: list[Result] = field(default_factory=list)
    problem: str = ""  # why the lab could not be graded at all
    cell_errors: list[str] = field(default_factory=list)  # errors outside check cells

    @property
    def passed(self) -> int:
        return sum(r.status == "pass" for r in self.results)

    def text(self) -> str:
        if self.problem:
            return f"{self.lab_id or '?':9} {self.path}: {self.problem}"
        head = (f"{self.lab_id:9} {self.passed}/{len(self.results)} checks pass  "
                f"{self.path} ({self.seconds:.0f} s)")
        lines = [head] + [r.line() for r in self.results]
        shown = self.cell_errors[:MAX_CELL_ERRORS]
        lines += [f"  ! {error}" for error in shown]
        if len(self.cell_errors) > len(shown):
            lines.append(f"  ! ... and {len(self.cell_errors) - len(shown)} more cells")
        return "\n".join(lines)


def _first_lines(text: str, width: int = 110) -> str:
    """The message's first line, and its second when the first only names the case."""
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    message = lines[0]
    if message.endswith(":") and len(lines) > 1:
        message = f"{message} {lines[1]}"
    return message if len(message) <= width else message[: width - 3] + "..."


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _lab_id(path: Path, nb) -> str | None:
    """The lab id from the file name, else from the cell that imports its checks."""
    match = LAB_FILE.match(path.name)
    if match:
        return match[1]
    for cell in nb.cells:
        found = LAB_IMPORT.search(cell.source) if cell.cell_type == "code" else None
        if found:
            return found[1]
    return None


def lab_checks(lab_id: str) -> list[str]:
    """The check functions of a lab, in the order they are defined in its module."""
    module = import_module(f"model2metal.checks.{lab_id}")
    functions = [
        value for name, value in vars(module).items()
        if name.startswith("check_") and inspect.isfunction(value)
        and value.__module__ == module.__name__
    ]
    return [f.__name__ for f in sorted(functions, key=lambda f: f.__code__.co_firstlineno)]


def _cell_outcomes(cell) -> list[tuple[str, str, str]]:
    """(check, status, detail) of every check call in one executed code cell."""
    calls = check_calls(cell.source)
    if not calls:
        return []
    printed = "".join(
        out.get("text", "") for out in cell.get("outputs", []) if out.output_type == "stream"
    )
    errors = [out for out in cell.get("outputs", []) if out.output_type == "error"]
    executed = cell.get("execution_count") is not None or cell.get("outputs")
    outcomes, seen, failed = [], {}, False
    for name in calls:
        seen[name] = seen.get(name, 0) + 1
        if failed:
            outcomes.append((name, "not run", "not run (an earlier check in its cell failed)"))
        elif printed.count(PASSED.format(name=name)) >= seen[name]:
            outcomes.append((name, "pass", ""))
        elif errors:
            failed = True
            error = errors[0]
            ename, evalue = error.get("ename", "Error"), error.get("evalue", "")
            if ename == "NotImplementedError":
                outcomes.append((name, "not implemented",
                                 f"not implemented yet ({_first_lines(evalue)})"))
            elif ename == "CellTimeoutError":
                outcomes.append((name, "fail", _first_lines(evalue)))
            else:
                message = evalue if ename == "CheckFailed" else f"{ename}: {evalue}"
                message = re.sub(rf"^{name} failed", "failed", message)
                outcomes.append((name, "fail", _first_lines(message)))
        elif not executed:
            failed = True
            outcomes.append((name, "not run", "not run (the kernel stopped before this cell)"))
        else:
            failed = True
            outcomes.append((name, "fail", "ran without printing its pass line"))
    return outcomes


def _merge(expected: list[str], cells) -> list[Result]:
    """One result per check of the lab, from the outcomes of every cell that calls it."""
    outcomes: dict[str, list[tuple[str, str]]] = {}
    for cell in cells:
        if cell.cell_type == "code":
            for name, status, detail in _cell_outcomes(cell):
                outcomes.setdefault(name, []).append((status, detail))
    results = []
    for name in expected:
        seen = outcomes.get(name)
        if not seen:
            results.append(Result(name, "not run",
                                  "not run (no cell calls it: was its check cell deleted?)"))
            continue
        for wanted in ("fail", "not implemented", "not run"):
            found = [detail for status, detail in seen if status == wanted]
            if found:
                results.append(Result(name, wanted, found[0]))
                break
        else:
            results.append(Result(name, "pass"))
    return results


def run_lab(path: Path, timeout: float = 300) -> LabReport:
    """Execute a copy of the notebook at ``path`` and grade its checks; never raises."""
    import nbformat
    from nbclient import NotebookClient

    from .device import select_cuda_backend

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - an unreadable file is reported
        reason = _first_lines(str(error), 70)
        return LabReport(path, None, problem=f"not a readable notebook ({reason})")
    lab_id = _lab_id(path, nb)
    if lab_id is None:
        return LabReport(path, None, problem="not a course lab (no labNN_MM checks); skipped")
    try:
        expected = lab_checks(lab_id)
    except ImportError:
        return LabReport(path, lab_id, problem=f"no checks called {lab_id} in this version")
    report = LabReport(path, lab_id)
    for cell in nb.cells:  # stored outputs must not count as this run's
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    select_cuda_backend()  # the kernel inherits the CUDA backend from os.environ
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"the cell ran longer than {timeout:g} s and was stopped",
                          "traceback": []},
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.perf_counter()
    try:  # the kernel's own stderr (start-up warnings) is not the learner's output
        client.execute(stderr=subprocess.DEVNULL)
    except Exception:  # noqa: BLE001 - a dead kernel: grade the cells that ran
        pass
    report.seconds = time.perf_counter() - start
    report.results = _merge(expected, nb.cells)
    report.cell_errors = _cell_errors(nb.cells, timeout)
    return report


def _cell_errors(cells, timeout: float) -> list[str]:
    """``cell N: error`` for each code cell without a check call that raised, except
    the stubs of unfinished exercises."""
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code" or check_calls(cell.source):
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                ename, evalue = out.get("ename", "Error"), out.get("evalue", "")
                if ename == "NotImplementedError" and STUB.match(evalue):
                    continue  # an unfinished exercise: its checks already say so
                text = evalue if ename == "CellTimeoutError" else f"{ename}: {evalue}"
                if ename == "KeyboardInterrupt":  # what the interrupt at the limit raises
                    text = f"stopped at the limit of {timeout:g} s per cell: does it loop?"
                found.append(f"cell {index}: {_first_lines(text, 90)}")
    return found


def find_notebooks(arguments: list[str]) -> list[Path]:
    """The lab notebooks named, or found under the folders named (default ./labs or .)."""
    if not arguments:
        arguments = ["labs"] if Path("labs").is_dir() else ["."]
    found: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*.ipynb")
                if ".ipynb_checkpoints" not in p.parts and p.name.startswith("lab")
            )
        elif path.exists():
            found.append(path)
        else:
            print(f"{argument}: no such file or folder", file=sys.stderr)
    return found


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m model2metal.progress", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="lab notebooks or folders (default: labs/)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds a cell may run before it is stopped (default 300)")
    args = parser.parse_args(argv)
    notebooks = find_notebooks(args.paths)
    if not notebooks:
        print("no lab notebooks found: name them, or run this in the course folder")
        return 2
    reports = []
    for path in notebooks:
        print(f"running {path} ...", flush=True)
        report = run_lab(path, args.timeout)
        reports.append(report)
        print(report.text(), flush=True)
    graded = [r for r in reports if not r.problem]
    total = sum(len(r.results) for r in graded)
    done = sum(r.passed for r in graded)
    print(f"\n{done}/{total} checks pass in {len(graded)} lab(s)")
    return 0 if graded and done == total else 1


if __name__ == "__main__":
    sys.exit(main())
