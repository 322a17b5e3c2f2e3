"""Write an nbgrader course from the solution notebooks (``make nbgrader``).

    python tools/make_nbgrader.py [--out DIR] [--root DIR] [LAB_ID ...]

DIR (default ``_build/nbgrader``) becomes an nbgrader course directory::

    nbgrader_config.py                      ready to use (see below)
    source/lab01_01/lab01_01_backprop_numpy.ipynb
    source/...                              one assignment per lab, named by its id

Each source notebook is its solution with nbgrader's cell metadata (schema 3), outputs
removed, and cells tagged ``remove-in-lab`` dropped:

* an exercise cell (it has ``### BEGIN SOLUTION`` regions) is an *autograded answer*,
  ``grade_id`` ``answer_<the functions or classes it defines>``; it carries the lab's
  version of itself (``metadata.model2metal.lab_source``), which the release shows;
* a check cell (it calls ``checks.check_...``) is a locked *autograder test* worth one
  point per check it calls, ``grade_id`` ``<the checks it calls>``; its first line
  re-imports the checks from their files (``model2metal.checks.fresh``), so that an
  answer cell which replaced a check cannot pass it;
* the Markdown answers (tagged ``solution``) are a *manually graded answer* worth one
  point per numbered question.

Grade ids come from names in the code, not from cell positions, so they stay the same
when cells are added elsewhere; a repeated name gets ``_2``, ``_3``. Nothing here is
written into ``solutions/``: the cleaner keeps only tags there.

``nbgrader_config.py`` makes the release's exercise cells the labs' own (``CourseStubs``,
nbgrader's ``ClearSolutions`` with the stub of ``tools/make_labs.py``: ``raise
NotImplementedError("lab01_01: implement unbroadcast()")``), sets the course's stub texts
for any other region and for the Markdown answers, the per-cell
timeout (four times the slowest solution cell of the last ``make test`` run, at least
120 s; 600 s when no run is recorded) and selects the CUDA backend before kernels start,
as ``tools/run_solutions.py`` does. Exits 1 on malformed markers or file names.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from clean_notebooks import add_root_option, clean_notebook, notebook_text, solution_paths
from make_labs import BEGIN, DEFINITION, MarkerError, _stub_source, lab_id_from_path
from model2metal.progress import check_calls
from run_tests import TIMES_FILE  # the cell times of the last nbval phase

SCHEMA_VERSION = 3
NUMBERED = re.compile(r"^\d+\.\s", re.MULTILINE)
CODE_STUB = 'raise NotImplementedError("write your code here")'
TEXT_STUB = "*Your answer here.*"
FRESH_LINES = (
    "import importlib, model2metal.checks  # grading: the checks as their files define them\n"
    'checks = importlib.reload(model2metal.checks).fresh("{lab}")\n'
)


def _metadata(**fields) -> NotebookNode:
    return NotebookNode(nbgrader=NotebookNode(schema_version=SCHEMA_VERSION, **fields))


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, ... when it is already taken."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    taken.add(candidate)
    return candidate


def _answer_name(source: str) -> str:
    """``answer_`` and the names an exercise cell defines, else its task text."""
    names = [
        match["name"]
        for line in source.split("\n")
        if not line.startswith((" ", "\t")) and (match := DEFINITION.match(line))
    ]
    if not names:
        tasks = [m["what"] for line in source.split("\n") if (m := BEGIN.match(line))]
        names = [re.sub(r"\W+", "_", tasks[0]).strip("_").lower() or "cell"]
    return "answer_" + "__".join(names)


def nbgrader_notebook(nb: NotebookNode, lab_id: str) -> tuple[NotebookNode, dict]:
    """The nbgrader source notebook of solution ``nb`` and its points per kind.

    ``nb`` is left unchanged. Raises MarkerError for malformed solution markers (the
    regions are validated as ``make_labs`` does).
    """
    source = clean_notebook(nb)
    taken: set[str] = set()
    points = {"checks": 0, "manual": 0, "answers": 0}
    cells = []
    for index, cell in enumerate(source.cells):
        tags = [t for t in cell.metadata.get("tags", []) if t != "solution"]
        if "remove-in-lab" in cell.metadata.get("tags", []):
            continue
        is_answer = "solution" in cell.metadata.get("tags", [])
        cell.metadata = NotebookNode(tags=tags) if tags else NotebookNode()
        if cell.cell_type == "markdown" and is_answer:
            worth = max(1, len(NUMBERED.findall(cell.source)))
            cell.metadata.update(_metadata(
                solution=True, grade=True, locked=False, task=False, points=worth,
                grade_id=_unique("reflection", taken)))
            points["manual"] += worth
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            lab_source = _stub_source(cell.source, lab_id, index)  # MarkerError if bad
            called = check_calls(cell.source)  # a demonstration inside `try` is not graded
            if "### BEGIN SOLUTION" in cell.source:
                cell.metadata.update(_metadata(
                    solution=True, grade=False, locked=False, task=False,
                    grade_id=_unique(_answer_name(cell.source), taken)))
                cell.metadata["model2metal"] = {"lab_source": lab_source}
                points["answers"] += 1
            elif called:
                cell.source = FRESH_LINES.format(lab=lab_id) + cell.source
                cell.metadata.update(_metadata(
                    solution=False, grade=True, locked=True, task=False,
                    points=len(called), grade_id=_unique("__".join(called), taken)))
                points["checks"] += len(called)
        cells.append(cell)
    source.cells = cells
    return source, points


def cell_timeout(root: Path) -> tuple[int, str]:
    """The per-cell timeout for the config, and where it comes from."""
    path = root / TIMES_FILE
    try:
        times = json.loads(path.read_text(encoding="utf-8"))
        slowest = max(lab["slowest_cell_s"] for lab in times["notebooks"].values())
    except (OSError, ValueError, KeyError, TypeError):
        return 600, "no test run recorded on this machine (run `make test`); 600 s"
    timeout = max(120, 30 * math.ceil(4 * slowest / 30))
    return timeout, f"4 x the slowest solution cell ({slowest:.1f} s, {times['date']})"


CONFIG = '''\
"""nbgrader configuration of the Model to Metal course (written by make nbgrader)."""
# The labs' CUDA cells need the simulator where no GPU is present; kernels inherit the
# environment of the nbgrader process, so the choice is made before any kernel starts.
from model2metal.device import select_cuda_backend

select_cuda_backend()

from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions


class CourseStubs(ClearSolutions):
    """ClearSolutions, except that an exercise cell becomes the lab's own version of it
    (make nbgrader stored it in metadata.model2metal.lab_source): each solution region
    a raise line that names the lab and what to implement, as in the course's labs/."""

    def _replace_solution_region(self, cell, language):
        ours = cell.metadata.pop("model2metal", {{}})
        replaced = super()._replace_solution_region(cell, language)
        if replaced and "lab_source" in ours:
            cell.source = ours["lab_source"]
        return replaced


