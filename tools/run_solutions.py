"""Execute solution notebooks in fresh kernels, store them cleaned, regenerate the labs.

Each notebook runs top to bottom in a new ``python3`` kernel whose working directory is
the notebook's folder (600 s per cell at most). A notebook that runs without error is
written back with its outputs, cleaned by ``clean_notebooks.py``; one that fails is left
untouched. Then the labs are regenerated as by ``make_labs.py``. Usage::

    python tools/run_solutions.py [--root DIR] [NOTEBOOK ...]

Without NOTEBOOK arguments it runs every ``solutions/**/*.ipynb``. Exits 1 if a
notebook failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from clean_notebooks import (
    add_root_option,
    clean_notebook,
    solution_paths,
    write_notebook,
)
import make_labs
from model2metal.device import select_cuda_backend

CELL_TIMEOUT_S = 600


def run_notebook(path: Path) -> None:
    """Execute ``path`` in a fresh kernel and write it back cleaned, outputs kept."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    write_notebook(clean_notebook(nb), path)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="solutions to run (default: solutions/**/*.ipynb)",
    )
    add_root_option(parser)
    args = parser.parse_args(argv)
    # Kernels inherit os.environ: NUMBA_ENABLE_CUDASIM must be set before they start.
    print(f"CUDA backend for the kernels: {select_cuda_backend()}")
    failed = []
    for path in args.notebooks or solution_paths(args.root):
        start = time.perf_counter()
        try:
            run_notebook(path)
        except CellExecutionError as error:
            failed.append(path)
            print(f"FAILED {path} after {time.perf_counter() - start:.1f} s:\n{error}")
            continue
        print(f"ran {path} in {time.perf_counter() - start:.1f} s")
    labs_status = make_labs.main(["--root", str(args.root)])
    if failed:
        print("failed: " + ", ".join(str(path) for path in failed), file=sys.stderr)
    return 1 if failed or labs_status else 0


if __name__ == "__main__":
    sys.exit(main())
