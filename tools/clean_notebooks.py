"""Clean solution notebooks after they were executed, keeping their outputs.

Cleaning makes a notebook's file depend on its content only, so that re-running a
solution changes the diff only where an output really changed:

* execution counts are renumbered 1, 2, 3, ... over the code cells, in order (and an
  ``execute_result`` output gets its cell's number). They are not dropped: nbval fails
  a cell that has outputs but no execution count ("Unrun reference cell has outputs");
* cell metadata keeps only ``tags``;
* notebook metadata keeps only ``kernelspec`` and the name in ``language_info``;
* cell ids become ``c000``, ``c001``, ... (their index in the notebook);
* object addresses in text outputs, ``at 0x7f3a...``, become ``at 0x...``.

Cleaning is idempotent. Usage::

    python tools/clean_notebooks.py [--check] [--root DIR] [NOTEBOOK ...]

Without NOTEBOOK arguments it cleans every ``solutions/**/*.ipynb`` under the root (the
repository by default). ``--check`` changes nothing and exits 1 if a notebook is not
clean.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

REPO_ROOT = Path(__file__).resolve().parents[1]
ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+")


def _scrub(text: str) -> str:
    """Replace object addresses such as ``at 0x7f3a2c`` by ``at 0x...``."""
    return ADDRESS.sub("at 0x...", text)


def _clean_output(output: NotebookNode, count: int) -> None:
    """Renumber one output's execution count and scrub the addresses in its text."""
    if output.output_type == "stream":
        output.text = _scrub(output.text)
    if output.output_type == "execute_result":
        output.execution_count = count
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") and isinstance(value, str):
            output.data[mime] = _scrub(value)


def clean_notebook(nb: NotebookNode) -> NotebookNode:
    """A cleaned copy of ``nb`` (the argument is left unchanged); outputs are kept."""
    nb = copy.deepcopy(nb)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)  # cell ids need nbformat 4.5
    metadata = NotebookNode()
    if "kernelspec" in nb.metadata:
        metadata.kernelspec = nb.metadata.kernelspec
    if "name" in nb.metadata.get("language_info", {}):
        metadata.language_info = NotebookNode(name=nb.metadata.language_info.name)
    nb.metadata = metadata
    count = 0
    for index, cell in enumerate(nb.cells):
        cell.id = f"c{index:03d}"
        tags = cell.metadata.get("tags")
        cell.metadata = NotebookNode(tags=tags) if tags else NotebookNode()
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
            for output in cell.outputs:
                _clean_output(output, count)
    return nb


def notebook_text(nb: NotebookNode) -> str:
    """The exact text a notebook is stored as: nbformat's JSON and a final newline."""
    return nbformat.writes(nb) + "\n"


def write_notebook(nb: NotebookNode, path: Path) -> None:
    """Write ``nb`` to ``path`` byte-deterministically (UTF-8, ``\\n`` line ends)."""
    path.write_text(notebook_text(nb), encoding="utf-8", newline="\n")


def solution_paths(root: Path) -> list[Path]:
    """Every solution notebook under ``root/solutions``, sorted, without checkpoints."""
    return sorted(
        p
        for p in (root / "solutions").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )


def add_root_option(parser: argparse.ArgumentParser) -> None:
    """The ``--root`` option every tool shares: the repository to work on."""
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="repository root (default: this repository)")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to clean (default: solutions/**/*.ipynb)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 if a notebook is not clean",
    )
    add_root_option(parser)
    args = parser.parse_args(argv)
    paths = args.notebooks or solution_paths(args.root)
    dirty = []
    for path in paths:
        text = notebook_text(clean_notebook(nbformat.read(path, as_version=4)))
        if path.read_text(encoding="utf-8") == text:
            continue
        dirty.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"cleaned {path}")
    if args.check and dirty:
        for path in dirty:
            print(f"not clean: {path}")
        print("run `python tools/clean_notebooks.py` (or `make solutions`)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