c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = "model-to-metal"
c.GenerateAssignment.preprocessors = [
    CourseStubs if step is ClearSolutions else step
    for step in GenerateAssignment.class_traits()["preprocessors"].default()]
# Regions without a lab version get the course's stub; Markdown answers its placeholder.
c.ClearSolutions.code_stub = {{"python": {code_stub!r}}}
c.ClearSolutions.text_stub = {text_stub!r}
# Per-cell timeout: {why}.
c.Execute.timeout = {timeout}
'''


def write_course(root: Path, out: Path, lab_ids: list[str] | None = None) -> dict:
    """Write the course under ``out`` (source/ is replaced); returns points per lab."""
    paths = {lab_id_from_path(p): p for p in solution_paths(root)}
    unknown = sorted(set(lab_ids or []) - set(paths))
    if unknown:
        raise ValueError(f"no solution for {', '.join(unknown)}; labs: {', '.join(paths)}")
    shutil.rmtree(out / "source", ignore_errors=True)
    summary = {}
    for lab_id, path in paths.items():
        if lab_ids and lab_id not in lab_ids:
            continue
        try:
            notebook, points = nbgrader_notebook(nbformat.read(path, as_version=4), lab_id)
        except MarkerError as error:
            raise MarkerError(f"{path.relative_to(root)}: {error}") from None
        target = out / "source" / lab_id / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(notebook_text(notebook), encoding="utf-8", newline="\n")
        summary[lab_id] = points
    timeout, why = cell_timeout(root)
    (out / "nbgrader_config.py").write_text(
        CONFIG.format(code_stub=CODE_STUB, text_stub=TEXT_STUB, timeout=timeout, why=why),
        encoding="utf-8",
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", help="lab ids such as lab01_01 (default: all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="course directory to write (default: ROOT/_build/nbgrader)")
    add_root_option(parser)
    args = parser.parse_args(argv)
    out = args.out or args.root / "_build" / "nbgrader"
    try:
        summary = write_course(args.root, out, args.labs)
    except ValueError as error:  # MarkerError, a bad file name or an unknown lab
        print(f"error: {error}", file=sys.stderr)
        return 1
    for lab_id, points in summary.items():
        print(f"{lab_id}: {points['answers']} exercise cells, {points['checks']} "
              f"autograded points, {points['manual']} manually graded")
    print(f"wrote {out}/source/ and {out}/nbgrader_config.py")
    print(f"next: cd {out} && nbgrader generate_assignment <lab id>  (see README)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
