"""Generate the learners' labs from the solution notebooks.

Every ``solutions/**/labNN_MM_slug.ipynb`` becomes ``labs/**/labNN_MM_slug.ipynb`` (same
relative path):

* in code cells, each region from a ``### BEGIN SOLUTION`` line to its
  ``### END SOLUTION`` line becomes one line, at the BEGIN marker's indentation::

      raise NotImplementedError("labNN_MM: <what to implement>")

  where <what to implement> is the text after the marker
  (``### BEGIN SOLUTION: implement saxpy``), else ``implement <name>()`` for the
  enclosing ``def`` (``implement <Name>`` for a ``class``), else ``complete this cell``;
* Markdown cells tagged ``solution`` become "*Your answer here.*";
* cells tagged ``remove-in-lab`` are dropped, and no cell keeps the tag ``solution``;
* outputs and execution counts are removed, metadata is cleaned as by
  ``clean_notebooks.py`` (cell ids are the solution's, so the output is deterministic).

Usage::

    python tools/make_labs.py [--check] [--root DIR]

Without options it writes ``labs/`` and deletes labs whose solution is gone. ``--check``
writes nothing: it lists labs that differ from what would be generated, are missing, or
have no solution, and exits 1 if there is any. Marker errors exit 1 too.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from clean_notebooks import (
    add_root_option,
    clean_notebook,
    notebook_text,
    solution_paths,
)

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\b:?\s*(?P<what>.*?)\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
DEFINITION = re.compile(r"(?:async\s+)?(?P<kind>def|class)\s+(?P<name>\w+)")
LAB_NAME = re.compile(r"^lab(?P<chapter>\d{2})_(?P<number>\d{2})_\w+\.ipynb$")
ANSWER_PLACEHOLDER = "*Your answer here.*"


class MarkerError(ValueError):
    """``### BEGIN/END SOLUTION`` markers that are unbalanced, nested or not alone."""


def lab_id_from_path(path: str | Path) -> str:
    """``lab00_01_toolchain.ipynb`` -> ``"lab00_01"``; ValueError for other names."""
    match = LAB_NAME.match(Path(path).name)
    if not match:
        raise ValueError(f"{path}: a lab file name must look like labNN_MM_slug.ipynb")
    return f"lab{match['chapter']}_{match['number']}"


def _width(line: str) -> int:
    """Indentation width of a line (tabs count as 8 columns)."""
    expanded = line.expandtabs()
    return len(expanded) - len(expanded.lstrip())


def _enclosing_task(lines: list[str], begin: int) -> str:
    """What to implement, from the innermost def/class around line ``begin``."""
    limit = _width(lines[begin])
    for line in reversed(lines[:begin]):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ")", "]", "}")):
            continue  # blank lines, comments and closing brackets open no block
        if _width(line) < limit:
            definition = DEFINITION.match(stripped)
            if definition:
                call = "()" if definition["kind"] == "def" else ""
                return f"implement {definition['name']}{call}"
            limit = _width(line)
    return "complete this cell"


def _stub_source(source: str, lab_id: str, cell_index: int) -> str:
    """``source`` with every marked solution region replaced by a raise line."""
    lines = source.split("\n")
    out: list[str] = []
    begin = None  # index of the open BEGIN marker line
    for number, line in enumerate(lines):
        where = f"cell {cell_index}, line {number + 1}"
        opening, closing = BEGIN.match(line), END.match(line)
        if opening and begin is not None:
            raise MarkerError(
                f"{where}: BEGIN SOLUTION inside the BEGIN SOLUTION of "
                f"line {begin + 1} (markers cannot nest)"
            )
        if closing and begin is None:
            raise MarkerError(f"{where}: END SOLUTION without BEGIN SOLUTION")
        if not (opening or closing) and (
            "### BEGIN SOLUTION" in line or "### END SOLUTION" in line
        ):
            raise MarkerError(f"{where}: a solution marker must be alone on its line")
        if opening:
            begin = number
            task = opening["what"] or _enclosing_task(lines, number)
            message = json.dumps(f"{lab_id}: {task}", ensure_ascii=False)
            out.append(f"{opening['indent']}raise NotImplementedError({message})")
        elif closing:
            begin = None
        elif begin is None:
            out.append(line)
    if begin is not None:
        raise MarkerError(
            f"cell {cell_index}, line {begin + 1}: BEGIN SOLUTION without END SOLUTION"
        )
    return "\n".join(out)


def make_lab(nb: NotebookNode, lab_id: str) -> NotebookNode:
    """The lab generated from solution notebook ``nb`` (which is left unchanged).

    Raises MarkerError, naming the cell index and line, for malformed markers.
    """
    lab = clean_notebook(nb)
    cells = []
    for index, cell in enumerate(lab.cells):
        tags = cell.metadata.get("tags", [])
        if "remove-in-lab" in tags:
            continue
        if "solution" in tags:
            kept = [tag for tag in tags if tag != "solution"]
            cell.metadata = NotebookNode(tags=kept) if kept else NotebookNode()
            if cell.cell_type == "markdown":
                cell.source = ANSWER_PLACEHOLDER
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.source = _stub_source(cell.source, lab_id, index)
        cells.append(cell)
    lab.cells = cells
    return lab


def expected_labs(root: Path) -> dict[Path, str]:
    """Relative path -> file text of every lab that the solutions under ``root`` give.

    Raises MarkerError (prefixed with the solution's path) for malformed markers.
    """
    labs = {}
    for path in solution_paths(root):
        relative = path.relative_to(root / "solutions")
        try:
            lab = make_lab(nbformat.read(path, as_version=4), lab_id_from_path(path))
        except MarkerError as error:
            raise MarkerError(f"{path.relative_to(root)}: {error}") from None
        labs[relative] = notebook_text(lab)
    return labs


def _lab_paths(root: Path) -> dict[Path, Path]:
    """Relative path -> path of every lab notebook on disk under ``root/labs``."""
    labs_dir = root / "labs"
    return {
        p.relative_to(labs_dir): p
        for p in sorted(labs_dir.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in p.parts
    }


def find_drift(root: Path) -> list[str]:
    """One line per lab that is out of sync with its solution; empty when in sync."""
    expected, on_disk = expected_labs(root), _lab_paths(root)
    problems = []
    for relative, text in expected.items():
        path = on_disk.get(relative)
        if path is None:
            problems.append(f"missing: labs/{relative.as_posix()}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: labs/{relative.as_posix()}")
    problems += [
        f"no solution: labs/{relative.as_posix()}"
        for relative in on_disk
        if relative not in expected
    ]
    return problems


def write_labs(root: Path) -> None:
    """Write every lab that changed and delete the labs whose solution is gone."""
    labs_dir = root / "labs"
    expected = expected_labs(root)
    for relative, text in expected.items():
        path = labs_dir / relative
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote labs/{relative.as_posix()}")
    for relative, path in _lab_paths(root).items():
        if relative not in expected:
            path.unlink()
            print(f"deleted labs/{relative.as_posix()} (its solution is gone)")
            if not any(path.parent.iterdir()):
                path.parent.rmdir()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if labs/ is out of sync",
    )
    add_root_option(parser)
    args = parser.parse_args(argv)
    try:
        if not args.check:
            write_labs(args.root)
            return 0
        problems = find_drift(args.root)
    except ValueError as error:  # MarkerError or a bad file name
        print(f"error: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem)
    if problems:
        print("labs/ is out of sync with solutions/: run `make labs`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
