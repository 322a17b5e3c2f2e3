"""Run every generated lab as a learner who has not started: only stubs may fail.

A lab runs top to bottom in a fresh kernel (cells tagged ``nbval-skip``, such as the
install cell, removed) with errors allowed. Every error must be the
``NotImplementedError`` of a stub, and there must be at least one.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from model2metal.device import select_cuda_backend

LABS = Path(__file__).resolve().parents[1] / "labs"
LAB_PATHS = sorted(
    p for p in LABS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
CELL_TIMEOUT_S = 300


def run_as_learner(path: Path) -> list[tuple[int, nbformat.NotebookNode]]:
    """Execute the lab at ``path``; (index in the file, cell) of every cell that ran."""
    nb = nbformat.read(path, as_version=4)
    kept = [
        (index, cell)
        for index, cell in enumerate(nb.cells)
        if "nbval-skip" not in cell.metadata.get("tags", [])
    ]
    nb.cells = [cell for _, cell in kept]
    select_cuda_backend()  # the kernel inherits NUMBA_ENABLE_CUDASIM from os.environ
    NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    return kept


@pytest.mark.notebooks
@pytest.mark.parametrize(
    "path", LAB_PATHS, ids=lambda path: path.relative_to(LABS).as_posix()
)
def test_only_stubs_fail(path):
    errors = [
        (index, cell, output)
        for index, cell in run_as_learner(path)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    unexpected = [
        f"cell {index}: {output.ename}: {output.evalue}\n"
        + "\n".join("    " + line for line in cell.source.splitlines()[:5])
        for index, cell, output in errors
        if output.ename != "NotImplementedError"
    ]
    assert not unexpected, (
        "errors other than a stub's NotImplementedError:\n" + "\n".join(unexpected)
    )
    assert errors, "no cell raised NotImplementedError: does the lab have an exercise?"
