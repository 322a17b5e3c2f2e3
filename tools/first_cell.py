"""The first code cell of every lab: install the course helpers where they are missing.

A lab opened outside this repository's ``.venv`` (Colab, Binder, a JupyterHub image, a
graded copy) may lack ``model2metal``. The cell installs ``model2metal[labs]`` from a
source that exists — a copy of the course in or above the notebook's folder (the
repository the lab came from, or the book's labs download unzipped there: a
``model2metal-labs/`` folder), else ``M2M_SOURCE`` (a path, a wheel or a pip URL that an instructor
publishes) — and stops the notebook with a message that says what to do when there is
none or pip fails. Where the package is importable it does nothing; CI skips it
(``nbval-skip``), and the book folds it away (``hide-input``).

``FIRST_CELL`` is the one text of that cell. Usage::

    python tools/first_cell.py [--check] [--root DIR]

writes it into every solution (cell 1, the cell after the header) and regenerates the
labs; ``--check`` changes nothing and exits 1 when a solution's cell differs.
"""

from __future__ import annotations

import argparse
import sys

import nbformat

from clean_notebooks import add_root_option, solution_paths, write_notebook
import make_labs

TAGS = ["nbval-skip", "hide-input"]
FIRST_CELL = '''\
# Outside the course's .venv (Colab, Binder, JupyterHub): install the course helpers.
import importlib.util, os, pathlib, subprocess, sys

if importlib.util.find_spec("model2metal") is None:
    here = pathlib.Path.cwd().resolve()
    places = [q for p in (here, *here.parents) for q in (p, p / "model2metal-labs")]
    copies = [p for p in places if (p / "model2metal/__init__.py").is_file()]
    source = os.environ.get("M2M_SOURCE") or (str(copies[0]) if copies else "")
    if not source:
        raise RuntimeError(
            "The course helpers (model2metal) are not installed and there is no copy of the "
            "course here or above. Unzip the book's labs download (model2metal-labs.zip) "
            "here, or clone the course and open this lab from its labs/ folder, or set "
            "M2M_SOURCE to the path, wheel or URL your instructor gives."
        )
    local = pathlib.Path(source).exists()
    wanted = f"{source}[labs]" if local else f"model2metal[labs] @ {source}"
    print(f"installing {wanted} (a few minutes: PyTorch, TVM, Numba) ...")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", wanted],
                         capture_output=True, text=True)
    importlib.invalidate_caches()
    if pip.returncode != 0 or importlib.util.find_spec("model2metal") is None:
        raise RuntimeError(f"Installing {wanted} failed; nothing below will work. "
                           f"pip said:\\n{pip.stdout[-2000:]}{pip.stderr[-2000:]}")
    print("installed: run the next cells")'''


def first_code_cell(nb):
    """(index, cell) of the notebook's first code cell, or (None, None)."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            return index, cell
    return None, None


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing")
    add_root_option(parser)
    args = parser.parse_args(argv)
    stale = []
    for path in solution_paths(args.root):
        nb = nbformat.read(path, as_version=4)
        index, cell = first_code_cell(nb)
        if index != 1:
            print(f"{path}: the install cell must follow the header (cell 1)")
            return 1
        if cell.source == FIRST_CELL and cell.metadata.get("tags") == TAGS:
            continue
        stale.append(path)
        if not args.check:
            cell.source, cell.metadata.tags, cell.outputs = FIRST_CELL, list(TAGS), []
            write_notebook(nb, path)
            print(f"wrote {path}")
    if args.check:
        for path in stale:
            print(f"differs: {path}")
        return 1 if stale else 0
    return make_labs.main(["--root", str(args.root)])


if __name__ == "__main__":
    sys.exit(main())
